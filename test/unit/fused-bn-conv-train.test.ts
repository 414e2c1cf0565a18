// The fused training path of batch norm + ReLU + 3x3 convolution (ops/conv.ts's bnReluConv3x3Train: bn_stats,
// conv3x3_winograd_bn, conv_filter_grad_winograd_bn, bn_relu_backward_x), on wasm and on the native addon: the
// output, dx, dFilter, dGamma, dBeta and the running statistics bit for bit those of the separate ops
// (NAD_FUSED_TRAIN=0: batchNormReluTrain, then conv2d) and close to the cpu backend's; no tensors left behind over
// several steps; the fused kernels ran; and less peak memory. The native run skips, saying why, where the addon
// does not load.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { switchBackend } from '../../src/engine/backend';
import { ParamSet } from '../../src/engine/models/params';
import { nativeAddonStatus } from '../fixtures/native-addon';
import { assertClose, randomValues } from '../fixtures/compare';

const { isa, problem } = nativeAddonStatus();
type Shape4 = [number, number, number, number];
const OUTPUTS = ['y', 'dx', 'dFilter', 'dGamma', 'dBeta', 'running mean', 'running var'];

/**
 * x [n, h, w, ci], filter [3, 3, ci, co]; `constant`: channel 0 of x constant (zero variance, and with beta 0 a ReLU
 * input of exactly 0). The cpu backend's mean of such a channel is 0.49999997 (a sum times 1 / count), which
 * 1 / sqrt(eps) amplifies into noise: compared with cpu without it.
 */
function inputs(shape: Shape4, co: number, constant: boolean) {
  const [n, h, w, ci] = shape;
  const xv = randomValues(n * h * w * ci, 3).map((v, i) => (constant && i % ci === 0 ? 0.5 : 2 * v + 0.3));
  const gv = randomValues(ci, 5).map((v) => v + 1.1);
  const bv = randomValues(ci, 6).map((v, i) => (i === 0 ? 0 : v));
  return {
    x: tf.tensor4d(xv, shape),
    filter: tf.tensor4d(
      randomValues(9 * ci * co, 4).map((v) => v * 0.3),
      [3, 3, ci, co],
    ),
    gamma: tf.tensor1d(gv),
    beta: tf.tensor1d(bv),
    r: tf.tensor4d(randomValues(n * h * w * co, 7), [n, h, w, co]),
  };
}

/** One training step's results through ParamSet.bnReluConv3x3 (the model's call): y, the four gradients, the running statistics. */
function step(shape: Shape4, co: number, constant = true): tf.Tensor[] {
  return tf.tidy(() => stepIn(shape, co, constant));
}

function stepIn(shape: Shape4, co: number, constant: boolean): tf.Tensor[] {
  const { x, filter, gamma, beta, r } = inputs(shape, co, constant);
  const p = new ParamSet();
  p.batchNorm('bn', shape[3]);
  p.get('bn.weight').assign(gamma);
  p.get('bn.bias').assign(beta);
  const g = p.get('bn.weight') as tf.Tensor1D;
  const b = p.get('bn.bias') as tf.Tensor1D;
  let y: tf.Tensor | undefined;
  const grads = tf.grads((xx, ff, gg, bb) => {
    void gg;
    void bb;
    y = tf.keep(p.bnReluConv3x3('bn', xx as tf.Tensor4D, ff as tf.Tensor4D, true));
    return tf.sum(tf.mul(y, r));
  })([x, filter, g, b]);
  const out = [y as tf.Tensor, ...grads, tf.clone(p.get('bn.running_mean')), tf.clone(p.get('bn.running_var'))];
  p.dispose();
  return out;
}

async function on(backend: 'cpu' | 'native' | 'wasm', fused: boolean, fn: () => tf.Tensor[]): Promise<Float32Array[]> {
  await switchBackend(backend, { wasmThreads: 2 });
  process.env.NAD_FUSED_TRAIN = fused ? '1' : '0';
  try {
    return tf.tidy(() => fn().map((t) => t.dataSync() as Float32Array));
  } finally {
    delete process.env.NAD_FUSED_TRAIN;
  }
}

const CASES: Array<{ shape: Shape4; co: number; why: string }> = [
  { shape: [16, 8, 8, 16], co: 16, why: 'two filter-gradient chunks of 8 images, split between threads' },
  { shape: [3, 9, 7, 32], co: 16, why: 'maps that are no multiple of the 4x4 tiles' },
  { shape: [2, 6, 10, 24], co: 8, why: 'channels that are no AVX-512 vector width (the 128-bit kernels)' },
];

for (const kernels of ['wasm', 'native'] as const) {
  const skip = kernels === 'native' ? problem : undefined;
  describe(`fused BN + ReLU + conv3x3 training on ${kernels} (${kernels === 'wasm' ? 'wasm module' : (problem ?? isa)})`, { skip }, () => {
    before(async () => {
      await switchBackend(kernels, { wasmThreads: 2 });
    });
    after(() => {
      delete process.env.NAD_FUSED_TRAIN;
    });

    for (const c of CASES) {
      it(`[${c.shape}] -> ${c.co} (${c.why}): bit for bit the separate ops, close to cpu`, async () => {
        for (const constant of [true, false]) {
          const fused = await on(kernels, true, () => step(c.shape, c.co, constant));
          const separate = await on(kernels, false, () => step(c.shape, c.co, constant));
          OUTPUTS.forEach((name, i) => assert.deepEqual(fused[i], separate[i], `${name}: fused and separate differ`));
          if (constant) continue;
          const cpu = await on('cpu', true, () => step(c.shape, c.co, constant));
          OUTPUTS.forEach((name, i) => assertClose(fused[i], cpu[i], `${kernels} ${name} vs cpu`, 1e-5));
          assert.ok(fused[0].some((v) => v !== 0) && fused[3].some((v) => v !== 0), 'nontrivial outputs');
        }
      });
    }

    it('the fused kernels run, and the separate ones do not', async () => {
      await switchBackend(kernels, { wasmThreads: 2 });
      const { kernelNames } = await tf.profile(() => tf.dispose(step([4, 8, 8, 16], 16)));
      for (const k of ['NadBatchNormStats', 'NadConv3x3WinogradBn', 'NadConvFilterGradBn', 'NadBnReluBackwardX'])
        assert.ok(kernelNames.includes(k), `${k} ran (kernels: ${kernelNames.join(', ')})`);
      for (const k of ['NadBatchNormForward', 'NadBatchNormBackward']) assert.ok(!kernelNames.includes(k), `no ${k}`);
    });

    it('leaves no tensors behind over several steps, and peaks lower than the separate ops', async () => {
      await switchBackend(kernels, { wasmThreads: 2 });
      const peak: Record<string, number> = {};
      for (const fused of [true, false]) {
        process.env.NAD_FUSED_TRAIN = fused ? '1' : '0';
        tf.dispose(step([8, 16, 16, 16], 16)); // warm up: kernels registered, backend allocations made
        const before = tf.memory().numTensors;
        for (let i = 0; i < 3; i++) tf.dispose(step([8, 16, 16, 16], 16));
        assert.equal(tf.memory().numTensors, before, `fused ${fused}: no tensors left`);
        const prof = await tf.profile(() => void tf.dispose(step([8, 16, 16, 16], 16)));
        peak[String(fused)] = prof.peakBytes - prof.newBytes;
      }
      delete process.env.NAD_FUSED_TRAIN;
      // One activation (8 x 16 x 16 x 16 floats, 128 KB) fewer alive at the peak.
      assert.ok(peak.true <= peak.false - 8 * 16 * 16 * 16 * 4, `peak bytes fused ${peak.true}, separate ${peak.false}`);
    });
  });
}
