// Host <-> history page and host <-> compare page. Plain types only: the webview bundles import them.

/** A plain value of a table cell: numbers stay numbers so that columns sort and filter by value. */
export type CellValue = string | number | boolean;

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
  /** config.json flattened to dotted keys (`training.betas.0`, `cleanCount`, `params.amplification`). */
  readonly params: Readonly<Record<string, CellValue>>;
  /** results.json's numbers: `<model>.acc|asr|ra` per table row, `report.*`. */
  readonly metrics: Readonly<Record<string, number>>;
  /** config.json's provenance as cells (src/shared/history-provenance.ts); a row without it reads "unknown". */
  readonly provenance?: Readonly<Record<string, string>>;
  /** Tooltips of the provenance cells (full hashes, file paths). */
  readonly provenanceNotes?: Readonly<Record<string, string>>;
  /** Percent of the training data given clean to a defense, whether asked for by count or by ratio. */
  readonly cleanShare?: number;
  /** How the share was asked for and what it came to ("2500 of 5085 images", "cleanRatio 0.05"). */
  readonly cleanShareNote?: string;
  /** The run folder holds star.json. */
  readonly starred: boolean;
  /** The run's colour slot, the same on this page and on Compare Runs (order of creation in the workspace). */
  readonly colour: number;
}

/** A folder under .nad/runs that could not be read: shown with its problem, never hidden. */
export interface BrokenRow {
  readonly dir: string;
  readonly id: string;
  readonly problem: string;
}

/** One sort key: a column id and its direction. */
export interface SortKey {
  readonly column: string;
  readonly descending: boolean;
}

/** Which columns the user chose and in which order (ids; columns not listed keep their default). */
export interface ColumnLayout {
  readonly order: readonly string[];
  /** Explicit choices: shown (true) or hidden (false). */
  readonly visible: Readonly<Record<string, boolean>>;
}

export interface PlotChoice {
  /** Column ids of the axes. */
  readonly x?: string;
  readonly y?: string;
}

/** Page state kept across reloads (webview state) and restored by the panel serializer. */
export interface HistoryViewState {
  /** Sort keys in order: the first decides, the next breaks ties (shift-click adds one). */
  readonly sort: readonly SortKey[];
  /** Words every shown run must contain. */
  readonly filter: string;
  /** A value filter such as `asr < 10 and kind = erase`. */
  readonly where: string;
  /** Selected run folders. */
  readonly selected: readonly string[];
  readonly layout: ColumnLayout;
  /** Hide parameter columns whose value is the same for every shown run. */
  readonly onlyDiffering: boolean;
  readonly starredOnly: boolean;
  readonly plot: PlotChoice;
}

export type ExportFormat = 'csv' | 'json' | 'png' | 'svg';

/** One point of the plot: a run, its x and y. */
export interface PlotPoint {
  readonly id: string;
  readonly x: number;
  readonly y: number;
}

export type HistoryHostMessage =
  | {
      readonly type: 'runs';
      readonly rows: readonly HistoryRow[];
      readonly broken: readonly BrokenRow[];
      readonly canOpenRun: boolean;
      /** The column layout last saved in this workspace (used when the page has no state of its own). */
      readonly layout?: ColumnLayout;
    }
  /** Where an export went (or why it did not). */
  | { readonly type: 'exported'; readonly path?: string; readonly problem?: string };

export type HistoryViewMessage =
  | { readonly type: 'ready' }
  | { readonly type: 'open'; readonly dir: string }
  | { readonly type: 'reveal'; readonly dir: string }
  | { readonly type: 'attention'; readonly dir: string }
  | { readonly type: 'compare'; readonly dirs: readonly string[] }
  /** The runs side by side as attack x defense on the matrix page. */
  | { readonly type: 'matrix'; readonly dirs: readonly string[] }
  | { readonly type: 'refresh' }
  | { readonly type: 'star'; readonly dir: string; readonly starred: boolean }
  /** The column layout changed: the host keeps it for pages opened later. */
  | { readonly type: 'layout'; readonly layout: ColumnLayout }
  /** Save what the page made (text, or base64 for PNG) to a file the user picks. */
  | {
      readonly type: 'export';
      readonly what: 'table' | 'plot';
      readonly format: ExportFormat;
      readonly content: string;
      readonly base64: boolean;
    }
  /** What the page lists after filtering and sorting (tests and the host read it). */
  | {
      readonly type: 'rendered';
      readonly shown: readonly string[];
      readonly broken: number;
      readonly state: HistoryViewState;
      /** Column ids drawn, in order. */
      readonly columns: readonly string[];
      /** The plot's points (runs with both values), when a plot is drawn. */
      readonly points: readonly PlotPoint[];
      /** The value filter's problem, if it does not parse. */
      readonly whereError?: string;
      /** Time to draw the table, in ms. */
      readonly renderMs: number;
    };

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
  /** Colour slot, the same as on the history page. */
  readonly colour: number;
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
