// The input-aware attack's first stage: the mask generator M trained alone (train_mask_step of the authors'
// train.py and of BackdoorBench's attack/inputaware.py), and the diversity loss both stages use.
//
// Each step takes two batches of clean images x1, x2 (two shuffled loaders over the training set, here two
// seeded permutations per epoch), normalised as the loaders do, and minimises
//   lambda_norm * mean(relu(m1 - mask_density)) + lambda_div * diversity(x1, x2, m1, m2)
// with m = threshold(M(x)) and diversity = lambda_div * mean_i(|x1_i - x2_i| / (|m1_i - m2_i| + 1e-7)), |.|
// the root mean square over C, H, W (so lambda_div enters twice, as in the code; the default is 1). M runs
// in training mode three times per step: netM(x1) once unused (it only moves the batch-norm running
// statistics), then for m1 and m2. Adam (betas 0.5, 0.9) with lr_M, times 0.1 at epochs 10 and 20
// (MultiStepLR). After this stage M is frozen and used in evaluation mode.
import * as tf from '@tensorflow/tfjs-core';
import { toFloatBatch } from '../../data/augment';
import { yieldToEventLoop } from '../../evaluate';
import { maskThreshold, normalizeImages, type InputAwareNets } from '../../models/input-aware-generator';
import { Adam } from '../../optim';
import { Rng } from '../../rng';
import { RunCancelledError } from '../../train';
import type { ImageDataset } from '../../types';
import type { EventSink } from '../../../shared/run-events';

/** BackdoorBench's defaults (config/attack/inputaware/default.yaml, cifar10.yaml; the authors' config.py). */
export const INPUT_AWARE = {
  lambdaDiv: 1,
  lambdaNorm: 100,
  maskDensity: 0.032,
  epsilon: 1e-7,
  lrG: 0.01,
  lrM: 0.01,
  lrC: 0.01,
  /** BackdoorBench's clean_train_epochs (the authors' 25 mask epochs). */
  maskEpochs: 25,
  /** BackdoorBench's batch_size for CIFAR-10. */
  batchSize: 128,
  pCross: 0.1,
  adam: { beta1: 0.5, beta2: 0.9, eps: 1e-8 },
  maskMilestones: [10, 20],
  patternMilestones: [200, 300, 400, 500],
  gamma: 0.1,
} as const;

/** MultiStepLR: lr times gamma for every milestone at or before the 0-based epoch. */
export function multiStepLr(lr: number, milestones: readonly number[], gamma: number, epoch: number): number {
  return milestones.reduce((v, m) => (epoch >= m ? v * gamma : v), lr);
}

/** mean_i(rms(a1_i - a2_i) / (rms(b1_i - b2_i) + eps)): images far apart must get triggers (or masks) far apart. */
export function diversityLoss(a1: tf.Tensor4D, a2: tf.Tensor4D, b1: tf.Tensor4D, b2: tf.Tensor4D, eps = INPUT_AWARE.epsilon): tf.Scalar {
  return tf.tidy(() => {
    const rms = (p: tf.Tensor4D, q: tf.Tensor4D): tf.Tensor1D => tf.sqrt(tf.mean(tf.square(tf.sub(p, q)), [1, 2, 3])) as tf.Tensor1D;
    return tf.mean(tf.div(rms(a1, a2), tf.add(rms(b1, b2), eps)));
  });
}

export interface MaskOptions {
  readonly lambdaDiv: number;
  readonly lambdaNorm: number;
  readonly maskDensity: number;
}

export interface MaskLosses {
  readonly total: number;
  readonly norm: number;
  readonly div: number;
}

/** One train_mask_step on two batches (NHWC in [0, 1]); updates M through `adam` with `lr`. */
export function maskStep(nets: InputAwareNets, adam: Adam, x1: tf.Tensor4D, x2: tf.Tensor4D, opts: MaskOptions, lr: number): MaskLosses {
  const vars = nets.mask.params.trainable().map(([, v]) => v);
  return tf.tidy(() => {
    const n1 = normalizeImages(x1, nets.config);
    const n2 = normalizeImages(x2, nets.config);
    nets.mask.forward(n1, true); // the code's unused `masks1 = netM(inputs1)`: running statistics only
    let norm = 0;
    let div = 0;
    const { value, grads } = tf.variableGrads(() => {
      const m1 = maskThreshold(nets.mask.forward(n1, true));
      const m2 = maskThreshold(nets.mask.forward(n2, true));
      const d = tf.mul(diversityLoss(n1, n2, m1, m2), opts.lambdaDiv);
      const l = tf.mean(tf.relu(tf.sub(m1, opts.maskDensity)));
      norm = l.dataSync()[0];
      div = d.dataSync()[0];
      return tf.add(tf.mul(l, opts.lambdaNorm), tf.mul(d, opts.lambdaDiv)) as tf.Scalar;
    }, vars);
    adam.step(grads, lr);
    return { total: value.dataSync()[0], norm, div };
  });
}

export interface MaskTraining extends MaskOptions {
  readonly epochs: number;
  readonly lr: number;
  readonly batchSize: number;
  readonly seed: number;
  readonly signal?: AbortSignal;
  readonly emit?: EventSink;
}

/** Train M alone for `epochs` epochs on the clean training data; log lines per epoch, step events live. */
export async function trainMask(nets: InputAwareNets, ds: ImageDataset, t: MaskTraining): Promise<MaskLosses | undefined> {
  const vars = nets.mask.params.trainable().map(([, v]) => v);
  const adam = new Adam(vars, INPUT_AWARE.adam);
  const { height: h, width: w, channels: c } = ds;
  const size = h * w * c;
  const steps = Math.ceil(ds.count / t.batchSize);
  const buf1 = new Float32Array(t.batchSize * size);
  const buf2 = new Float32Array(t.batchSize * size);
  const rng = new Rng(t.seed);
  let last: MaskLosses | undefined;
  t.emit?.({ type: 'phase', phase: 'mask', label: 'Input-aware: training the mask generator', epochs: t.epochs });
  try {
    for (let epoch = 0; epoch < t.epochs; epoch++) {
      const lr = multiStepLr(t.lr, INPUT_AWARE.maskMilestones, INPUT_AWARE.gamma, epoch);
      const order1 = rng.permutation(ds.count);
      const order2 = rng.permutation(ds.count);
      const t0 = performance.now();
      let sum = 0;
      let lastReport = 0;
      for (let s = 0; s < steps; s++) {
        if (t.signal?.aborted) throw new RunCancelledError();
        const from = s * t.batchSize;
        const to = Math.min(from + t.batchSize, ds.count);
        const n = to - from;
        const a = toFloatBatch(ds, order1.subarray(from, to), buf1.subarray(0, n * size));
        const b = toFloatBatch(ds, order2.subarray(from, to), buf2.subarray(0, n * size));
        const x1 = tf.tensor4d(a, [n, h, w, c]);
        const x2 = tf.tensor4d(b, [n, h, w, c]);
        try {
          last = maskStep(nets, adam, x1, x2, t, lr);
        } finally {
          x1.dispose();
          x2.dispose();
        }
        sum += last.total * n;
        const now = performance.now();
        if (t.emit && (now - lastReport > 250 || s === steps - 1)) {
          lastReport = now;
          t.emit({ type: 'step', phase: 'mask', epoch: epoch + 1, step: s + 1, steps, loss: last.total });
        }
        await yieldToEventLoop();
      }
      t.emit?.({
        type: 'log',
        message:
          `Input-aware mask epoch ${epoch + 1}/${t.epochs}: loss ${(sum / ds.count).toFixed(4)} (last batch: norm ${last?.norm.toFixed(4)}, ` +
          `diversity ${last?.div.toFixed(4)}), lr ${lr}, ${((performance.now() - t0) / 1000).toFixed(1)} s`,
      });
    }
  } finally {
    adam.dispose();
  }
  return last;
}
