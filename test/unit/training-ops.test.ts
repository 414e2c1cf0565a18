// The small training-step kernels (native/training_ops.c), on wasm and on the native addon, against the tfjs
// ops they replace on the cpu backend: the attention map's sum of squares over channels and its gradient,
// batch norm's running-statistics update, an evaluation-mode batch norm's input gradient and torch.sign, bit for bit
// (the same float32 operations in the same order); then the attention loss, a training-mode batch norm and
// input gradients through them. The native run skips, saying why, where the addon does not load.
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { switchBackend } from '../../src/engine/backend';
import { batchNormEvalInputGrad, batchNormRunningUpdate, channelSumSquares, channelSumSquaresGrad } from '../../src/engine/kernels';
import { batchNormEval, batchNormReluEval, exactSign } from '../../src/engine/ops';
import { attentionLoss, attentionMap } from '../../src/engine/attention';
import { ParamSet } from '../../src/engine/models/params';
import { nativeAddonStatus } from '../fixtures/native-addon';
import { maxRelError } from '../fixtures/compare';

const { isa, problem } = nativeAddonStatus();

function values(n: number, seed: number): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1);
}

/** fn's outputs on a backend, as arrays. */
async function on(backend: 'cpu' | 'native' | 'wasm', fn: () => tf.Tensor[]): Promise<Float32Array[]> {
  await switchBackend(backend, { wasmThreads: 2 });
  return tf.tidy(() => fn().map((t) => t.dataSync() as Float32Array));
}

for (const kernels of ['wasm', 'native'] as const) {
  const skip = kernels === 'native' ? problem : undefined;
  describe(
    `training-step kernels on ${kernels} (${kernels === 'wasm' ? 'wasm module' : problem ? 'addon not loaded' : isa})`,
    { skip },
    () => {
      before(async () => {
        await switchBackend(kernels, { wasmThreads: 2 });
      });

      // 2 x 9 x 7 pixels of 16 channels, and 5 of 3 (a channel count that is no vector width).
      for (const shape of [
        [2, 9, 7, 16],
        [1, 1, 5, 3],
      ] as [number, number, number, number][]) {
        it(`channelSumSquares and its gradient on [${shape}] equal tf.sum(tf.square(x), -1) and (x * 2) * g exactly`, async () => {
          const size = shape.reduce((a, b) => a * b, 1);
          const run = () => {
            const x = tf.tensor4d(values(size, 1), shape);
            const g = tf.tensor3d(values(size / shape[3], 2), [shape[0], shape[1], shape[2]]);
            return [channelSumSquares(x), channelSumSquaresGrad(x, g)];
          };
          const reference = await on('cpu', run);
          const native = await on(kernels, run);
          assert.deepEqual(native[0], reference[0]);
          assert.deepEqual(native[1], reference[1]);
          assert.equal(native[0].length, size / shape[3]);
        });
      }

      it('batchNormRunningUpdate equals the separate multiplies and adds exactly', async () => {
        const run = () => {
          const v = (seed: number, positive = false) => tf.tensor1d(values(24, seed).map((a) => (positive ? Math.abs(a) + 0.1 : a)));
          const next = batchNormRunningUpdate(v(1), v(2, true), { mean: v(3), variance: v(4, true) }, 0.1, 2048 / 2047);
          return [next.mean, next.variance];
        };
        const reference = await on('cpu', run);
        const native = await on(kernels, run);
        assert.deepEqual(native, reference);
        assert.ok(reference[1].every((a) => a > 0));
      });

      it('batchNormEvalInputGrad equals (dy * step(y)) * scale and dy * scale exactly, NaN and -0 included', async () => {
        const run = () => {
          const y = values(2 * 9 * 7 * 16, 11);
          y[5] = 0;
          y[6] = NaN;
          y[7] = -0;
          const dy = values(y.length, 12);
          dy[8] = -0;
          const args = [tf.tensor4d(dy, [2, 9, 7, 16]), tf.tensor4d(y, [2, 9, 7, 16]), tf.tensor1d(values(16, 13))] as const;
          return [batchNormEvalInputGrad(...args, true), batchNormEvalInputGrad(...args, false)];
        };
        const reference = await on('cpu', run);
        const native = await on(kernels, run);
        assert.deepEqual(native, reference);
        assert.ok(Number.isNaN(native[0][6]), 'NaN in y gives NaN, as tf.step');
      });

      it('exactSign is one kernel and equals the comparisons on cpu: tiny values, 0, -0, NaN and infinities included', async () => {
        const x = values(3 * 5 * 7 * 11, 14);
        [x[0], x[1], x[2], x[3], x[4], x[5], x[6]] = [0, -0, NaN, 1e-9, -1e-9, Infinity, -Infinity];
        const run = () => [exactSign(tf.tensor4d(x, [3, 5, 7, 11])), exactSign(tf.tensor1d(x.subarray(0, 5)))];
        const reference = await on('cpu', run);
        const native = await on(kernels, run);
        assert.deepEqual(native, reference);
        assert.deepEqual([...native[0].subarray(0, 7)], [0, 0, 0, 1, -1, 1, -1]);
        const profile = await tf.profile(() => tf.dispose(run()));
        const names = profile.kernels.map((k) => k.name);
        assert.ok(names.includes('NadSignExact') && !names.includes('Greater'), names.join(', '));
      });

      it('input gradients through evaluation-mode batch norm (+ ReLU) agree with the cpu backend', async () => {
        const run = () =>
          [true, false].map((relu) => {
            const p = { gamma: tf.tensor1d(values(16, 21)), beta: tf.tensor1d(values(16, 22)), eps: 1e-5 };
            const mean = tf.tensor1d(values(16, 23));
            const variance = tf.tensor1d(values(16, 24).map((v) => Math.abs(v) + 0.5));
            const f = (x: tf.Tensor) => tf.sum(tf.mul((relu ? batchNormReluEval : batchNormEval)(x as tf.Tensor4D, p, mean, variance), 3));
            return tf.grad(f)(tf.tensor4d(values(3 * 5 * 4 * 16, 25), [3, 5, 4, 16]));
          });
        const reference = await on('cpu', run);
        const native = await on(kernels, run);
        assert.deepEqual(native, reference);
        assert.ok(reference[0].some((v) => v === 0) && reference[1].every((v) => v !== 0), 'the ReLU masked some, the plain one none');
        const { kernelNames } = await tf.profile(() => void tf.tidy(() => void run()));
        assert.ok(kernelNames.includes('NadBnEvalInputGrad'), `the kernel ran (kernels: ${kernelNames.join(', ')})`);
        assert.ok(!kernelNames.includes('Step'), 'and no tf.step');
      });

      it('the attention loss and its gradient agree with the cpu backend', async () => {
        const run = () => {
          const x = tf.tensor4d(values(3 * 6 * 5 * 16, 5), [3, 6, 5, 16]);
          const t = attentionMap(tf.tensor4d(values(3 * 6 * 5 * 8, 6), [3, 6, 5, 8]));
          const { value, grad } = tf.valueAndGrad((a: tf.Tensor) => attentionLoss(a as tf.Tensor4D, t))(x);
          return [value, grad, t];
        };
        const reference = await on('cpu', run);
        const native = await on(kernels, run);
        ['loss', 'gradient', 'teacher map'].forEach((name, i) => {
          const err = maxRelError(native[i], reference[i]);
          assert.ok(err < 1e-6, `${name}: relative error ${err.toExponential(2)}`);
        });
      });

      it('a training-mode batch norm updates the running statistics as on cpu, and leaves no tensor behind', async () => {
        const run = () => {
          const p = new ParamSet();
          p.batchNorm('bn', 16);
          const x = tf.tensor4d(values(4 * 5 * 5 * 16, 7), [4, 5, 5, 16]);
          p.applyBatchNorm('bn', x, true, true);
          p.applyBatchNorm('bn', tf.mul(x, 3) as tf.Tensor4D, true, true);
          const out = [tf.clone(p.get('bn.running_mean')), tf.clone(p.get('bn.running_var'))];
          p.dispose();
          return out;
        };
        const reference = await on('cpu', run);
        await switchBackend(kernels, { wasmThreads: 2 });
        const before = tf.memory().numTensors;
        const native = await on(kernels, run);
        assert.equal(tf.memory().numTensors, before);
        ['running mean', 'running variance'].forEach((name, i) => {
          const err = maxRelError(native[i], reference[i]);
          assert.ok(err < 1e-6, `${name}: relative error ${err.toExponential(2)}`);
        });
        assert.ok(
          native[1].some((v) => v !== 1),
          'the variance moved',
        );
      });
    },
  );
}
