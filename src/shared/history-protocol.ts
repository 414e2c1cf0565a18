// Host <-> history page and host <-> compare page. Plain types only: the webview bundles import them.

/** One run as the history table shows it; numbers stay numbers so that columns sort by value. */
export interface HistoryRow {
  /** The run folder's absolute path: the key the page sends back. */
  readonly dir: string;
  readonly id: string;
  readonly name: string;
  readonly workspace?: string;
  readonly kind: string;
  readonly state: string;
  readonly dataset?: string;
  readonly trigger?: string;
  readonly target?: string;
  /** all2one, all2all or cleanLabel, when the config says. */
  readonly targetType?: string;
  readonly epochs?: number;
  /** Epochs done so far, when it differs from `epochs` (running, failed, cancelled). */
  readonly epochsDone?: number;
  readonly acc?: number;
  readonly asr?: number;
  readonly ra?: number;
  /** DER in [0, 1], defense runs only. */
  readonly der?: number;
  readonly backend?: string;
  readonly backendDetail?: string;
  readonly startedAt: string;
  readonly durationMs?: number;
  readonly error?: string;
  readonly hasAttention: boolean;
}

/** A folder under .nad/runs that could not be read: shown with its problem, never hidden. */
export interface BrokenRow {
  readonly dir: string;
  readonly id: string;
  readonly problem: string;
}

export type HistoryColumn =
  | 'name'
  | 'kind'
  | 'state'
  | 'dataset'
  | 'trigger'
  | 'target'
  | 'epochs'
  | 'acc'
  | 'asr'
  | 'ra'
  | 'der'
  | 'backend'
  | 'startedAt'
  | 'durationMs';

/** Page state kept across reloads (webview state) and restored by the panel serializer. */
export interface HistoryViewState {
  readonly sort: HistoryColumn;
  readonly descending: boolean;
  readonly filter: string;
  /** Selected run folders. */
  readonly selected: readonly string[];
}

export type HistoryHostMessage = {
  readonly type: 'runs';
  readonly rows: readonly HistoryRow[];
  readonly broken: readonly BrokenRow[];
  readonly canOpenRun: boolean;
};

export type HistoryViewMessage =
  | { readonly type: 'ready' }
  | { readonly type: 'open'; readonly dir: string }
  | { readonly type: 'reveal'; readonly dir: string }
  | { readonly type: 'attention'; readonly dir: string }
  | { readonly type: 'compare'; readonly dirs: readonly string[] }
  | { readonly type: 'refresh' }
  /** What the page lists after filtering and sorting (tests and the host read it). */
  | { readonly type: 'rendered'; readonly shown: readonly string[]; readonly broken: number; readonly state: HistoryViewState };

/** One epoch-indexed curve segment: a run's training phase (an erase run without a teacher has two). */
export interface CurveSegment {
  readonly phase: string;
  readonly epochs: readonly number[];
  readonly acc: readonly number[];
  readonly asr: readonly number[];
  readonly loss: readonly number[];
}

export interface CompareRun {
  readonly dir: string;
  readonly name: string;
  readonly kind: string;
  readonly state: string;
  readonly acc?: number;
  readonly asr?: number;
  readonly segments: readonly CurveSegment[];
  /** Problems met reading this run (bad metrics lines...), shown in the page. */
  readonly problems: readonly string[];
}

/** A flattened config key and its value in each compared run (undefined = the run has no such key). */
export interface ConfigDiffRow {
  readonly key: string;
  readonly values: ReadonlyArray<string | undefined>;
  readonly differs: boolean;
}

export interface CompareData {
  readonly runs: readonly CompareRun[];
  readonly config: readonly ConfigDiffRow[];
  /** Runs asked for that could not be read at all. */
  readonly missing: ReadonlyArray<{ readonly dir: string; readonly problem: string }>;
}

export interface CompareViewState {
  readonly dirs: readonly string[];
  readonly onlyDifferences: boolean;
}

export type CompareHostMessage = { readonly type: 'data'; readonly data: CompareData };

export type CompareViewMessage =
  | { readonly type: 'ready' }
  | { readonly type: 'rendered'; readonly runs: number; readonly differing: readonly string[]; readonly charts: number }
  | { readonly type: 'open'; readonly dir: string };
