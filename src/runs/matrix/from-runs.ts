// Runs chosen in the history, side by side as an attack x defense table (the matrix page's second source).
// A run's row is the attack that made the model it reports on: a training run's own attack; for a defense,
// an erase, a finetuning or an evaluation, the attack of the run whose model file it read, else its trigger.
// Its column is the defense ("No defense" for training and evaluation). Runs that share a row and a column
// and differ only in their seed are that cell's seeds (mean ± std); runs of one defense that differ in
// anything else (β, clean share, epochs...) get columns of their own, titled by what differs.
import { resolve } from 'node:path';
import { NO_DEFENSE, type MatrixCell, type MethodChoice } from './cells';
import { outcomeOf, type CellOutcome } from './folder';
import { matrixTable, type Titles } from './table';
import type { MatrixTable } from '../../shared/matrix-protocol';
import { MODEL_FILES, type RunSummary } from '../run-store';

export interface RunsMatrix {
  readonly table: MatrixTable;
  readonly outcomes: readonly CellOutcome[];
  /** Runs left out, and why (a detection run has no repaired model to score). */
  readonly skipped: ReadonlyArray<{ readonly id: string; readonly why: string }>;
}

const record = (v: unknown): Record<string, unknown> | undefined =>
  v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
const text = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/** Config keys that never tell two runs of one defense apart: seeds, labels, the attack (the row), where files are, provenance. */
const IGNORED =
  /^(name|seed|attack|backdoor|backend|backendUsed|provenance|model|student|teacher|data|test|images|runDir)(\.|$)|(^|\.)seed$/;

function flatten(v: unknown, prefix: string, out: Map<string, string>): void {
  const r = record(v);
  if (r) for (const [k, x] of Object.entries(r)) flatten(x, prefix ? `${prefix}.${k}` : k, out);
  else if (Array.isArray(v)) v.forEach((x, i) => flatten(x, `${prefix}.${i}`, out));
  else if (!IGNORED.test(prefix)) out.set(prefix, JSON.stringify(v));
}

/** The defense a run applied, as a registry name; undefined for runs that report on a model as it is. */
function defenseOf(run: RunSummary): string | undefined {
  const c = run.config;
  switch (run.status.kind) {
    case 'erase':
      return 'nad';
    case 'finetune':
      return 'finetune';
    case 'defend':
      return text(c['method']) ?? 'defense';
    default:
      return undefined;
  }
}

/** The model file a run read (the suspect), resolved. */
function sourceModel(run: RunSummary): string | undefined {
  const c = run.config;
  const m = text(c['student']) ?? text(c['model']);
  return m ? resolve(m) : undefined;
}

function ownAttack(run: RunSummary): string {
  const c = run.config;
  const attack = text(record(c['attack'])?.['name']);
  if (attack) return attack;
  return text(record(record(c['backdoor'])?.['trigger'])?.['name']) ?? text(c['trigger']) ?? 'unknown attack';
}

/**
 * The attack of every run: its own for training runs; for the others, the attack of the training run (among
 * `known`, all runs of the workspace) whose model file it read, else the trigger it was scored with.
 */
export function attackOf(run: RunSummary, known: readonly RunSummary[]): string {
  if (run.status.kind === 'train') return ownAttack(run);
  const model = sourceModel(run);
  const source = model ? known.find((k) => k.status.kind === 'train' && resolve(k.dir, MODEL_FILES.model) === model) : undefined;
  return source ? ownAttack(source) : ownAttack(run);
}

const seedOf = (run: RunSummary): number => {
  const s = run.config['seed'];
  return typeof s === 'number' ? s : 0;
};

/** Column keys per run: the defense, split by the settings that differ among that defense's runs. */
function columnsOf(runs: ReadonlyArray<{ run: RunSummary; defense: string }>): Map<RunSummary, MethodChoice> {
  const byDefense = new Map<string, RunSummary[]>();
  for (const r of runs) byDefense.set(r.defense, [...(byDefense.get(r.defense) ?? []), r.run]);
  const out = new Map<RunSummary, MethodChoice>();
  for (const [defense, group] of byDefense) {
    const flat = group.map((run) => {
      const m = new Map<string, string>();
      flatten(run.config, '', m);
      return m;
    });
    const keys = [...new Set(flat.flatMap((m) => [...m.keys()]))].sort();
    const differing = keys.filter((k) => new Set(flat.map((m) => m.get(k) ?? '–')).size > 1);
    group.forEach((run, i) => {
      const params: Record<string, string> = {};
      for (const k of differing) params[k] = flat[i].get(k) ?? '–';
      out.set(run, { name: defense, params });
    });
  }
  return out;
}

const columnKey = (m: MethodChoice): string => `${m.name}${JSON.stringify(m.params)}`;

/** The table of `chosen` runs; `known` are all the workspace's runs (to find where a defended model came from). */
export function runsMatrix(chosen: readonly RunSummary[], known: readonly RunSummary[], titles?: Titles): RunsMatrix {
  const skipped: Array<{ id: string; why: string }> = [];
  const placed: Array<{ run: RunSummary; defense: string; attack: string }> = [];
  for (const run of chosen) {
    if (run.status.kind === 'defend' && run.config['mode'] === 'detect') {
      skipped.push({ id: run.id, why: 'a detection run repairs no model' });
      continue;
    }
    if (!['train', 'eval', 'erase', 'finetune', 'defend'].includes(run.status.kind)) {
      skipped.push({ id: run.id, why: `a ${run.status.kind} run has no ACC/ASR of a model` });
      continue;
    }
    placed.push({ run, defense: defenseOf(run) ?? NO_DEFENSE, attack: attackOf(run, known) });
  }
  const columns = columnsOf(placed);
  const defenses: MethodChoice[] = [];
  const seen = new Set<string>();
  // "No defense" first, then in the order the runs were chosen.
  for (const p of [...placed].sort((a, b) => Number(b.defense === NO_DEFENSE) - Number(a.defense === NO_DEFENSE))) {
    const col = columns.get(p.run) as MethodChoice;
    if (!seen.has(columnKey(col))) {
      seen.add(columnKey(col));
      defenses.push(col);
    }
  }
  const attacks = [...new Set(placed.map((p) => p.attack))].map((name): MethodChoice => ({ name, params: {} }));
  const idOf = new Map(defenses.map((d, i) => [columnKey(d), `${d.name}#${i}`]));
  const outcomes = placed.map((p): CellOutcome => {
    const col = idOf.get(columnKey(columns.get(p.run) as MethodChoice)) as string;
    const cell: MatrixCell = { attack: p.attack, defense: col, seed: seedOf(p.run) };
    return outcomeOf(cell, p.run, false);
  });
  const spec = {
    name: `${chosen.length} chosen runs`,
    attacks,
    defenses: defenses.map((d) => ({ name: idOf.get(columnKey(d)) as string, params: d.params })),
    seeds: [...new Set(placed.map((p) => seedOf(p.run)))].sort((a, b) => a - b),
  };
  // Cells use the column ids; the titles are the defense's title plus what sets the column apart.
  const titleOf = (id: string): string => {
    const d = defenses[Number(id.slice(id.lastIndexOf('#') + 1))];
    const base = d.name === NO_DEFENSE ? 'No defense' : (titles?.defense(d.name) ?? d.name);
    const diff = Object.entries(d.params).map(([k, v]) => `${k} ${String(v).replace(/^"|"$/g, '')}`);
    return diff.length ? `${base} (${diff.join(', ')})` : base;
  };
  const table = matrixTable(spec, outcomes, { attack: (n) => titles?.attack(n), defense: titleOf });
  return { table, outcomes, skipped };
}
