// The few differentiable building blocks the models are made of. Models call these, never tf.conv2d
// or tf.batchNorm directly, so that faster implementations (custom gradients, fused kernels) can be
// swapped in here without touching model code.
import * as tf from '@tensorflow/tfjs-core';

/** 2-D convolution, NHWC input, HWIO filter, symmetric zero padding `pad` (PyTorch's `padding`). */
export function conv2d(x: tf.Tensor4D, filter: tf.Tensor4D, stride: number, pad: number): tf.Tensor4D {
  return tf.conv2d(x, filter, stride, pad);
}

export interface BatchNormParams {
  readonly gamma: tf.Tensor1D;
  readonly beta: tf.Tensor1D;
  readonly eps: number;
}

/**
 * Batch norm in training mode over N, H, W (channels last). Returns the output and the batch's mean and
 * biased variance (the caller updates running statistics with the unbiased one, as PyTorch does).
 */
export function batchNormTrain(
  x: tf.Tensor4D,
  p: BatchNormParams,
): { y: tf.Tensor4D; mean: tf.Tensor1D; variance: tf.Tensor1D } {
  const { mean, variance } = tf.moments(x, [0, 1, 2]);
  const y = tf.batchNorm4d(x, mean as tf.Tensor1D, variance as tf.Tensor1D, p.beta, p.gamma, p.eps);
  return { y, mean: mean as tf.Tensor1D, variance: variance as tf.Tensor1D };
}

/** Batch norm in evaluation mode with running statistics. */
export function batchNormEval(
  x: tf.Tensor4D,
  p: BatchNormParams,
  runningMean: tf.Tensor1D,
  runningVar: tf.Tensor1D,
): tf.Tensor4D {
  return tf.batchNorm4d(x, runningMean, runningVar, p.beta, p.gamma, p.eps);
}
