// STRIP's report (the method: see index.ts): ROC AUC and curve of low entropy as the trigger score, the
// entropy histograms with a bin edge on the threshold, and summary statistics.
import type { ChartFigure } from '../../../shared/run-events';

/** ROC AUC of low entropy as the triggered score: P(triggered < clean) + P(equal) / 2. */
export function rocAuc(clean: ArrayLike<number>, triggered: ArrayLike<number>): number {
  const all = [...Array.from(clean, (v) => ({ v, t: 0 })), ...Array.from(triggered, (v) => ({ v, t: 1 }))].sort((p, q) => p.v - q.v);
  let cleanBelow = 0;
  let sum = 0;
  for (let i = 0; i < all.length;) {
    let j = i;
    let nc = 0;
    let nt = 0;
    for (; j < all.length && all[j].v === all[i].v; j++) {
      if (all[j].t) nt++;
      else nc++;
    }
    sum += nt * (clean.length - cleanBelow - nc) + 0.5 * nt * nc;
    cleanBelow += nc;
    i = j;
  }
  return clean.length && triggered.length ? sum / (clean.length * triggered.length) : NaN;
}

/** ROC points (x FPR %, y TPR %) flagging entropy <= v for every distinct v, thinned to at most `max`. */
export function rocCurve(clean: Float64Array, triggered: Float64Array, max = 200): Array<{ x: number; y: number }> {
  const values = [...new Set([...clean, ...triggered])].sort((p, q) => p - q);
  const c = Float64Array.from(clean).sort();
  const t = Float64Array.from(triggered).sort();
  const pts = [{ x: 0, y: 0 }];
  let i = 0;
  let j = 0;
  for (const v of values) {
    while (i < c.length && c[i] <= v) i++;
    while (j < t.length && t[j] <= v) j++;
    pts.push({ x: (100 * i) / Math.max(1, c.length), y: (100 * j) / Math.max(1, t.length) });
  }
  if (pts.length <= max) return pts;
  return Array.from({ length: max }, (_, k) => pts[Math.round((k * (pts.length - 1)) / (max - 1))]);
}

/** Bins of the entropy histograms: 30 of equal width up to the largest value, one edge on the threshold. */
function histogramBins(hi: number, threshold: number, bins: number): { start: number; width: number; count: number } {
  const width = hi > 0 ? hi / bins : 1 / bins;
  const start = threshold - Math.ceil(threshold / width) * width;
  return { start, width, count: Math.max(1, Math.floor((hi - start) / width) + 1) };
}

/** Where the threshold's bin edge sits on the histograms' category axis (bar k spans k - 0.5 .. k + 0.5). */
export function thresholdPosition(sets: readonly Float64Array[], threshold: number, bins = 30): number {
  const hi = Math.max(threshold, ...sets.flatMap((s) => [...s]));
  const { start, width } = histogramBins(hi, threshold, bins);
  return Math.round((threshold - start) / width) - 0.5;
}

/** Same-bin histograms (percent of each set), 30 bins of equal width, one edge on the threshold. */
export function entropyHistograms(
  sets: ReadonlyArray<{ readonly name: string; readonly values: Float64Array }>,
  threshold: number,
  bins = 30,
): Extract<ChartFigure['chart'], { kind: 'bar' }> {
  const hi = Math.max(threshold, ...sets.flatMap((s) => [...s.values]));
  const { start, width, count } = histogramBins(hi, threshold, bins);
  const digits = Math.max(2, Math.ceil(-Math.log10(width)) + 1);
  const labels = Array.from({ length: count }, (_, k) => {
    const lo = Math.max(0, start + k * width);
    return `${lo.toFixed(digits)}–${(start + (k + 1) * width).toFixed(digits)}`;
  });
  const series = sets.map(({ name, values }) => {
    const counts = new Array<number>(count).fill(0);
    for (const v of values) counts[Math.min(count - 1, Math.max(0, Math.floor((v - start) / width)))]++;
    return { name, values: counts.map((k) => (values.length ? Math.round((1e4 * k) / values.length) / 100 : 0)) };
  });
  return { kind: 'bar', labels, series };
}

export type EntropyStats = Readonly<Record<'count' | 'min' | 'mean' | 'median' | 'max' | 'std', number>>;

export function entropyStats(values: Float64Array): EntropyStats {
  const s = Float64Array.from(values).sort();
  const n = s.length;
  if (n === 0) return { count: 0, min: NaN, mean: NaN, median: NaN, max: NaN, std: NaN };
  const mean = s.reduce((a, v) => a + v, 0) / n;
  const median = n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
  const std = Math.sqrt(s.reduce((a, v) => a + (v - mean) ** 2, 0) / n);
  return { count: n, min: s[0], mean, median, max: s[n - 1], std };
}

export const pct = (v: number): string => (Number.isFinite(v) ? `${v.toFixed(2)}%` : 'n/a');
