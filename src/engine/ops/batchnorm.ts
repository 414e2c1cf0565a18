// Batch norm (channels last), optionally fused with the ReLU that follows it in pre-activation
// ResNets, with a hand-written backward pass. tfjs's own gradient of moments + batchNorm tiles
// per-channel terms to full size several times; here the backward is two passes over the data
// (one SIMD kernel on wasm, see native/batchnorm.c) and per-channel algebra stays per-channel.
import * as tf from '@tensorflow/tfjs-core';
import { runDifferentiable } from './differentiable';
import { batchNormBackward, batchNormEvalInputGrad, batchNormForward, batchNormInference } from '../kernels';

export interface BatchNormParams {
  readonly gamma: tf.Tensor1D;
  readonly beta: tf.Tensor1D;
  readonly eps: number;
}

export interface BatchNormTrainResult {
  readonly y: tf.Tensor4D;
  /** The batch mean per channel. */
  readonly mean: tf.Tensor1D;
  /** The batch's biased variance per channel (PyTorch updates running_var with the unbiased one). */
  readonly variance: tf.Tensor1D;
}

function train(x: tf.Tensor4D, p: BatchNormParams, relu: boolean): BatchNormTrainResult {
  const { gamma, beta, eps } = p;
  const [y, mean, variance] = runDifferentiable({
    inputs: { x, gamma, beta },
    forward: (save) => {
      const f = batchNormForward(x, gamma, beta, eps, relu);
      save([x, f.y, f.mean, f.invStd, gamma]);
      return [f.y, f.mean, f.variance];
    },
    backward: ([dy, dMean, dVar], [xs, ys, mean, invStd, g]) => {
      // All three gradients come from one pass; tensors made here live until the backward pass ends.
      const grads = batchNormBackward(dy as tf.Tensor4D, xs as tf.Tensor4D, ys as tf.Tensor4D, relu, {
        mean: mean as tf.Tensor1D,
        invStd: invStd as tf.Tensor1D,
        gamma: g as tf.Tensor1D,
        dMean: dMean as tf.Tensor1D,
        dVar: dVar as tf.Tensor1D,
      });
      return { x: () => grads.dx, gamma: () => grads.dGamma, beta: () => grads.dBeta };
    },
  });
  return { y: y as tf.Tensor4D, mean: mean as tf.Tensor1D, variance: variance as tf.Tensor1D };
}

/**
 * Batch norm in training mode over N, H, W. Gradients flow to x, gamma and beta, and also through the
 * returned mean and variance if a loss uses them.
 */
export function batchNormTrain(x: tf.Tensor4D, p: BatchNormParams): BatchNormTrainResult {
  return train(x, p, false);
}

/** relu(batchNormTrain(x).y) as one op: one pass fewer each way, and no separate ReLU mask. */
export function batchNormReluTrain(x: tf.Tensor4D, p: BatchNormParams): BatchNormTrainResult {
  return train(x, p, true);
}

/**
 * The parameter gradients of an evaluation-mode batch norm (+ ReLU): `masked` makes the gradient reaching its output,
 * ReLU-masked (each thunk makes its own: tfjs runs each in a tidy), for x, the saved input, and the running mean and
 * variance; invStd = rsqrt(variance + eps), scale = gamma * invStd.
 */
export function evalBatchNormParamGrads(
  masked: () => tf.Tensor,
  x: tf.Tensor,
  mean: tf.Tensor,
  gamma: tf.Tensor,
  invStd: tf.Tensor,
  scale: tf.Tensor,
): Record<'gamma' | 'beta' | 'runningMean' | 'runningVar', () => tf.Tensor> {
  return {
    gamma: () => tf.sum(tf.mul(masked(), tf.mul(tf.sub(x, mean), invStd)), [0, 1, 2]),
    beta: () => tf.sum(masked(), [0, 1, 2]),
    runningMean: () => tf.neg(tf.mul(tf.sum(masked(), [0, 1, 2]), scale)),
    runningVar: () => tf.mul(tf.sum(tf.mul(masked(), tf.sub(x, mean)), [0, 1, 2]), tf.mul(gamma, tf.mul(tf.pow(invStd, 3), -0.5))),
  };
}

function evaluate(x: tf.Tensor4D, p: BatchNormParams, runningMean: tf.Tensor1D, runningVar: tf.Tensor1D, relu: boolean): tf.Tensor4D {
  const { gamma, beta, eps } = p;
  const [y] = runDifferentiable({
    inputs: { x, gamma, beta, runningMean, runningVar },
    forward: (save) => {
      const out = batchNormInference(x, runningMean, runningVar, gamma, beta, eps, relu);
      // Inputs made inside a gradient function are disposed before the backward pass: save them.
      save([x, out, gamma, runningMean, runningVar]);
      return [out];
    },
    // Input gradients through frozen models (CL's PGD, Neural Cleanse, ANP) need dx: one kernel on native. The
    // other gradients (a frozen-statistics finetune) are plain tfjs ops; each thunk makes its own masked dy (tfjs runs
    // each thunk in a tidy, and dx alone should not pay for it).
    backward: ([dy], [xs, ys, g0, mean, variance]) => {
      const masked = () => (relu ? tf.mul(dy, tf.step(ys)) : dy);
      const invStd = tf.rsqrt(tf.add(variance, eps));
      const scale = tf.mul(g0, invStd) as tf.Tensor1D;
      return {
        x: () => batchNormEvalInputGrad(dy as tf.Tensor4D, ys as tf.Tensor4D, scale, relu),
        ...evalBatchNormParamGrads(masked, xs, mean, g0, invStd, scale),
      };
    },
  });
  return y as tf.Tensor4D;
}

/** Batch norm in evaluation mode with running statistics. */
export function batchNormEval(x: tf.Tensor4D, p: BatchNormParams, runningMean: tf.Tensor1D, runningVar: tf.Tensor1D): tf.Tensor4D {
  return evaluate(x, p, runningMean, runningVar, false);
}

/** relu(batchNormEval(...)) as one op. */
export function batchNormReluEval(x: tf.Tensor4D, p: BatchNormParams, runningMean: tf.Tensor1D, runningVar: tf.Tensor1D): tf.Tensor4D {
  return evaluate(x, p, runningMean, runningVar, true);
}
