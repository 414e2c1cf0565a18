// The history plot as a standalone SVG file, written from the points and axes (no DOM, no remote
// content), and the axis ranges the on-screen chart uses too, so both show the same ticks.
// Pure: test/unit/history-plot-svg.test.ts.

export interface Axis {
  readonly min: number;
  readonly max: number;
  readonly ticks: readonly number[];
}

/** Round tick steps (1, 2, 2.5, 5 × 10^k) covering the values; a percent axis stays within 0-100. */
export function niceAxis(values: readonly number[], percent = false, count = 5): Axis {
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) {
    lo = 0;
    hi = 1;
  }
  if (percent) {
    lo = Math.max(0, Math.min(lo, 0));
    hi = Math.min(100, Math.max(hi, 100));
  }
  if (lo === hi) {
    const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 2.5, 5, 10].find((m) => m * mag >= raw) ?? 10) * mag;
  const min = Math.floor(lo / step + 1e-9) * step;
  const max = Math.ceil(hi / step - 1e-9) * step;
  const ticks: number[] = [];
  for (let t = min; t <= max + step / 2; t += step) ticks.push(+t.toPrecision(12));
  return { min: ticks[0], max: ticks[ticks.length - 1], ticks };
}

export interface SvgPoint {
  readonly x: number;
  readonly y: number;
  readonly colour: string;
  readonly label: string;
}

export interface SvgPlot {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly x: Axis;
  readonly y: Axis;
  readonly points: readonly SvgPoint[];
  readonly foreground: string;
  readonly grid: string;
  readonly background: string;
  readonly font: string;
  readonly width?: number;
  readonly height?: number;
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const num = (v: number): string => String(+v.toFixed(2));
const tickText = (v: number): string => String(+v.toPrecision(6));

/** A scatter plot as SVG text: title, both axes with ticks and grid lines, one circle per point with its label as a tooltip. */
export function scatterSvg(p: SvgPlot): string {
  const width = p.width ?? 720;
  const height = p.height ?? 440;
  const left = 70;
  const right = 20;
  const top = 40;
  const bottom = 56;
  const sx = (v: number): number => left + ((v - p.x.min) / (p.x.max - p.x.min || 1)) * (width - left - right);
  const sy = (v: number): number => height - bottom - ((v - p.y.min) / (p.y.max - p.y.min || 1)) * (height - top - bottom);
  const fg = esc(p.foreground);
  const grid = esc(p.grid);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="${esc(p.font)}" font-size="12">`,
    `<title>${esc(p.title)}</title>`,
    `<rect width="${width}" height="${height}" fill="${esc(p.background)}"/>`,
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="14" font-weight="bold" fill="${fg}">${esc(p.title)}</text>`,
  ];
  for (const t of p.x.ticks)
    out.push(
      `<line x1="${num(sx(t))}" y1="${top}" x2="${num(sx(t))}" y2="${height - bottom}" stroke="${grid}"/>`,
      `<text x="${num(sx(t))}" y="${height - bottom + 16}" text-anchor="middle" fill="${fg}">${tickText(t)}</text>`,
    );
  for (const t of p.y.ticks)
    out.push(
      `<line x1="${left}" y1="${num(sy(t))}" x2="${width - right}" y2="${num(sy(t))}" stroke="${grid}"/>`,
      `<text x="${left - 6}" y="${num(sy(t) + 4)}" text-anchor="end" fill="${fg}">${tickText(t)}</text>`,
    );
  out.push(
    `<rect x="${left}" y="${top}" width="${width - left - right}" height="${height - top - bottom}" fill="none" stroke="${fg}"/>`,
    `<text x="${(left + width - right) / 2}" y="${height - 14}" text-anchor="middle" fill="${fg}">${esc(p.xLabel)}</text>`,
    `<text transform="translate(18 ${(top + height - bottom) / 2}) rotate(-90)" text-anchor="middle" fill="${fg}">${esc(p.yLabel)}</text>`,
  );
  for (const q of p.points)
    out.push(
      `<circle cx="${num(sx(q.x))}" cy="${num(sy(q.y))}" r="5" fill="${esc(q.colour)}" stroke="${fg}" stroke-width="0.5" data-x="${q.x}" data-y="${q.y}"><title>${esc(`${q.label}: ${q.x}, ${q.y}`)}</title></circle>`,
    );
  out.push('</svg>');
  return out.join('\n') + '\n';
}
