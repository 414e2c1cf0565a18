// The experiment history table: sortable columns, a filter, and actions on the selected runs (compare two
// or more; attention maps or the folder of one). Clicking a run's name opens it.
// A native <table> (with sortable header buttons and aria-sort) reads best with screen readers.
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-checkbox/index.js';
import '@vscode-elements/elements/dist/vscode-textfield/index.js';
import type {
  BrokenRow,
  HistoryColumn,
  HistoryHostMessage,
  HistoryRow,
  HistoryViewMessage,
  HistoryViewState,
} from '../../src/shared/history-protocol';
import { connect, h } from '../common/vscode-api';
import { formatDurationMs, formatPercent, formatStarted } from './format';

const channel = connect<HistoryViewMessage, HistoryViewState>();
const root = document.getElementById('root') as HTMLElement;

const COLUMNS: ReadonlyArray<{ readonly key: HistoryColumn; readonly title: string; readonly numeric?: boolean }> = [
  { key: 'name', title: 'Run' },
  { key: 'kind', title: 'Kind' },
  { key: 'state', title: 'State' },
  { key: 'dataset', title: 'Dataset' },
  { key: 'trigger', title: 'Trigger' },
  { key: 'target', title: 'Target' },
  { key: 'epochs', title: 'Epochs', numeric: true },
  { key: 'acc', title: 'ACC', numeric: true },
  { key: 'asr', title: 'ASR', numeric: true },
  { key: 'ra', title: 'RA', numeric: true },
  { key: 'der', title: 'DER', numeric: true },
  { key: 'backend', title: 'Backend' },
  { key: 'startedAt', title: 'Started' },
  { key: 'durationMs', title: 'Duration', numeric: true },
];

let state: HistoryViewState = { sort: 'startedAt', descending: true, filter: '', selected: [], ...channel.state() };
let rows: readonly HistoryRow[] = [];
let broken: readonly BrokenRow[] = [];
let canOpenRun = false;
let tableBody: HTMLTableSectionElement | undefined;
let headRow: HTMLTableRowElement | undefined;
let statusEl: HTMLElement | undefined;
let compareButton: HTMLElement | undefined;
let mapsButton: HTMLElement | undefined;
let revealButton: HTMLElement | undefined;
let brokenEl: HTMLElement | undefined;

function save(patch: Partial<HistoryViewState>): void {
  state = { ...state, ...patch };
  channel.save(state);
}

function matches(r: HistoryRow, filter: string): boolean {
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

/** Sorted by the chosen column; runs without a value go last whichever the direction. */
function sorted(list: readonly HistoryRow[]): HistoryRow[] {
  const { sort, descending } = state;
  return [...list].sort((a, b) => {
    const va = a[sort];
    const vb = b[sort];
    if (va === undefined || vb === undefined) return va === vb ? 0 : va === undefined ? 1 : -1;
    const c =
      typeof va === 'number' && typeof vb === 'number' ? va - vb : String(va).localeCompare(String(vb), undefined, { numeric: true });
    return descending ? -c : c;
  });
}

function build(): void {
  const filter = h('vscode-textfield', {
    id: 'filter',
    placeholder: 'Filter runs (name, kind, state, dataset, trigger…)',
    'aria-label': 'Filter runs',
    value: state.filter,
  }) as HTMLElement & { value: string };
  filter.addEventListener('input', () => {
    save({ filter: filter.value });
    renderRows();
  });
  compareButton = h('vscode-button', { id: 'compare', title: 'Compare the selected runs’ curves and configs' }, 'Compare');
  compareButton.addEventListener('click', () => {
    const dirs = liveSelection();
    if (dirs.length >= 2) channel.post({ type: 'compare', dirs });
  });
  const single = (type: 'attention' | 'reveal') => (): void => {
    const [dir] = liveSelection();
    if (dir) channel.post({ type, dir });
  };
  mapsButton = h(
    'vscode-button',
    { id: 'show-maps', secondary: true, title: 'Show the attention maps of the selected run' },
    'Attention Maps',
  );
  mapsButton.addEventListener('click', single('attention'));
  revealButton = h(
    'vscode-button',
    { id: 'reveal', secondary: true, title: 'Reveal the selected run’s folder in the Explorer' },
    'Reveal Folder',
  );
  revealButton.addEventListener('click', single('reveal'));
  const refresh = h('vscode-button', { secondary: true, id: 'refresh' }, 'Refresh');
  refresh.addEventListener('click', () => channel.post({ type: 'refresh' }));
  statusEl = h('span', { class: 'status', id: 'status', 'aria-live': 'polite' });
  headRow = h('tr');
  tableBody = h('tbody');
  const table = h('table', { class: 'runs', id: 'runs', 'aria-describedby': 'status' }, h('thead', {}, headRow), tableBody);
  brokenEl = h('section', { class: 'broken', id: 'broken', 'aria-label': 'Unreadable run folders' });
  root.replaceChildren(
    h(
      'header',
      { class: 'header' },
      h('h1', {}, 'Experiment history'),
      h(
        'p',
        { class: 'source' },
        'Every run folder of this workspace. Click a name to open the run. Select two or more runs to compare them, or one to show its attention maps or folder.',
      ),
    ),
    h('div', { class: 'toolbar' }, filter, compareButton, mapsButton, revealButton, refresh, statusEl),
    h('div', { class: 'table-wrap' }, table),
    brokenEl,
  );
  root.setAttribute('aria-busy', 'false');
  renderHead();
}

function renderHead(): void {
  if (!headRow) return;
  const all = h('vscode-checkbox', { 'aria-label': 'Select all shown runs', id: 'select-all' }) as HTMLElement & { checked: boolean };
  all.addEventListener('change', () => {
    const shown = sorted(rows.filter((r) => matches(r, state.filter))).map((r) => r.dir);
    save({ selected: all.checked ? [...new Set([...state.selected, ...shown])] : state.selected.filter((d) => !shown.includes(d)) });
    renderRows();
  });
  const cells = COLUMNS.map((c) => {
    const active = state.sort === c.key;
    const button = h(
      'button',
      { class: 'sort', type: 'button', title: `Sort by ${c.title}` },
      c.title,
      h('span', { class: 'arrow', 'aria-hidden': 'true' }, active ? (state.descending ? ' ▼' : ' ▲') : ''),
    );
    button.addEventListener('click', () => {
      save({ sort: c.key, descending: active ? !state.descending : c.numeric === true || c.key === 'startedAt' });
      renderHead();
      renderRows();
    });
    return h(
      'th',
      {
        scope: 'col',
        class: c.numeric ? 'num' : '',
        'aria-sort': active ? (state.descending ? 'descending' : 'ascending') : 'none',
        'data-column': c.key,
      },
      button,
    );
  });
  headRow.replaceChildren(h('th', { scope: 'col', class: 'select' }, all), ...cells);
}

function cellText(r: HistoryRow, key: HistoryColumn): string {
  switch (key) {
    case 'acc':
    case 'asr':
    case 'ra':
      return formatPercent(r[key]);
    case 'der':
      return r.der === undefined ? '–' : r.der.toFixed(3);
    case 'epochs':
      return r.epochs === undefined ? '–' : r.epochsDone !== undefined ? `${r.epochsDone} / ${r.epochs}` : String(r.epochs);
    case 'startedAt':
      return formatStarted(r.startedAt);
    case 'durationMs':
      return formatDurationMs(r.durationMs);
    default:
      return r[key] ?? '–';
  }
}

function renderRows(): void {
  if (!tableBody || !statusEl || !compareButton) return;
  const shown = sorted(rows.filter((r) => matches(r, state.filter)));
  const selected = new Set(state.selected);
  const trs = shown.map((r) => {
    const pick = h('vscode-checkbox', { 'aria-label': `Select ${r.name}`, checked: selected.has(r.dir) }) as HTMLElement & {
      checked: boolean;
    };
    pick.addEventListener('change', () => {
      save({ selected: pick.checked ? [...state.selected, r.dir] : state.selected.filter((d) => d !== r.dir) });
      updateSelection();
    });
    const open = h(
      'button',
      { class: 'link', type: 'button', title: canOpenRun ? `Open ${r.name}` : `Reveal ${r.id} in the Explorer` },
      r.name,
    );
    open.addEventListener('click', () => channel.post({ type: 'open', dir: r.dir }));
    const cells = COLUMNS.map((c) => {
      if (c.key === 'name')
        return h('th', { scope: 'row', class: 'name', title: r.id }, open, r.workspace ? h('span', { class: 'where' }, r.workspace) : '');
      const td = h('td', { class: `${c.numeric ? 'num' : ''} col-${c.key}`, 'data-column': c.key }, cellText(r, c.key));
      if (c.key === 'state') td.classList.add(`state-${r.state}`);
      if (c.key === 'state' && r.error) td.title = r.error;
      if (c.key === 'backend' && r.backendDetail) td.title = r.backendDetail;
      if (c.key === 'target' && r.targetType) td.title = r.targetType;
      if (c.key === 'startedAt') td.title = new Date(r.startedAt).toString();
      return td;
    });
    return h(
      'tr',
      { 'data-dir': r.dir, 'data-id': r.id, class: selected.has(r.dir) ? 'selected' : '' },
      h('td', { class: 'select' }, pick),
      ...cells,
    );
  });
  if (trs.length === 0) {
    const empty =
      rows.length === 0
        ? 'No runs yet: train, finetune or erase a model (NAD commands or the nad CLI) and it appears here.'
        : 'No run matches the filter.';
    trs.push(h('tr', {}, h('td', { colspan: String(COLUMNS.length + 1), class: 'empty' }, empty)));
  }
  tableBody.replaceChildren(...trs);
  updateSelection();
  renderBroken();
  channel.post({ type: 'rendered', shown: shown.map((r) => r.id), broken: broken.length, state });
}

/** Selected runs that still exist. */
function liveSelection(): string[] {
  return state.selected.filter((d) => rows.some((r) => r.dir === d));
}

function updateSelection(): void {
  if (!statusEl || !compareButton || !tableBody) return;
  const live = liveSelection();
  const one = live.length === 1 ? rows.find((r) => r.dir === live[0]) : undefined;
  mapsButton?.toggleAttribute('disabled', !one?.hasAttention);
  revealButton?.toggleAttribute('disabled', !one);
  const shown = rows.filter((r) => matches(r, state.filter)).length;
  statusEl.textContent = `${shown} of ${rows.length} run${rows.length === 1 ? '' : 's'}${live.length ? ` · ${live.length} selected` : ''}`;
  compareButton.toggleAttribute('disabled', live.length < 2);
  for (const tr of Array.from(tableBody.querySelectorAll<HTMLElement>('tr[data-dir]')))
    tr.classList.toggle('selected', live.includes(tr.dataset.dir ?? ''));
}

function renderBroken(): void {
  if (!brokenEl) return;
  brokenEl.hidden = broken.length === 0;
  brokenEl.replaceChildren(
    h('h2', {}, `Unreadable run folders (${broken.length})`),
    h('p', {}, 'These folders could not be read; they are listed, not hidden, and nothing in them was changed.'),
    h('ul', {}, ...broken.map((b) => h('li', {}, h('code', {}, b.id), `: ${b.problem}`))),
  );
}

window.addEventListener('message', (event: MessageEvent<HistoryHostMessage>) => {
  const msg = event.data;
  if (msg.type !== 'runs') return;
  rows = msg.rows;
  broken = msg.broken;
  canOpenRun = msg.canOpenRun;
  // Forget selections of deleted runs.
  save({ selected: state.selected.filter((d) => rows.some((r) => r.dir === d)) });
  if (!tableBody) build();
  renderRows();
});

channel.post({ type: 'ready' });
