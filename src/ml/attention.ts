// Attention maps exactly as the paper's at.py: sum over channels of |F|^p, divided by the map's spatial
// L2 norm + 1e-6; the distillation loss is the mean squared difference of student and teacher maps.
import * as tf from '@tensorflow/tfjs-core';

export const ATTENTION_EPS = 1e-6;

/** NHWC activations -> N x H x W attention maps, each with unit L2 norm over space. */
export function attentionMap(features: tf.Tensor4D, p = 2): tf.Tensor3D {
  return tf.tidy(() => {
    // |F|^2 = F^2: for the paper's p = 2 no abs (nor its gradient's sign) is needed.
    const powered = p === 2 ? tf.square(features) : p === 1 ? tf.abs(features) : tf.pow(tf.abs(features), p);
    const am = tf.sum(powered, 3) as tf.Tensor3D;
    const norm = tf.sqrt(tf.sum(tf.square(am), [1, 2], true));
    return tf.div(am, tf.add(norm, ATTENTION_EPS));
  });
}

/** F.mse_loss(AT(student), AT(teacher)): mean over batch and space. */
export function attentionLoss(student: tf.Tensor4D, teacherMap: tf.Tensor3D, p = 2): tf.Scalar {
  return tf.tidy(() => tf.mean(tf.squaredDifference(attentionMap(student, p), teacherMap)) as tf.Scalar);
}
