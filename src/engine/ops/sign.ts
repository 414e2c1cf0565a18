// torch.sign: +1, -1 or 0, by comparisons. tfjs-backend-wasm's Sign kernel returns 0 for |x| < 1.19e-7
// (FLT_EPSILON), so signed-gradient steps (PGD, ANP's noise ascent) would leave the pixels or neurons whose
// gradient is tiny where they are; PyTorch moves them by the full step. On wasm and native one kernel
// (native/training_ops.c's sign_exact) makes the same values; for steps, not for gradients through it.
import * as tf from '@tensorflow/tfjs-core';
import { signExact } from '../kernels';

export function exactSign(x: tf.Tensor): tf.Tensor {
  return signExact(x) ?? tf.tidy(() => tf.sub(tf.cast(tf.greater(x, 0), 'float32'), tf.cast(tf.less(x, 0), 'float32')));
}
