// The attention loss's hand-written backward (p = 2) against tfjs's autodiff of the paper's formula
// (at.py: sum_c |F|^p, divided by its spatial L2 norm + 1e-6; MSE against the teacher's map), on cpu and
// wasm; and an all-zero feature map (a dead image), whose gradient must be zero, as PyTorch's norm
// backward makes it (tfjs's autodiff of sqrt at 0 gives NaN).
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { registerWasmBackend } from '../../src/engine/backend';
import { attentionLoss, attentionMap, ATTENTION_EPS } from '../../src/engine/attention';
import { maxRelError } from '../fixtures/compare';

function values(n: number, seed: number): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1);
}

/** The paper's formula with tfjs's own gradients. */
function referenceLoss(x: tf.Tensor4D, t: tf.Tensor3D, p: number): tf.Scalar {
  const am = tf.sum(tf.pow(tf.abs(x), p), 3);
  const norm = tf.sqrt(tf.sum(tf.square(am), [1, 2], true));
  return tf.mean(tf.squaredDifference(tf.div(am, tf.add(norm, ATTENTION_EPS)), t)) as tf.Scalar;
}

describe('attention loss', () => {
  before(async () => {
    await registerWasmBackend();
  });
  for (const backend of ['cpu', 'wasm'] as const) {
    for (const p of [2, 1]) {
      it(`p = ${p} on ${backend}: loss and gradient equal the formula's autodiff`, async () => {
        await tf.setBackend(backend);
        tf.tidy(() => {
          const x = tf.tensor4d(values(3 * 6 * 5 * 8, 1), [3, 6, 5, 8]);
          const t = attentionMap(tf.tensor4d(values(3 * 6 * 5 * 4, 2), [3, 6, 5, 4]), p);
          const got = tf.valueAndGrad((a: tf.Tensor) => attentionLoss(a as tf.Tensor4D, t, p))(x);
          const want = tf.valueAndGrad((a: tf.Tensor) => referenceLoss(a as tf.Tensor4D, t, p))(x);
          const [gl, wl] = [got.value.dataSync()[0], want.value.dataSync()[0]];
          assert.ok(Math.abs(gl - wl) <= 1e-6 * Math.abs(wl), `loss ${gl} vs ${wl}`);
          const err = maxRelError(got.grad.dataSync() as Float32Array, want.grad.dataSync() as Float32Array);
          assert.ok(err < 1e-5, `gradient error ${err}`);
        });
      });
    }
    it(`p = 2 on ${backend}: an all-zero feature map (a dead image) gets a zero gradient, not NaN (as PyTorch's norm)`, async () => {
      await tf.setBackend(backend);
      tf.tidy(() => {
        const xv = values(3 * 6 * 5 * 8, 1);
        xv.fill(0, 2 * 6 * 5 * 8);
        const x = tf.tensor4d(xv, [3, 6, 5, 8]);
        const t = attentionMap(tf.tensor4d(values(3 * 6 * 5 * 4, 2), [3, 6, 5, 4]));
        const g = tf
          .grad((a: tf.Tensor) => attentionLoss(a as tf.Tensor4D, t))(x)
          .dataSync() as Float32Array;
        assert.ok(g.every(Number.isFinite), 'gradient finite');
        assert.ok(
          g.subarray(2 * 6 * 5 * 8).every((v) => v === 0),
          'zero image: zero gradient',
        );
        assert.ok(
          g.subarray(0, 2 * 6 * 5 * 8).some((v) => v !== 0),
          'other images: a gradient',
        );
      });
    });
  }
  it('leaves no tensor behind', async () => {
    await tf.setBackend('wasm');
    const x = tf.tensor4d(values(2 * 4 * 4 * 8, 3), [2, 4, 4, 8]);
    const t = attentionMap(x);
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      tf.grad((a: tf.Tensor) => attentionLoss(a as tf.Tensor4D, t))(x);
    });
    assert.equal(tf.memory().numTensors, before);
    tf.dispose([x, t]);
  });
});
