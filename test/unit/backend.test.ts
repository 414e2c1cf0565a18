// Backend selection and the multi-threaded wasm build under Node (the threads workaround and the
// kernels' helper thread): it must start, report its threads, and compute what the cpu backend does.
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, switchBackend, currentBackend } from '../../src/engine/backend';
import { conv2d, batchNormReluTrain } from '../../src/engine/ops';
import { runBenchmark } from '../../src/engine/bench';

const cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
// backend-threads.test.ts reruns this suite with more threads than cores (several helper threads).
const THREADS = Number(process.env.NAD_TEST_WASM_THREADS ?? 2);

function values(n: number, seed: number): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1);
}

/** Conv + fused BN/ReLU, values and all gradients, big enough to be split between threads. */
function convBnStep(): Float32Array[] {
  return tf.tidy(() => {
    const x = tf.tensor4d(values(8 * 16 * 16 * 16, 1), [8, 16, 16, 16]);
    const f1 = tf.tensor4d(values(9 * 16 * 16, 2), [3, 3, 16, 16]);
    const f2 = tf.tensor4d(values(9 * 16 * 32, 3), [3, 3, 16, 32]);
    const gamma = tf.tensor1d(values(16, 4).map((v) => v + 1.5));
    const beta = tf.tensor1d(values(16, 5));
    const r = tf.tensor4d(values(8 * 8 * 8 * 32, 6), [8, 8, 8, 32]);
    const loss = (a: tf.Tensor, w1: tf.Tensor, w2: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
      const h = batchNormReluTrain(conv2d(a as tf.Tensor4D, w1 as tf.Tensor4D, 1, 1), {
        gamma: g as tf.Tensor1D,
        beta: b as tf.Tensor1D,
        eps: 1e-5,
      }).y;
      return tf.sum(tf.mul(conv2d(h, w2 as tf.Tensor4D, 2, 1), r));
    };
    const { value, grads } = tf.valueAndGrads(loss)([x, f1, f2, gamma, beta]);
    return [value, ...grads].map((t) => t.dataSync() as Float32Array);
  });
}

function maxRelativeError(a: Float32Array, b: Float32Array): number {
  let scale = 1e-3;
  let worst = 0;
  for (let i = 0; i < b.length; i++) {
    scale = Math.max(scale, Math.abs(b[i]));
    worst = Math.max(worst, Math.abs(a[i] - b[i]));
  }
  return worst / scale;
}

describe(`backend (wasm, ${THREADS} threads)`, { skip: cores < 2 ? 'needs 2 cores' : false }, () => {
  before(async () => {
    await initBackend('wasm', { wasmThreads: THREADS });
  });

  it('starts multi-threaded wasm under Node and says so', () => {
    const info = currentBackend();
    assert.equal(info?.name, 'wasm');
    assert.equal(info?.threads, THREADS);
    assert.match(info?.description ?? '', new RegExp(`${THREADS} threads, NAD kernels on ${THREADS} threads`));
  });

  it('computes a conv/BN/ReLU step and its gradients as the cpu backend does', async () => {
    const threaded = convBnStep();
    await switchBackend('cpu');
    const reference = convBnStep();
    await switchBackend('wasm');
    ['loss', 'dx', 'dW1', 'dW2', 'dgamma', 'dbeta'].forEach((name, i) => {
      const err = maxRelativeError(threaded[i], reference[i]);
      assert.ok(err < 1e-5, `${name}: relative error ${err.toExponential(2)}`);
    });
  });

  it('is deterministic: threads share work dynamically but sums keep a fixed order', () => {
    const a = convBnStep();
    const b = convBnStep();
    a.forEach((v, i) => assert.deepEqual(v, b[i]));
  });

  it('keeps tf.memory().numTensors flat across threaded steps', () => {
    convBnStep();
    const n = tf.memory().numTensors;
    convBnStep();
    convBnStep();
    assert.equal(tf.memory().numTensors, n);
  });

  it(
    'runBenchmark measures the NAD step and inference and reports the CLI fields',
    { skip: THREADS !== 2 ? 'once is enough' : false },
    async () => {
      const r = await runBenchmark({ backends: ['tensorflow', 'wasm'], steps: 1, warmup: 1, pytorch: false });
      assert.equal(r.backend, 'wasm');
      assert.ok((r.nadImgPerSec ?? 0) > 0 && (r.inferenceImgPerSec ?? 0) > 0);
      assert.equal(r.pytorchImgPerSec, null);
      const wasm = r.backends.find((b) => b.backend === 'wasm');
      assert.equal(wasm?.numTensorsFlat, true);
      assert.equal(r.backends.find((b) => b.backend === 'tensorflow')?.available !== undefined, true);
    },
  );
});
