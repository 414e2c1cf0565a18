// What the soak suite samples after each run, and how `npm run soak` judges the series: first, last
// and max of each, a least-squares slope over the second half, and growth after the warm-up. Plain
// Node: used by the launcher (test/soak/soak.ts) and typed for the suite inside the extension host.

export interface SoakSample {
  readonly run: number;
  /** The run's kind (train, defend, erase, eval): each worker series is judged within one kind. */
  readonly kind: string;
  readonly seconds: number;
  /** Extension host, sampled after the run ended, its panel closed and (when possible) a full GC. */
  readonly hostRssMb: number;
  readonly hostHeapMb: number;
  /** What V8 has reserved for the heap: RSS that is not heapUsed often sits here. */
  readonly hostHeapTotalMb: number;
  readonly hostExternalMb: number;
  readonly hostFds: number;
  /** The run's worker process, polled from /proc while it ran (-1: never read). */
  readonly workerPid: number;
  readonly workerPeakRssMb: number;
  readonly workerFds: number;
  readonly workerPolls: number;
  /** To explain growth: tasks the run manager holds, the JSON size of the last one's snapshot, run panels still open. */
  readonly tasksKept: number;
  readonly lastSnapshotKb: number;
  readonly panelsOpen: number;
}

export interface SoakSamples {
  readonly runs: number;
  readonly gcForced: boolean;
  readonly hostPid: number;
  readonly node: string;
  readonly wallSeconds: number;
  /** How many runs of each kind. */
  readonly kinds: Readonly<Record<string, number>>;
  readonly baseline: Pick<SoakSample, 'hostRssMb' | 'hostHeapMb' | 'hostHeapTotalMb' | 'hostExternalMb' | 'hostFds'>;
  readonly samples: readonly SoakSample[];
}

export type SeriesName =
  'hostRssMb' | 'hostHeapMb' | 'hostHeapTotalMb' | 'hostExternalMb' | 'hostFds' | 'workerPeakRssMb' | 'workerFds' | 'seconds';

export interface SeriesSummary {
  readonly first: number;
  readonly last: number;
  readonly min: number;
  readonly max: number;
  /** Least-squares slope over the second half of the runs, per run. */
  readonly slopeSecondHalf: number;
  /** Median of the last 5 runs minus the median of the first 5 runs after the warm-up. */
  readonly growthAfterWarmup: number;
}

export interface Limit {
  readonly series: SeriesName;
  readonly what: 'slopeSecondHalf' | 'growthAfterWarmup' | 'range';
  readonly max: number;
  readonly unit: string;
  readonly why: string;
}

/**
 * The limits and why. A leak of one handle or one retained run (its snapshot, its panel, its worker
 * listeners) per run adds up to 50 of them over the default 50 runs, far over these; what stays under
 * them is the noise of a Node process that opens a few lazily (log files, watchers) and whose allocator
 * keeps freed pages for a while.
 */
export const LIMITS: readonly Limit[] = [
  { series: 'hostFds', what: 'growthAfterWarmup', max: 3, unit: 'fds', why: 'a handle leaked per run gives one per run' },
  { series: 'hostFds', what: 'slopeSecondHalf', max: 0.1, unit: 'fds/run', why: 'one leaked handle every 10 runs' },
  {
    series: 'hostHeapMb',
    what: 'slopeSecondHalf',
    max: 0.1,
    unit: 'MB/run',
    why: 'after a full GC the heap holds only what is kept; a run snapshot kept per run is about this size',
  },
  { series: 'hostHeapMb', what: 'growthAfterWarmup', max: 10, unit: 'MB', why: 'the same, summed over the runs' },
  { series: 'hostRssMb', what: 'slopeSecondHalf', max: 0.5, unit: 'MB/run', why: 'RSS is noisier than the heap (allocator, code caches)' },
  { series: 'hostRssMb', what: 'growthAfterWarmup', max: 40, unit: 'MB', why: 'the same, summed over the runs' },
  {
    series: 'workerPeakRssMb',
    what: 'slopeSecondHalf',
    max: 1,
    unit: 'MB/run',
    why: 'each run has a fresh worker doing the same job; growth means it reads something that grows',
  },
  { series: 'workerFds', what: 'range', max: 4, unit: 'fds', why: 'a fresh worker doing the same job opens the same files' },
];

export function warmupRuns(n: number): number {
  return Math.max(3, Math.round(n / 10));
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Least-squares slope of ys against xs (0 for fewer than two points). */
export function slope(xs: readonly number[], ys: readonly number[]): number {
  const n = xs.length;
  if (n < 2) return 0;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i] - mx) * (ys[i] - my);
    sxx += (xs[i] - mx) ** 2;
  }
  return sxx === 0 ? 0 : sxy / sxx;
}

export function summarise(samples: readonly SoakSample[], series: SeriesName): SeriesSummary {
  const ys = samples.map((s) => s[series]);
  const runs = samples.map((s) => s.run);
  const half = Math.floor(samples.length / 2);
  const afterWarmup = ys.slice(Math.min(warmupRuns(samples.length), Math.max(0, ys.length - 5)));
  return {
    first: ys[0],
    last: ys[ys.length - 1],
    min: Math.min(...ys),
    max: Math.max(...ys),
    slopeSecondHalf: slope(runs.slice(half), ys.slice(half)),
    growthAfterWarmup: median(afterWarmup.slice(-5)) - median(afterWarmup.slice(0, 5)),
  };
}

export interface Verdict {
  readonly limit: Limit;
  readonly value: number;
  readonly ok: boolean;
}

/**
 * Every limit against the samples. The extension host's series run across all runs; a worker's depend on its
 * job, so those are judged within each kind (with at least 4 runs of it) and the worst kind counts.
 */
export function judge(samples: readonly SoakSample[]): Verdict[] {
  const kinds = [...new Set(samples.map((s) => s.kind))];
  // The run manager keeps the newest ended runs up to a cap (20): until the cap is reached each run adds its
  // task and snapshot to the heap by design. The host's heap and RSS are judged only once it no longer grows
  // over the second half; a shorter soak says so instead.
  const capFilling = taskCapFilling(samples);
  return LIMITS.flatMap((limit): Verdict[] => {
    if (capFilling && (limit.series === 'hostHeapMb' || limit.series === 'hostRssMb')) return [];
    const groups = limit.series.startsWith('worker')
      ? kinds.map((k) => samples.filter((s) => s.kind === k)).filter((g) => g.length >= 4)
      : [samples];
    const values = groups.map((g) => {
      const s = summarise(g, limit.series);
      return limit.what === 'range' ? s.max - s.min : s[limit.what];
    });
    const value = values.length ? Math.max(...values) : 0;
    return [{ limit, value, ok: value <= limit.max }];
  });
}

/** Whether the run manager's kept tasks still grew over the second half (the heap limits are then not judged). */
export function taskCapFilling(samples: readonly SoakSample[]): boolean {
  const half = samples.slice(Math.floor(samples.length / 2));
  return half.length > 1 && half[half.length - 1].tasksKept > half[0].tasksKept;
}
