// The one reducer: folds a run's events (run-events.ts) into what the run shows. The host runs it on
// live events from the worker, the run folder reader on metrics.jsonl, and the run panel on the
// events the host forwards, so a reopened panel shows exactly what the live one showed.
import type {
  AttentionSnapshot,
  ChartFigure,
  Fact,
  ImagesFigure,
  Phase,
  ResultRow,
  RunEvent,
  SampleImages,
  SeriesPoint,
} from './run-events';

export interface EpochPoint {
  readonly phase: Phase;
  readonly epoch: number;
  readonly loss: number;
  readonly acc: number;
  readonly asr: number;
  readonly lr?: number;
  readonly seconds?: number;
}

export interface RunProgress {
  readonly phase: Phase;
  readonly label: string;
  readonly epoch: number;
  readonly epochs: number;
  readonly step: number;
  readonly steps: number;
  readonly loss?: number;
  readonly etaSeconds?: number;
}

export interface Series {
  readonly id: string;
  readonly title: string;
  readonly xLabel: string;
  readonly points: readonly SeriesPoint[];
}

export interface RunView {
  readonly epochs: readonly EpochPoint[];
  readonly table: readonly ResultRow[];
  /** Defense-specific curves (pruning curve, path curve...), latest per id. */
  readonly series: readonly Series[];
  /** Defense-specific charts (anomaly index, entropy histograms, ROC...), latest per id. */
  readonly charts: readonly ChartFigure[];
  /** Defense-specific images (recovered triggers...), latest per id. */
  readonly images: readonly ImagesFigure[];
  /** A defense's findings, latest. */
  readonly facts?: { readonly title: string; readonly facts: readonly Fact[] };
  /** Latest snapshot per model (backdoored, teacher, erased...). */
  readonly attention: readonly AttentionSnapshot[];
  readonly samples?: SampleImages;
  /** Last lines of the run's log. */
  readonly log: readonly string[];
  /** Where the run is now; undefined when it is not training. */
  readonly progress?: RunProgress;
}

export const EMPTY_RUN_VIEW: RunView = { epochs: [], table: [], series: [], charts: [], images: [], attention: [], log: [] };

export const MAX_LOG_LINES = 400;

const PHASE_LABELS: Readonly<Record<string, string>> = {
  train: 'Training',
  teacher: 'Teacher',
  nad: 'NAD',
  finetune: 'Finetuning',
  eval: 'Evaluation',
};

/** A phase's name for people: the known ones in the paper's words, others capitalised. */
export function phaseLabel(phase: Phase): string {
  return PHASE_LABELS[phase] ?? phase.charAt(0).toUpperCase() + phase.slice(1);
}

const pct = (v: number): string => `${v.toFixed(2)}%`;

function appendLog<T extends RunView>(v: T, lines: readonly string[]): T {
  const log = [...v.log, ...lines];
  return { ...v, log: log.length > MAX_LOG_LINES ? log.slice(log.length - MAX_LOG_LINES) : log };
}

/** Folds one event into a run's view. Pure: the same events give the same view wherever they are folded. */
export function reduceRun<T extends RunView>(v: T, e: RunEvent): T {
  switch (e.type) {
    case 'started':
      return { ...v, progress: undefined };
    case 'phase':
      return appendLog({ ...v, progress: { phase: e.phase, label: e.label, epoch: 0, epochs: e.epochs, step: 0, steps: 0 } }, [
        `${e.label} (${e.epochs} epochs)`,
      ]);
    case 'baseline':
      return appendLog(v, [`before ${phaseLabel(e.phase).toLowerCase()}: ACC ${pct(e.acc)}, ASR ${pct(e.asr)}`]);
    case 'step': {
      const label = v.progress?.phase === e.phase ? v.progress.label : phaseLabel(e.phase);
      const epochs = v.progress?.phase === e.phase ? v.progress.epochs : e.epoch;
      return {
        ...v,
        progress: { phase: e.phase, label, epoch: e.epoch, epochs, step: e.step, steps: e.steps, loss: e.loss, etaSeconds: e.etaSeconds },
      };
    }
    case 'epoch': {
      // A resumed epoch replaces the one it redoes.
      const kept = v.epochs.filter((p) => !(p.phase === e.phase && p.epoch >= e.epoch));
      const point: EpochPoint = { phase: e.phase, epoch: e.epoch, loss: e.loss, acc: e.acc, asr: e.asr, lr: e.lr, seconds: e.seconds };
      const prev = v.progress?.phase === e.phase ? v.progress : undefined;
      const steps = prev?.steps || 1;
      const progress: RunProgress = {
        phase: e.phase,
        label: prev?.label ?? phaseLabel(e.phase),
        epoch: e.epoch,
        epochs: e.epochs,
        step: steps,
        steps,
        loss: e.loss,
        etaSeconds: e.etaSeconds,
      };
      return { ...v, epochs: [...kept, point], progress };
    }
    case 'table':
      return { ...v, table: e.rows };
    case 'series':
      return { ...v, series: [...v.series.filter((s) => s.id !== e.id), { id: e.id, title: e.title, xLabel: e.xLabel, points: e.points }] };
    case 'chart': {
      const { type: _t, ...figure } = e;
      return { ...v, charts: [...v.charts.filter((c) => c.id !== e.id), figure] };
    }
    case 'images': {
      const { type: _t, ...figure } = e;
      return { ...v, images: [...v.images.filter((c) => c.id !== e.id), figure] };
    }
    case 'facts':
      return appendLog({ ...v, facts: { title: e.title, facts: e.facts } }, [
        `${e.title}: ${e.facts.map((f) => `${f.label} ${f.value}`).join('; ')}`,
      ]);
    case 'attention':
      return { ...v, attention: [...v.attention.filter((a) => a.model !== e.snapshot.model), e.snapshot] };
    case 'samples':
      return { ...v, samples: e.samples };
    case 'log':
      return appendLog(v, [e.message]);
    case 'ended':
      return { ...v, progress: undefined };
    default: {
      const _: never = e;
      return _;
    }
  }
}

/** One line for a person (the NAD log, the CLI): the epoch results and the phases; undefined for the rest. */
export function describeEvent(e: RunEvent): string | undefined {
  switch (e.type) {
    case 'phase':
      return `${e.label} (${e.epochs} epochs)`;
    case 'epoch':
      return `${phaseLabel(e.phase)} epoch ${e.epoch}/${e.epochs}: loss ${e.loss.toFixed(4)}, ACC ${pct(e.acc)}, ASR ${pct(e.asr)} (${e.seconds.toFixed(1)} s, ${e.imagesPerSecond.toFixed(0)} img/s)`;
    case 'log':
      return e.message;
    default:
      return undefined;
  }
}
