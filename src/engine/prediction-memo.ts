// Predictions already made, so that a finished model goes over the test set once however many numbers are
// read from it: its last epoch's ACC/ASR, the per-class breakdown of the run's final model, the baseline of the
// next phase (a subset of the same images), a defense's "backdoored" row of the model the attack's run measured.
// An entry is keyed by what decides the predictions: the backend, the architecture, every weight and running
// statistic (SHA-1 of their bytes) and the images (SHA-1 of their bytes and shape). Opt-in: callers pass a memo
// only with plain models, whose forward pass is a function of their weights alone (not ANP's modulated
// batch norms or MCR's curve models, which never get one).
import { createHash } from 'node:crypto';
import * as tf from '@tensorflow/tfjs-core';
import type { Model } from './models';
import type { ImageDataset } from './types';
import { predict, subsetOrigin, type PredictionSource } from './evaluate';

/** Entries kept (each a few KB of class indices); the oldest goes first. */
export const PREDICTION_MEMO_SIZE = 64;

export interface PredictionCounts {
  /** Images run through a model. */
  readonly forwarded: number;
  /** Images whose prediction was read from an earlier pass over the same weights and images. */
  readonly reused: number;
}

export class PredictionMemo implements PredictionSource {
  private readonly entries = new Map<string, Int32Array>();
  private readonly imageKeys = new WeakMap<ImageDataset, string>();
  private forwarded = 0;
  private reused = 0;

  /** Predicted class of every image of `ds` (a copy: callers may keep or change it). */
  predict(model: Model, ds: ImageDataset): Int32Array {
    const weights = weightsKey(model);
    const key = `${weights}:${this.imagesKey(ds)}`;
    const known = this.take(key);
    if (known) {
      this.reused += ds.count;
      return known.slice();
    }
    // A progress subset (epochEvalSubset) of a set this model has already gone over: read it off those predictions.
    const origin = subsetOrigin(ds);
    const whole = origin ? this.take(`${weights}:${this.imagesKey(origin.of)}`) : undefined;
    let pred: Int32Array;
    if (origin && whole) {
      pred = Int32Array.from(origin.indices, (i) => whole[i]);
      this.reused += ds.count;
    } else {
      pred = predict(model, ds);
      this.forwarded += ds.count;
    }
    this.entries.set(key, pred);
    if (this.entries.size > PREDICTION_MEMO_SIZE) this.entries.delete(this.entries.keys().next().value as string);
    return pred.slice();
  }

  counts(): PredictionCounts {
    return { forwarded: this.forwarded, reused: this.reused };
  }

  /** The entry, moved to the newest end. */
  private take(key: string): Int32Array | undefined {
    const v = this.entries.get(key);
    if (v) {
      this.entries.delete(key);
      this.entries.set(key, v);
    }
    return v;
  }

  private imagesKey(ds: ImageDataset): string {
    const known = this.imageKeys.get(ds);
    if (known) return known;
    const size = ds.height * ds.width * ds.channels;
    const h = createHash('sha1').update(`${ds.count}x${ds.height}x${ds.width}x${ds.channels}:`);
    h.update(ds.images.subarray(0, ds.count * size));
    const key = h.digest('hex');
    this.imageKeys.set(ds, key);
    return key;
  }
}

/** The backend, the architecture and the bytes of every variable (weights and running statistics), in their order. */
function weightsKey(model: Model): string {
  const h = createHash('sha1').update(`${tf.getBackend()}:${JSON.stringify(model.spec)}`);
  for (const [name, t] of model.params.toStateDict()) {
    h.update(name);
    h.update(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  }
  return h.digest('hex');
}
