// The experiment history table. Its columns come from the runs (friendly columns, then every config
// parameter and result number; src/shared/history-columns.ts); the user chooses, orders and hides them,
// and "Only what differs" leaves out parameters that are the same in every shown run. Click a header to
// sort, shift-click to add a key; a text filter and a value filter (`asr < 10 and kind = erase`) narrow
// the rows; stars mark runs. Below, a plot of a metric against a parameter (plot.ts). Clicking a run's
// name opens it. A native <table> (sortable header buttons, aria-sort) reads best with screen readers.
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-checkbox/index.js';
import '@vscode-elements/elements/dist/vscode-textfield/index.js';
import type {
  BrokenRow,
  ColumnLayout,
  ExportFormat,
  HistoryHostMessage,
  HistoryRow,
  HistoryViewMessage,
  HistoryViewState,
  PlotPoint,
  SortKey,
} from '../../src/shared/history-protocol';
import {
  columnsOf,
  differingColumns,
  isColumnVisible,
  moveColumn,
  orderedColumns,
  rowsCsv,
  rowsJson,
  sortRows,
  visibleColumns,
  type ColumnDef,
} from '../../src/shared/history-columns';
import { parseFilter } from '../../src/shared/history-filter';
import { connect, h, onThemeChange } from '../common/vscode-api';
import { columnPicker } from './column-picker';
import { RunPlot } from './plot';
import { headCells, runRow, type RowContext } from './table-rows';

type TextField = HTMLElement & { value: string };
type CheckBox = HTMLElement & { checked: boolean };

const channel = connect<HistoryViewMessage, HistoryViewState>();
const root = document.getElementById('root') as HTMLElement;

const EMPTY_LAYOUT: ColumnLayout = { order: [], visible: {} };
const DEFAULT_STATE: HistoryViewState = {
  sort: [{ column: 'startedAt', descending: true }],
  filter: '',
  where: '',
  selected: [],
  layout: EMPTY_LAYOUT,
  onlyDiffering: false,
  starredOnly: false,
  plot: {},
};

/** The saved state, including pages saved before multi-column sort (one `sort` column and `descending`). */
function restore(saved: unknown): { state: HistoryViewState; hasLayout: boolean } {
  const s = (typeof saved === 'object' && saved !== null ? saved : {}) as Partial<HistoryViewState> & {
    sort?: unknown;
    descending?: unknown;
  };
  const sort: SortKey[] =
    typeof s.sort === 'string'
      ? [{ column: s.sort, descending: s.descending === true }]
      : Array.isArray(s.sort)
        ? (s.sort as SortKey[])
        : [...DEFAULT_STATE.sort];
  return {
    state: { ...DEFAULT_STATE, ...s, sort, layout: s.layout ?? EMPTY_LAYOUT, plot: s.plot ?? {} },
    hasLayout: s.layout !== undefined,
  };
}

const restored = restore(channel.state());
let state = restored.state;
let layoutFromPage = restored.hasLayout;
let rows: readonly HistoryRow[] = [];
let broken: readonly BrokenRow[] = [];
let columns: ColumnDef[] = [];
let differAll = new Set<string>();
let canOpenRun = false;
let pickerOpen = false;

const els = {
  headRow: h('tr'),
  body: h('tbody'),
  status: h('span', { class: 'status', id: 'status', 'aria-live': 'polite' }),
  whereError: h('span', { class: 'where-error', id: 'where-error', role: 'alert' }),
  exported: h('span', { class: 'status', id: 'exported', 'aria-live': 'polite' }),
  picker: h('div', { class: 'picker-wrap', id: 'picker-wrap' }),
  broken: h('section', { class: 'broken', id: 'broken', 'aria-label': 'Unreadable run folders' }),
  compare: h('vscode-button', { id: 'compare', title: 'Compare the selected runs’ curves and configs' }, 'Compare'),
  matrix: h(
    'vscode-button',
    { id: 'as-matrix', secondary: true, title: 'The selected runs (or all shown) side by side as attack × defense, mean ± std over seeds' },
    'As Matrix',
  ),
  maps: h('vscode-button', { id: 'show-maps', secondary: true, title: 'Show the attention maps of the selected run' }, 'Attention Maps'),
  reveal: h('vscode-button', { id: 'reveal', secondary: true, title: 'Reveal the selected run’s folder in the Explorer' }, 'Reveal Folder'),
};

const plot = new RunPlot({
  choose: (choice) => {
    save({ plot: choice });
    render();
  },
  exportFile: (format, content, base64) => exportFile('plot', format, content, base64),
});

function save(patch: Partial<HistoryViewState>): void {
  state = { ...state, ...patch };
  channel.save(state);
  if (patch.layout) {
    layoutFromPage = true;
    channel.post({ type: 'layout', layout: patch.layout });
  }
}

function exportFile(what: 'table' | 'plot', format: ExportFormat, content: string, base64: boolean): void {
  els.exported.textContent = '';
  channel.post({ type: 'export', what, format, content, base64 });
}

function matchesText(r: HistoryRow, filter: string): boolean {
  if (!filter.trim()) return true;
  const hay = [r.name, r.id, r.kind, r.state, r.dataset, r.trigger, r.target, r.targetType, r.backend, r.workspace]
    .filter(Boolean)
    .join(' ')
    .toLowerCase();
  return filter
    .toLowerCase()
    .split(/\s+/)
    .filter(Boolean)
    .every((w) => hay.includes(w));
}

/** The rows that pass the star, text and value filters, sorted; and the value filter's problem. */
function shownRows(): { shown: HistoryRow[]; whereError?: string } {
  const where = parseFilter(state.where, columns);
  const test = where.ok ? where.test : () => true;
  const kept = rows.filter((r) => (!state.starredOnly || r.starred) && matchesText(r, state.filter) && test(r));
  const shown = sortRows(kept, state.sort);
  return where.ok ? { shown } : { shown, whereError: `${where.error} (at character ${where.at + 1})` };
}

function build(): void {
  const text = h('vscode-textfield', {
    id: 'filter',
    placeholder: 'Filter runs (name, kind, state, dataset, trigger…)',
    'aria-label': 'Filter runs by text',
    value: state.filter,
  }) as TextField;
  text.addEventListener('input', () => {
    save({ filter: text.value });
    render();
  });
  const where = h('vscode-textfield', {
    id: 'where',
    placeholder: 'Where… e.g. asr < 10 and beta.2 >= 500',
    'aria-label': 'Filter runs by value, e.g. asr < 10 and kind = erase',
    'aria-describedby': 'where-error',
    value: state.where,
  }) as TextField;
  where.addEventListener('input', () => {
    save({ where: where.value });
    render();
  });
  const toggle = (id: string, label: string, checked: boolean, set: (on: boolean) => void): CheckBox => {
    const box = h('vscode-checkbox', { id, checked }, label) as CheckBox;
    box.addEventListener('change', () => {
      set(box.checked);
      render();
    });
    return box;
  };
  const starred = toggle('starred-only', 'Starred only', state.starredOnly, (on) => save({ starredOnly: on }));
  const differs = toggle('only-differing', 'Only what differs', state.onlyDiffering, (on) => save({ onlyDiffering: on }));
  const columnsButton = h('vscode-button', { id: 'columns-button', secondary: true, 'aria-expanded': 'false' }, 'Columns…');
  columnsButton.addEventListener('click', () => {
    pickerOpen = !pickerOpen;
    columnsButton.setAttribute('aria-expanded', String(pickerOpen));
    render();
  });
  els.compare.addEventListener('click', () => {
    const dirs = liveSelection();
    if (dirs.length >= 2) channel.post({ type: 'compare', dirs });
  });
  els.matrix.addEventListener('click', () => {
    const live = liveSelection();
    const dirs = live.length ? live : Array.from(els.body.querySelectorAll<HTMLElement>('tr[data-dir]'), (tr) => tr.dataset.dir ?? '');
    if (dirs.length) channel.post({ type: 'matrix', dirs: dirs.filter(Boolean) });
  });
  const single = (type: 'attention' | 'reveal') => (): void => {
    const [dir] = liveSelection();
    if (dir) channel.post({ type, dir });
  };
  els.maps.addEventListener('click', single('attention'));
  els.reveal.addEventListener('click', single('reveal'));
  const button = (id: string, label: string, title: string, run: () => void): HTMLElement => {
    const b = h('vscode-button', { id, secondary: true, title }, label);
    b.addEventListener('click', run);
    return b;
  };
  const table = h('table', { class: 'runs', id: 'runs', 'aria-describedby': 'status' }, h('thead', {}, els.headRow), els.body);
  root.replaceChildren(
    h(
      'header',
      { class: 'header' },
      h('h1', {}, 'Experiment history'),
      h(
        'p',
        { class: 'source' },
        'Every run folder of this workspace. Click a name to open the run; click a column to sort, shift-click to sort by more columns. Select two or more runs to compare them.',
      ),
    ),
    h('div', { class: 'toolbar' }, text, h('span', { class: 'where-box' }, where, els.whereError), starred, differs, columnsButton),
    els.picker,
    h(
      'div',
      { class: 'toolbar' },
      els.compare,
      els.matrix,
      els.maps,
      els.reveal,
      button('refresh', 'Refresh', 'Read the run folders again', () => channel.post({ type: 'refresh' })),
      button('export-csv', 'Export CSV', 'Save the shown runs and columns as CSV', () => exportTable('csv')),
      button('export-json', 'Export JSON', 'Save the shown runs and columns as JSON', () => exportTable('json')),
      els.status,
      els.exported,
    ),
    h('div', { class: 'table-wrap' }, table),
    els.broken,
    plot.element,
  );
  root.setAttribute('aria-busy', 'false');
}

function drawnColumns(shown: readonly HistoryRow[], differAmongShown = differingColumns(columns, shown)): ColumnDef[] {
  return visibleColumns(columns, state.layout, { differAcrossAll: differAll, onlyDiffering: state.onlyDiffering, differAmongShown });
}

function exportTable(format: 'csv' | 'json'): void {
  const { shown } = shownRows();
  const cols = drawnColumns(shown);
  exportFile('table', format, format === 'csv' ? rowsCsv(cols, shown) : rowsJson(cols, shown), false);
}

function setLayout(patch: Partial<ColumnLayout>): void {
  save({ layout: { ...state.layout, ...patch } });
  render();
}

function render(): void {
  const t0 = performance.now();
  const { shown, whereError } = shownRows();
  const differShown = differingColumns(columns, shown);
  const cols = drawnColumns(shown, differShown);
  els.headRow.replaceChildren(
    ...headCells(cols, {
      sort: state.sort,
      differAll,
      setSort: (sort) => {
        save({ sort });
        render();
      },
      selectAll: (checked) => {
        const dirs = shown.map((r) => r.dir);
        save({ selected: checked ? [...new Set([...state.selected, ...dirs])] : state.selected.filter((d) => !dirs.includes(d)) });
        render();
      },
    }),
  );
  const rowContext: RowContext = {
    selected: new Set(state.selected),
    canOpenRun,
    pick: (dir, checked) => {
      save({ selected: checked ? [...state.selected, dir] : state.selected.filter((d) => d !== dir) });
      updateSelection();
    },
    star: (dir, starred) => channel.post({ type: 'star', dir, starred }),
    open: (dir) => channel.post({ type: 'open', dir }),
  };
  const trs = shown.map((r) => runRow(r, cols, rowContext));
  if (trs.length === 0) {
    const empty =
      rows.length === 0
        ? 'No runs yet: train, finetune or erase a model (NAD commands or the nad CLI) and it appears here.'
        : 'No run matches the filters.';
    trs.push(h('tr', {}, h('td', { colspan: String(cols.length + 2), class: 'empty' }, empty)));
  }
  els.body.replaceChildren(...trs);
  els.whereError.textContent = whereError ?? '';
  document.getElementById('where')?.toggleAttribute('invalid', whereError !== undefined);
  const drawn = new Set(cols.map((c) => c.id));
  els.picker.replaceChildren(
    pickerOpen
      ? columnPicker(
          {
            all: orderedColumns(columns, state.layout),
            isVisible: (c) => isColumnVisible(c, state.layout, differAll),
            drawn,
            differing: differAll,
          },
          {
            setVisible: (id, visible) => setLayout({ visible: { ...state.layout.visible, [id]: visible } }),
            move: (id, step) => setLayout({ order: moveColumn(orderedColumns(columns, state.layout), cols, id, step) }),
            reset: () => setLayout(EMPTY_LAYOUT),
          },
        )
      : '',
  );
  updateSelection(shown.length);
  renderBroken();
  const renderMs = performance.now() - t0;
  els.body.parentElement?.setAttribute('data-render-ms', renderMs.toFixed(1));
  const drawnPlot = plot.update(shown, columns, differShown, state.plot);
  const points: PlotPoint[] = drawnPlot.points.map(({ id, x, y }) => ({ id, x, y }));
  channel.post({
    type: 'rendered',
    shown: shown.map((r) => r.id),
    broken: broken.length,
    state,
    columns: cols.map((c) => c.id),
    points,
    ...(whereError ? { whereError } : {}),
    renderMs,
  });
}

/** Selected runs that still exist. */
function liveSelection(): string[] {
  return state.selected.filter((d) => rows.some((r) => r.dir === d));
}

function updateSelection(shownCount?: number): void {
  const live = liveSelection();
  const one = live.length === 1 ? rows.find((r) => r.dir === live[0]) : undefined;
  els.maps.toggleAttribute('disabled', !one?.hasAttention);
  els.reveal.toggleAttribute('disabled', !one);
  const shown = shownCount ?? els.body.querySelectorAll('tr[data-dir]').length;
  els.status.textContent = `${shown} of ${rows.length} run${rows.length === 1 ? '' : 's'}${live.length ? ` · ${live.length} selected` : ''}`;
  els.compare.toggleAttribute('disabled', live.length < 2);
  els.matrix.toggleAttribute('disabled', shown === 0);
  for (const tr of Array.from(els.body.querySelectorAll<HTMLElement>('tr[data-dir]')))
    tr.classList.toggle('selected', live.includes(tr.dataset.dir ?? ''));
}

function renderBroken(): void {
  els.broken.hidden = broken.length === 0;
  els.broken.replaceChildren(
    h('h2', {}, `Unreadable run folders (${broken.length})`),
    h('p', {}, 'These folders could not be read; they are listed, not hidden, and nothing in them was changed.'),
    h('ul', {}, ...broken.map((b) => h('li', {}, h('code', {}, b.id), `: ${b.problem}`))),
  );
}

window.addEventListener('message', (event: MessageEvent<HistoryHostMessage>) => {
  const msg = event.data;
  if (msg.type === 'exported') {
    els.exported.textContent = msg.path ? `Saved ${msg.path}` : (msg.problem ?? '');
    return;
  }
  rows = msg.rows;
  broken = msg.broken;
  canOpenRun = msg.canOpenRun;
  columns = columnsOf(rows);
  differAll = differingColumns(columns, rows);
  // A page without its own layout (new, or opened after it was closed) takes the workspace's last one.
  if (!layoutFromPage && msg.layout) state = { ...state, layout: msg.layout };
  // Forget selections of deleted runs.
  save({ selected: state.selected.filter((d) => rows.some((r) => r.dir === d)) });
  if (!root.querySelector('#runs')) build();
  render();
});

onThemeChange(() => plot.retheme());

channel.post({ type: 'ready' });
