// The Trojan attack's optimised trigger (TrojanNN) against PyTorch: BackdoorBench's neuron selection and
// trigger optimisation run by test/fixtures/attacks/make_trojan_fixture.py with torch 1.13 on the NAD
// teacher; the trigger added as TrojanTrigger adds it, pixel by pixel; then the attack end to end on
// embedded digits (a clean model trained first, a mask file, the run's trigger returned), bad input, no leak.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { trojan } from '../../src/engine/attacks/trojan';
import { TROJAN_NN, mostConnectedNeurons, optimiseTrojanTrigger, triggerBytes } from '../../src/engine/attacks/trojan-optimise';
import { initBackend } from '../../src/engine/backend';
import { readCheckpoint, saveModelFile, specMetadata } from '../../src/engine/checkpoint';
import { loadDataset, selectImages } from '../../src/engine/data';
import { createModel, modelFromStateDict } from '../../src/engine/models';
import { checkParams } from '../../src/engine/params';
import { Rng } from '../../src/engine/rng';
import { applyTrigger, builtInTrojanMask, createTrigger } from '../../src/engine/triggers';
import { InputError } from '../../src/engine/types';
import type { EngineEvent } from '../../src/shared/run-events';
import { CIFAR_DIR, SHARED, hasShared, tempFolder } from '../fixtures/data/paths';
import { writeNpy } from '../fixtures/data/npy-file';

interface Fixture {
  neurons: number;
  target: number;
  eps: number;
  alpha: number;
  steps: number;
  checkSteps: number[];
  order: number[];
  sums: number[];
  costs: number[];
  iterates: Record<string, string>;
  trigger: string;
  images: number;
  stamped: string;
}
const fixture = JSON.parse(readFileSync(join(__dirname, '..', 'fixtures', 'attacks', 'trojan.json'), 'utf8')) as Fixture;
const bytes = (b64: string): Uint8Array => new Uint8Array(Buffer.from(b64, 'base64'));
const f32 = (b64: string): Float32Array => {
  const buf = Buffer.from(b64, 'base64');
  return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
};
const TEACHER = join(SHARED, 'models', 'nad-reference', 'wrn16-1_teacher-finetuned.pth.tar');
const noShared = !hasShared() && '../shared absent';
const cifar = { height: 32, width: 32, channels: 3 };

test('the defaults are BackdoorBench trojannn; fixed keeps the paper trigger', () => {
  const p = checkParams(trojan.params, {}, 'attack trojan');
  assert.equal(p['trojanTrigger'], 'fixed');
  assert.deepEqual(
    [p['trojanNeurons'], p['trojanTarget'], p['trojanSteps'], p['trojanStep'], p['trojanEps']],
    [fixture.neurons, fixture.target, 1000, fixture.alpha, fixture.eps],
  );
  assert.equal(TROJAN_NN.tolerance, 1e-3);
  assert.deepEqual(trojan.trigger(p), { name: 'trojanTrigger' });
});

test('neuron selection and the first steps of the optimisation equal PyTorch on the NAD teacher', { skip: noShared }, async () => {
  await initBackend('auto');
  const ck = await readCheckpoint(TEACHER);
  const model = modelFromStateDict(ck.spec, ck.stateDict, TEACHER);
  const before = tf.memory().numTensors;
  try {
    assert.deepEqual(Array.from(mostConnectedNeurons(model, 10)), fixture.order);
    const neurons = mostConnectedNeurons(model, fixture.neurons);
    const mask = builtInTrojanMask();
    // The paper's file is (3, 32, 32); as HWC over 255, float32, as torch divides it.
    const start = new Float32Array(32 * 32 * 3);
    for (let c = 0; c < 3; c++) for (let p = 0; p < 1024; p++) start[p * 3 + c] = Math.fround(Number(mask.data[c * 1024 + p]) / 255);
    const costs: number[] = [];
    let done = 0;
    let image: Float32Array = start;
    for (const steps of fixture.checkSteps) {
      // Each check runs from the mask again (1, 5, 10, 20 steps), recording only the costs not seen yet.
      const out = await optimiseTrojanTrigger(model, start, cifar, {
        neurons,
        target: fixture.target,
        steps,
        step: fixture.alpha,
        eps: fixture.eps,
        onStep: (s, c) => (s > done ? costs.push(c) : undefined),
      });
      done = steps;
      image = out.image;
      const want = f32(fixture.iterates[String(steps)]);
      let worst = 0;
      for (let k = 0; k < want.length; k++) worst = Math.max(worst, Math.abs(image[k] - want[k]));
      assert.ok(worst < 1e-6, `after ${steps} steps: off by ${worst}`);
    }
    assert.equal(costs.length, fixture.costs.length);
    costs.forEach((c, k) =>
      assert.ok(Math.abs(c - fixture.costs[k]) < 1e-4 * fixture.costs[k], `cost ${k + 1}: ${c} vs ${fixture.costs[k]}`),
    );
    assert.deepEqual(triggerBytes(image), bytes(fixture.trigger), 'ToPILImage bytes');
    // Outside the mask nothing moves; inside, within the bound.
    for (let k = 0; k < start.length; k++) {
      if (start[k] === 0) assert.equal(image[k], 0);
      else assert.ok(Math.abs(image[k] - start[k]) <= fixture.eps + 1e-6);
    }
    assert.equal(tf.memory().numTensors, before, 'tensors leaked');
  } finally {
    model.dispose();
  }
});

test('the optimised trigger is added as TrojanTrigger adds it (uint8 wrap-around), pixel by pixel', { skip: noShared }, async () => {
  const test700 = await loadDataset(join(CIFAR_DIR, 'test.bin'), { split: 'test' });
  const first = selectImages(
    test700,
    Int32Array.from({ length: fixture.images }, (_, i) => i),
  );
  const stamped = applyTrigger(first, { name: 'trojanTrigger', pattern: Array.from(bytes(fixture.trigger)) });
  assert.deepEqual(stamped.images, bytes(fixture.stamped));
});

test('optimised on digits with a model file: the mask optimised, the share relabelled, the trigger returned', async () => {
  await initBackend('auto');
  const all = await loadDataset('mnist', { split: 'train' });
  const ds = selectImages(
    all,
    Int32Array.from({ length: 300 }, (_, i) => i),
  );
  const tmp = tempFolder('trojan');
  const spec = { arch: 'cnn' as const, numClasses: 10, inChannels: 1, imageSize: 28 };
  const clean = createModel(spec, 5);
  try {
    const modelFile = join(tmp.dir, 'clean.safetensors');
    await saveModelFile(modelFile, clean.params.toStateDict(), specMetadata(spec));
    const mask = new Float32Array(28 * 28);
    // Spread over the image: the small CNN's classifier reads a spatial map, whose neurons see a part of it.
    for (let k = 0; k < 784; k += 5) mask[k] = k % 2 ? 200 : 100;
    const maskFile = join(tmp.dir, 'mask.npy');
    writeNpy(maskFile, mask, [28, 28, 1]);
    const given = { trojanTrigger: 'optimised', trojanMaskFile: maskFile, trojanModel: modelFile, trojanSteps: 5, trojanNeurons: 3 };
    const params = checkParams(trojan.params, given, 'attack trojan');
    const events: EngineEvent[] = [];
    const before = tf.memory().numTensors;
    const req = { train: ds, params, targetType: 'all2one' as const, targetLabel: 4, injectPortion: 0.1, seed: 11 };
    const out = await trojan.poison({ ...req, emit: (e) => events.push(e) });
    assert.equal(tf.memory().numTensors, before, 'tensors leaked');
    assert.ok(out.trigger?.pattern, 'the optimised trigger is returned');
    const pattern = out.trigger.pattern;
    assert.equal(pattern.length, 28 * 28);
    pattern.forEach((v, k) => (mask[k] === 0 ? assert.equal(v, 0, `pixel ${k} outside the mask`) : undefined));
    assert.ok(
      pattern.some((v, k) => mask[k] > 0 && Math.abs(v - mask[k]) >= 1),
      'the optimisation changed the mask',
    );
    assert.equal(out.poisonedIndices.length, 30);
    for (const i of out.poisonedIndices) assert.equal(out.labels[i], 4);
    assert.deepEqual(out.images, applyTrigger(ds, out.trigger, { indices: out.poisonedIndices }).images);
    assert.equal(events.filter((e) => e.type === 'step' && e.phase === 'trojan').length, 5);
    assert.ok(events.some((e) => e.type === 'log' && /neurons .* driven to 100: cost/.test(e.message) && e.message.includes(modelFile)));
    // The same request gives the same trigger.
    assert.deepEqual((await trojan.poison(req)).trigger, out.trigger);
    // The fixed option adds the mask file as it is.
    const fixed = await trojan.poison({ ...req, params: checkParams(trojan.params, { trojanMaskFile: maskFile }, 'attack trojan') });
    assert.equal(fixed.trigger, undefined);
    const k = fixed.poisonedIndices[0] * 784 + 10;
    assert.equal(fixed.images[k], (ds.images[k] + 100) % 256);
  } finally {
    clean.dispose();
    tmp.remove();
  }
});

test('optimised without a model file trains a clean one first (seeded)', async () => {
  const all = await loadDataset('mnist', { split: 'train' });
  const ds = selectImages(
    all,
    Int32Array.from({ length: 200 }, (_, i) => i),
  );
  const tmp = tempFolder('trojan-trained');
  try {
    const mask = new Float32Array(28 * 28);
    for (let k = 0; k < 784; k += 5) mask[k] = 150;
    const maskFile = join(tmp.dir, 'mask.npy');
    writeNpy(maskFile, mask, [28, 28, 1]);
    const params = checkParams(
      trojan.params,
      { trojanTrigger: 'optimised', trojanMaskFile: maskFile, trojanEpochs: 1, trojanSteps: 3 },
      'attack trojan',
    );
    const events: EngineEvent[] = [];
    const req = { train: ds, params, targetType: 'all2one' as const, targetLabel: 1, injectPortion: 0.1, seed: 2 };
    const before = tf.memory().numTensors;
    const out = await trojan.poison({ ...req, emit: (e) => events.push(e) });
    assert.equal(tf.memory().numTensors, before, 'tensors leaked');
    assert.ok(events.some((e) => e.type === 'phase' && e.phase === 'surrogate'));
    assert.ok(events.some((e) => e.type === 'log' && /Trojan surrogate epoch 1\/1/.test(e.message)));
    assert.ok(events.some((e) => e.type === 'log' && /on a clean CNN/.test(e.message)));
    assert.deepEqual((await trojan.poison(req)).trigger, out.trigger);
  } finally {
    tmp.remove();
  }
});

test('bad input names the parameter or the trigger option', async () => {
  const model = createModel({ arch: 'cnn', numClasses: 10, inChannels: 1, imageSize: 28 }, 0);
  try {
    const features = model.params.get('fc.weight').shape[0];
    assert.throws(
      () => mostConnectedNeurons(model, features + 1),
      (e: unknown) => e instanceof InputError && /trojanNeurons/.test(e.message),
    );
  } finally {
    model.dispose();
  }
  assert.throws(
    () => checkParams(trojan.params, { trojanTrigger: 'best' }, 'attack trojan'),
    (e: unknown) => e instanceof InputError && /trojanTrigger/.test(e.message),
  );
  assert.throws(
    () => createTrigger({ name: 'trojanTrigger', pattern: [1, 2, 3] }, cifar),
    (e: unknown) => e instanceof InputError && /pattern has 3 values/.test(e.message),
  );
  assert.throws(
    () => createTrigger({ name: 'trojanTrigger', pattern: new Array<number>(3072).fill(300) }, cifar),
    (e: unknown) => e instanceof InputError && /\[0, 255\]/.test(e.message),
  );
});

const CLI = join(__dirname, '..', '..', 'dist', 'cli.js');
test(
  'nad train --attack trojan --trojan-trigger optimised: config.json records the parameters, trigger.json the trigger; bad flags exit 2',
  { skip: !existsSync(CLI) && 'dist/cli.js not built (npm run build)' },
  () => {
    const { dir, remove } = tempFolder('trojan-cli');
    try {
      const nad = (...args: string[]) =>
        spawnSync(process.execPath, [CLI, 'train', '--attack', 'trojan', '--epochs', '1', '--runs-dir', dir, ...args], {
          encoding: 'utf8',
          timeout: 300_000,
        });
      const bad = nad('--data', 'mnist', '-q', '--trojan-trigger', 'best');
      assert.equal(bad.status, 2, bad.stderr);
      assert.match(bad.stderr, /trojanTrigger/);
      // The built-in mask does not fit digits: said before any training.
      const noMask = nad('--data', 'mnist', '-q', '--trojan-trigger', 'optimised');
      assert.equal(noMask.status, 2, noMask.stderr);
      assert.match(noMask.stderr, /built-in mask is \(3, 32, 32\)/);
      // 120 seeded random images in CIFAR-10's binary layout: the paper's 32x32 trojan square fits them.
      const rng = new Rng(9);
      const bin = new Uint8Array(120 * 3073).map((_, k) => (k % 3073 === 0 ? (k / 3073) % 10 : rng.int(256)));
      const data = join(dir, 'tiny.bin');
      writeFileSync(data, bin);
      const flags = ['--data', data, '--test', data, '--trojan-trigger', 'optimised', '--trojan-epochs', '1', '--trojan-steps', '3'];
      const ok = nad('--json', ...flags);
      assert.equal(ok.status, 0, ok.stderr);
      const result = JSON.parse(ok.stdout) as { runDir: string; asr: number };
      assert.ok(Number.isFinite(result.asr));
      const config = JSON.parse(readFileSync(join(result.runDir, 'config.json'), 'utf8')) as {
        attack: { name: string; params: Record<string, unknown> };
      };
      assert.equal(config.attack.name, 'trojan');
      assert.equal(config.attack.params['trojanTrigger'], 'optimised');
      assert.equal(config.attack.params['trojanSteps'], 3);
      assert.equal(config.attack.params['trojanTarget'], 100);
      const trigger = JSON.parse(readFileSync(join(result.runDir, 'trigger.json'), 'utf8')) as { name: string; pattern: number[] };
      assert.equal(trigger.name, 'trojanTrigger');
      assert.equal(trigger.pattern.length, 32 * 32 * 3);
      assert.match(ok.stderr, /Trojan: neurons .* driven to 100/);
    } finally {
      remove();
    }
  },
);
