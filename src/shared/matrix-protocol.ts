// The attack x defense matrix as the matrix page shows it (plain types: the page and the host import this).
// The runs layer computes the table (src/runs/matrix/table.ts); the host reads the matrix folder, sends it,
// and acts on the page's clicks only for run folders it sent.

export interface Stat {
  readonly mean: number;
  /** Sample standard deviation (n - 1); 0 for one seed. */
  readonly std: number;
  readonly n: number;
}

export interface TableCell {
  readonly acc?: Stat;
  readonly asr?: Stat;
  readonly ra?: Stat;
  readonly der?: Stat;
  /** Seeds that finished, and the ones that did not (with why). */
  readonly seeds: number;
  readonly failed: ReadonlyArray<{ readonly seed: number; readonly error: string }>;
  /** Seeds whose run is being written now, and seeds not started yet. */
  readonly running: number;
  readonly pending: number;
  readonly runIds: readonly string[];
  /** The row's best defense (highest mean DER). */
  readonly best?: boolean;
}

export interface MatrixTable {
  readonly name: string;
  readonly attacks: ReadonlyArray<{ readonly name: string; readonly title: string }>;
  readonly defenses: ReadonlyArray<{ readonly name: string; readonly title: string }>;
  /** cells[attack][defense] */
  readonly cells: ReadonlyArray<ReadonlyArray<TableCell>>;
  readonly seeds: readonly number[];
}

export type MatrixExport = 'markdown' | 'csv' | 'latex' | 'json';

export type MatrixHostMessage =
  | {
      readonly type: 'matrix';
      readonly id: string;
      /** The matrix folder (the page keeps it across reloads); empty for chosen runs. */
      readonly dir: string;
      /** Chosen runs' folders, when the page shows runs from the history rather than a matrix folder. */
      readonly runs?: readonly string[];
      /** Chosen runs left out of the table, with why ("run-id: a detection run repairs no model"). */
      readonly skipped?: readonly string[];
      readonly table: MatrixTable;
      /** Run folders by run id, for the cells' links. */
      readonly runsDir: string;
      readonly progress: { readonly finished: number; readonly running: number; readonly failed: number; readonly total: number };
      /** The Slurm jobs of cells submitted there, e.g. "Slurm: 2 PENDING, 1 RUNNING, 1 COMPLETED". */
      readonly slurm?: string;
      readonly canOpenRun: boolean;
    }
  | { readonly type: 'problem'; readonly problem: string };

export type MatrixViewMessage =
  | { readonly type: 'ready' }
  /** Open a cell's run (its first seed's run when there are several). */
  | { readonly type: 'open'; readonly runId: string }
  | { readonly type: 'copy'; readonly format: MatrixExport }
  /** What the page shows (tests read it): the cell texts row by row, the best cells, the legend. */
  | {
      readonly type: 'rendered';
      readonly rows: ReadonlyArray<readonly string[]>;
      readonly best: readonly string[];
      readonly legend: string;
    };

/** The page's state across reloads: which matrix it shows, or which runs. */
export interface MatrixPageState {
  readonly dir: string;
  readonly runs?: readonly string[];
}
