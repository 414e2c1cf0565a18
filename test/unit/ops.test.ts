// The model ops (conv2d, batch norm) against tfjs's stock ops and gradients on the `cpu` backend:
// values and gradients must agree to float32 rounding, on cpu and on wasm (or, from ops-native*.test.ts,
// on the native backend: the same kernels in the Node-API addon).
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import {
  conv2d,
  batchNormTrain,
  batchNormEval,
  batchNormReluTrain,
  batchNormReluEval,
  bnReluConv3x3Eval,
  bnReluConv3x3EvalGrad,
} from '../../src/engine/ops';
import { registerWasmBackend, switchBackend } from '../../src/engine/backend';
import { sgdUpdate } from '../../src/engine/kernels';
import { loadNativeAddon } from '../../src/engine/kernels/native-addon';
import { relaxedSimdActive } from '../../src/engine/kernels/simd';
import { assertClose, randomValues } from '../fixtures/compare';

type Backend = 'cpu' | 'wasm' | 'native';
// The backend whose kernels are under test: wasm, or native (NAD_TEST_KERNEL_BACKEND, see ops-native.test.ts).
const KERNELS: Backend = process.env.NAD_TEST_KERNEL_BACKEND === 'native' ? 'native' : 'wasm';
const BACKENDS: Backend[] = ['cpu', KERNELS];

/** Runs fn on a backend and returns the values of its outputs as plain arrays. */
async function on(backend: Backend, fn: () => tf.Tensor[]): Promise<Float32Array[]> {
  await tf.setBackend(backend);
  return tf.tidy(() => fn().map((t) => t.dataSync() as Float32Array));
}

interface ConvCase {
  n: number;
  h: number;
  w: number;
  ci: number;
  co: number;
  k: number;
  stride: number;
  pad: number;
}

const CONV_CASES: ConvCase[] = [
  { n: 2, h: 8, w: 8, ci: 3, co: 4, k: 3, stride: 1, pad: 1 },
  { n: 2, h: 7, w: 5, ci: 4, co: 5, k: 3, stride: 1, pad: 0 },
  { n: 3, h: 8, w: 8, ci: 4, co: 6, k: 3, stride: 2, pad: 1 },
  { n: 2, h: 7, w: 9, ci: 3, co: 4, k: 3, stride: 2, pad: 1 },
  { n: 2, h: 9, w: 7, ci: 3, co: 2, k: 3, stride: 2, pad: 0 },
  { n: 2, h: 6, w: 6, ci: 4, co: 8, k: 1, stride: 1, pad: 0 },
  { n: 2, h: 8, w: 8, ci: 4, co: 8, k: 1, stride: 2, pad: 0 },
  { n: 2, h: 7, w: 7, ci: 3, co: 5, k: 1, stride: 2, pad: 0 },
  { n: 1, h: 6, w: 6, ci: 2, co: 3, k: 1, stride: 1, pad: 1 },
  { n: 2, h: 10, w: 10, ci: 3, co: 4, k: 3, stride: 3, pad: 1 },
  // Channel counts the SIMD filter-gradient kernel takes (ci % 4 == 0, co % 8 == 0).
  { n: 2, h: 7, w: 9, ci: 4, co: 8, k: 3, stride: 1, pad: 1 },
  { n: 2, h: 9, w: 7, ci: 8, co: 16, k: 3, stride: 2, pad: 1 },
  { n: 2, h: 8, w: 8, ci: 4, co: 8, k: 3, stride: 2, pad: 0 },
  { n: 2, h: 11, w: 10, ci: 4, co: 8, k: 3, stride: 3, pad: 2 },
  { n: 2, h: 9, w: 9, ci: 12, co: 24, k: 1, stride: 2, pad: 0 },
  // Winograd F(4x4, 3x3) for the forward, the input and the filter gradient (3x3, stride 1, pad 1,
  // ci % 4, co % 8): partial tiles, tile blocks spanning images (8x8: 4 tiles each; 34x35: 90 each).
  { n: 2, h: 5, w: 3, ci: 8, co: 16, k: 3, stride: 1, pad: 1 },
  { n: 3, h: 8, w: 8, ci: 16, co: 8, k: 3, stride: 1, pad: 1 },
  { n: 1, h: 1, w: 2, ci: 8, co: 8, k: 3, stride: 1, pad: 1 },
  { n: 2, h: 34, w: 35, ci: 8, co: 8, k: 3, stride: 1, pad: 1 },
  // Filter gradient with a channel tail (3 colours); stride-2 input gradient by phases (even sizes).
  { n: 2, h: 6, w: 6, ci: 3, co: 16, k: 3, stride: 1, pad: 1 },
  { n: 2, h: 10, w: 8, ci: 8, co: 16, k: 3, stride: 2, pad: 1 },
  // Channels in multiples of 16 (the native addon's full-width Winograd with AVX-512/AVX2: partial tiles,
  // 8-row and 1-row register tiles); 10 images of 12x12x16 are big enough to be split between threads
  // (and the filter gradient into two 8-image chunks summed in order).
  { n: 3, h: 7, w: 9, ci: 16, co: 32, k: 3, stride: 1, pad: 1 },
  { n: 10, h: 12, w: 12, ci: 16, co: 16, k: 3, stride: 1, pad: 1 },
  // Input channels not a multiple of 4 (the native addon's Winograd reads them zero-extended, without a
  // padded copy): RGB at 8 and 16 output channels, threaded; 5 channels (a 1-channel tail group).
  { n: 2, h: 9, w: 7, ci: 3, co: 8, k: 3, stride: 1, pad: 1 },
  { n: 10, h: 12, w: 12, ci: 3, co: 16, k: 3, stride: 1, pad: 1 },
  { n: 2, h: 6, w: 7, ci: 5, co: 16, k: 3, stride: 1, pad: 1 },
  // Output channels not a multiple of 8 (the native addon's Winograd rounds them up and copies co out): the input
  // gradient of an RGB layer (16 -> 3), threaded; its forward (3 -> 3); a 5-channel tail.
  { n: 10, h: 12, w: 12, ci: 16, co: 3, k: 3, stride: 1, pad: 1 },
  { n: 2, h: 9, w: 6, ci: 3, co: 3, k: 3, stride: 1, pad: 1 },
  { n: 3, h: 5, w: 8, ci: 8, co: 13, k: 3, stride: 1, pad: 1 },
];

describe('ops', () => {
  it(`runs the ${process.env.NAD_RELAXED_SIMD === '0' ? 'plain' : 'relaxed (FMA)'} SIMD kernel build`, { skip: KERNELS !== 'wasm' }, () => {
    // Node 20 has relaxed SIMD behind a V8 flag that the loader sets; newer runtimes have it on.
    assert.equal(relaxedSimdActive(), process.env.NAD_RELAXED_SIMD !== '0');
  });
  before(async () => {
    await registerWasmBackend();
    // The native backend starts once (its addon, tfjs-wasm instance and threads), then tests switch to it by name.
    if (KERNELS === 'native') await switchBackend('native', { wasmThreads: 1 });
  });

  for (const c of CONV_CASES) {
    it(`conv2d ${c.k}x${c.k} stride ${c.stride} pad ${c.pad} on ${c.h}x${c.w}x${c.ci}->${c.co}: values and gradients`, async () => {
      const xv = randomValues(c.n * c.h * c.w * c.ci, 1);
      const fv = randomValues(c.k * c.k * c.ci * c.co, 2);
      const ho = Math.floor((c.h + 2 * c.pad - c.k) / c.stride) + 1;
      const wo = Math.floor((c.w + 2 * c.pad - c.k) / c.stride) + 1;
      const rv = randomValues(c.n * ho * wo * c.co, 3);
      const run = (op: (x: tf.Tensor4D, f: tf.Tensor4D) => tf.Tensor4D) => () => {
        const x = tf.tensor4d(xv, [c.n, c.h, c.w, c.ci]);
        const f = tf.tensor4d(fv, [c.k, c.k, c.ci, c.co]);
        const r = tf.tensor4d(rv, [c.n, ho, wo, c.co]);
        const y = op(x, f);
        const [dx, df] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(op(a as tf.Tensor4D, b as tf.Tensor4D), r)))([x, f]);
        return [y, dx, df];
      };
      const pads: [[number, number], [number, number], [number, number], [number, number]] = [
        [0, 0],
        [c.pad, c.pad],
        [c.pad, c.pad],
        [0, 0],
      ];
      const expected = await on(
        'cpu',
        run((x, f) => tf.conv2d(x, f, c.stride, pads)),
      );
      for (const b of BACKENDS) {
        const got = await on(
          b,
          run((x, f) => conv2d(x, f, c.stride, c.pad)),
        );
        // F(4x4, 3x3)'s transforms (coefficients up to 8 and down to 1/24) round several times more
        // than a direct sum (measured 4e-6..8e-6 of the largest value; F(2x2, 3x3) stayed under 2e-6).
        const tol = b !== 'cpu' && c.k === 3 && c.stride === 1 && c.pad === 1 ? 1e-5 : 2e-6;
        ['y', 'dx', 'dW'].forEach((name, i) => assertClose(got[i], expected[i], `${b} ${name}`, tol));
      }
    });
  }

  it("conv2d 16 -> 3 (the RGB layer's input gradient): exactly 0 on a zero neighbourhood, each image as if alone", async () => {
    // PGD takes the sign of this gradient: a pixel whose gradient is 0 must stay 0 (torch.sign), not become +-1e-9 as
    // through a Winograd transform, and the attack's batch size must not move any pixel (attack-cl.test.ts).
    if (KERNELS === 'native') assert.equal(loadNativeAddon().conv2dNarrow, true, 'the addon takes 3 output channels');
    await tf.setBackend(KERNELS);
    const [h, w] = [12, 20];
    const xv = randomValues(5 * h * w * 16, 8).map((v, q) => (Math.floor(q / (w * 16)) % h < 6 ? 0 : v)); // top half zero
    const fv = randomValues(9 * 16 * 3, 9);
    const [all, one] = tf.tidy(() => {
      const x = tf.tensor4d(xv, [5, h, w, 16]);
      const f = tf.tensor4d(fv, [3, 3, 16, 3]);
      return [conv2d(x, f, 1, 1).dataSync(), conv2d(tf.slice(x, [3, 0, 0, 0], [1, h, w, 16]), f, 1, 1).dataSync()];
    });
    const size = h * w * 3;
    assert.deepEqual(all.subarray(3 * size, 4 * size), one, 'image 3 alone');
    for (let img = 0; img < 5; img++)
      for (let q = 0; q < 5 * w * 3; q++) assert.equal(all[img * size + q], 0, `image ${img} value ${q} (rows 0-4 see only zeros)`);
  });

  it('conv2d skips the input gradient when only the filter needs one', async () => {
    await tf.setBackend(KERNELS);
    tf.tidy(() => {
      const x = tf.tensor4d(randomValues(2 * 6 * 6 * 3, 4), [2, 6, 6, 3]);
      const f = tf.variable(tf.tensor4d(randomValues(27 * 4, 5), [3, 3, 3, 4]));
      const before = tf.memory().numTensors;
      const { grads } = tf.variableGrads(() => tf.sum(conv2d(x, f, 1, 1)), [f]);
      assert.deepEqual(Object.keys(grads), [f.name]);
      // y, the loss, the filter gradient: no input gradient was materialised and kept.
      assert.ok(tf.memory().numTensors - before <= 4);
      f.dispose();
    });
  });

  for (const [h, c, relu] of [
    [5, 3, 0],
    [8, 16, 0],
    [5, 3, 1],
    [8, 16, 1],
  ]) {
    it(`batchNorm${relu ? 'Relu' : ''}Train on 3x${h}x${h}x${c}: values, statistics and gradients (incl. through mean/variance)`, async () => {
      const n = 3;
      const xv = randomValues(n * h * h * c, 6).map((v, i) => v * 2 + (i % c) * 0.5);
      const gv = randomValues(c, 7).map((v) => v + 1.5);
      const bv = randomValues(c, 8);
      const rv = randomValues(n * h * h * c, 9);
      const r2 = randomValues(c, 10);
      const r3 = randomValues(c, 11);
      const eps = 1e-5;
      const stock = (x: tf.Tensor4D, g: tf.Tensor1D, b: tf.Tensor1D) => {
        const m = tf.moments(x, [0, 1, 2]);
        const bn = tf.batchNorm4d(x, m.mean as tf.Tensor1D, m.variance as tf.Tensor1D, b, g, eps);
        return { y: relu ? tf.relu(bn) : bn, mean: m.mean as tf.Tensor1D, variance: m.variance as tf.Tensor1D };
      };
      const ours = (x: tf.Tensor4D, g: tf.Tensor1D, b: tf.Tensor1D) =>
        (relu ? batchNormReluTrain : batchNormTrain)(x, { gamma: g, beta: b, eps });
      const run = (op: typeof ours) => () => {
        const x = tf.tensor4d(xv, [n, h, h, c]);
        const g = tf.tensor1d(gv);
        const b = tf.tensor1d(bv);
        const out = op(x, g, b);
        const loss = (a: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) => {
          const o = op(a as tf.Tensor4D, gg as tf.Tensor1D, bb as tf.Tensor1D);
          return tf.addN([
            tf.sum(tf.mul(o.y, tf.tensor4d(rv, [n, h, h, c]))),
            tf.sum(tf.mul(o.mean, tf.tensor1d(r2))),
            tf.sum(tf.mul(o.variance, tf.tensor1d(r3))),
          ]);
        };
        const yOnly = (a: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) =>
          tf.sum(tf.mul(op(a as tf.Tensor4D, gg as tf.Tensor1D, bb as tf.Tensor1D).y, tf.tensor4d(rv, [n, h, h, c])));
        return [out.y, out.mean, out.variance, ...tf.grads(loss)([x, g, b]), ...tf.grads(yOnly)([x, g, b])];
      };
      const expected = await on('cpu', run(stock));
      for (const be of BACKENDS) {
        const got = await on(be, run(ours));
        ['y', 'mean', 'variance', 'dx', 'dgamma', 'dbeta', 'dx (y only)', 'dgamma (y only)', 'dbeta (y only)'].forEach((name, i) =>
          assertClose(got[i], expected[i], `${be} ${name}`, 1e-5),
        );
      }
    });
  }

  it('batchNormEval and batchNormReluEval use the running statistics, with gradients', async () => {
    const xv = Float32Array.from([1, 2, 3, -4, 0.5, 6, -1, 2]);
    const run = (relu: boolean) => () => {
      const x = tf.tensor4d(xv, [2, 2, 1, 2]);
      const p = { gamma: tf.tensor1d([2, 1]), beta: tf.tensor1d([0, -1]), eps: 0 };
      const op = (a: tf.Tensor) =>
        (relu ? batchNormReluEval : batchNormEval)(a as tf.Tensor4D, p, tf.tensor1d([1, 2]), tf.tensor1d([4, 1]));
      return [op(x), tf.grad((a: tf.Tensor) => tf.sum(tf.mul(op(a), tf.reshape(tf.range(1, 9), [2, 2, 1, 2]))))(x)];
    };
    const expected = (relu: boolean) => {
      const y = [0, 2 - 3, 2, -4 - 3, -0.5, 6 - 3, -2, 2 - 3].map((v) => (relu ? Math.max(v, 0) : v));
      // gamma / sqrt(var) is 1 for both channels: dx = upstream (1..8), masked where the ReLU clipped.
      return [Float32Array.from(y), Float32Array.from(y.map((v, i) => (relu && v <= 0 ? 0 : i + 1)))];
    };
    for (const be of BACKENDS) {
      for (const relu of [false, true]) {
        const [y, dx] = await on(be, run(relu));
        const [ey, edx] = expected(relu);
        assertClose(y, ey, `${be} relu=${relu} y`);
        assertClose(dx, edx, `${be} relu=${relu} dx`);
      }
    }
  });

  it('bnReluConv3x3Eval (batch norm + ReLU fused into the Winograd input on wasm) equals the separate ops exactly', async () => {
    for (const b of BACKENDS) {
      const [fused, separate] = await on(b, () => {
        const x = tf.tensor4d(randomValues(3 * 9 * 10 * 8, 11), [3, 9, 10, 8]);
        const f = tf.tensor4d(randomValues(9 * 8 * 16, 12), [3, 3, 8, 16]);
        const p = { gamma: tf.tensor1d(randomValues(8, 13).map((v) => v + 1.2)), beta: tf.tensor1d(randomValues(8, 14)), eps: 1e-5 };
        const mean = tf.tensor1d(randomValues(8, 15));
        const variance = tf.tensor1d(randomValues(8, 16).map((v) => v + 1.1));
        return [bnReluConv3x3Eval(x, p, mean, variance, f), conv2d(batchNormReluEval(x, p, mean, variance), f, 1, 1)];
      });
      assert.deepEqual(fused, separate, b);
    }
  });

  it("bnReluConv3x3EvalGrad: the separate ops' values and gradients (x, gamma, beta, running statistics, filter)", async () => {
    const run = (fused: boolean) => () => {
      const x = tf.tensor4d(randomValues(3 * 9 * 10 * 8, 31), [3, 9, 10, 8]);
      const f = tf.tensor4d(randomValues(9 * 8 * 16, 32), [3, 3, 8, 16]);
      const gamma = tf.tensor1d(randomValues(8, 33).map((v) => v + 1.2));
      const beta = tf.tensor1d(randomValues(8, 34));
      const mean = tf.tensor1d(randomValues(8, 35));
      const variance = tf.tensor1d(randomValues(8, 36).map((v) => v + 1.1));
      const r = tf.tensor4d(randomValues(3 * 9 * 10 * 16, 37), [3, 9, 10, 16]);
      const op = (xs: tf.Tensor, g: tf.Tensor, b: tf.Tensor, m: tf.Tensor, v: tf.Tensor, w: tf.Tensor) => {
        const p = { gamma: g as tf.Tensor1D, beta: b as tf.Tensor1D, eps: 1e-5 };
        const [x4, m1, v1, w4] = [xs as tf.Tensor4D, m as tf.Tensor1D, v as tf.Tensor1D, w as tf.Tensor4D];
        return fused ? bnReluConv3x3EvalGrad(x4, p, m1, v1, w4) : conv2d(batchNormReluEval(x4, p, m1, v1), w4, 1, 1);
      };
      const inputs = [x, gamma, beta, mean, variance, f];
      const y = op(x, gamma, beta, mean, variance, f);
      const grads = tf.grads((...a: tf.Tensor[]) => tf.sum(tf.mul(op(a[0], a[1], a[2], a[3], a[4], a[5]), r)))(inputs);
      return [y, ...grads];
    };
    const expected = await on('cpu', run(false));
    const names = ['y', 'dx', 'dGamma', 'dBeta', 'dMean', 'dVar', 'dW'];
    for (const b of BACKENDS) {
      const got = await on(b, run(true));
      // The separate ops on the same backend as the yardstick for the per-channel sums (dVar sums 270 products per
      // channel of the Winograd-rounded gradient, whose cancellations the unfused path has as well).
      const separate = b === 'cpu' ? expected : await on(b, run(false));
      names.forEach((name, i) => {
        assertClose(got[i], expected[i], `${b} ${name}`, b === 'cpu' ? 2e-6 : name === 'dVar' ? 5e-5 : 1e-5);
        assertClose(got[i], separate[i], `${b} ${name} against the separate ops there`, b === 'cpu' ? 2e-6 : 1e-5);
      });
    }
    // Where ours run, dx took the kernel with the ReLU mask from x (relu(bn(x)) never stored).
    await tf.setBackend(KERNELS);
    const x = tf.variable(tf.tensor4d(randomValues(2 * 8 * 8 * 8, 38), [2, 8, 8, 8]));
    const p = { gamma: tf.ones([8]) as tf.Tensor1D, beta: tf.zeros([8]) as tf.Tensor1D, eps: 1e-5 };
    const stats = [tf.zeros([8]) as tf.Tensor1D, tf.ones([8]) as tf.Tensor1D] as const;
    const f = tf.tensor4d(randomValues(9 * 8 * 8, 39), [3, 3, 8, 8]);
    const prof = await tf.profile(() => tf.grad((a: tf.Tensor) => tf.sum(bnReluConv3x3EvalGrad(a as tf.Tensor4D, p, ...stats, f)))(x));
    const ran = prof.kernels.map((k) => k.name);
    tf.dispose([x, p.gamma, p.beta, ...stats, f, prof.result as tf.Tensor]);
    assert.ok(ran.includes('NadBnEvalReluGradX') && !ran.includes('NadBatchNormEval'), ran.join(', '));
  });

  it('gives the same results with the SIMD kernels switched off (NAD_STOCK_KERNELS)', async () => {
    const run = () => {
      const x = tf.tensor4d(randomValues(2 * 8 * 8 * 8, 20), [2, 8, 8, 8]);
      const f = tf.tensor4d(randomValues(9 * 8 * 16, 21), [3, 3, 8, 16]);
      const p = { gamma: tf.ones([16]) as tf.Tensor1D, beta: tf.zeros([16]) as tf.Tensor1D, eps: 1e-5 };
      const loss = (a: tf.Tensor, b: tf.Tensor) =>
        tf.sum(tf.square(batchNormReluTrain(conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, 1), p).y));
      return tf.grads(loss)([x, f]);
    };
    const fast = await on(KERNELS, run);
    tf.env().set('NAD_STOCK_KERNELS', true);
    try {
      const stock = await on(KERNELS, run);
      fast.forEach((v, i) => assertClose(v, stock[i], `grad ${i}`, 1e-5));
    } finally {
      tf.env().set('NAD_STOCK_KERNELS', false);
    }
  });

  it('sgdUpdate follows torch.optim.SGD (momentum, weight decay, Nesterov or not)', async () => {
    for (const nesterov of [false, true]) {
      const run = () => {
        const out = sgdUpdate(tf.tensor1d(randomValues(37, 30)), tf.tensor1d(randomValues(37, 31)), tf.tensor1d(randomValues(37, 32)), {
          lr: 0.1,
          momentum: 0.9,
          weightDecay: 1e-4,
          nesterov,
        });
        return [out.param, out.buffer];
      };
      const p = randomValues(37, 30);
      const g = randomValues(37, 31);
      const b = randomValues(37, 32);
      const gg = g.map((v, i) => v + 1e-4 * p[i]);
      const nb = b.map((v, i) => 0.9 * v + gg[i]);
      const np = p.map((v, i) => v - 0.1 * (nesterov ? gg[i] + 0.9 * nb[i] : nb[i]));
      for (const be of BACKENDS) {
        const [param, buffer] = await on(be, run);
        assertClose(param, np, `${be} nesterov=${nesterov} param`);
        assertClose(buffer, nb, `${be} nesterov=${nesterov} buffer`);
      }
    }
  });

  it('keeps tf.memory().numTensors flat over repeated training steps', async () => {
    for (const be of BACKENDS) {
      await tf.setBackend(be);
      const f = tf.variable(tf.tensor4d(randomValues(27 * 4, 12), [3, 3, 3, 4]));
      const gamma = tf.variable(tf.ones([4])) as tf.Variable<tf.Rank.R1>;
      const beta = tf.variable(tf.zeros([4])) as tf.Variable<tf.Rank.R1>;
      const x = tf.tensor4d(randomValues(2 * 8 * 8 * 3, 13), [2, 8, 8, 3]);
      const step = () =>
        tf.tidy(() => {
          const { grads } = tf.variableGrads(
            () => tf.mean(tf.square(batchNormTrain(conv2d(x, f, 2, 1), { gamma, beta, eps: 1e-5 }).y)),
            [f, gamma, beta],
          );
          f.assign(tf.sub(f, tf.mul(grads[f.name], 0.1)));
        });
      step();
      const count = tf.memory().numTensors;
      for (let i = 0; i < 3; i++) step();
      assert.equal(tf.memory().numTensors, count, be);
      tf.dispose([f, gamma, beta, x]);
    }
  });
});
