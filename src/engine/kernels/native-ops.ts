// Kernels only the `native` backend has (native/addon/training_ops.c): each replaces several tfjs kernels of a
// NAD step with one call and the same float32 arithmetic. The entry points in kernels/index.ts fall back to
// those tfjs ops on every other backend.
import * as tf from '@tensorflow/tfjs-core';
import { nativeKernelsOn } from './simd';
import type { WasmBackendView } from './simd-interfaces';

type Attrs = Record<string, number>;

function defineNative(
  kernelName: string,
  outputShapes: (inputs: tf.TensorInfo[]) => number[][],
  body: (
    k: ReturnType<typeof nativeKernelsOn>,
    p: (t: tf.TensorInfo) => number,
    ins: tf.TensorInfo[],
    outs: tf.TensorInfo[],
    a: Attrs,
  ) => void,
): void {
  if (tf.getKernel(kernelName, 'native')) tf.unregisterKernel(kernelName, 'native');
  tf.registerKernel({
    kernelName,
    backendName: 'native',
    kernelFunc: ({ inputs, attrs, backend }) => {
      const b = backend as unknown as WasmBackendView;
      const ins = Object.values(inputs) as tf.TensorInfo[];
      const outs = outputShapes(ins).map((s) => b.makeOutput(s, 'float32'));
      // After the outputs: making them may have grown (moved) the heap.
      body(nativeKernelsOn(b), (t) => b.dataIdMap.get(t.dataId).memoryOffset, ins, outs, attrs as unknown as Attrs);
      return outs;
    },
  });
}

const rows = (t: tf.TensorInfo) => t.shape.slice(0, -1).reduce((p, d) => p * d, 1);
const channels = (t: tf.TensorInfo) => t.shape[t.shape.length - 1];

/** Registers the native-only kernels (inputs in the documented order). */
export function registerNativeOps(): void {
  // input x [..., c] -> [...]: sum of squares over the last axis
  defineNative(
    'NadChannelSumSquares',
    ([x]) => [x.shape.slice(0, -1)],
    (k, p, [x], [out]) => k.channel_sum_squares(p(x), rows(x), channels(x), p(out)),
  );
  // inputs x [..., c], g [...] -> 2 x g (broadcast over c)
  defineNative(
    'NadChannelSumSquaresGrad',
    ([x]) => [x.shape],
    (k, p, [x, g], [out]) => k.channel_sum_squares_grad(p(x), p(g), rows(x), channels(x), p(out)),
  );
  // inputs running mean, running variance, batch mean, batch variance [c]; attrs momentum, unbias -> new mean, new variance
  defineNative(
    'NadBnRunningUpdate',
    ([m]) => [m.shape, m.shape],
    (k, p, [m, v, bm, bv], [mOut, vOut], a) =>
      k.bn_running_update(p(m), p(v), p(bm), p(bv), m.shape[0], 1 - a.momentum, a.momentum, a.unbias, p(mOut), p(vOut)),
  );
  // inputs dy [..., c], y [..., c] (the batch norm's output), scale [c]; attr relu -> dx [..., c]
  defineNative(
    'NadBnEvalInputGrad',
    ([dy]) => [dy.shape],
    (k, p, [dy, y, scale], [dx], a) => {
      if (!k.bn_eval_input_grad) throw new Error('NAD kernels: this native addon predates bn_eval_input_grad');
      k.bn_eval_input_grad(p(dy), p(y), p(scale), rows(dy), channels(dy), a.relu, p(dx));
    },
  );
}
