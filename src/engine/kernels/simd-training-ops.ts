// The training-step kernels of native/training_ops.c (attention sum of squares and its gradient, batch
// norm running statistics, the input gradient through a frozen batch norm, torch.sign), registered by simd.ts for
// both kernel backends.
import type * as tf from '@tensorflow/tfjs-core';
import type { Ptr, SharedKernelCalls } from './simd-interfaces';

export type Attrs = Record<string, number>;
/** What every kernel body gets after its kernels: tensors' heap offsets, the inputs, the outputs made, the attributes. */
export type BodyArgs = [ptr: (t: tf.TensorInfo) => Ptr, inputs: tf.TensorInfo[], outputs: tf.TensorInfo[], attrs: Attrs];
/** Registers a kernel for both kernel backends: its outputs' shapes, and a body. */
export type DefineKernel<B> = (name: string, outputShapes: (inputs: tf.TensorInfo[], attrs: Attrs) => number[][], body: B) => void;
/** A kernel body that needs only the calls both builds share. */
export type SharedBody = (k: SharedKernelCalls, ...args: BodyArgs) => void;

export function channels(t: tf.TensorInfo): number {
  return t.shape[t.shape.length - 1];
}

export function rows(t: tf.TensorInfo): number {
  return t.shape.slice(0, -1).reduce((p, d) => p * d, 1);
}

export function registerTrainingOps(define: DefineKernel<SharedBody>): void {
  // native/training_ops.c. input x [..., c] -> [...]: sum of squares over the last axis
  define(
    'NadChannelSumSquares',
    ([x]) => [x.shape.slice(0, -1)],
    (k, p, [x], [out]) => k.channel_sum_squares(p(x), rows(x), channels(x), p(out)),
  );
  // inputs x [..., c], g [...] -> 2 x g (broadcast over c)
  define(
    'NadChannelSumSquaresGrad',
    ([x]) => [x.shape],
    (k, p, [x, g], [out]) => k.channel_sum_squares_grad(p(x), p(g), rows(x), channels(x), p(out)),
  );
  // inputs running mean, running variance, batch mean, batch variance [c]; attrs momentum, unbias -> new mean, new variance
  define(
    'NadBnRunningUpdate',
    ([m]) => [m.shape, m.shape],
    (k, p, [m, v, bm, bv], [mOut, vOut], a) =>
      k.bn_running_update(p(m), p(v), p(bm), p(bv), m.shape[0], 1 - a.momentum, a.momentum, a.unbias, p(mOut), p(vOut)),
  );
  // inputs dy [..., c], y [..., c] (the batch norm's output), scale [c]; attr relu -> dx [..., c]
  define(
    'NadBnEvalInputGrad',
    ([dy]) => [dy.shape],
    (k, p, [dy, y, scale], [dx], a) => {
      if (!k.bn_eval_input_grad) throw new Error('NAD kernels: this native addon predates bn_eval_input_grad');
      k.bn_eval_input_grad(p(dy), p(y), p(scale), rows(dy), channels(dy), a.relu, p(dx));
    },
  );
  // inputs da, x, mean, variance, gamma, beta, gScale; attr eps -> dx: NadBnEvalInputGrad (relu) with the mask from x
  define(
    'NadBnEvalReluGradX',
    ([da]) => [da.shape],
    (k, p, [da, x, mean, v, g, be, gs], [dx], a) => {
      if (!k.bn_eval_relu_grad_x) throw new Error('NAD kernels: this native addon predates bn_eval_relu_grad_x');
      k.bn_eval_relu_grad_x(p(da), p(x), p(mean), p(v), p(g), p(be), a.eps, p(gs), rows(da), channels(da), p(dx));
    },
  );
  // input x (any shape) -> (x > 0) - (x < 0)
  define(
    'NadSignExact',
    ([x]) => [x.shape],
    (k, p, [x], [out]) => {
      if (!k.sign_exact) throw new Error('NAD kernels: this native addon predates sign_exact');
      k.sign_exact(
        p(x),
        x.shape.reduce((s, d) => s * d, 1),
        p(out),
      );
    },
  );
}
