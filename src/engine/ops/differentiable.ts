// A differentiable op with a hand-written backward pass. tf.customGrad would do, but it allows one output
// only and computes every input's gradient eagerly; the engine's own runKernelFunc (what customGrad
// wraps) allows several outputs and asks for each input's gradient lazily, so gradients nobody needs
// (the image's, the teacher's) are never computed.
import * as tf from '@tensorflow/tfjs-core';

/** Per input name, a thunk computing that input's gradient (called only if the input needs one). */
export type GradientThunks<K extends string> = Record<K, () => tf.Tensor>;

export interface DifferentiableOp<K extends string> {
  readonly inputs: Record<K, tf.Tensor>;
  /** Runs the op (its intermediates are disposed); `save` keeps tensors for the backward pass. */
  forward(save: (tensors: tf.Tensor[]) => void): tf.Tensor[];
  /** dys: one gradient per output (zeros for outputs outside the loss); saved: what forward saved. */
  backward(dys: tf.Tensor[], saved: tf.Tensor[]): GradientThunks<K>;
}

interface KernelFuncParams {
  forwardFunc: (backend: tf.KernelBackend, save: (tensors: tf.Tensor[]) => void) => tf.Tensor | tf.Tensor[];
  backwardsFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => Record<string, () => tf.Tensor>;
  inputs: Record<string, tf.Tensor>;
}

interface EngineWithKernelFunc {
  runKernelFunc(params: KernelFuncParams): tf.Tensor | tf.Tensor[];
}

/** Runs `op`, recording it on the gradient tape with its own backward pass. Returns its outputs in order. */
export function runDifferentiable<K extends string>(op: DifferentiableOp<K>): tf.Tensor[] {
  // runKernelFunc is private in tfjs-core's typings but is the public customGrad's implementation
  // (tfjs-core 4.x); test/unit/ops.test.ts checks that gradients still flow through it.
  const engine = tf.engine() as unknown as EngineWithKernelFunc;
  let count = 0;
  const out = engine.runKernelFunc({
    inputs: op.inputs,
    forwardFunc: (_backend, save) => {
      const outs = op.forward(save);
      count = outs.length;
      return outs.length === 1 ? outs[0] : outs;
    },
    backwardsFunc: (dy, saved) => op.backward(Array.isArray(dy) ? dy : [dy], saved),
  });
  const outs = Array.isArray(out) ? out : [out];
  if (outs.length !== count) throw new Error(`differentiable op returned ${outs.length} outputs, expected ${count}`);
  return outs;
}
