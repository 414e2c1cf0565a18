// ACC and ASR as the paper measures them: ACC = top-1 on the clean test set; ASR = share of triggered
// non-target-class test images classified as the attack label (the backdoor test set holds exactly those).
import * as tf from '@tensorflow/tfjs-core';
import type { Model } from './models';
import type { ImageDataset } from './types';
import { toFloatBatch } from './data/augment';

export const EVAL_BATCH = 256;

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

/** Percentage of images whose prediction equals their label. */
export function accuracy(model: Model, ds: ImageDataset): number {
  if (ds.count === 0) return NaN;
  const pred = predict(model, ds);
  let correct = 0;
  for (let i = 0; i < ds.count; i++) if (pred[i] === ds.labels[i]) correct++;
  return (100 * correct) / ds.count;
}

export interface EvalSets {
  readonly clean: ImageDataset;
  /** Triggered non-target images labelled with the attack label (see triggers.backdoorTestSet). */
  readonly backdoor?: ImageDataset;
}

export interface EvalResult {
  /** Clean accuracy, percent. */
  readonly acc: number;
  /** Attack success rate, percent; NaN without a backdoor set. */
  readonly asr: number;
}

export function evaluate(model: Model, sets: EvalSets): EvalResult {
  return { acc: accuracy(model, sets.clean), asr: sets.backdoor ? accuracy(model, sets.backdoor) : NaN };
}
