// Neural Cleanse, step 2: the MAD outlier test over the classes' trigger sizes (mad_outlier_detection.py;
// see ./index.ts).
import { MAD_CONSTANT } from './reverse';

/** numpy's median: the mean of the two middle values for an even count. */
export function median(values: readonly number[]): number {
  const s = [...values].sort((x, y) => x - y);
  const k = s.length >> 1;
  return s.length % 2 === 1 ? s[k] : (s[k - 1] + s[k]) / 2;
}

export interface L1Statistics {
  readonly median: number;
  /** 1.4826 * median |L1 - median|. */
  readonly mad: number;
}

export function l1Statistics(l1s: readonly number[]): L1Statistics {
  const med = median(l1s);
  return { median: med, mad: MAD_CONSTANT * median(l1s.map((v) => Math.abs(v - med))) };
}

/**
 * Anomaly index of every class: |L1 - median| / (1.4826 * MAD) (mad_outlier_detection.py). With a MAD of 0
 * (half the classes or more share one L1) a class off the median gets Infinity, one on it 0.
 */
export function anomalyIndices(l1s: readonly number[]): number[] {
  const { median: med, mad } = l1Statistics(l1s);
  return l1s.map((v) => {
    const d = Math.abs(v - med);
    return mad > 0 ? d / mad : d > 0 ? Infinity : 0;
  });
}

export interface FlaggedClass {
  readonly class: number;
  readonly anomalyIndex: number;
  readonly l1: number;
}

/** Classes whose trigger is small (L1 <= median) and anomalous (index > threshold), smallest L1 first. */
export function flaggedClasses(l1s: readonly number[], threshold = 2): FlaggedClass[] {
  const med = median(l1s);
  const idx = anomalyIndices(l1s);
  return l1s
    .map((l1, k) => ({ class: k, anomalyIndex: idx[k], l1 }))
    .filter((f) => f.l1 <= med && f.anomalyIndex > threshold)
    .sort((x, y) => x.l1 - y.l1 || x.class - y.class);
}
