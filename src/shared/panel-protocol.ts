// Messages between the extension host and the run panel (webview/panel). The host sends a full
// snapshot when the panel (re)loads, then the run's events as they come: both sides fold them with
// the one reducer (run-state.ts), so a reopened panel shows what a live one showed.
import type { ResultRow, RunEvent, RunKind } from './run-events';
import { reduceRun, type RunView } from './run-state';

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
  /** What made the run (version, engine, input SHA-256s), "unknown" where an older run lacks a field. */
  readonly provenance?: ReadonlyArray<readonly [string, string]>;
  readonly resumable: boolean;
}

export interface PanelSnapshot extends RunView {
  readonly run: PanelRunInfo;
  /** false in Restricted Mode (an untrusted workspace): the panel offers no Resume or Run Again. */
  readonly canRun?: boolean;
}

/** Host to panel. */
export type HostToPanel =
  | { readonly type: 'snapshot'; readonly snapshot: PanelSnapshot }
  | { readonly type: 'run'; readonly run: PanelRunInfo }
  /** One event of the run, as the worker sent it. */
  | { readonly type: 'event'; readonly event: RunEvent }
  /** The workspace's trust changed (it can only be granted while the window lives). */
  | { readonly type: 'trust'; readonly canRun: boolean }
  /** Asks the panel what it shows (tests, and the host's own checks): answered by `rendered`. */
  | { readonly type: 'probe'; readonly id: number };

export type PanelAction = 'cancel' | 'resume' | 'rerun' | 'rerunWithChanges' | 'revealFolder' | 'showLog';

/** Kinds whose wizard "Run Again With Changes" opens, prefilled from the run's config. */
export const WIZARD_KINDS: readonly string[] = ['erase', 'train', 'finetune', 'defend', 'eval'];

export interface FigureCounts {
  readonly charts: number;
  readonly chartBars: number;
  readonly matrices: number;
  readonly images: number;
  readonly facts: number;
}

/** What the panel's DOM shows, read back from it. */
export interface RenderedPanel {
  readonly title: string;
  readonly state: string;
  /** The ACC/ASR table's cells, header row first. */
  readonly table: ReadonlyArray<readonly string[]>;
  readonly epochRows: number;
  readonly attentionMaps: number;
  readonly chartPoints: number;
  /** A defense's own views: charts, the data points (bars) they draw, images and findings. */
  readonly figures: FigureCounts;
  /** The per-class section: the bar chart and the confusion matrices. */
  readonly classes: FigureCounts;
  /** The attack's trigger gallery: images drawn, and their captions in order. */
  readonly gallery: { readonly images: number; readonly captions: readonly string[] };
  /** The Provenance list, "label: value" in order. */
  readonly provenance: readonly string[];
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

/** Folds one update into a snapshot (host and webview alike). */
export function applyPanelMessage(s: PanelSnapshot, msg: HostToPanel): PanelSnapshot {
  switch (msg.type) {
    case 'snapshot':
      return msg.snapshot;
    case 'run':
      return { ...s, run: msg.run, progress: msg.run.state === 'running' ? s.progress : undefined };
    case 'event':
      return reduceRun(s, msg.event);
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

/** Names of the table's rows, in the paper's words; other rows show their own name. */
const MODEL_LABELS: Readonly<Record<string, string>> = {
  backdoored: 'Backdoored',
  teacher: 'Teacher',
  erased: 'After NAD',
  trained: 'Trained (backdoored)',
  finetuned: 'Finetuned',
  evaluated: 'Evaluated',
  pruned: 'Pruned',
  'fine-pruned': 'Fine-pruned',
};

export function modelLabel(model: ResultRow['model']): string {
  return MODEL_LABELS[model] ?? model;
}
