// ACC and ASR as the paper measures them: ACC = top-1 on the clean test set; ASR = share of triggered
// non-target-class test images classified as the attack label (the backdoor test set holds exactly those).
import * as tf from '@tensorflow/tfjs-core';
import type { Model } from './models';
import type { ImageDataset } from './types';
import { toFloatBatch } from './data/augment';
import { Rng } from './rng';
import type { EpochEvent, Phase } from '../shared/run-events';

export const EVAL_BATCH = 256;

/** Predictions already made, to read instead of running the model again (PredictionMemo, prediction-memo.ts). */
export interface PredictionSource {
  predict(model: Model, ds: ImageDataset): Int32Array;
}

/** Predicted class of every image. */
export function predict(model: Model, ds: ImageDataset, batchSize = EVAL_BATCH): Int32Array {
  const out = new Int32Array(ds.count);
  const buf = new Float32Array(batchSize * ds.height * ds.width * ds.channels);
  for (let start = 0; start < ds.count; start += batchSize) {
    const n = Math.min(batchSize, ds.count - start);
    const idx = Int32Array.from({ length: n }, (_, i) => start + i);
    const x = toFloatBatch(ds, idx, buf.subarray(0, n * ds.height * ds.width * ds.channels));
    const pred = tf.tidy(() => tf.argMax(model.forward(tf.tensor4d(x, [n, ds.height, ds.width, ds.channels]), false).logits, 1));
    out.set(pred.dataSync() as Int32Array, start);
    pred.dispose();
  }
  return out;
}

/** Predictions of `model` on `ds`, read from `memo` when it has them (see PredictionMemo). */
function predictWith(model: Model, ds: ImageDataset, memo?: PredictionSource): Int32Array {
  return memo ? memo.predict(model, ds) : predict(model, ds);
}

/** Percentage of images whose prediction equals their label. */
export function accuracy(model: Model, ds: ImageDataset, memo?: PredictionSource): number {
  return ds.count === 0 ? NaN : agreement(predictWith(model, ds, memo), ds.labels.subarray(0, ds.count));
}

export interface EvalSets {
  readonly clean: ImageDataset;
  /** Triggered non-target images labelled with the attack label (see triggers.backdoorTestSet), with their true labels. */
  readonly backdoor?: ImageDataset & { readonly originalLabels?: Int32Array };
}

export interface EvalResult {
  /** Clean accuracy, percent. */
  readonly acc: number;
  /** Attack success rate, percent; NaN without a backdoor set. */
  readonly asr: number;
  /**
   * Robust accuracy (BackdoorBench's RA), percent: the share of the same triggered images classified as
   * their true label; absent when the backdoor set does not carry its true labels.
   */
  readonly ra?: number;
}

/** Share (percent) of `pred` equal to `labels`; NaN for none. */
function agreement(pred: Int32Array, labels: Int32Array): number {
  if (pred.length === 0) return NaN;
  let same = 0;
  for (let i = 0; i < pred.length; i++) if (pred[i] === labels[i]) same++;
  return (100 * same) / pred.length;
}

/** Each progress subset's whole set and the indices it took (PredictionMemo reads its predictions off the whole set's). */
const subsets = new WeakMap<ImageDataset, { readonly of: ImageDataset; readonly indices: Int32Array }>();

/** The set `ds` was taken from by epochEvalSubset, and which of its images, in order; undefined for any other set. */
export function subsetOrigin(ds: ImageDataset): { readonly of: ImageDataset; readonly indices: Int32Array } | undefined {
  return subsets.get(ds);
}

/** Seed of the per-epoch subset: a constant, so that every run and seed is followed on the same test images. */
const EPOCH_SUBSET_SEED = 0;

/**
 * The test images a training loop follows after each epoch (TrainSettings.epochEvalImages): the first
 * `count` of a seeded permutation of the clean set and, separately, of the triggered set (their true labels
 * kept aligned for RA); a set no larger than `count` is kept whole. Final results are never taken on it.
 */
export function epochEvalSubset(sets: EvalSets, count: number): EvalSets {
  const pick = (n: number): Int32Array | undefined =>
    n <= count ? undefined : Int32Array.from(new Rng(EPOCH_SUBSET_SEED).permutation(n).subarray(0, count)).sort();
  // Only the fields evaluate reads: per-image side arrays (a backdoor set's sourceIndices) would not line up.
  const take = (
    { height, width, channels, numClasses, classNames, source, images, labels }: ImageDataset,
    idx: Int32Array,
  ): ImageDataset => {
    const size = height * width * channels;
    const picked = new Uint8Array(idx.length * size);
    idx.forEach((i, k) => picked.set(images.subarray(i * size, (i + 1) * size), k * size));
    const common = { height, width, channels, numClasses, source, ...(classNames ? { classNames } : {}) };
    return { ...common, images: picked, labels: Int32Array.from(idx, (i) => labels[i]), count: idx.length };
  };
  const taken = <T extends ImageDataset>(from: ImageDataset, idx: Int32Array, ds: T): T => {
    subsets.set(ds, { of: from, indices: idx });
    return ds;
  };
  const cleanIdx = pick(sets.clean.count);
  const clean = cleanIdx ? taken(sets.clean, cleanIdx, take(sets.clean, cleanIdx)) : sets.clean;
  const bd = sets.backdoor;
  const bdIdx = bd ? pick(bd.count) : undefined;
  if (!bd || !bdIdx) return { clean, ...(bd ? { backdoor: bd } : {}) };
  const truth = bd.originalLabels;
  const backdoor = taken(bd, bdIdx, { ...take(bd, bdIdx), ...(truth ? { originalLabels: Int32Array.from(bdIdx, (i) => truth[i]) } : {}) });
  return { clean, backdoor };
}

/**
 * ACC, ASR and RA of `model`. With a memo (plain models only, see PredictionMemo), images this model's very
 * weights have already been run over are read from it, and what is run is kept for the next reader.
 */
export function evaluate(model: Model, sets: EvalSets, memo?: PredictionSource): EvalResult {
  const acc = accuracy(model, sets.clean, memo);
  const bd = sets.backdoor;
  if (!bd) return { acc, asr: NaN };
  // One pass over the triggered images gives both ASR and RA.
  const pred = predictWith(model, bd, memo);
  const asr = agreement(pred, bd.labels.subarray(0, bd.count));
  return bd.originalLabels ? { acc, asr, ra: agreement(pred, bd.originalLabels.subarray(0, bd.count)) } : { acc, asr };
}

/**
 * BackdoorBench's defense effectiveness rating, in [0, 1]: (max(0, ASR drop) - max(0, ACC drop) + 1) / 2,
 * with the drops from the model as given (`before`) to the defended one, as fractions.
 */
export function defenseEffectiveness(before: { acc: number; asr: number }, after: { acc: number; asr: number }): number {
  return (Math.max(0, (before.asr - after.asr) / 100) - Math.max(0, (before.acc - after.acc) / 100) + 1) / 2;
}

/** Per-class results of a model: confusion matrices on the clean and the triggered test images. */
export interface ClassBreakdown {
  readonly numClasses: number;
  /** clean[true][predicted]: counts on the clean test set. */
  readonly clean: number[][];
  /**
   * triggered[true][predicted]: counts on the triggered non-target images, by their true class; absent when
   * the backdoor set does not carry its true labels.
   */
  readonly triggered?: number[][];
  /** attackHits[true]: triggered images of that true class classified as their attack label. */
  readonly attackHits?: number[];
}

function confusion(pred: Int32Array, labels: Int32Array, numClasses: number): number[][] {
  const m = Array.from({ length: numClasses }, () => new Array<number>(numClasses).fill(0));
  for (let i = 0; i < pred.length; i++) {
    const t = labels[i];
    const p = pred[i];
    if (t >= 0 && t < numClasses && p >= 0 && p < numClasses) m[t][p]++;
  }
  return m;
}

/** Confusion matrices of `model` on the clean and triggered test sets (one prediction pass each, none with a memo that has them). */
export function classBreakdown(model: Model, sets: EvalSets, memo?: PredictionSource): ClassBreakdown {
  const numClasses = model.spec.numClasses;
  const clean = confusion(predictWith(model, sets.clean, memo), sets.clean.labels.subarray(0, sets.clean.count), numClasses);
  const bd = sets.backdoor;
  if (!bd?.originalLabels) return { numClasses, clean };
  const pred = predictWith(model, bd, memo);
  const truth = bd.originalLabels.subarray(0, bd.count);
  const attackHits = new Array<number>(numClasses).fill(0);
  for (let i = 0; i < bd.count; i++) if (pred[i] === bd.labels[i] && truth[i] >= 0 && truth[i] < numClasses) attackHits[truth[i]]++;
  return { numClasses, clean, triggered: confusion(pred, truth, numClasses), attackHits };
}

/** Where an epoch (or a defense's round) ended: its mean loss, learning rate, time and image count. */
export interface EpochEnd {
  readonly epoch: number;
  readonly epochs: number;
  readonly loss: number;
  readonly lr: number;
  readonly seconds: number;
  /** Images the epoch went through (its pace is images / seconds). */
  readonly images: number;
}

/** The epoch event of `phase`: the epoch's end and its evaluation (RA only when it was measured). */
export function epochEvent(phase: Phase, end: EpochEnd, r: EvalResult): EpochEvent {
  return {
    type: 'epoch',
    phase,
    epoch: end.epoch,
    epochs: end.epochs,
    loss: end.loss,
    acc: r.acc,
    asr: r.asr,
    ...(r.ra !== undefined ? { ra: r.ra } : {}),
    lr: end.lr,
    seconds: end.seconds,
    imagesPerSecond: end.images / end.seconds,
  };
}

/** Let the event loop run (cancellation, progress messages) between steps of a long loop. */
export const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
