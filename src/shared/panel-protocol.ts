// Messages between the extension host and the run panel (webview/panel). The host sends a full
// snapshot when the panel (re)loads, then the same live updates it applies to its own copy: both
// sides fold them with `applyPanelMessage`, so a reopened panel shows what a live one showed.
import type { AttentionSnapshot, SampleImages } from '../engine/attention-snapshot';
import type { Phase, ResultRow } from '../runs/jobs';
import type { RunKind } from '../runs/run-store';

export const RUN_PANEL_VIEW_TYPE = 'nad.runPanel';

/** A run's state as the panel shows it: the run store's states, plus `queued` before a worker takes it. */
export type PanelRunState = 'queued' | 'running' | 'finished' | 'failed' | 'cancelled' | 'interrupted';

export interface PanelRunInfo {
  /** Run folder name; empty while queued. */
  readonly id: string;
  readonly dir: string;
  readonly name: string;
  /** `unknown` when the folder could not be read. */
  readonly kind: RunKind | 'unknown';
  readonly state: PanelRunState;
  readonly backend?: string;
  readonly startedAt?: string;
  readonly endedAt?: string;
  readonly error?: string;
  /** Settings worth showing next to the name: data, epochs, betas... */
  readonly facts: ReadonlyArray<readonly [string, string]>;
  readonly resumable: boolean;
}

export interface EpochPoint {
  readonly phase: Phase;
  readonly epoch: number;
  readonly loss: number;
  readonly acc: number;
  readonly asr: number;
  readonly lr?: number;
  readonly seconds?: number;
}

export interface PanelProgress {
  readonly phase: Phase;
  readonly label: string;
  readonly epoch: number;
  readonly epochs: number;
  readonly step: number;
  readonly steps: number;
  readonly loss?: number;
  readonly etaSeconds?: number;
}

/** The images behind the attention maps: sent when a run starts, and read from attention/maps.json after. */
export type { SampleImages };

export interface PanelSnapshot {
  readonly run: PanelRunInfo;
  readonly epochs: readonly EpochPoint[];
  readonly table: readonly ResultRow[];
  /** Latest snapshot per model (backdoored, teacher, erased...). */
  readonly attention: readonly AttentionSnapshot[];
  readonly samples?: SampleImages;
  /** false in Restricted Mode (an untrusted workspace): the panel offers no Resume or Run Again. */
  readonly canRun?: boolean;
  /** Last lines of the run's log. */
  readonly log: readonly string[];
  readonly progress?: PanelProgress;
}

/** Host to panel. */
export type HostToPanel =
  | { readonly type: 'snapshot'; readonly snapshot: PanelSnapshot }
  | { readonly type: 'run'; readonly run: PanelRunInfo }
  | { readonly type: 'progress'; readonly progress: PanelProgress | undefined }
  | { readonly type: 'epoch'; readonly point: EpochPoint }
  | { readonly type: 'table'; readonly rows: readonly ResultRow[] }
  | { readonly type: 'attention'; readonly snapshot: AttentionSnapshot }
  /** The run's sample images, once at its start: live maps are drawn over them before maps.json exists. */
  | { readonly type: 'samples'; readonly samples: SampleImages }
  | { readonly type: 'log'; readonly lines: readonly string[] }
  /** The workspace's trust changed (it can only be granted while the window lives). */
  | { readonly type: 'trust'; readonly canRun: boolean }
  /** Asks the panel what it shows (tests, and the host's own checks): answered by `rendered`. */
  | { readonly type: 'probe'; readonly id: number };

export type PanelAction = 'cancel' | 'resume' | 'rerun' | 'revealFolder' | 'showLog';

/** What the panel's DOM shows, read back from it. */
export interface RenderedPanel {
  readonly title: string;
  readonly state: string;
  /** The ACC/ASR table's cells, header row first. */
  readonly table: ReadonlyArray<readonly string[]>;
  readonly epochRows: number;
  readonly attentionMaps: number;
  readonly chartPoints: number;
  readonly logLines: number;
}

/** Panel to host. */
export type PanelToHost =
  | { readonly type: 'ready' }
  | { readonly type: 'copy'; readonly format: 'markdown' | 'csv'; readonly text: string }
  | { readonly type: 'action'; readonly action: PanelAction }
  | { readonly type: 'rendered'; readonly id: number; readonly panel: RenderedPanel }
  | { readonly type: 'error'; readonly message: string };

/** What the webview keeps with vscode.setState, so that a reloaded window reopens the same run. */
export interface PanelState {
  readonly runDir: string;
  /** The sample image shown in the attention maps. */
  readonly sample?: number;
}

export const MAX_LOG_LINES = 400;

/** Folds one update into a snapshot (host and webview alike). */
export function applyPanelMessage(s: PanelSnapshot, msg: HostToPanel): PanelSnapshot {
  switch (msg.type) {
    case 'snapshot':
      return msg.snapshot;
    case 'run':
      return { ...s, run: msg.run, progress: msg.run.state === 'running' ? s.progress : undefined };
    case 'progress':
      return { ...s, progress: msg.progress };
    case 'epoch': {
      // A resumed epoch replaces the one it redoes.
      const kept = s.epochs.filter((p) => !(p.phase === msg.point.phase && p.epoch >= msg.point.epoch));
      return { ...s, epochs: [...kept, msg.point] };
    }
    case 'table':
      return { ...s, table: msg.rows };
    case 'attention':
      return { ...s, attention: [...s.attention.filter((a) => a.model !== msg.snapshot.model), msg.snapshot] };
    case 'samples':
      return { ...s, samples: msg.samples };
    case 'log': {
      const log = [...s.log, ...msg.lines];
      return { ...s, log: log.length > MAX_LOG_LINES ? log.slice(log.length - MAX_LOG_LINES) : log };
    }
    case 'trust':
      return { ...s, canRun: msg.canRun };
    case 'probe':
      return s;
    default: {
      const _: never = msg;
      return _;
    }
  }
}

/** Names of the table's rows, in the paper's words. */
export const MODEL_LABELS: Readonly<Record<ResultRow['model'], string>> = {
  backdoored: 'Backdoored',
  teacher: 'Teacher',
  erased: 'After NAD',
  trained: 'Trained (backdoored)',
  finetuned: 'Finetuned',
  evaluated: 'Evaluated',
};

export const PHASE_LABELS: Readonly<Record<Phase, string>> = {
  train: 'Training',
  teacher: 'Teacher',
  nad: 'NAD',
  eval: 'Evaluation',
};
