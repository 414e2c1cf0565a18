// The panel's numbers as text: the ACC/ASR table and the per-epoch rows as Markdown or CSV.
import { modelLabel } from '../../src/shared/panel-protocol';
import { phaseLabel, type EpochPoint } from '../../src/shared/run-state';
import type { ResultRow } from '../../src/shared/run-events';

export const pct = (v: number): string => (Number.isFinite(v) ? v.toFixed(2) : '–');

/** The result rows; an RA column when the rows have robust accuracy (runs before 0.2 do not). */
export function resultCells(rows: readonly ResultRow[]): string[][] {
  const ra = rows.some((r) => r.ra !== undefined);
  return [
    ['Model', 'ACC %', 'ASR %', ...(ra ? ['RA %'] : [])],
    ...rows.map((r) => [modelLabel(r.model), pct(r.acc), pct(r.asr), ...(ra ? [pct(r.ra ?? NaN)] : [])]),
  ];
}

export function epochCells(epochs: readonly EpochPoint[]): string[][] {
  return [
    ['Phase', 'Epoch', 'Loss', 'ACC %', 'ASR %', 'LR', 'Time s'],
    ...epochs.map((e) => [
      phaseLabel(e.phase),
      String(e.epoch),
      e.loss.toFixed(4),
      pct(e.acc),
      pct(e.asr),
      e.lr !== undefined ? String(e.lr) : '',
      e.seconds !== undefined ? e.seconds.toFixed(1) : '',
    ]),
  ];
}

function markdownTable(cells: readonly (readonly string[])[]): string {
  const [head, ...body] = cells;
  const numeric = head.map((_, i) => body.length > 0 && body.every((r) => r[i] === '' || /^[-–\d.e]+$/.test(r[i])));
  const line = (r: readonly string[]): string => `| ${r.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`;
  return [line(head), `| ${head.map((_, i) => (numeric[i] ? '---:' : '---')).join(' | ')} |`, ...body.map(line)].join('\n');
}

export function toMarkdown(title: string, rows: readonly ResultRow[], epochs: readonly EpochPoint[]): string {
  const parts = [`### ${title}`, '', markdownTable(resultCells(rows))];
  if (epochs.length) parts.push('', '#### Per epoch', '', markdownTable(epochCells(epochs)));
  return parts.join('\n') + '\n';
}

const csvCell = (c: string): string => (/[",\n]/.test(c) ? `"${c.replace(/"/g, '""')}"` : c);

/** One CSV table: the result rows, then the per-epoch rows, told apart by the first column. */
export function toCsv(rows: readonly ResultRow[], epochs: readonly EpochPoint[]): string {
  const out = [['row', 'phase', 'epoch', 'loss', 'acc', 'asr', 'ra']];
  for (const r of rows) out.push([modelLabel(r.model), '', '', '', pct(r.acc), pct(r.asr), r.ra !== undefined ? pct(r.ra) : '']);
  for (const e of epochs) out.push(['epoch', phaseLabel(e.phase), String(e.epoch), e.loss.toFixed(4), pct(e.acc), pct(e.asr)]);
  return out.map((r) => r.map(csvCell).join(',')).join('\n') + '\n';
}
