// The one event stream of a run. The engine emits these events, the run layer adds `started`/`ended`
// and the ETA, the worker forwards them unchanged, metrics.jsonl stores them (all but the live-only
// kinds below), and one reducer (run-state.ts) folds them into what a run shows: live in the host,
// on replay from disk, and in the run panel. Plain types only: every bundle imports this file. Events that
// arrive untyped (metrics.jsonl, the worker's messages) are checked by event-schemas.ts.

/** A training phase of a run: `train`, `teacher`, `nad`, `finetune`, or a defense's own (e.g. `prune`). */
export type Phase = string;

export type RunKind = 'train' | 'finetune' | 'erase' | 'defend' | 'eval' | 'attention' | 'imageAttention';
export type RunState = 'running' | 'finished' | 'failed' | 'cancelled' | 'interrupted';

/** One row of the ACC/ASR table: `model` names the row (backdoored, teacher, erased, pruned...). */
export interface ResultRow {
  readonly model: string;
  readonly acc: number;
  readonly asr: number;
  /** Robust accuracy: triggered non-target images classified as their true label (percent). */
  readonly ra?: number;
}

/** The sample images as the panel and maps.json carry them. */
export interface SampleImages {
  readonly height: number;
  readonly width: number;
  readonly channels: number;
  /** base64 of the uint8 HWC pixels, one per sample. */
  readonly clean: readonly string[];
  readonly triggered: readonly string[];
  readonly labels: readonly number[];
  readonly attackLabels: readonly number[];
  readonly classNames?: readonly string[];
}

export interface AttentionSnapshot {
  /** Which model: backdoored, teacher, erased, or a model file's name. */
  readonly model: string;
  /** Epoch after which it was taken; 0 = before training, -1 = final. */
  readonly epoch: number;
  readonly count: number;
  readonly groups: ReadonlyArray<{ readonly height: number; readonly width: number }>;
  /** [group][image * h * w + y * w + x], rounded to 5 significant digits. */
  readonly clean: ReadonlyArray<readonly number[]>;
  readonly triggered: ReadonlyArray<readonly number[]>;
  readonly predictions: { readonly clean: readonly number[]; readonly triggered: readonly number[] };
}

/** A defense's own curve (e.g. ACC/ASR against channels pruned): the panel draws every series it gets. */
export interface SeriesPoint {
  readonly x: number;
  readonly acc: number;
  readonly asr: number;
}

/**
 * A defense's own chart: `bar` over named categories (anomaly index per class, entropy histogram bins),
 * or `xy` lines on numeric axes (ROC curve). Drawn by the panel's chart code in the theme's colours.
 */
export type ChartData =
  | {
      readonly kind: 'bar';
      readonly labels: readonly string[];
      readonly series: ReadonlyArray<{ readonly name: string; readonly values: readonly number[] }>;
    }
  | {
      readonly kind: 'xy';
      readonly series: ReadonlyArray<{ readonly name: string; readonly points: ReadonlyArray<{ readonly x: number; readonly y: number }> }>;
    }
  /** A matrix of counts (a confusion matrix: rows the true class, columns the prediction), drawn as a shaded table. */
  | {
      readonly kind: 'matrix';
      readonly rowLabels: readonly string[];
      readonly colLabels: readonly string[];
      readonly values: ReadonlyArray<readonly number[]>;
    };

export interface ChartFigure {
  readonly id: string;
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly chart: ChartData;
  /** Where the panel shows it: a defense's own views (the default), or the per-class results of the final model. */
  readonly group?: 'defense' | 'classes';
  /**
   * A reference line: horizontal at y = value (the anomaly threshold 2), or with `axis: 'x'` vertical at x = value
   * (on a bar chart in category positions: 3.5 is the edge between the 4th and 5th bars; an entropy threshold).
   */
  readonly threshold?: { readonly value: number; readonly label: string; readonly axis?: 'x' | 'y' };
}

/** One small image a defense shows (a recovered trigger's mask or pattern): uint8 HWC pixels in base64. */
export interface FigureImage {
  readonly caption: string;
  readonly height: number;
  readonly width: number;
  /** 1 (grey) or 3 (RGB). */
  readonly channels: number;
  readonly pixels: string;
  /** Drawn with an outline (e.g. a flagged class). */
  readonly marked?: boolean;
}

export interface ImagesFigure {
  readonly id: string;
  readonly title: string;
  readonly images: readonly FigureImage[];
  /** Where the panel shows them: a defense's own views (the default), or the attack's trigger gallery. */
  readonly group?: 'defense' | 'attack';
  /** Images per row (the gallery's clean | poisoned | difference); wrapped to the width when absent. */
  readonly columns?: 3;
}

/** A defense's findings in a few lines (flagged classes, threshold, FRR/FAR, AUC...). */
export interface Fact {
  readonly label: string;
  readonly value: string;
}

export interface EpochEvent {
  readonly type: 'epoch';
  readonly phase: Phase;
  readonly epoch: number;
  readonly epochs: number;
  readonly loss: number;
  readonly acc: number;
  readonly asr: number;
  readonly ra?: number;
  readonly lr: number;
  readonly seconds: number;
  readonly imagesPerSecond: number;
  /** Seconds left in the whole run, once there is a pace (added by the run layer). */
  readonly etaSeconds?: number;
}

export type RunEvent =
  | {
      readonly type: 'started';
      readonly runId: string;
      readonly runDir: string;
      readonly kind: RunKind;
      readonly backend: string;
      readonly resumed: boolean;
    }
  | { readonly type: 'phase'; readonly phase: Phase; readonly label: string; readonly epochs: number }
  /** ACC/ASR of the model a phase starts from. */
  | { readonly type: 'baseline'; readonly phase: Phase; readonly acc: number; readonly asr: number }
  | {
      readonly type: 'step';
      readonly phase: Phase;
      readonly epoch: number;
      readonly step: number;
      readonly steps: number;
      /** Absent for steps that are not training (a detector scoring images). */
      readonly loss?: number;
      readonly etaSeconds?: number;
    }
  | EpochEvent
  | { readonly type: 'table'; readonly rows: readonly ResultRow[] }
  | {
      readonly type: 'series';
      readonly id: string;
      readonly title: string;
      readonly xLabel: string;
      readonly points: readonly SeriesPoint[];
    }
  | ({ readonly type: 'chart' } & ChartFigure)
  | ({ readonly type: 'images' } & ImagesFigure)
  | { readonly type: 'facts'; readonly title: string; readonly facts: readonly Fact[] }
  | { readonly type: 'attention'; readonly snapshot: AttentionSnapshot }
  /** The images the attention maps are of, once per run before any map: a live panel draws the maps over them. */
  | { readonly type: 'samples'; readonly samples: SampleImages }
  | { readonly type: 'log'; readonly message: string }
  | { readonly type: 'ended'; readonly state: Exclude<RunState, 'running' | 'interrupted'>; readonly error?: string };

/** Events the engine emits; `started` and `ended` belong to the run layer. */
export type EngineEvent = Exclude<RunEvent, { type: 'started' } | { type: 'ended' }>;

export type EventSink = (event: EngineEvent) => void;

/** Kinds that only matter while a run is live: metrics.jsonl leaves them out (maps.json keeps the final maps). */
export const LIVE_ONLY_EVENTS: ReadonlySet<RunEvent['type']> = new Set(['step', 'attention', 'samples']);
