// The history table's columns, derived from the runs: the friendly columns every run has, then each run's
// config flattened to dotted parameter keys (`training.betas.0`, `cleanCount`, `params.amplification`)
// and its result numbers (`erased.asr`, `report.*`); then what made the run (`provenance.*`, hidden until
// chosen). Pure: the host flattens, the page derives columns, decides which differ, sorts and writes CSV
// with the same functions (test/unit/history-columns.test.ts, test/unit/history-provenance.test.ts).
import type { CellValue, ColumnLayout, HistoryRow, SortKey } from './history-protocol';
import { PROVENANCE_FIELDS } from './history-provenance';
import { UNKNOWN } from './provenance';

export type ColumnGroup = 'run' | 'params' | 'metrics' | 'provenance';

export interface ColumnDef {
  /** `name`, `asr` for the friendly columns; `params.<key>` and `metrics.<key>` for derived ones. */
  readonly id: string;
  readonly title: string;
  readonly group: ColumnGroup;
  /** Every value the runs have in this column is a number (sorts by value, right-aligned, plottable). */
  readonly numeric: boolean;
}

/** The friendly columns, in their default order; always offered, shown unless the user hides them. */
export const BASE_COLUMNS: readonly ColumnDef[] = [
  { id: 'name', title: 'Run', group: 'run', numeric: false },
  { id: 'kind', title: 'Kind', group: 'run', numeric: false },
  { id: 'state', title: 'State', group: 'run', numeric: false },
  { id: 'dataset', title: 'Dataset', group: 'params', numeric: false },
  { id: 'trigger', title: 'Trigger', group: 'params', numeric: false },
  { id: 'target', title: 'Target', group: 'params', numeric: false },
  { id: 'epochs', title: 'Epochs', group: 'params', numeric: true },
  { id: 'cleanShare', title: 'Clean share', group: 'params', numeric: true },
  { id: 'acc', title: 'ACC', group: 'metrics', numeric: true },
  { id: 'asr', title: 'ASR', group: 'metrics', numeric: true },
  { id: 'ra', title: 'RA', group: 'metrics', numeric: true },
  { id: 'der', title: 'DER', group: 'metrics', numeric: true },
  { id: 'backend', title: 'Backend', group: 'run', numeric: false },
  { id: 'startedAt', title: 'Started', group: 'run', numeric: false },
  { id: 'durationMs', title: 'Duration', group: 'metrics', numeric: true },
];

/** What made each run: offered in the column picker, hidden until chosen. */
export const PROVENANCE_COLUMNS: readonly ColumnDef[] = PROVENANCE_FIELDS.map((f) => ({
  id: `provenance.${f.key}`,
  title: f.title,
  group: 'provenance',
  numeric: false,
}));

/** Kinds that give a defense clean data (all of it when the config asks for no count or ratio). */
const CLEAN_KINDS = new Set(['finetune', 'erase', 'defend']);

/** Config keys that are not parameters: the run's label and kind (own columns), provenance, the backend used. */
const NOT_PARAMS = new Set(['name', 'kind', 'provenance', 'backendUsed']);
/** Lists of plain values up to this length become one column per item (`training.betas.0`); longer ones one JSON value. */
const MAX_SPREAD = 8;

function isScalar(v: unknown): v is CellValue {
  return typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v));
}

/** config.json as dotted keys with plain values: objects descend, short lists of plain values spread by index. */
export function flattenParams(config: Readonly<Record<string, unknown>>): Record<string, CellValue> {
  const out: Record<string, CellValue> = {};
  const walk = (v: unknown, key: string): void => {
    if (v === null || v === undefined) return;
    if (isScalar(v)) out[key] = v;
    else if (Array.isArray(v)) {
      if (v.length <= MAX_SPREAD && v.every(isScalar)) v.forEach((x, i) => walk(x, `${key}.${i}`));
      else out[key] = JSON.stringify(v);
    } else if (typeof v === 'object') for (const [k, x] of Object.entries(v as Record<string, unknown>)) walk(x, key ? `${key}.${k}` : k);
  };
  for (const [k, v] of Object.entries(config)) if (!NOT_PARAMS.has(k)) walk(v, k);
  return out;
}

function finite(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/**
 * Percent of the training data a defense was given clean, from what the run recorded: the images it used and the
 * data's size (status.json of newer runs), else the ratio it asked for, else all of it when it asked for neither.
 * A run that asked for a count before the data's size was recorded has a note but no share.
 */
export function cleanShareOf(
  config: Readonly<Record<string, unknown>>,
  status: { readonly cleanImages?: unknown; readonly dataImages?: unknown },
): { share?: number; note?: string } {
  const count = finite(config['cleanCount']);
  const ratio = finite(config['cleanRatio']);
  const used = finite(status.cleanImages);
  const of = finite(status.dataImages);
  const asked = count !== undefined ? `cleanCount ${count}` : ratio !== undefined ? `cleanRatio ${ratio}` : 'all the data';
  if (used !== undefined && of !== undefined && of > 0) return { share: (100 * used) / of, note: `${used} of ${of} images (${asked})` };
  if (count !== undefined) return { note: `cleanCount ${count} of a data set whose size this run did not record` };
  if (ratio !== undefined) return { share: 100 * ratio, note: asked };
  return CLEAN_KINDS.has(String(config['kind'])) ? { share: 100, note: asked } : {};
}

/**
 * The numbers of results.json: every row of its table as `<model>.acc|asr|ra` (`backdoored.asr`,
 * `teacher.acc`, `erased.ra`) and a defense report's plain numbers as `report.<key>` (two levels deep).
 */
export function resultMetrics(results: unknown): Record<string, number> {
  const out: Record<string, number> = {};
  if (typeof results !== 'object' || results === null) return out;
  const r = results as { table?: unknown; report?: unknown };
  if (Array.isArray(r.table))
    for (const row of r.table) {
      if (typeof row !== 'object' || row === null || typeof (row as { model?: unknown }).model !== 'string') continue;
      const { model, ...rest } = row as Record<string, unknown>;
      for (const m of ['acc', 'asr', 'ra'])
        if (typeof rest[m] === 'number' && Number.isFinite(rest[m])) out[`${String(model)}.${m}`] = rest[m] as number;
    }
  const walk = (v: unknown, key: string, depth: number): void => {
    if (typeof v === 'number' && Number.isFinite(v)) out[key] = v;
    else if (typeof v === 'object' && v !== null && !Array.isArray(v) && depth < 2)
      for (const [k, x] of Object.entries(v as Record<string, unknown>)) walk(x, `${key}.${k}`, depth + 1);
  };
  walk(r.report, 'report', 0);
  return out;
}

/** A row's value in a column; undefined when the run has none. */
export function cellValue(row: HistoryRow, id: string): CellValue | undefined {
  if (id.startsWith('params.')) return row.params[id.slice(7)];
  if (id.startsWith('metrics.')) return row.metrics[id.slice(8)];
  if (id.startsWith('provenance.')) return row.provenance ? row.provenance[id.slice(11)] : UNKNOWN;
  switch (id) {
    case 'name':
    case 'kind':
    case 'state':
    case 'dataset':
    case 'trigger':
    case 'target':
    case 'backend':
    case 'startedAt':
      return row[id];
    case 'epochs':
    case 'cleanShare':
    case 'acc':
    case 'asr':
    case 'ra':
    case 'der':
    case 'durationMs':
      return row[id];
    default:
      return undefined;
  }
}

/** Every column the runs offer: the friendly ones, then parameters and metrics in first-seen order. */
export function columnsOf(rows: readonly HistoryRow[]): ColumnDef[] {
  const params = new Map<string, boolean>();
  const metrics = new Set<string>();
  for (const r of rows) {
    for (const [k, v] of Object.entries(r.params)) params.set(k, (params.get(k) ?? true) && typeof v === 'number');
    for (const k of Object.keys(r.metrics)) metrics.add(k);
  }
  return [
    ...BASE_COLUMNS,
    ...[...params].map(([k, numeric]) => ({ id: `params.${k}`, title: k, group: 'params' as const, numeric })),
    ...[...metrics].map((k) => ({ id: `metrics.${k}`, title: k, group: 'metrics' as const, numeric: true })),
    ...PROVENANCE_COLUMNS,
  ];
}

/** Columns whose value is not the same in every one of `rows` (a run without the key counts as a value). */
export function differingColumns(columns: readonly ColumnDef[], rows: readonly HistoryRow[]): Set<string> {
  const out = new Set<string>();
  for (const c of columns) {
    const seen = new Set(rows.map((r) => JSON.stringify(cellValue(r, c.id) ?? null)));
    if (seen.size > 1) out.add(c.id);
  }
  return out;
}

/** Shown unless chosen otherwise: friendly columns, and derived parameters that differ across all runs. */
function shownByDefault(c: ColumnDef, differAcrossAll: ReadonlySet<string>): boolean {
  if (BASE_COLUMNS.some((b) => b.id === c.id)) return true;
  return c.group === 'params' && differAcrossAll.has(c.id);
}

/** All columns in the user's order (columns the layout does not know yet keep their natural place at the end). */
export function orderedColumns(columns: readonly ColumnDef[], layout: ColumnLayout): ColumnDef[] {
  const byId = new Map(columns.map((c) => [c.id, c]));
  const first = layout.order.map((id) => byId.get(id)).filter((c): c is ColumnDef => c !== undefined);
  const placed = new Set(first.map((c) => c.id));
  return [...first, ...columns.filter((c) => !placed.has(c.id))];
}

export function isColumnVisible(c: ColumnDef, layout: ColumnLayout, differAcrossAll: ReadonlySet<string>): boolean {
  if (c.id === 'name') return true;
  return layout.visible[c.id] ?? shownByDefault(c, differAcrossAll);
}

/**
 * The columns the table draws: visible in the user's order; with "only what differs", parameter and provenance
 * columns whose value is the same for every shown run are left out too.
 */
export function visibleColumns(
  columns: readonly ColumnDef[],
  layout: ColumnLayout,
  opts: { readonly differAcrossAll: ReadonlySet<string>; readonly onlyDiffering: boolean; readonly differAmongShown: ReadonlySet<string> },
): ColumnDef[] {
  return orderedColumns(columns, layout).filter(
    (c) =>
      isColumnVisible(c, layout, opts.differAcrossAll) &&
      !(opts.onlyDiffering && (c.group === 'params' || c.group === 'provenance') && !opts.differAmongShown.has(c.id)),
  );
}

/** The layout with `id` moved one visible place earlier (-1) or later (+1) among `visible`. */
export function moveColumn(all: readonly ColumnDef[], visible: readonly ColumnDef[], id: string, step: -1 | 1): string[] {
  const order = all.map((c) => c.id);
  const vis = visible.map((c) => c.id);
  const at = vis.indexOf(id);
  const other = vis[at + step];
  if (at < 0 || other === undefined) return order;
  const from = order.indexOf(id);
  order.splice(from, 1);
  const to = order.indexOf(other);
  order.splice(step < 0 ? to : to + 1, 0, id);
  return order;
}

/** One collator for every comparison: `localeCompare` with options builds one per call. */
export const NATURAL_ORDER = new Intl.Collator(undefined, { numeric: true });

/** Numbers by value, text naturally ("run2" before "run10"); a run without a value goes last whichever the direction. */
export function compareCells(a: CellValue | undefined, b: CellValue | undefined, descending: boolean): number {
  if (a === undefined || b === undefined) return a === b ? 0 : a === undefined ? 1 : -1;
  const c = typeof a === 'number' && typeof b === 'number' ? a - b : NATURAL_ORDER.compare(String(a), String(b));
  return descending ? -c : c;
}

/** Rows sorted by the keys in order: the first decides, the next breaks its ties, and so on. */
export function sortRows(rows: readonly HistoryRow[], keys: readonly SortKey[]): HistoryRow[] {
  return [...rows].sort((a, b) => {
    for (const k of keys) {
      const c = compareCells(cellValue(a, k.column), cellValue(b, k.column), k.descending);
      if (c !== 0) return c;
    }
    return 0;
  });
}

function csvField(v: CellValue | undefined): string {
  const s = v === undefined ? '' : String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** Lines of RFC 4180 CSV (quoted where needed, CRLF line ends). */
export function csvText(lines: ReadonlyArray<ReadonlyArray<CellValue | undefined>>): string {
  return lines.map((l) => l.map(csvField).join(',')).join('\r\n') + '\r\n';
}

/** RFC 4180 CSV: the run id, then one column per shown column, values as stored (not rounded). */
export function rowsCsv(columns: readonly ColumnDef[], rows: readonly HistoryRow[]): string {
  return csvText([['id', ...columns.map((c) => c.id)], ...rows.map((r) => [r.id, ...columns.map((c) => cellValue(r, c.id))])]);
}

/** The same rows as JSON: one object per run, keyed by column id. */
export function rowsJson(columns: readonly ColumnDef[], rows: readonly HistoryRow[]): string {
  const objects = rows.map((r) => Object.fromEntries([['id', r.id], ...columns.map((c) => [c.id, cellValue(r, c.id) ?? null])]));
  return JSON.stringify({ columns: columns.map(({ id, title, group }) => ({ id, title, group })), runs: objects }, null, 2) + '\n';
}

/** Colour slots by run id: the runs in the order they were created (ids start with date and time). */
export function colourSlots(ids: readonly string[]): Map<string, number> {
  return new Map([...new Set(ids)].sort().map((id, i) => [id, i]));
}
