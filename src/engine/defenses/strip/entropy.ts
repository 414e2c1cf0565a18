// STRIP's entropies (the method, sources and defaults: see index.ts): the superimposed images x + alpha * o
// of each input with N clean images, scored in batches through the model, and the threshold from the
// defender's clean data.
import * as tf from '@tensorflow/tfjs-core';
import { EVAL_BATCH } from '../../evaluate';
import type { Model } from '../../models';
import { Rng } from '../../rng';
import { RunCancelledError } from '../../train';
import { InputError, type ImageDataset } from '../../types';

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
export const streamSeed = (seed: number, stream: number): number =>
  (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(stream, 0x85ebca6b) ^ 0x5354) >>> 0;

/** Up to `count` images of `ds`, a seeded random subset when it holds more. */
export function subsetOf(ds: ImageDataset, count: number, seed: number): ImageDataset {
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
