// Wide layers (128-512 channels, whose Winograd scratch exceeds half the wasm kernels' stack) on the
// native backend: with AVX2/AVX-512 the addon's kernels take them (scratch on the heap), checked against
// the cpu backend's conv2d and gradients; the wasm module and the portable addon keep the stack limit.
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { nativeAddonStatus } from '../fixtures/native-addon';
import { bnReluConv3x3Eval, batchNormReluEval, conv2d } from '../../src/engine/ops';
import { registerWasmBackend, switchBackend } from '../../src/engine/backend';
import { conv3x3Winograd, convFilterGrad, winogradScratchBytes, winogradScratchLimit } from '../../src/engine/kernels';
import { STACK_BYTES } from '../../src/engine/kernels/simd';
import { assertClose, randomValues } from '../fixtures/compare';

process.env.NAD_NATIVE_THREADS = '2';
const { isa, problem } = nativeAddonStatus();
const wide = isa === 'avx2' || isa === 'avx512';

describe('Winograd scratch limit', () => {
  it('keeps half the stack on wasm and the portable addon, and lifts it for the wide addon at its vector width', () => {
    const bytes = winogradScratchBytes(256, 256);
    assert.ok(bytes > STACK_BYTES / 2);
    assert.equal(winogradScratchLimit('wasm', undefined, 256, 256, 4), STACK_BYTES / 2);
    assert.equal(winogradScratchLimit('native', 'portable', 256, 256, 4), STACK_BYTES / 2);
    assert.equal(winogradScratchLimit('native', 'avx2', 256, 256, 8), Infinity);
    assert.equal(winogradScratchLimit('native', 'avx512', 512, 256, 16), Infinity);
    // Channels not in multiples of the vector width take winograd.c's filter gradient, on the stack.
    assert.equal(winogradScratchLimit('native', 'avx512', 264, 256, 16), STACK_BYTES / 2);
  });
});

// 3x3 stride 1 (Winograd forward, input and filter gradient), and stride 2 and 1x1 (the direct kernels).
const CASES = [
  { n: 2, h: 4, w: 4, ci: 512, co: 512, k: 3, stride: 1, pad: 1 },
  { n: 2, h: 8, w: 8, ci: 256, co: 256, k: 3, stride: 1, pad: 1 },
  { n: 3, h: 16, w: 16, ci: 128, co: 128, k: 3, stride: 1, pad: 1 },
  { n: 2, h: 8, w: 8, ci: 256, co: 512, k: 3, stride: 2, pad: 1 },
  { n: 2, h: 8, w: 8, ci: 256, co: 512, k: 1, stride: 2, pad: 0 },
];

describe(`native kernels on wide layers (${problem ? 'not loaded' : isa})`, { skip: problem }, () => {
  before(async () => {
    await registerWasmBackend();
    await switchBackend('native', { wasmThreads: 1 });
  });

  it(`${wide ? 'takes' : 'leaves'} 256 and 512 channels (${isa})`, async () => {
    await tf.setBackend('native');
    tf.tidy(() => {
      for (const c of [256, 512]) {
        const x = tf.zeros([1, 4, 4, c]) as tf.Tensor4D;
        const dy = tf.zeros([1, 4, 4, c]) as tf.Tensor4D;
        assert.equal(conv3x3Winograd(x, tf.zeros([3, 3, c, c]) as tf.Tensor4D) !== undefined, wide, `forward ${c}`);
        assert.equal(convFilterGrad(x, dy, 3, 3, 1, 1) !== undefined, wide, `filter gradient ${c}`);
      }
    });
  });

  for (const c of CASES) {
    it(`conv2d ${c.k}x${c.k} stride ${c.stride} on ${c.n}x${c.h}x${c.w}x${c.ci}->${c.co}: values and gradients`, async () => {
      const ho = Math.floor((c.h + 2 * c.pad - c.k) / c.stride) + 1;
      const xv = randomValues(c.n * c.h * c.w * c.ci, 1);
      const fv = randomValues(c.k * c.k * c.ci * c.co, 2);
      const rv = randomValues(c.n * ho * ho * c.co, 3);
      const run = async (backend: string, op: (x: tf.Tensor4D, f: tf.Tensor4D) => tf.Tensor4D) => {
        await tf.setBackend(backend);
        return tf.tidy(() => {
          const x = tf.tensor4d(xv, [c.n, c.h, c.w, c.ci]);
          const f = tf.tensor4d(fv, [c.k, c.k, c.ci, c.co]);
          const r = tf.tensor4d(rv, [c.n, ho, ho, c.co]);
          const loss = (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(op(a as tf.Tensor4D, b as tf.Tensor4D), r));
          return [op(x, f), ...tf.grads(loss)([x, f])].map((t) => t.dataSync() as Float32Array);
        });
      };
      const p = c.pad;
      const expected = await run('cpu', (x, f) =>
        tf.conv2d(x, f, c.stride, [
          [0, 0],
          [p, p],
          [p, p],
          [0, 0],
        ]),
      );
      const got = await run('native', (x, f) => conv2d(x, f, c.stride, c.pad));
      // ops.test.ts's tolerances, Winograd's 3x wider: its transforms round more than a direct sum, and here over
      // 2304-4608 products per output (measured 1.0e-5 and 1.2e-5 of the largest value at 256 and 512 channels).
      const tol = c.k === 3 && c.stride === 1 ? 3e-5 : 2e-6;
      ['y', 'dx', 'dW'].forEach((name, i) => assertClose(got[i], expected[i], `native ${name}`, tol));
    });
  }

  it('bnReluConv3x3Eval on 512 channels equals the separate ops exactly', async () => {
    await tf.setBackend('native');
    const [fused, separate] = tf.tidy(() => {
      const x = tf.tensor4d(randomValues(2 * 4 * 4 * 512, 11), [2, 4, 4, 512]);
      const f = tf.tensor4d(randomValues(9 * 512 * 512, 12), [3, 3, 512, 512]);
      const p = { gamma: tf.tensor1d(randomValues(512, 13).map((v) => v + 1.2)), beta: tf.tensor1d(randomValues(512, 14)), eps: 1e-5 };
      const mean = tf.tensor1d(randomValues(512, 15));
      const variance = tf.tensor1d(randomValues(512, 16).map((v) => v + 1.1));
      return [bnReluConv3x3Eval(x, p, mean, variance, f), conv2d(batchNormReluEval(x, p, mean, variance), f, 1, 1)].map((t) =>
        t.dataSync(),
      );
    });
    assert.deepEqual(fused, separate);
  });
});
