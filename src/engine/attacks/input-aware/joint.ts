// The input-aware attack's second stage: the pattern generator G and the classifier trained together
// (train_step of the authors' train.py and of BackdoorBench's attack/inputaware.py), as a TrainingHook the
// training loop calls for every batch (src/engine/train.ts).
//
// In a batch of n images x1 (the loop's, in its seeded order) with a second batch x2 (another seeded
// permutation of the training set, the code's second shuffled loader):
//   num_bd = int(p_attack * n) (BackdoorBench's pratio, our injectPortion; below one image per batch it is
//   1 with probability p_attack * n, its generalize_to_lower_pratio), num_cross = int(p_cross * n);
//   the first num_bd images get their own trigger x + m(x) * (G(x) - x) and the attack label (create_bd),
//   the next num_cross get the trigger of the matching x2 image and keep their labels (create_cross), the
//   rest stay clean; G runs in training mode on each of the two groups (its batch statistics per call), M in
//   evaluation mode; the classifier trains on the whole batch with cross-entropy, plus
//   lambda_div * diversity(x1[:num_bd], x2 images, G(x1[:num_bd]), G(x2 images)) (normalised images and
//   patterns, as the loaders normalise), so that different images get different triggers.
// Both gradients come from the one loss: the classifier's step is the run's SGD, G's is Adam (betas 0.5,
// 0.9) with lr_G, times 0.1 at epochs 200, 300, 400, 500. Where num_bd and num_cross differ the diversity
// term pairs the first min(num_bd, num_cross) of each (the code needs them equal; BackdoorBench makes them so).
// The images stay in float, unrounded, as in the code; no augmentation is applied to x2 (the run's schedule
// decides the classifier's, and our backdoor schedule has none).
import * as tf from '@tensorflow/tfjs-core';
import { toFloatBatch } from '../../data/augment';
import type { EvalSets } from '../../evaluate';
import { normalizeImages, triggerBatch, type InputAwareNets } from '../../models/input-aware-generator';
import { Adam } from '../../optim';
import { Rng } from '../../rng';
import type { HookedBatch } from '../../train';
import { attackLabel, backdoorTestSet, type TargetType, type Trigger } from '../../triggers';
import { stampInputAware } from '../../triggers/input-aware';
import type { ImageDataset } from '../../types';
import type { AttackTraining } from '../types';
import { INPUT_AWARE, diversityLoss, multiStepLr } from './mask';

export interface JointOptions {
  readonly pAttack: number;
  readonly pCross: number;
  readonly lambdaDiv: number;
  readonly lrG: number;
  readonly targetType: TargetType;
  readonly targetLabel: number;
  readonly seed: number;
  /**
   * The training images whose triggers the cross images get (the second loader's batch); default: a seeded
   * permutation per epoch. `first` is where the cross images start in that batch.
   */
  readonly secondImages?: (at: { readonly epoch: number; readonly step: number }, first: number, count: number) => ArrayLike<number>;
  /** After each epoch, with the networks as trained so far (to save them). */
  readonly onEpochEnd?: (nets: InputAwareNets, epoch: number) => void | Promise<void>;
}

/** How many of a batch of n are poisoned for a share p: int(p n), or 1 with probability p n below one. */
export function shareOf(p: number, n: number, rng: Rng): number {
  return p * n >= 1 ? Math.floor(p * n) : rng.next() < p * n ? 1 : 0;
}

/** The diversity loss of the input-aware attack (G's); tensors in [0, 1], normalised here as the loaders do. */
export function patternDiversity(nets: InputAwareNets, x1: tf.Tensor4D, x2: tf.Tensor4D, p1: tf.Tensor4D, p2: tf.Tensor4D): tf.Scalar {
  return tf.tidy(() => {
    const n = (t: tf.Tensor4D): tf.Tensor4D => normalizeImages(t, nets.config);
    return diversityLoss(n(x1), n(x2), n(p1), n(p2));
  });
}

/** The trigger of the networks as they are now (for the backdoor test set between epochs). */
export function liveTrigger(nets: InputAwareNets, data: { height: number; width: number; channels: number }): Trigger {
  const shape = { height: data.height, width: data.width, channels: data.channels };
  const stampMany = (images: Uint8Array, count: number): void => stampInputAware(nets, images, count, shape);
  return { spec: { name: 'inputAware', maskFile: '' }, shape, stamp: (img) => stampMany(img, 1), stampMany };
}

/** The hook that trains G with the classifier; it owns `nets` and its Adam state (dispose them with it). */
export function jointTraining(nets: InputAwareNets, data: ImageDataset, opts: JointOptions): AttackTraining {
  const gVars = nets.pattern.params.trainable().map(([, v]) => v);
  const adam = new Adam(gVars, INPUT_AWARE.adam);
  const size = data.height * data.width * data.channels;
  const shape: [number, number, number] = [data.height, data.width, data.channels];
  const counts = new Rng(opts.seed);
  let epochOrder = -1;
  let order: Int32Array = new Int32Array(0);
  let buf = new Float32Array(0);
  const trigger = liveTrigger(nets, data);
  return {
    variables: gVars,
    batch(x: tf.Tensor4D, labels: Int32Array, at): HookedBatch {
      const n = labels.length;
      const numBd = shareOf(opts.pAttack, n, counts);
      const numCross = Math.min(shareOf(opts.pCross, n, counts), n - numBd);
      // x2: the second loader's batch at the same step; the cross part takes its images numBd..numBd+numCross.
      const second = (): ArrayLike<number> => {
        if (at.epoch !== epochOrder) {
          epochOrder = at.epoch;
          order = new Rng(mix(opts.seed, at.epoch)).permutation(data.count);
        }
        const from = at.step * n + numBd;
        return Array.from({ length: numCross }, (_, k) => order[(from + k) % data.count]);
      };
      const idx2 = opts.secondImages ? opts.secondImages(at, numBd, numCross) : second();
      if (buf.length < numCross * size) buf = new Float32Array(numCross * size);
      const x2 = tf.tensor4d(toFloatBatch(data, idx2, buf.subarray(0, numCross * size)), [numCross, ...shape]);
      const out = labels.slice();
      for (let i = 0; i < numBd; i++) out[i] = attackLabel(labels[i], opts.targetType, opts.targetLabel, data.numClasses);
      const parts: tf.Tensor4D[] = [];
      let loss: tf.Scalar | undefined;
      const x1Bd = tf.slice(x, [0, 0, 0, 0], [numBd, -1, -1, -1]);
      const x1Cross = tf.slice(x, [numBd, 0, 0, 0], [numCross, -1, -1, -1]);
      const bd = numBd > 0 ? triggerBatch(nets, x1Bd, x1Bd, true) : undefined;
      const cross = numCross > 0 ? triggerBatch(nets, x1Cross, x2, true) : undefined;
      if (bd) parts.push(bd.images);
      if (cross) parts.push(cross.images);
      parts.push(tf.slice(x, [numBd + numCross, 0, 0, 0], [n - numBd - numCross, -1, -1, -1]));
      const k = Math.min(numBd, numCross);
      if (bd && cross && k > 0) {
        const head = (t: tf.Tensor4D): tf.Tensor4D => tf.slice(t, [0, 0, 0, 0], [k, -1, -1, -1]);
        loss = tf.mul(patternDiversity(nets, head(x1Bd), head(x2), head(bd.patterns), head(cross.patterns)), opts.lambdaDiv) as tf.Scalar;
      }
      return { x: tf.concat(parts, 0), labels: out, ...(loss ? { loss } : {}) };
    },
    step(grads: tf.NamedTensorMap, epoch: number): void {
      adam.step(grads, multiStepLr(opts.lrG, INPUT_AWARE.patternMilestones, INPUT_AWARE.gamma, epoch));
    },
    evalSets(sets: EvalSets): EvalSets {
      const backdoor = backdoorTestSet(sets.clean, { trigger, targetType: opts.targetType, targetLabel: opts.targetLabel });
      return { ...sets, backdoor };
    },
    onEpochEnd: (epoch) => opts.onEpochEnd?.(nets, epoch),
    dispose(): void {
      adam.dispose();
      nets.dispose();
    },
  };
}

function mix(seed: number, epoch: number): number {
  return (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(epoch + 1, 0x85ebca6b) ^ 0x27d4eb2f) >>> 0;
}
