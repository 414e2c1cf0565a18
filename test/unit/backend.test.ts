// Backend selection and the multi-threaded wasm build under Node (the threads workaround and the
// kernels' helper thread): it must start, report its threads, and compute what the cpu backend does.
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, switchBackend, currentBackend } from '../../src/engine/backend';
import { runBenchmark } from '../../src/engine/bench';
import { convBnStep, maxRelativeError } from '../fixtures/model/conv-bn-step';

const cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
// backend-threads.test.ts reruns this suite with more threads than cores (several helper threads).
const THREADS = Number(process.env.NAD_TEST_WASM_THREADS ?? 2);

const step = (): Float32Array[] => convBnStep({ images: 8, size: 16, inChannels: 16, midChannels: 16, outChannels: 32 });

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
    const threaded = step();
    await switchBackend('cpu');
    const reference = step();
    await switchBackend('wasm');
    ['loss', 'dx', 'dW1', 'dW2', 'dgamma', 'dbeta'].forEach((name, i) => {
      const err = maxRelativeError(threaded[i], reference[i]);
      assert.ok(err < 1e-5, `${name}: relative error ${err.toExponential(2)}`);
    });
  });

  it('is deterministic: threads share work dynamically but sums keep a fixed order', () => {
    const a = step();
    const b = step();
    a.forEach((v, i) => assert.deepEqual(v, b[i]));
  });

  it('keeps tf.memory().numTensors flat across threaded steps', () => {
    step();
    const n = tf.memory().numTensors;
    step();
    step();
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
