// Batch norm (channels last) with a hand-written backward pass. tfjs's own gradient of
// moments + batchNorm tiles per-channel terms to full size several times; here every full-size
// operation is one element-wise pass and per-channel algebra stays per-channel.
import * as tf from '@tensorflow/tfjs-core';
import { runDifferentiable } from './differentiable';

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

const AXES = [0, 1, 2];

/**
 * Batch norm in training mode over N, H, W. Gradients flow to x, gamma and beta, and also through the
 * returned mean and variance if a loss uses them.
 */
export function batchNormTrain(x: tf.Tensor4D, p: BatchNormParams): BatchNormTrainResult {
  const { gamma, beta, eps } = p;
  const [y, mean, variance] = runDifferentiable({
    inputs: { x, gamma, beta },
    forward: (save) => {
      const m = tf.moments(x, AXES);
      const invStd = tf.rsqrt(tf.add(m.variance, eps));
      save([x, m.mean, invStd, gamma]);
      return [tf.batchNorm4d(x, m.mean as tf.Tensor1D, m.variance as tf.Tensor1D, beta, gamma, eps), m.mean, m.variance];
    },
    backward: ([dy, dMean, dVar], [xs, mean, invStd, g]) => {
      // Needed by all three gradients; tensors made here live until the backward pass ends.
      const sumDy = tf.sum(dy, AXES) as tf.Tensor1D;
      const sumDyXc = tf.sum(tf.mul(dy, tf.sub(xs, mean)), AXES) as tf.Tensor1D;
      return {
        // dgamma = sum(dy * xhat)
        gamma: () => tf.mul(sumDyXc, invStd),
        beta: () => tf.clone(sumDy),
        x: () =>
          tf.tidy(() => {
            const count = xs.size / xs.shape[xs.rank - 1];
            // dx = a*dy + b*(x - mean) + c, with per-channel a, b, c:
            //   a = gamma*invStd, b = -a*invStd^2*sum(dy*xc)/M + 2*dVar/M, c = -a*sum(dy)/M + dMean/M.
            const a = tf.mul(g, invStd);
            const b = tf.add(tf.mul(tf.mul(a, tf.square(invStd)), tf.div(sumDyXc, -count)), tf.mul(dVar, 2 / count));
            const c = tf.add(tf.mul(a, tf.div(sumDy, -count)), tf.div(dMean, count));
            return tf.add(tf.add(tf.mul(dy, a), tf.mul(tf.sub(xs, mean), b)), c);
          }),
      };
    },
  });
  return { y: y as tf.Tensor4D, mean: mean as tf.Tensor1D, variance: variance as tf.Tensor1D };
}

/** Batch norm in evaluation mode with running statistics. */
export function batchNormEval(x: tf.Tensor4D, p: BatchNormParams, runningMean: tf.Tensor1D, runningVar: tf.Tensor1D): tf.Tensor4D {
  return tf.batchNorm4d(x, runningMean, runningVar, p.beta, p.gamma, p.eps);
}
