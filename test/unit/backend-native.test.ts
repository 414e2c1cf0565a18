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
import { nativeAddonPath } from '../../src/engine/kernels/native-addon';
import { convBnStep, maxRelativeError } from '../fixtures/model/conv-bn-step';
import { nativeAddonStatus } from '../fixtures/native-addon';

const { isa, problem } = nativeAddonStatus();

const step = (): Float32Array[] => convBnStep({ images: 10, size: 12, inChannels: 16, midChannels: 32, outChannels: 32 });

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
    env: {
      ...Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NAD_BACKEND')),
      NAD_NATIVE_ADDON: addon,
    },
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
    const native = step();
    await switchBackend('cpu');
    const reference = step();
    await switchBackend('native', { wasmThreads: 2 });
    ['loss', 'dx', 'dW1', 'dW2', 'dgamma', 'dbeta'].forEach((name, i) => {
      const err = maxRelativeError(native[i], reference[i]);
      assert.ok(err < 1e-5, `${name}: relative error ${err.toExponential(2)}`);
    });
  });

  it('agrees with the wasm kernels to rounding, and is deterministic across its threads', async () => {
    const a = step();
    const b = step();
    a.forEach((v, i) => assert.deepEqual(v, b[i]));
    await switchBackend('wasm', { wasmThreads: 2 });
    const wasm = step();
    await switchBackend('native', { wasmThreads: 2 });
    // Each is within 1e-5 of the cpu backend (the test above, backend.test.ts): so within 2e-5 of each other.
    wasm.forEach((v, i) => {
      const err = maxRelativeError(a[i], v);
      assert.ok(err < 2e-5, `output ${i}: relative error ${err.toExponential(2)}`);
    });
  });

  it('keeps tf.memory().numTensors flat across steps', () => {
    step();
    const n = tf.memory().numTensors;
    step();
    step();
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
