// Compare runs: ACC, ASR and loss per epoch overlaid (Chart.js), the final numbers, and the configs' diff.
import '@vscode-elements/elements/dist/vscode-checkbox/index.js';
import {
  CategoryScale,
  Chart,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Title,
  Tooltip,
  type ChartDataset,
} from 'chart.js';
import type {
  CompareData,
  CompareHostMessage,
  CompareRun,
  CompareViewMessage,
  CompareViewState,
  CurveSegment,
} from '../../src/shared/history-protocol';
import { connect, h, onThemeChange, themeColour } from '../common/vscode-api';
import { formatPercent } from './format';
import { runColour, runPointStyle } from './run-colours';
import { baseChartOptions } from '../common/chart-options';

Chart.register(LineController, LineElement, PointElement, LinearScale, CategoryScale, Legend, Tooltip, Title);

const channel = connect<CompareViewMessage, CompareViewState>();
const root = document.getElementById('root') as HTMLElement;

let data: CompareData | undefined;
let state: CompareViewState = { dirs: [], onlyDifferences: false, ...channel.state() };
let showEarlier = false;
const charts: Chart[] = [];

// ASR spans 0-100 whatever the runs, so its axis is fixed; ACC and loss zoom to their values.
const METRICS = [
  { key: 'acc', title: 'Clean accuracy (ACC, %)', fixedPercent: false },
  { key: 'asr', title: 'Attack success rate (ASR, %)', fixedPercent: true },
  { key: 'loss', title: 'Training loss', fixedPercent: false },
] as const;

function datasets(runs: readonly CompareRun[], key: 'acc' | 'asr' | 'loss'): Array<ChartDataset<'line', Array<{ x: number; y: number }>>> {
  const out: Array<ChartDataset<'line', Array<{ x: number; y: number }>>> = [];
  runs.forEach((run) => {
    const colour = runColour(run.colour);
    const segs: readonly CurveSegment[] = showEarlier ? run.segments : run.segments.slice(-1);
    segs.forEach((seg, k) => {
      const last = k === segs.length - 1;
      out.push({
        label: run.segments.length > 1 ? `${run.name} (${seg.phase})` : run.name,
        data: seg.epochs.map((x, j) => ({ x, y: seg[key][j] })),
        borderColor: colour,
        backgroundColor: colour,
        borderDash: last ? [] : [6, 4],
        borderWidth: 2,
        pointRadius: 3,
        pointStyle: runPointStyle(run.colour),
        tension: 0,
        // Points on the 0 or 100 % lines stay whole.
        clip: 6,
      });
    });
  });
  return out;
}

function renderCharts(container: HTMLElement): void {
  if (!data) return;
  charts.splice(0).forEach((c) => c.destroy());
  const fg = themeColour('--vscode-foreground', '#cccccc');
  const grid = themeColour('--vscode-editorWidget-border', themeColour('--vscode-panel-border', '#80808040'));
  const font = { family: themeColour('--vscode-font-family', 'sans-serif'), size: 12 };
  const figures = METRICS.map((m) => {
    const canvas = h('canvas', {
      role: 'img',
      'aria-label': `${m.title} per epoch for ${data?.runs.map((r) => r.name).join(', ')}; the same numbers are in the results table below.`,
    });
    const chart = new Chart(canvas, {
      type: 'line',
      data: { datasets: datasets(data?.runs ?? [], m.key) },
      options: {
        ...baseChartOptions(fg, font),
        plugins: {
          title: { display: true, text: m.title, color: fg, font: { ...font, size: 13, weight: 'bold' } },
          legend: { labels: { color: fg, font, usePointStyle: true, boxWidth: 8, boxHeight: 8 } },
          tooltip: { mode: 'nearest', intersect: false },
        },
        scales: {
          x: {
            type: 'linear',
            title: { display: true, text: 'epoch', color: fg, font },
            ticks: { color: fg, font, precision: 0 },
            grid: { color: grid },
          },
          y: { ...(m.fixedPercent ? { min: 0, max: 100 } : { grace: '5%' }), ticks: { color: fg, font }, grid: { color: grid } },
        },
      },
    });
    charts.push(chart);
    return h('figure', { class: 'chart', 'data-metric': m.key }, h('div', { class: 'chart-box' }, canvas));
  });
  container.replaceChildren(...figures);
}

function resultsTable(runs: readonly CompareRun[]): HTMLElement {
  const body = runs.map((r) => {
    const open = h('button', { class: 'link', type: 'button', title: `Open ${r.name}` }, r.name);
    open.addEventListener('click', () => channel.post({ type: 'open', dir: r.dir }));
    const swatch = h('span', { class: 'swatch', 'aria-hidden': 'true' });
    swatch.style.background = runColour(r.colour);
    const last = r.segments[r.segments.length - 1];
    return h(
      'tr',
      { 'data-dir': r.dir },
      h('th', { scope: 'row' }, swatch, open),
      h('td', {}, r.kind),
      h('td', { class: `state-${r.state}` }, r.state),
      h('td', { class: 'num' }, last ? String(last.epochs[last.epochs.length - 1]) : '–'),
      h('td', { class: 'num' }, formatPercent(r.acc)),
      h('td', { class: 'num' }, formatPercent(r.asr)),
    );
  });
  return h(
    'table',
    { class: 'results', id: 'results' },
    h('caption', {}, 'Final numbers (the run’s status.json)'),
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        ...['Run', 'Kind', 'State', 'Last epoch', 'ACC', 'ASR'].map((t, i) => h('th', { scope: 'col', class: i >= 3 ? 'num' : '' }, t)),
      ),
    ),
    h('tbody', {}, ...body),
  );
}

function configTable(d: CompareData): HTMLElement {
  const rows = d.config.filter((r) => r.differs || !state.onlyDifferences);
  const head = h('tr', {}, h('th', { scope: 'col' }, 'Key'), ...d.runs.map((r) => h('th', { scope: 'col' }, r.name)));
  const body = rows.map((r) =>
    h(
      'tr',
      { class: r.differs ? 'differs' : '', 'data-key': r.key },
      h(
        'th',
        { scope: 'row' },
        r.differs ? h('span', { class: 'marker', title: 'differs' }, '≠ ') : '',
        h('code', {}, r.key),
        r.differs ? h('span', { class: 'visually-hidden' }, ' (differs)') : '',
      ),
      ...r.values.map((v) => h('td', { class: v === undefined ? 'absent' : '' }, v === undefined ? '(not set)' : v)),
    ),
  );
  if (body.length === 0)
    body.push(h('tr', {}, h('td', { colspan: String(d.runs.length + 1), class: 'empty' }, 'The configs are identical.')));
  return h('table', { class: 'config', id: 'config' }, h('thead', {}, head), h('tbody', {}, ...body));
}

function render(): void {
  if (!data) return;
  const d = data;
  const chartsEl = h('div', { class: 'charts', id: 'charts' });
  const only = h('vscode-checkbox', { id: 'only-differences', checked: state.onlyDifferences }, 'Only keys that differ') as HTMLElement & {
    checked: boolean;
  };
  const configEl = h('div', { class: 'table-wrap' }, configTable(d));
  only.addEventListener('change', () => {
    state = { ...state, onlyDifferences: only.checked };
    channel.save(state);
    configEl.replaceChildren(configTable(d));
  });
  const hasEarlier = d.runs.some((r) => r.segments.length > 1);
  const earlier = h(
    'vscode-checkbox',
    { id: 'show-earlier', checked: showEarlier },
    'Show earlier phases (e.g. the teacher’s finetuning), dashed',
  ) as HTMLElement & { checked: boolean };
  earlier.addEventListener('change', () => {
    showEarlier = earlier.checked;
    renderCharts(chartsEl);
  });
  const problems = [...d.missing.map((m) => `${m.dir}: ${m.problem}`), ...d.runs.flatMap((r) => r.problems.map((p) => `${r.name}: ${p}`))];
  const differing = d.config.filter((r) => r.differs).length;
  root.replaceChildren(
    h(
      'header',
      { class: 'header' },
      h('h1', {}, `Compare ${d.runs.length} runs`),
      h('p', { class: 'source' }, d.runs.map((r) => r.name).join(' · ')),
    ),
    problems.length
      ? h(
          'div',
          { class: 'problem', role: 'alert' },
          h('h2', {}, 'Some data could not be read'),
          h('ul', {}, ...problems.map((p) => h('li', {}, p))),
        )
      : '',
    h(
      'section',
      { 'aria-label': 'Curves' },
      h('h2', {}, 'Curves per epoch'),
      hasEarlier ? earlier : '',
      d.runs.every((r) => r.segments.length === 0)
        ? h('p', { class: 'empty' }, 'None of these runs has epoch metrics (metrics.jsonl) yet.')
        : chartsEl,
    ),
    resultsTable(d.runs),
    h(
      'section',
      { 'aria-label': 'Configuration' },
      h('h2', {}, `Configuration (${differing} of ${d.config.length} keys differ)`),
      only,
      configEl,
    ),
  );
  root.setAttribute('aria-busy', 'false');
  renderCharts(chartsEl);
  channel.post({
    type: 'rendered',
    runs: d.runs.length,
    differing: d.config.filter((r) => r.differs).map((r) => r.key),
    charts: charts.length,
  });
}

window.addEventListener('message', (event: MessageEvent<CompareHostMessage>) => {
  if (event.data.type !== 'data') return;
  data = event.data.data;
  // The serializer reopens the same runs after a reload from this state.
  state = { ...state, dirs: [...data.runs.map((r) => r.dir), ...data.missing.map((m) => m.dir)] };
  channel.save(state);
  render();
});

onThemeChange(() => {
  const el = document.getElementById('charts');
  if (el && data) renderCharts(el);
});

channel.post({ type: 'ready' });
