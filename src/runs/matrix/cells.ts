// A matrix's definition and its cells, as plain data: the extension host reads matrix folders with these
// without loading the engine (spec.ts checks a definition against the registries).
import { createHash } from 'node:crypto';
import type { BackendPreference } from '../../engine/backend';
import type { ArchChoice } from '../../engine/models';
import type { ParamValue } from '../../engine/params';
import type { TrainSettings } from '../../engine/train';

/** "none": no defense, the attacked model's own ACC/ASR. */
export const NO_DEFENSE = 'none';

export interface MethodChoice {
  readonly name: string;
  readonly params: Readonly<Record<string, ParamValue>>;
  /** A defense's own changes to its schedule, applied after the matrix's defenseTraining. */
  readonly training?: Partial<TrainSettings>;
}

export interface MatrixSpec {
  readonly name: string;
  /** Training data (path, or `mnist` for the embedded digits); the defenders' clean share is drawn from it. */
  readonly data: string;
  /** Test data for ACC/ASR (its test split); defaults to `data`. */
  readonly test: string;
  readonly arch: ArchChoice;
  readonly backend: BackendPreference;
  readonly seeds: readonly number[];
  /** The attack's target class (all2one); each attack's own default target type and poisoned share apply. */
  readonly target: number;
  readonly cleanCount?: number;
  readonly cleanRatio?: number;
  readonly attacks: readonly MethodChoice[];
  /** Defenses in column order; `none` first when given. */
  readonly defenses: readonly MethodChoice[];
  /** Changes to the attack training schedule (the attack's training run). */
  readonly training: Partial<TrainSettings>;
  /** Changes applied to every defense's own schedule. */
  readonly defenseTraining: Partial<TrainSettings>;
}

/** One run of the matrix: an attack's training (defense undefined) or a defense on an attacked model. */
export interface MatrixCell {
  readonly attack: string;
  readonly defense?: string;
  readonly seed: number;
}

export function cellKey(c: MatrixCell): string {
  return `${c.attack}/${c.defense ?? 'train'}/seed${c.seed}`;
}

/** Runs in order: each attack and seed trains once, then its defenses run on that model. */
export function matrixCells(spec: MatrixSpec): MatrixCell[] {
  const cells: MatrixCell[] = [];
  for (const a of spec.attacks) {
    for (const seed of spec.seeds) {
      cells.push({ attack: a.name, seed });
      for (const d of spec.defenses) if (d.name !== NO_DEFENSE) cells.push({ attack: a.name, defense: d.name, seed });
    }
  }
  return cells;
}

/** A matrix's identity: its name and a hash of everything that changes its numbers, so that a changed file is a new matrix. */
export function matrixId(spec: MatrixSpec): string {
  const hash = createHash('sha256').update(JSON.stringify(spec)).digest('hex').slice(0, 8);
  const safe = spec.name.replace(/[^A-Za-z0-9._-]+/g, '-').slice(0, 60) || 'matrix';
  return `${safe}-${hash}`;
}

/** Matrix definition files end so (the JSON schema and the Explorer commands match it). */
export const MATRIX_FILE_SUFFIX = '.nad-matrix.json';
