// The attack x defense matrix page: rows the attacks, columns the defenses, each cell ACC / ASR (mean ± std
// over seeds) shaded by ASR (the legend says how), the row's best defense outlined, live progress per cell,
// and a click on a cell opens its run. A native <table> reads best with screen readers.
import '@vscode-elements/elements/dist/vscode-button/index.js';
import type {
  MatrixExport,
  MatrixHostMessage,
  MatrixPageState,
  MatrixViewMessage,
  Stat,
  TableCell,
} from '../../src/shared/matrix-protocol';
import { connect, h } from '../common/vscode-api';

const channel = connect<MatrixViewMessage, MatrixPageState>();
const root = document.getElementById('root') as HTMLElement;

const LEGEND =
  'Each cell: ACC / ASR in %, mean ± std over seeds. Shading: the ASR left, from none (clear) to 100% (full red). ' +
  'Outlined: the best defense of the row by DER (ASR removed against ACC lost). Click a cell to open its run.';

const fmt = (s: Stat | undefined): string =>
  s === undefined ? '–' : s.n > 1 ? `${s.mean.toFixed(2)} ± ${s.std.toFixed(2)}` : s.mean.toFixed(2);

function cellText(c: TableCell): string {
  if (c.seeds === 0) {
    if (c.running) return 'running…';
    if (c.failed.length) return 'failed';
    return 'pending';
  }
  return `${fmt(c.acc)} / ${fmt(c.asr)}`;
}

/** RA, DER, and how many seeds: of the matrix's (a matrix), or as many as the cell has (chosen runs). */
function cellDetail(c: TableCell, seeds: number, chosen: boolean): string {
  const parts: string[] = [];
  if (c.ra) parts.push(`RA ${fmt(c.ra)}`);
  if (c.der) parts.push(`DER ${c.der.mean.toFixed(3)}`);
  if (chosen) {
    if (c.seeds > 1) parts.push(`${c.seeds} seeds`);
    if (c.running) parts.push(`${c.running} running`);
    if (c.failed.length) parts.push(`${c.failed.length} failed`);
  } else if (c.seeds < seeds) {
    const rest = [
      c.running ? `${c.running} running` : '',
      c.pending ? `${c.pending} pending` : '',
      c.failed.length ? `${c.failed.length} failed` : '',
    ]
      .filter(Boolean)
      .join(', ');
    parts.push(`${c.seeds}/${seeds} seeds${rest ? ` (${rest})` : ''}`);
  }
  return parts.join(' · ');
}

function copyButton(label: string, format: MatrixExport): HTMLElement {
  const b = h('vscode-button', { secondary: true }, label);
  b.addEventListener('click', () => channel.post({ type: 'copy', format }));
  return b;
}

function render(msg: Extract<MatrixHostMessage, { type: 'matrix' }>): void {
  const t = msg.table;
  const seeds = t.seeds.length;
  const head = h('tr', {}, h('th', { scope: 'col' }, 'Attack \\ Defense'));
  for (const d of t.defenses) head.append(h('th', { scope: 'col', class: 'num' }, d.title));
  const body = h('tbody', {});
  const rows: string[][] = [];
  const best: string[] = [];
  t.attacks.forEach((a, i) => {
    const tr = h('tr', {}, h('th', { scope: 'row' }, a.title));
    const texts: string[] = [];
    t.cells[i].forEach((c, j) => {
      const text = cellText(c);
      texts.push(text);
      if (c.best) best.push(`${a.name}/${t.defenses[j].name}`);
      const detail = cellDetail(c, seeds, msg.runs !== undefined);
      const failures = c.failed.map((f) => `seed ${f.seed}: ${f.error}`).join('\n');
      const content = h('span', { class: 'cell-main' }, text);
      const inner: Array<Node | string> = [content];
      if (detail) inner.push(h('span', { class: 'cell-detail' }, detail));
      const runId = c.runIds[0];
      const td = h('td', {
        class: ['num', 'cell', c.best ? 'best' : '', c.running ? 'running' : '', c.failed.length && !c.seeds ? 'failed' : '']
          .filter(Boolean)
          .join(' '),
        'data-cell': `${a.name}/${t.defenses[j].name}`,
        title: failures || undefined,
      });
      if (c.asr) {
        // CSSOM, not a style attribute: allowed by the page's CSP.
        td.style.backgroundColor = `color-mix(in srgb, var(--vscode-charts-red, #f14c4c) ${Math.round(Math.min(100, c.asr.mean) * 0.6)}%, transparent)`;
      }
      if (runId && msg.canOpenRun) {
        const link = h(
          'button',
          { class: 'cell-link', 'aria-label': `Open the run of ${a.title} with ${t.defenses[j].title}: ${text}` },
          ...inner,
        );
        link.addEventListener('click', () => channel.post({ type: 'open', runId }));
        td.append(link);
      } else td.append(...inner);
      tr.append(td);
    });
    rows.push(texts);
    body.append(tr);
  });
  const p = msg.progress;
  const status =
    p.finished === p.total
      ? `All ${p.total} runs finished.`
      : `${p.finished} of ${p.total} runs finished${p.running ? `, ${p.running} running` : ''}${p.failed ? `, ${p.failed} failed` : ''}.`;
  const legend = h('p', { class: 'legend', id: 'legend' }, LEGEND);
  const where = msg.runs ? 'runs chosen in the history' : `folder ${msg.id}`;
  const skipped = msg.skipped?.length ? [h('p', { class: 'skipped' }, `Not in the table: ${msg.skipped.join('; ')}.`)] : [];
  root.replaceChildren(
    h('h1', {}, msg.runs ? `Runs side by side: ${t.name}` : `Matrix: ${t.name}`),
    h(
      'p',
      { class: 'status', role: 'status' },
      `${status} ${seeds} seed${seeds > 1 ? 's' : ''} (${t.seeds.join(', ')}); ${where}.${msg.slurm ? ` ${msg.slurm}.` : ''}`,
    ),
    ...skipped,
    h('div', { class: 'table-wrap' }, h('table', { class: 'matrix', 'aria-describedby': 'legend' }, h('thead', {}, head), body)),
    legend,
    h(
      'div',
      { class: 'toolbar' },
      copyButton('Copy as Markdown', 'markdown'),
      copyButton('Copy as CSV', 'csv'),
      copyButton('Copy as LaTeX', 'latex'),
      copyButton('Copy as JSON', 'json'),
    ),
  );
  root.removeAttribute('aria-busy');
  channel.post({ type: 'rendered', rows, best, legend: LEGEND });
}

window.addEventListener('message', (e: MessageEvent<MatrixHostMessage>) => {
  const msg = e.data;
  if (msg.type === 'problem') {
    root.replaceChildren(h('p', { class: 'error', role: 'alert' }, msg.problem));
    root.removeAttribute('aria-busy');
    channel.post({ type: 'rendered', rows: [], best: [], legend: msg.problem });
    return;
  }
  channel.save(msg.runs ? { dir: '', runs: msg.runs } : { dir: msg.dir });
  render(msg);
});
channel.post({ type: 'ready' });
