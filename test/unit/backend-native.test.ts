// The `native` backend (tfjs-wasm with our kernels in the Node-API addon, native/addon/): it starts,
// says which instruction set and threads it runs, computes a threaded conv/BN/ReLU step as the cpu
// backend does, deterministically and without leaking tensors; `auto` prefers it to wasm, and where the
// addon is missing or broken `auto` falls back to wasm with a one-line reason (in a child process, as a
// process chooses its backend once).
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { currentBackend, initBackend, switchBackend } from '../../src/engine/backend';
import { loadNativeAddon, nativeAddonPath } from '../../src/engine/kernels/native-addon';
import { batchNormReluTrain, conv2d } from '../../src/engine/ops';

let problem: string | undefined;
let isa = '';
try {
  isa = loadNativeAddon().isa;
} catch (e) {
  problem = e instanceof Error ? e.message : String(e);
}

function values(n: number, seed: number): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1);
}

/** Conv + BN/ReLU + stride-2 conv, loss and all gradients; big enough for the addon's threads (10 images: two filter-gradient chunks). */
function convBnStep(): Float32Array[] {
  return tf.tidy(() => {
    const x = tf.tensor4d(values(10 * 12 * 12 * 16, 1), [10, 12, 12, 16]);
    const f1 = tf.tensor4d(values(9 * 16 * 32, 2), [3, 3, 16, 32]);
    const f2 = tf.tensor4d(values(9 * 32 * 32, 3), [3, 3, 32, 32]);
    const gamma = tf.tensor1d(values(32, 4).map((v) => v + 1.5));
    const beta = tf.tensor1d(values(32, 5));
    const r = tf.tensor4d(values(10 * 6 * 6 * 32, 6), [10, 6, 6, 32]);
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

/** The instruction set the addon should pick here, from the CPU's flags (Linux), else undefined. */
function expectedIsa(): string | undefined {
  if (process.platform !== 'linux' || process.arch !== 'x64') return undefined;
  const flags = new Set((/^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? '').trim().split(/\s+/));
  if (['avx512f', 'avx512bw', 'avx512vl'].every((f) => flags.has(f))) return 'avx512';
  return flags.has('avx2') && flags.has('fma') ? 'avx2' : 'portable';
}

/** initBackend('auto') in a child process with NAD_NATIVE_ADDON set: what it picked and why. */
function autoWith(addon: string): { name: string; fallbackReasons: string[] } {
  const script = `require('./src/engine/backend').initBackend('auto', { wasmThreads: 1 }).then((i) => { process.stdout.write(JSON.stringify(i)); process.exit(0); });`;
  const out = execFileSync(process.execPath, ['--import', 'tsx', '-e', script], {
    cwd: join(__dirname, '..', '..'),
    env: { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NAD_BACKEND')), NAD_NATIVE_ADDON: addon },
    encoding: 'utf8',
  });
  return JSON.parse(out) as { name: string; fallbackReasons: string[] };
}

describe(`native backend (${problem ? 'addon not loaded' : isa})`, { skip: problem }, () => {
  before(async () => {
    await initBackend('native', { wasmThreads: 2 });
  });

  it('starts, and says which instruction set and threads its kernels run', () => {
    const info = currentBackend();
    assert.equal(info?.name, 'native');
    assert.equal(tf.getBackend(), 'native');
    const expected = expectedIsa();
    if (expected && !process.env.NAD_NATIVE_ISA) assert.equal(isa, expected);
    const names: Record<string, string> = { avx512: 'AVX-512', avx2: 'AVX2\\+FMA', portable: 'portable C' };
    assert.match(info?.description ?? '', new RegExp(`^native \\(NAD kernels ${names[isa]} on \\d+ threads?; the rest tfjs-wasm`));
  });

  it('computes a threaded conv/BN/ReLU step and its gradients as the cpu backend does', async () => {
    const native = convBnStep();
    await switchBackend('cpu');
    const reference = convBnStep();
    await switchBackend('native', { wasmThreads: 2 });
    ['loss', 'dx', 'dW1', 'dW2', 'dgamma', 'dbeta'].forEach((name, i) => {
      const err = maxRelativeError(native[i], reference[i]);
      assert.ok(err < 1e-5, `${name}: relative error ${err.toExponential(2)}`);
    });
  });

  it('agrees with the wasm kernels to rounding, and is deterministic across its threads', async () => {
    const a = convBnStep();
    const b = convBnStep();
    a.forEach((v, i) => assert.deepEqual(v, b[i]));
    await switchBackend('wasm', { wasmThreads: 2 });
    const wasm = convBnStep();
    await switchBackend('native', { wasmThreads: 2 });
    // Each is within 1e-5 of the cpu backend (the test above, backend.test.ts): so within 2e-5 of each other.
    wasm.forEach((v, i) => {
      const err = maxRelativeError(a[i], v);
      assert.ok(err < 2e-5, `output ${i}: relative error ${err.toExponential(2)}`);
    });
  });

  it('keeps tf.memory().numTensors flat across steps', () => {
    convBnStep();
    const n = tf.memory().numTensors;
    convBnStep();
    convBnStep();
    assert.equal(tf.memory().numTensors, n);
  });

  it('auto picks native over wasm, and falls back to wasm saying why in one line when the addon is missing or broken', (t) => {
    try {
      require.resolve('@tensorflow/tfjs-node');
      t.skip('tfjs-node is installed: auto picks it before native');
      return;
    } catch {
      // not installed: auto's first candidate is native
    }
    const dir = mkdtempSync(join(os.tmpdir(), 'nad-native-test-'));
    const broken = join(dir, 'broken.node');
    writeFileSync(broken, 'not a shared object');
    assert.equal(autoWith(nativeAddonPath() ?? '').name, 'native');
    const missing = autoWith(join(dir, 'missing.node'));
    assert.equal(missing.name, 'wasm');
    assert.match(missing.fallbackReasons.join('\n'), /NAD_NATIVE_ADDON names .*missing\.node, which does not exist/);
    const bad = autoWith(broken);
    assert.equal(bad.name, 'wasm');
    assert.match(bad.fallbackReasons.join('\n'), /native kernels .*broken\.node did not load \(.+\)/);
    for (const r of [...missing.fallbackReasons, ...bad.fallbackReasons]) assert.ok(!r.includes('\n'), `one line: ${r}`);
  });
});
