// I-BAU's numerics: the perturbation's inner steps and the implicit hypergradient of the outer loss (the method,
// its sources and the checks are described in ./index.ts).
import * as tf from '@tensorflow/tfjs-core';
import { differentiableLogits, type Model } from '../../models';
import { FINETUNE_TRAINING } from '../../schedules';
import { type TrainSettings } from '../../train';
import { reluMasks, tangentLogits } from './linearised';

/** BackdoorBench's Adam: betas (0.9, 0.999), torch's eps. */
export const IBAU_ADAM = { beta1: 0.9, beta2: 0.999, eps: 1e-8 } as const;
export const IBAU_PHASE = 'unlearn';

/** BackdoorBench config.yaml: 5 rounds, batch 256, Adam lr 1e-4, no weight decay; augmentation as its train transform. */
export const IBAU_TRAINING: TrainSettings = {
  ...FINETUNE_TRAINING,
  epochs: 5,
  batchSize: 256,
  lrSchedule: [[0, 1e-4]],
  momentum: 0,
  weightDecay: 0,
  nesterov: false,
};

export interface IbauSettings {
  /** K: fixed-point iterations of the hypergradient. */
  readonly fixedPointSteps: number;
  /** The inner map's gradient step (hypergrad.GradientDescent's step size). */
  readonly fixedPointLr: number;
  /** Weight of |delta|^2 in the inner losses. */
  readonly regularisation: number;
}

/** Mean cross-entropy of logits against one-hot labels. */
function meanCrossEntropy(logits: tf.Tensor2D, oneHot: tf.Tensor2D): tf.Scalar {
  return tf.neg(tf.mean(tf.sum(tf.mul(oneHot, tf.logSoftmax(logits)), 1))) as tf.Scalar;
}

/** A batch of images (NHWC in [0, 1]) and their one-hot labels. */
export interface LabelledBatch {
  readonly x: tf.Tensor4D;
  readonly y: tf.Tensor2D;
}

/**
 * One SGD step of the inner maximisation on a batch (i-bau.py's batch_opt): delta -= lr * grad of
 * -CE(f(x + delta), argmax f(x)) + reg |delta|^2. Returns that loss before the step.
 */
export function perturbationStep(model: Model, delta: tf.Variable, x: tf.Tensor4D, lr: number, reg: number): number {
  const loss = tf.tidy(() => {
    const n = model.spec.numClasses;
    const labels = tf.oneHot(tf.argMax(model.forward(x, false).logits, 1) as tf.Tensor1D, n) as tf.Tensor2D;
    const { value, grads } = tf.variableGrads(() => {
      const logits = differentiableLogits(model, tf.add(x, delta) as tf.Tensor4D);
      return tf.add(tf.neg(meanCrossEntropy(logits, labels)), tf.mul(tf.sum(tf.square(delta)), reg)) as tf.Scalar;
    }, [delta]);
    delta.assign(tf.sub(delta, tf.mul(grads[delta.name], lr)));
    return value;
  });
  const v = loss.dataSync()[0];
  loss.dispose();
  return v;
}

/** |x|_2 as a number. */
export function normOf(x: tf.Tensor): number {
  const n = tf.norm(x);
  const v = n.dataSync()[0];
  n.dispose();
  return v;
}

/** The L2-ball projection the authors left commented out: delta * min(1, radius / |delta|). */
export function projectToBall(delta: tf.Variable, radius: number): void {
  tf.tidy(() => {
    const norm = normOf(delta);
    if (norm > radius) delta.assign(tf.mul(delta, radius / norm));
  });
}

export interface Hypergradient {
  /** Keyed by the parameters' tfjs variable names (as Adam.step takes them); the caller disposes them. */
  readonly grads: tf.NamedTensorMap;
  /** v_K, [1, H, W, C]; the caller disposes it. */
  readonly v: tf.Tensor4D;
  readonly outerLoss: number;
}

/** x, with a zero gradient: what follows is treated as a constant. */
const stopGradient = tf.customGrad((...inputs: Array<tf.Tensor | tf.GradSaveFunc>) => ({
  value: tf.clone(inputs[0] as tf.Tensor),
  gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy),
}));

/**
 * The implicit hypergradient of one outer step: hypergrad.fixed_point with the authors' loss_inner and loss_outer,
 * second-order terms exact (forward-mode tangents; see the header). `patch` [n, 1, 1, 1] is 1 where delta is added.
 */
export function hypergradient(
  model: Model,
  delta: tf.Variable,
  inner: LabelledBatch,
  outer: LabelledBatch & { readonly patch: tf.Tensor4D },
  s: IbauSettings,
): Hypergradient {
  const vars = model.params.trainable().map(([, v]) => v);
  const n = inner.x.shape[0];
  const first = tf.tidy(() =>
    tf.variableGrads(
      () => meanCrossEntropy(differentiableLogits(model, tf.add(outer.x, tf.mul(outer.patch, delta)) as tf.Tensor4D), outer.y),
      [...vars, delta],
    ),
  );
  const g = first.grads[delta.name];
  // The inner batch at delta: ReLU masks and softmax, fixed while delta and the weights are.
  const xA = tf.tidy(() => tf.add(inner.x, delta) as tf.Tensor4D);
  const base = reluMasks(model, xA);
  const masks = base.masks;
  const probs = tf.tidy(() => tf.softmax(base.logits));
  let v: tf.Tensor = g.clone();
  for (let k = 1; k < s.fixedPointSteps; k++) {
    const next = tf.tidy(() => {
      // H v = -J^T u + 2 reg v, u = d2 CE/dz2 (J v) = (p * Jv - p (p . Jv)) / n per image.
      // One linearised pass: the gradient of sum(Jw * u) at w = v, u computed from Jv behind a stop-gradient.
      const jtu = tf.grad((w: tf.Tensor) => {
        const jv = tangentLogits(model, w as tf.Tensor4D, masks);
        const fixed = stopGradient(jv);
        const u = tf.div(tf.sub(tf.mul(probs, fixed), tf.mul(probs, tf.sum(tf.mul(probs, fixed), 1, true))), n);
        return tf.sum(tf.mul(jv, u));
      })(v);
      const hv = tf.add(tf.neg(jtu), tf.mul(v, 2 * s.regularisation));
      return tf.add(tf.sub(v, tf.mul(hv, s.fixedPointLr)), g);
    });
    v.dispose();
    v = next;
  }
  // (dPhi/dtheta)^T v = a d/dtheta G, G = v . grad_delta CE = mean_i (softmax(z_i) - y_i) . J_i v.
  const mixed = tf.tidy(() => {
    const { value, grads } = tf.variableGrads(() => {
      const z = differentiableLogits(model, xA);
      const jv = tangentLogits(model, v as tf.Tensor4D, masks);
      return tf.div(tf.sum(tf.mul(tf.sub(tf.softmax(z), inner.y), jv)), n) as tf.Scalar;
    }, vars);
    value.dispose();
    return grads;
  });
  const grads: tf.NamedTensorMap = {};
  tf.tidy(() => {
    for (const x of vars) grads[x.name] = tf.keep(tf.add(first.grads[x.name], tf.mul(mixed[x.name], s.fixedPointLr)));
  });
  const outerLoss = first.value.dataSync()[0];
  tf.dispose([first.value, ...Object.values(first.grads), ...Object.values(mixed), ...masks, base.logits, xA, probs]);
  return { grads, v: v as tf.Tensor4D, outerLoss };
}

/** A batch of the clean data as float32 NHWC and labels, augmented when `augment` is set. */
