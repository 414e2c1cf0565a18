// Attention maps exactly as the paper's at.py: sum over channels of |F|^p, divided by the map's spatial
// L2 norm + 1e-6; the distillation loss is the mean squared difference of student and teacher maps.
import * as tf from '@tensorflow/tfjs-core';
import { runDifferentiable } from './ops/differentiable';
import { channelSumSquares, channelSumSquaresGrad } from './kernels';

export const ATTENTION_EPS = 1e-6;

/** NHWC activations -> N x H x W attention maps, each with unit L2 norm over space. */
export function attentionMap(features: tf.Tensor4D, p = 2): tf.Tensor3D {
  return tf.tidy(() => normalise(channelPower(features, p)).map);
}

function channelPower(features: tf.Tensor4D, p: number): tf.Tensor3D {
  // |F|^2 = F^2: for the paper's p = 2 no abs is needed (one kernel on the native backend).
  if (p === 2) return channelSumSquares(features) as tf.Tensor3D;
  return tf.sum(p === 1 ? tf.abs(features) : tf.pow(tf.abs(features), p), 3) as tf.Tensor3D;
}

function normalise(am: tf.Tensor3D): { map: tf.Tensor3D; norm: tf.Tensor3D } {
  const norm = tf.sqrt(tf.sum(tf.square(am), [1, 2], true)) as tf.Tensor3D;
  return { map: tf.div(am, tf.add(norm, ATTENTION_EPS)), norm };
}

/**
 * F.mse_loss(AT(student), AT(teacher)): mean over batch and space. For p = 2 one differentiable op with
 * its backward written out (tfjs's own gradients of sum and mean build full-size tensors of ones in
 * JavaScript, ~12 ms per NAD step); other p use tfjs's autodiff. test/unit/attention.test.ts checks both.
 */
export function attentionLoss(student: tf.Tensor4D, teacherMap: tf.Tensor3D, p = 2): tf.Scalar {
  if (p !== 2) return tf.tidy(() => tf.mean(tf.squaredDifference(attentionMap(student, p), teacherMap)) as tf.Scalar);
  const [loss] = runDifferentiable({
    inputs: { x: student },
    forward: (save) => {
      const saved = tf.tidy(() => {
        const am = channelPower(student, 2);
        const { map, norm } = normalise(am);
        const diff = tf.sub(map, teacherMap);
        return [am, norm, diff, tf.mean(tf.square(diff))];
      });
      save([student, ...saved.slice(0, 3)]);
      return [saved[3]];
    },
    // With A = sum_c x^2, n = ||A|| (per image), m = A / (n + eps), L = mean((m - t)^2) over K values:
    //   dL/dm = 2 (m - t) / K;  dL/dA = g / (n + eps) - A * sum(g * A) / ((n + eps)^2 n);  dL/dx = 2 x dL/dA.
    backward: ([dy], [x, am, norm, diff]) => ({
      x: () =>
        tf.tidy(() => {
          const g = tf.mul(diff, tf.mul(dy, 2 / diff.size));
          const ne = tf.add(norm, ATTENTION_EPS);
          const s = tf.sum(tf.mul(g, am), [1, 2], true);
          // n = 0 only for an all-zero map, where A = 0 and the second term vanishes.
          const second = tf.mul(am, tf.divNoNan(s, tf.mul(tf.square(ne), norm)));
          const dA = tf.sub(tf.div(g, ne), second);
          return channelSumSquaresGrad(x, dA);
        }),
    }),
  });
  return loss as tf.Scalar;
}
