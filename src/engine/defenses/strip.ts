// STRIP (Gao, Xu, Wang, Chen, Ranasinghe, Nepal: "STRIP: A Defence Against Trojan Attacks on Deep Neural
// Networks", ACSAC 2019; the authors' garrisongys/STRIP), detection only, as BackdoorBench's STRIP class
// does it (SCLBD/BackdoorBench detection_infer/strip.py and detection_pretrain/strip.py, from
// Unispac/Fight-Poison-With-Poison):
//  - Superimposing: an input x and a clean image o, both as the model reads them (floats in [0, 1]; NAD's
//    WRN has no normalisation layer), give x + alpha * o, not clipped (BackdoorBench's `_input1 + alpha *
//    _input2`, on its normalised tensors). The paper's notebook adds x + o (cv2.addWeighted(x, 1, o, 1, 0)
//    on float32 in [0, 1], not clipped either), i.e. alpha 1.
//  - Overlays: N distinct images of the defender's clean data per input, drawn from a seeded Rng for
//    each input (BackdoorBench: one random.shuffle per batch of 128 inputs, its first N; the notebook: N
//    with replacement per input). A clean image scored for the threshold may be drawn as its own overlay,
//    as in BackdoorBench.
//  - Entropy: softmax of the logits in evaluation mode, p + 1e-8, H = -sum p ln p (BackdoorBench; the
//    notebook uses log2 and no 1e-8), computed in float64 from the logits; the score is H's mean over the
//    N overlays. Low entropy = triggered (the trigger keeps winning whatever is superimposed).
//  - Threshold: the entropies of `thresholdCount` of the defender's clean images, sorted, at index
//    floor(frr * n); an input is flagged when its entropy is below it (BackdoorBench's threshold_low; the
//    notebook fits a normal distribution and takes its 1% quantile).
// Defaults: the and BackdoorBench's STRIP class defaults N = 64, alpha = 0.5, defense_fpr = 0.05
// (its runner passes N = 100, alpha = 1, defense_fpr = 0.1; the paper N = 100, alpha 1, FRR 1%).
// The test sets are only scored for the report: FRR = clean test images flagged, FAR = triggered
// non-target test images not flagged, TPR = 1 - FAR, and the ROC AUC of low entropy as the score.
import * as tf from '@tensorflow/tfjs-core';
import { EVAL_BATCH, evaluate } from '../evaluate';
import type { Model } from '../models';
import { Rng } from '../rng';
import { FINETUNE_TRAINING } from '../schedules';
import { RunCancelledError } from '../train';
import { InputError, type ImageDataset } from '../types';
import type { ChartFigure, ImagesFigure } from '../../shared/run-events';
import type { Defense, DefenseInput } from './types';

/** BackdoorBench's STRIP class defaults (the values). */
export const STRIP_DEFAULTS = { overlays: 64, alpha: 0.5, frr: 0.05, thresholdCount: 1000, detectCount: 1000 } as const;

export interface StripOptions {
  /** N: clean images superimposed on each input. */
  readonly overlays: number;
  readonly alpha: number;
  /** Seeds the overlay draws (ignored with `indices`). */
  readonly seed?: number;
  /** Fixed overlay indices into the overlay set, `overlays` per image (tests). */
  readonly indices?: Int32Array;
  /** Superimposed images per forward pass (default EVAL_BATCH). */
  readonly batchSize?: number;
  readonly signal?: AbortSignal;
  /** After each forward pass: superimposed images done and in all. */
  readonly onBatch?: (done: number, total: number) => void;
}

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** N distinct indices in 0..poolSize-1 per image (partial Fisher-Yates on a reused pool). */
export function drawOverlays(count: number, poolSize: number, n: number, rng: Rng): Int32Array {
  const pool = Int32Array.from({ length: poolSize }, (_, i) => i);
  const out = new Int32Array(count * n);
  for (let i = 0; i < count; i++) {
    for (let k = 0; k < n; k++) {
      const j = k + rng.int(poolSize - k);
      const t = pool[k];
      pool[k] = pool[j];
      pool[j] = t;
      out[i * n + k] = pool[k];
    }
  }
  return out;
}

/** BackdoorBench's entropy of one row of logits: p = softmax + 1e-8, -sum p ln p, in float64. */
export function entropyOfLogits(logits: ArrayLike<number>, from: number, classes: number): number {
  let max = -Infinity;
  for (let c = 0; c < classes; c++) max = Math.max(max, logits[from + c]);
  let sum = 0;
  for (let c = 0; c < classes; c++) sum += Math.exp(logits[from + c] - max);
  let h = 0;
  for (let c = 0; c < classes; c++) {
    const p = Math.exp(logits[from + c] - max) / sum + 1e-8;
    h -= p * Math.log(p);
  }
  return h;
}

/** Mean entropy of each image of `images` over its N superimposed overlays (float64). */
export async function stripEntropies(
  model: Model,
  images: ImageDataset,
  overlays: ImageDataset,
  opts: StripOptions,
): Promise<Float64Array> {
  const n = opts.overlays;
  const { height: h, width: w, channels: c } = images;
  if (overlays.height !== h || overlays.width !== w || overlays.channels !== c) {
    throw new InputError(
      `STRIP: the clean images are ${overlays.height}x${overlays.width}x${overlays.channels}, the inputs ${h}x${w}x${c}`,
    );
  }
  if (!Number.isInteger(n) || n < 1) throw new InputError(`STRIP: the number of overlays must be a whole number >= 1, got ${n}`);
  if (overlays.count < n) {
    throw new InputError(`STRIP needs at least ${n} clean images to superimpose (${n} per input); the clean data has ${overlays.count}`);
  }
  const indices = opts.indices ?? drawOverlays(images.count, overlays.count, n, new Rng(opts.seed ?? 0));
  if (indices.length !== images.count * n) throw new RangeError(`expected ${images.count * n} overlay indices, got ${indices.length}`);
  const size = h * w * c;
  const total = images.count * n;
  const batch = opts.batchSize ?? EVAL_BATCH;
  const buf = new Float32Array(batch * size);
  const sums = new Float64Array(images.count);
  const a = opts.alpha;
  for (let start = 0; start < total; start += batch) {
    if (opts.signal?.aborted) throw new RunCancelledError();
    const m = Math.min(batch, total - start);
    for (let q = 0; q < m; q++) {
      const pair = start + q;
      const x = images.images.subarray(Math.floor(pair / n) * size);
      const o = overlays.images.subarray(indices[pair] * size);
      const dst = q * size;
      for (let j = 0; j < size; j++) buf[dst + j] = (x[j] + a * o[j]) / 255;
    }
    const logits = tf.tidy(() => model.forward(tf.tensor4d(buf.subarray(0, m * size), [m, h, w, c]), false).logits);
    const data = logits.dataSync();
    const classes = logits.shape[1] as number;
    logits.dispose();
    for (let q = 0; q < m; q++) sums[Math.floor((start + q) / n)] += entropyOfLogits(data, q * classes, classes);
    opts.onBatch?.(start + m, total);
    await yieldToEventLoop();
  }
  return sums.map((s) => s / n);
}

/** BackdoorBench's threshold_low: the clean entropies sorted ascending, at index floor(frr * n). */
export function thresholdAt(cleanEntropies: ArrayLike<number>, frr: number): number {
  const sorted = Float64Array.from(cleanEntropies).sort();
  if (sorted.length === 0) throw new InputError('STRIP: no clean entropies to set the threshold from');
  return sorted[Math.min(sorted.length - 1, Math.floor(frr * sorted.length))];
}

/** Independent seeds for the run's draws (subsets and overlays), from the run's seed. */
const streamSeed = (seed: number, stream: number): number =>
  (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(stream, 0x85ebca6b) ^ 0x5354) >>> 0;

/** Up to `count` images of `ds`, a seeded random subset when it holds more. */
function subsetOf(ds: ImageDataset, count: number, seed: number): ImageDataset {
  if (ds.count <= count) return ds;
  const idx = new Rng(seed).permutation(ds.count).subarray(0, count);
  const size = ds.height * ds.width * ds.channels;
  const images = new Uint8Array(count * size);
  idx.forEach((i, k) => images.set(ds.images.subarray(i * size, (i + 1) * size), k * size));
  return { ...ds, images, labels: Int32Array.from(idx, (i) => ds.labels[i]), count };
}

export interface ThresholdOptions extends Omit<StripOptions, 'indices' | 'seed'> {
  readonly frr: number;
  /** Clean images scored to set the threshold (a seeded subset of `clean`). */
  readonly thresholdCount: number;
  readonly seed: number;
}

/** The threshold from the defender's clean data, as `strip.run` sets it for the same seed. */
export async function stripThreshold(
  model: Model,
  clean: ImageDataset,
  opts: ThresholdOptions,
): Promise<{ threshold: number; entropies: Float64Array; count: number }> {
  const scored = subsetOf(clean, opts.thresholdCount, streamSeed(opts.seed, 1));
  const entropies = await stripEntropies(model, scored, clean, { ...opts, seed: streamSeed(opts.seed, 2) });
  return { threshold: thresholdAt(entropies, opts.frr), entropies, count: scored.count };
}

export interface StripVerdict {
  readonly entropy: number;
  readonly threshold: number;
  /** entropy < threshold. */
  readonly triggered: boolean;
}

/** Is one image (HWC uint8 of the clean data's shape, or a dataset's first image) triggered? */
export async function stripImage(
  model: Model,
  image: Uint8Array | ImageDataset,
  clean: ImageDataset,
  opts: ThresholdOptions & { readonly threshold?: number },
): Promise<StripVerdict> {
  const one: ImageDataset =
    image instanceof Uint8Array
      ? { ...clean, images: image, labels: new Int32Array(1), count: 1 }
      : { ...image, count: Math.min(1, image.count) };
  if (one.count !== 1 || one.images.length < one.height * one.width * one.channels) throw new InputError('STRIP: no image to score');
  const threshold = opts.threshold ?? (await stripThreshold(model, clean, opts)).threshold;
  const [entropy] = await stripEntropies(model, one, clean, { ...opts, seed: streamSeed(opts.seed, 7) });
  return { entropy, threshold, triggered: entropy < threshold };
}

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

const pct = (v: number): string => (Number.isFinite(v) ? `${v.toFixed(2)}%` : 'n/a');

/** The given images with their verdicts: flagged ones outlined. */
function inspectedFigure(
  inspect: NonNullable<DefenseInput['inspect']>,
  verdicts: ReadonlyArray<{ readonly file: string; readonly entropy: number; readonly triggered: boolean }>,
  threshold: number,
): ImagesFigure {
  const { images } = inspect;
  const size = images.height * images.width * images.channels;
  return {
    id: 'strip-inspected',
    title: `The given images: entropy over the overlays against the threshold ${threshold.toPrecision(3)} (outlined: likely triggered)`,
    images: verdicts.map((v, i) => ({
      caption: `${v.file}: ${v.triggered ? 'likely triggered' : 'looks clean'} (H ${v.entropy.toPrecision(3)})`,
      height: images.height,
      width: images.width,
      channels: images.channels,
      pixels: Buffer.from(images.images.buffer, images.images.byteOffset + i * size, size).toString('base64'),
      marked: v.triggered,
    })),
  };
}

export const strip: Defense = {
  name: 'strip',
  title: 'STRIP',
  description:
    'Flag inputs whose prediction stays confident (low entropy) when clean images are superimposed on them; reports FRR, FAR and ROC AUC on the test sets.',
  needs: 'clean data (at least as many images as overlays)',
  citation:
    'Gao, Xu, Wang, Chen, Ranasinghe, Nepal: STRIP: A Defence Against Trojan Attacks on Deep Neural Networks, ACSAC 2019; defaults of BackdoorBench detection_infer/strip.py (Wu et al., NeurIPS 2022 Datasets and Benchmarks)',
  modes: ['detect'],
  inspectsImages: true,
  params: [
    {
      key: 'overlays',
      type: 'number',
      integer: true,
      min: 1,
      default: STRIP_DEFAULTS.overlays,
      label: 'Overlays per image',
      description: 'clean images superimposed on each input, N (BackdoorBench: 64; the paper: 100)',
    },
    {
      key: 'alpha',
      type: 'number',
      min: 0,
      default: STRIP_DEFAULTS.alpha,
      label: 'Overlay weight',
      description: 'the superimposed image is input + alpha * clean image, not clipped (BackdoorBench: 0.5; the paper: 1)',
    },
    {
      key: 'frr',
      type: 'number',
      min: 0,
      max: 0.5,
      default: STRIP_DEFAULTS.frr,
      label: 'False rejection rate',
      description: "share of the defender's clean images below the entropy threshold (BackdoorBench defense_fpr: 0.05; the paper: 0.01)",
    },
    {
      key: 'thresholdCount',
      type: 'number',
      integer: true,
      min: 1,
      default: STRIP_DEFAULTS.thresholdCount,
      label: 'Clean images for the threshold',
      description: "how many of the defender's clean images are scored to set the threshold (a seeded subset; all when fewer)",
    },
    {
      key: 'detectCount',
      type: 'number',
      integer: true,
      min: 0,
      default: STRIP_DEFAULTS.detectCount,
      label: 'Test images scored',
      description:
        'how many clean and how many triggered test images are scored for FRR, FAR and AUC (seeded subsets; all when fewer; 0: none, to check given images only)',
    },
  ],
  training: FINETUNE_TRAINING,
  phases: () => [],
  async run(input) {
    const { params, test, emit, signal, clean } = input;
    const n = params['overlays'] as number;
    const alpha = params['alpha'] as number;
    const frr = params['frr'] as number;
    const detectCount = params['detectCount'] as number;
    if (clean.count < n) {
      throw new InputError(`STRIP needs at least ${n} clean images to superimpose (${n} per input); the clean data has ${clean.count}`);
    }
    const suspect = input.suspect();
    const rows = [{ model: 'backdoored', ...evaluate(suspect, test) }];
    emit({ type: 'table', rows: [...rows] });

    const thresholdCount = Math.min(clean.count, params['thresholdCount'] as number);
    const cleanTest = subsetOf(test.clean, detectCount, streamSeed(input.seed, 3));
    const triggeredTest = test.backdoor ? subsetOf(test.backdoor, detectCount, streamSeed(input.seed, 4)) : undefined;
    const inspect = input.inspect;
    const images = thresholdCount + cleanTest.count + (triggeredTest?.count ?? 0) + (inspect?.images.count ?? 0);
    const total = images * n;
    const steps = Math.ceil(total / EVAL_BATCH);
    emit({ type: 'phase', phase: 'strip', label: `STRIP: ${images} images x ${n} overlays`, epochs: 1 });
    const t0 = performance.now();
    let before = 0;
    // One progress bar over the three sets; a step event's loss has no meaning here (NaN).
    const onBatch = (done: number): void =>
      emit({ type: 'step', phase: 'strip', epoch: 1, step: Math.ceil((before + done) / EVAL_BATCH), steps });
    const opts = { overlays: n, alpha, signal, onBatch };
    const scored = async (what: string, count: number, score: () => Promise<Float64Array>): Promise<Float64Array> => {
      const t = performance.now();
      const e = await score();
      before += count * n;
      emit({ type: 'log', message: `STRIP: entropies of ${count} ${what} in ${((performance.now() - t) / 1000).toFixed(1)} s` });
      return e;
    };
    let threshold = NaN;
    const defender = await scored("of the defender's clean images", thresholdCount, async () => {
      const r = await stripThreshold(suspect, clean, { ...opts, frr, thresholdCount, seed: input.seed });
      threshold = r.threshold;
      return r.entropies;
    });
    emit({ type: 'log', message: `STRIP: entropy threshold ${threshold.toPrecision(4)} (FRR ${frr} on ${thresholdCount} clean images)` });
    const none = new Float64Array(0);
    // The images the user asked about first (stream 7, as stripImage): their verdicts come before the test sets' statistics.
    const inspected = inspect
      ? await scored('given images', inspect.images.count, () =>
          stripEntropies(suspect, inspect.images, clean, { ...opts, seed: streamSeed(input.seed, 7) }),
        )
      : none;
    const cleanE =
      cleanTest.count > 0
        ? await scored('clean test images', cleanTest.count, () =>
            stripEntropies(suspect, cleanTest, clean, { ...opts, seed: streamSeed(input.seed, 5) }),
          )
        : none;
    const trigE =
      triggeredTest && triggeredTest.count > 0
        ? await scored('triggered test images', triggeredTest.count, () =>
            stripEntropies(suspect, triggeredTest, clean, { ...opts, seed: streamSeed(input.seed, 6) }),
          )
        : none;
    const seconds = (performance.now() - t0) / 1000;

    // Flagged: entropy below the threshold. FRR, FAR and TPR in percent, as ACC and ASR.
    const flaggedClean = cleanE.filter((v) => v < threshold).length;
    const missed = trigE.filter((v) => v >= threshold).length;
    const frrTest = cleanE.length ? (100 * flaggedClean) / cleanE.length : NaN;
    const far = trigE.length ? (100 * missed) / trigE.length : NaN;
    const tpr = 100 - far;
    const auc = rocAuc(cleanE, trigE);
    const verdicts = inspect
      ? inspect.names.map((name, i) => ({ file: name, entropy: inspected[i], triggered: inspected[i] < threshold }))
      : [];
    if (inspect) emit({ type: 'images', ...inspectedFigure(inspect, verdicts, threshold) });
    const verdictFacts = verdicts.slice(0, 10).map((v) => ({
      label: v.file,
      value: `${v.triggered ? 'likely triggered' : 'looks clean'} (entropy ${v.entropy.toPrecision(3)} ${v.triggered ? '<' : '>='} ${threshold.toPrecision(3)})`,
    }));
    const tested = cleanE.length + trigE.length > 0;
    emit({
      type: 'facts',
      title: 'STRIP detection',
      facts: [
        ...verdictFacts,
        {
          label: 'Threshold',
          value: `entropy ${threshold.toPrecision(4)} (${(100 * frr).toFixed(1)}% of ${thresholdCount} clean images below)`,
        },
        ...(tested
          ? [
              { label: 'FRR', value: `${pct(frrTest)} (${flaggedClean} of ${cleanE.length} clean test images flagged)` },
              { label: 'FAR', value: `${pct(far)} (${missed} of ${trigE.length} triggered test images not flagged)` },
              { label: 'TPR', value: pct(tpr) },
              { label: 'ROC AUC', value: Number.isFinite(auc) ? auc.toFixed(4) : 'n/a' },
            ]
          : []),
      ],
    });
    if (tested)
      emit({
        type: 'chart',
        id: 'strip-entropy',
        title: `Entropy over ${n} overlays: clean vs triggered test images`,
        xLabel: 'mean entropy (nats)',
        yLabel: '% of images',
        chart: entropyHistograms(
          [
            { name: 'clean', values: cleanE },
            { name: 'triggered', values: trigE },
          ],
          threshold,
        ),
        // The threshold is a bin edge of the histograms: a vertical line there.
        threshold: { value: thresholdPosition([cleanE, trigE], threshold), label: `threshold ${threshold.toPrecision(3)}`, axis: 'x' },
      });
    if (trigE.length > 0 && cleanE.length > 0) {
      emit({
        type: 'chart',
        id: 'strip-roc',
        title: `ROC of low entropy as the trigger score (AUC ${auc.toFixed(3)})`,
        xLabel: 'clean images flagged (FPR %)',
        yLabel: 'triggered images flagged (TPR %)',
        chart: { kind: 'xy', series: [{ name: 'ROC', points: rocCurve(cleanE, trigE) }] },
      });
    }
    emit({
      type: 'log',
      message: `STRIP: FRR ${pct(frrTest)}, FAR ${pct(far)}, ROC AUC ${auc.toFixed(4)} (${seconds.toFixed(1)} s, ${(total / seconds).toFixed(0)} images/s)`,
    });
    return {
      rows,
      report: {
        threshold,
        frr: frrTest,
        far,
        tpr,
        auc,
        n,
        alpha,
        frrTarget: frr,
        counts: { thresholdImages: thresholdCount, overlayPool: clean.count, clean: cleanE.length, triggered: trigE.length },
        entropy: {
          defender: entropyStats(defender),
          clean: entropyStats(cleanE),
          ...(trigE.length ? { triggered: entropyStats(trigE) } : {}),
        },
        ...(inspect ? { inspected: verdicts } : {}),
        seconds,
      },
      attention: [['backdoored', suspect]],
    };
  },
};
