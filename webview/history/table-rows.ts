// The history table's header and rows: sort buttons (click: sort by the column; shift-click: add it as
// the next key), the select and star toggles, and each cell's text (stored values in data-value).
import type { HistoryRow, SortKey } from '../../src/shared/history-protocol';
import { cellValue, type ColumnDef } from '../../src/shared/history-columns';
import { isHashColumn, shortHash } from '../../src/shared/history-provenance';
import { UNKNOWN } from '../../src/shared/provenance';
import { h } from '../common/vscode-api';
import { formatDurationMs, formatPercent, formatStarted } from './format';

type CheckBox = HTMLElement & { checked: boolean };

export interface HeadContext {
  readonly sort: readonly SortKey[];
  /** Parameters that differ across all runs (their header is marked). */
  readonly differAll: ReadonlySet<string>;
  readonly setSort: (sort: SortKey[]) => void;
  readonly selectAll: (checked: boolean) => void;
}

export function headCells(cols: readonly ColumnDef[], ctx: HeadContext): HTMLElement[] {
  const all = h('vscode-checkbox', { 'aria-label': 'Select all shown runs', id: 'select-all' }) as CheckBox;
  all.addEventListener('change', () => ctx.selectAll(all.checked));
  const { sort } = ctx;
  const cells = cols.map((c) => {
    const at = sort.findIndex((k) => k.column === c.id);
    const key = sort[at];
    const arrow = key ? `${key.descending ? ' ▼' : ' ▲'}${sort.length > 1 ? at + 1 : ''}` : '';
    const button = h(
      'button',
      { class: 'sort', type: 'button', title: `Sort by ${c.title} (shift-click: add to the sort)${c.id !== c.title ? `\n${c.id}` : ''}` },
      c.title,
      h('span', { class: 'arrow', 'aria-hidden': 'true' }, arrow),
      key && sort.length > 1 ? h('span', { class: 'visually-hidden' }, ` sort key ${at + 1}`) : '',
    );
    button.addEventListener('click', (e: MouseEvent) => {
      const fresh: SortKey = { column: c.id, descending: c.numeric || c.id === 'startedAt' };
      if (e.shiftKey) ctx.setSort(key ? sort.map((k, i) => (i === at ? { ...k, descending: !k.descending } : k)) : [...sort, fresh]);
      else ctx.setSort(at === 0 ? [{ ...sort[0], descending: !sort[0].descending }] : [fresh]);
    });
    return h(
      'th',
      {
        scope: 'col',
        class: `${c.numeric ? 'num' : ''} group-${c.group}${ctx.differAll.has(c.id) && (c.group === 'params' || c.group === 'provenance') ? ' differs' : ''}`,
        'aria-sort': at === 0 ? (key?.descending ? 'descending' : 'ascending') : 'none',
        'data-column': c.id,
        'data-sort-index': at >= 0 ? String(at + 1) : undefined,
      },
      button,
    );
  });
  return [
    h('th', { scope: 'col', class: 'select' }, all),
    h('th', { scope: 'col', class: 'star', title: 'Starred' }, h('span', { class: 'visually-hidden' }, 'Starred'), '★'),
    ...cells,
  ];
}

function formatNumber(v: number): string {
  return Number.isInteger(v) ? String(v) : String(+v.toPrecision(4));
}

export function cellText(r: HistoryRow, c: ColumnDef): string {
  switch (c.id) {
    case 'acc':
    case 'asr':
    case 'ra':
      return formatPercent(r[c.id]);
    case 'der':
      return r.der === undefined ? '–' : r.der.toFixed(3);
    case 'cleanShare':
      // A defense that asked for a count before the data's size was recorded: its share is not known.
      return r.cleanShare === undefined && r.cleanShareNote ? 'unknown' : formatPercent(r.cleanShare);
    case 'epochs':
      return r.epochs === undefined ? '–' : r.epochsDone !== undefined ? `${r.epochsDone} / ${r.epochs}` : String(r.epochs);
    case 'startedAt':
      return formatStarted(r.startedAt);
    case 'durationMs':
      return formatDurationMs(r.durationMs);
  }
  const v = cellValue(r, c.id);
  if (v === undefined) return '–';
  if (isHashColumn(c.id)) return shortHash(String(v));
  if (typeof v === 'number') return /\.(acc|asr|ra)$/.test(c.id) && c.group === 'metrics' ? formatPercent(v) : formatNumber(v);
  return String(v);
}

export interface RowContext {
  readonly selected: ReadonlySet<string>;
  readonly canOpenRun: boolean;
  readonly pick: (dir: string, checked: boolean) => void;
  readonly star: (dir: string, starred: boolean) => void;
  readonly open: (dir: string) => void;
}

export function runRow(r: HistoryRow, cols: readonly ColumnDef[], ctx: RowContext): HTMLElement {
  const pick = h('vscode-checkbox', { 'aria-label': `Select ${r.name}`, checked: ctx.selected.has(r.dir) }) as CheckBox;
  pick.addEventListener('change', () => ctx.pick(r.dir, pick.checked));
  const star = h(
    'button',
    {
      type: 'button',
      class: 'star-toggle',
      'aria-pressed': String(r.starred),
      'aria-label': `Star ${r.name}`,
      title: r.starred ? 'Unstar' : 'Star',
    },
    r.starred ? '★' : '☆',
  );
  star.addEventListener('click', () => ctx.star(r.dir, !r.starred));
  const open = h(
    'button',
    { class: 'link', type: 'button', title: ctx.canOpenRun ? `Open ${r.name}` : `Reveal ${r.id} in the Explorer` },
    r.name,
  );
  open.addEventListener('click', () => ctx.open(r.dir));
  const cells = cols.map((c) => {
    if (c.id === 'name')
      return h('th', { scope: 'row', class: 'name', title: r.id }, open, r.workspace ? h('span', { class: 'where' }, r.workspace) : '');
    const v = cellValue(r, c.id);
    const td = h('td', { class: `${c.numeric ? 'num' : ''} col-${c.id.replace(/[^\w-]/g, '_')}`, 'data-column': c.id }, cellText(r, c));
    if (v !== undefined && c.group !== 'run') td.dataset.value = String(v);
    if (c.id === 'state') td.classList.add(`state-${r.state}`);
    if (c.id === 'state' && r.error) td.title = r.error;
    if (c.id === 'backend' && r.backendDetail) td.title = r.backendDetail;
    if (c.id === 'target' && r.targetType) td.title = r.targetType;
    if (c.id === 'startedAt') td.title = new Date(r.startedAt).toString();
    if (c.id === 'cleanShare' && r.cleanShareNote) td.title = r.cleanShareNote;
    if (c.group === 'provenance') {
      const key = c.id.slice('provenance.'.length);
      td.title =
        r.provenanceNotes?.[key] ??
        (v === undefined ? 'this run read no such file' : v === UNKNOWN ? 'not recorded (a run made by an older version)' : String(v));
      if (v === UNKNOWN) td.classList.add('unknown');
    }
    return td;
  });
  return h(
    'tr',
    {
      'data-dir': r.dir,
      'data-id': r.id,
      class: [ctx.selected.has(r.dir) ? 'selected' : '', r.starred ? 'starred' : ''].join(' ').trim(),
    },
    h('td', { class: 'select' }, pick),
    h('td', { class: 'star' }, star),
    ...cells,
  );
}
