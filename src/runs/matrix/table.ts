// A matrix's table: rows the attacks, columns the defenses ("none" = the attacked model), each cell ACC/ASR
// (and RA, DER) as mean ± sample standard deviation over the seeds that finished. The best defense of a row
// is the one with the highest mean DER (BackdoorBench's rating, which weighs the ASR removed against the ACC
// lost). Exported as Markdown, CSV, LaTeX (booktabs, the NAD paper's Table 1 layout) and JSON.
import { NO_DEFENSE, type MatrixSpec } from './cells';
import type { CellOutcome } from './folder';
import type { MatrixExport, MatrixTable, Stat, TableCell } from '../../shared/matrix-protocol';

export type { MatrixTable, Stat, TableCell } from '../../shared/matrix-protocol';

/** People's names of attacks and defenses (the registries' titles; the extension reads them from dist/). */
export interface Titles {
  attack(name: string): string | undefined;
  defense(name: string): string | undefined;
}

export function stat(values: readonly number[]): Stat | undefined {
  const v = values.filter((x) => Number.isFinite(x));
  if (v.length === 0) return undefined;
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  const std = v.length > 1 ? Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / (v.length - 1)) : 0;
  return { mean, std, n: v.length };
}

export function matrixTable(
  spec: Pick<MatrixSpec, 'name' | 'attacks' | 'defenses' | 'seeds'>,
  outcomes: readonly CellOutcome[],
  titles?: Titles,
): MatrixTable {
  const titleOfDefense = (n: string): string => (n === NO_DEFENSE ? 'No defense' : (titles?.defense(n) ?? n));
  const cells = spec.attacks.map((a) => {
    const row = spec.defenses.map((d): TableCell => {
      // "none" is the attacked model: the training cell's numbers.
      const mine = outcomes.filter((o) => o.cell.attack === a.name && (o.cell.defense ?? NO_DEFENSE) === d.name);
      const ok = mine.filter((o) => o.state === 'finished');
      const pick = (k: 'acc' | 'asr' | 'ra' | 'der'): Stat | undefined => stat(ok.map((o) => o[k] ?? NaN));
      return {
        acc: pick('acc'),
        asr: pick('asr'),
        ra: pick('ra'),
        der: d.name === NO_DEFENSE ? undefined : pick('der'),
        seeds: ok.length,
        failed: mine
          .filter((o) => o.state === 'failed' || o.state === 'skipped')
          .map((o) => ({ seed: o.cell.seed, error: o.error ?? o.state })),
        running: mine.filter((o) => o.state === 'running').length,
        pending: mine.filter((o) => o.state === 'pending').length,
        runIds: mine.flatMap((o) => (o.runId ? [o.runId] : [])),
      };
    });
    let best = -1;
    row.forEach((c, i) => {
      if (c.der && (best < 0 || c.der.mean > (row[best].der?.mean ?? -Infinity))) best = i;
    });
    return row.map((c, i) => (i === best ? { ...c, best: true } : c));
  });
  return {
    name: spec.name,
    attacks: spec.attacks.map((a) => ({ name: a.name, title: titles?.attack(a.name) ?? a.name })),
    defenses: spec.defenses.map((d) => ({ name: d.name, title: titleOfDefense(d.name) })),
    cells,
    seeds: spec.seeds,
  };
}

const fmt = (s: Stat | undefined, digits = 2): string =>
  s === undefined ? '–' : s.n > 1 ? `${s.mean.toFixed(digits)} ± ${s.std.toFixed(digits)}` : s.mean.toFixed(digits);

function cellText(c: TableCell): string {
  if (c.seeds === 0) return c.failed.length ? 'failed' : c.running ? 'running' : '–';
  return `${fmt(c.acc)} / ${fmt(c.asr)}`;
}

export function toMarkdown(t: MatrixTable): string {
  const head = ['Attack', ...t.defenses.map((d) => d.title)];
  const lines = [
    `**${t.name}**: ACC / ASR (%)${t.seeds.length > 1 ? `, mean ± std over ${t.seeds.length} seeds` : ''}; **bold**: the best defense of the row by DER.`,
    '',
    `| ${head.join(' | ')} |`,
    `|${head.map((_, i) => (i === 0 ? ' --- ' : ' ---: ')).join('|')}|`,
  ];
  t.attacks.forEach((a, i) => {
    const cells = t.cells[i].map((c) => (c.best ? `**${cellText(c)}**` : cellText(c)));
    lines.push(`| ${a.title} | ${cells.join(' | ')} |`);
  });
  return lines.join('\n') + '\n';
}

const csvField = (v: string): string => (/[",\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);

/** One line per cell: every statistic in its own column, for spreadsheets and scripts. */
export function toCsv(t: MatrixTable): string {
  const head = [
    'attack',
    'defense',
    'seeds',
    'acc_mean',
    'acc_std',
    'asr_mean',
    'asr_std',
    'ra_mean',
    'ra_std',
    'der_mean',
    'der_std',
    'best',
    'failed',
  ];
  const num = (s: Stat | undefined, k: 'mean' | 'std'): string => (s === undefined ? '' : String(Number(s[k].toFixed(6))));
  const rows = t.attacks.flatMap((a, i) =>
    t.defenses.map((d, j) => {
      const c = t.cells[i][j];
      return [
        a.name,
        d.name,
        String(c.seeds),
        num(c.acc, 'mean'),
        num(c.acc, 'std'),
        num(c.asr, 'mean'),
        num(c.asr, 'std'),
        num(c.ra, 'mean'),
        num(c.ra, 'std'),
        num(c.der, 'mean'),
        num(c.der, 'std'),
        c.best ? '1' : '',
        c.failed.map((f) => `seed ${f.seed}: ${f.error}`).join('; '),
      ]
        .map(csvField)
        .join(',');
    }),
  );
  return [head.join(','), ...rows].join('\n') + '\n';
}

const tex = (s: string): string => s.replace(/([&%$#_{}])/g, '\\$1').replace(/~/g, '\\textasciitilde{}');

/** The NAD paper's Table 1 layout: one ACC and one ASR column per defense, booktabs rules, the row's best in bold. */
export function toLatex(t: MatrixTable): string {
  const texStat = (s: Stat | undefined): string =>
    s === undefined ? '--' : s.n > 1 ? `${s.mean.toFixed(2)}$\\pm${s.std.toFixed(2)}$` : s.mean.toFixed(2);
  const cols = 'l' + 'rr'.repeat(t.defenses.length);
  const lines = [
    '% Generated by `nad matrix`; needs \\usepackage{booktabs}.',
    '\\begin{table}[t]',
    '\\centering',
    `\\caption{${tex(t.name)}: ACC / ASR (\\%)${t.seeds.length > 1 ? `, mean $\\pm$ std over ${t.seeds.length} seeds` : ''}. Bold: the best defense of the row by DER.}`,
    `\\begin{tabular}{${cols}}`,
    '\\toprule',
    `Attack & ${t.defenses.map((d) => `\\multicolumn{2}{c}{${tex(d.title)}}`).join(' & ')} \\\\`,
    t.defenses.map((_, j) => `\\cmidrule(lr){${2 + 2 * j}-${3 + 2 * j}}`).join(' '),
    ` & ${t.defenses.map(() => 'ACC & ASR').join(' & ')} \\\\`,
    '\\midrule',
  ];
  t.attacks.forEach((a, i) => {
    const cells = t.cells[i].flatMap((c) => {
      const pair = [texStat(c.acc), texStat(c.asr)];
      return c.best ? pair.map((p) => `\\textbf{${p}}`) : pair;
    });
    lines.push(`${tex(a.title)} & ${cells.join(' & ')} \\\\`);
  });
  lines.push('\\bottomrule', '\\end{tabular}', '\\end{table}');
  return lines.join('\n') + '\n';
}

export function toJson(t: MatrixTable): string {
  return JSON.stringify(t, null, 2) + '\n';
}

export type TableFormat = MatrixExport;

export function formatTable(t: MatrixTable, format: TableFormat): string {
  switch (format) {
    case 'markdown':
      return toMarkdown(t);
    case 'csv':
      return toCsv(t);
    case 'latex':
      return toLatex(t);
    case 'json':
      return toJson(t);
    default: {
      const never: never = format;
      return never;
    }
  }
}
