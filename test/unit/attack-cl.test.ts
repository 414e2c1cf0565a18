// The CL (label-consistent) attack: its checkerboard stamp and its PGD against PyTorch (BackdoorBench's
// lines run by test/fixtures/attacks/make_cl_fixture.py with torch 1.13 on the NAD teacher), then the
// poisoning on embedded digits: target-class picks only, labels kept, the perturbation inside its bound,
// the stamp on top, a given surrogate file or a trained one, cancellation, bad input, no tensor leak.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { cl, exactSign, pgdLinf, poisonCl, toUint8Images } from '../../src/engine/attacks/cl';
import { attackNamed } from '../../src/engine/attacks/registry';
import type { PoisonRequest } from '../../src/engine/attacks/types';
import { initBackend } from '../../src/engine/backend';
import { readCheckpoint, saveModelFile, specMetadata } from '../../src/engine/checkpoint';
import { loadDataset, selectImages } from '../../src/engine/data';
import { createModel, modelFromStateDict, specFor } from '../../src/engine/models';
import { checkParams } from '../../src/engine/params';
import { Rng } from '../../src/engine/rng';
import { RunCancelledError } from '../../src/engine/train';
import { applyTrigger, createTrigger, resolveTriggerSpec, stampLcCheckerboard } from '../../src/engine/triggers';
import { InputError, type ImageDataset } from '../../src/engine/types';
import type { EngineEvent } from '../../src/shared/run-events';
import { SHARED, hasShared, tempFolder } from '../fixtures/data/paths';

interface Fixture {
  eps: number;
  step: number;
  steps: number;
  checkSteps: number[];
  count: number;
  height: number;
  width: number;
  channels: number;
  labels: number[];
  images: string;
  iterates: Record<string, string>;
  resultUint8: string;
  predictedBefore: number[];
  predictedAfter: number[];
  stamped: { amplitude: number; images: string }[];
}
const fixture = JSON.parse(readFileSync(join(__dirname, '..', 'fixtures', 'attacks', 'cl.json'), 'utf8')) as Fixture;
const bytes = (b64: string): Uint8Array => new Uint8Array(Buffer.from(b64, 'base64'));
const f32 = (b64: string): Float32Array => {
  const buf = Buffer.from(b64, 'base64');
  return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
};
const TEACHER = join(SHARED, 'models', 'nad-reference', 'wrn16-1_teacher-finetuned.pth.tar');
const noShared = !hasShared() && '../shared absent';
const params = checkParams(cl.params, {}, 'cl');
const shape = { height: fixture.height, width: fixture.width, channels: fixture.channels };
const size = shape.height * shape.width * shape.channels;

test("the checkerboard equals labelConsistentAttack's all-corners stamp pixel by pixel (amplitudes 1, 0.3, 16/255)", () => {
  const result = bytes(fixture.resultUint8);
  for (const s of fixture.stamped) {
    const want = bytes(s.images);
    const got = result.slice();
    for (let i = 0; i < fixture.count; i++) stampLcCheckerboard(got.subarray(i * size, (i + 1) * size), shape, s.amplitude);
    const wrong = got.filter((v, k) => v !== want[k]).length;
    assert.equal(wrong, 0, `amplitude ${s.amplitude}: ${wrong} values differ`);
    // The trigger changes only the 36 corner pixels (3 values each), and at amplitude 1 sets them to 0 or 255.
    const changed = new Set<number>();
    for (let k = 0; k < got.length; k++) if (got[k] !== result[k]) changed.add(Math.floor((k % size) / 3));
    assert.ok(changed.size <= 36, `amplitude ${s.amplitude}: ${changed.size} pixels changed`);
    if (s.amplitude === 1) {
      assert.equal(got[0], 255, 'top-left (0, 0) is white');
      assert.equal(got[2 * 3], 0, 'top-left (0, 2) is black, as the list says');
    }
  }
});

test('the lcCheckerboard trigger: names, defaults, checks; amplitude 0 changes nothing', () => {
  assert.deepEqual(resolveTriggerSpec({ name: 'lc' }), { name: 'lcCheckerboard', amplitude: 1 });
  assert.deepEqual(cl.trigger(params), { name: 'lcCheckerboard', amplitude: 1 });
  assert.throws(
    () => resolveTriggerSpec({ name: 'lcCheckerboard', amplitude: 1.5 }),
    (e: unknown) => e instanceof InputError && /amplitude must be in \[0, 1\]/.test(e.message),
  );
  assert.throws(
    () => createTrigger({ name: 'lc' }, { height: 2, width: 8, channels: 1 }),
    (e: unknown) => e instanceof InputError && /at least 3x3/.test(e.message),
  );
  const img = Uint8Array.from({ length: 28 * 28 }, (_, i) => i % 251);
  const same = img.slice();
  createTrigger({ name: 'lc', amplitude: 0 }, { height: 28, width: 28, channels: 1 }).stamp(same);
  assert.deepEqual(same, img);
  assert.throws(
    () => checkParams(cl.params, { lcAmplitude: 2 }, 'attack cl'),
    (e: unknown) => e instanceof InputError && /lcAmplitude must be <= 1/.test(e.message),
  );
  assert.equal(attackNamed('cl'), cl);
  assert.equal(cl.defaults.targetType, 'cleanLabel');
});

test("PGD on the NAD teacher equals BackdoorBench's step by step on 4 CIFAR images", { skip: noShared }, async () => {
  await initBackend('auto');
  const ck = await readCheckpoint(TEACHER);
  const model = modelFromStateDict(ck.spec, ck.stateDict, TEACHER);
  const before = tf.memory().numTensors;
  const alpha = fixture.step / 255;
  try {
    const images = bytes(fixture.images);
    const x = tf.tidy(
      () => tf.div(tf.tensor4d(images, [fixture.count, shape.height, shape.width, shape.channels], 'float32'), 255) as tf.Tensor4D,
    );
    const labels = Int32Array.from(fixture.labels);
    let done = 0;
    let adv: tf.Tensor4D | undefined;
    for (const steps of fixture.checkSteps) {
      // Continue from the previous check: 10 steps in all.
      const next = await pgdLinf(model, x, labels, { eps: fixture.eps / 255, step: alpha, steps: steps - done, start: adv });
      adv?.dispose();
      adv = next;
      done = steps;
      const got = adv.dataSync() as Float32Array;
      const want = f32(fixture.iterates[String(steps)]);
      // Values off by more than 1e-5, per image.
      const off = Array.from({ length: fixture.count }, (_, i) => {
        const bad: number[] = [];
        for (let k = i * size; k < (i + 1) * size; k++) if (Math.abs(got[k] - want[k]) > 1e-5) bad.push(k);
        return bad;
      });
      const counts = off.map((o) => o.length);
      if (steps <= 5) assert.deepEqual(counts, [0, 0, 0, 0], `after ${steps} steps: every value within 1e-5 of torch's`);
      else if (steps === 6) {
        // Two values of image 0 step the other way (a ReLU at its kink: see make_cl_fixture.py); all else equal.
        assert.ok(counts[0] <= 2 && counts.slice(1).every((c) => c === 0), `after 6 steps: ${counts} values off`);
        for (const k of off[0]) assert.ok(Math.abs(got[k] - want[k]) <= 2 * alpha + 1e-6, `value ${k}: more than one opposite step`);
      } else {
        assert.deepEqual(counts.slice(1), [0, 0, 0], `after ${steps} steps: images 1-3 within 1e-5 of torch's`);
        const ours = toUint8Images(adv);
        assert.deepEqual(ours.subarray(size), bytes(fixture.resultUint8).subarray(size), 'uint8 images 1-3, (adv * 255).type(uint8)');
      }
      // Inside the bound and [0, 1] whatever the path.
      assert.ok(got.every((v, k) => Math.abs(v - images[k] / 255) <= fixture.eps / 255 + 1e-6 && v >= 0 && v <= 1));
    }
    adv?.dispose();
    x.dispose();
    assert.equal(tf.memory().numTensors, before, 'tensors leaked');
  } finally {
    model.dispose();
  }
});

test('exactSign is torch.sign (the wasm Sign kernel gives 0 for |x| < 1.19e-7)', async () => {
  await initBackend('auto');
  const s = exactSign(tf.tensor1d([1e-8, -1e-8, 1.1e-7, 0, -3, 2.5e-4]));
  assert.deepEqual(Array.from(s.dataSync()), [1, -1, 1, 0, -1, 1]);
  s.dispose();
});

let digits: ImageDataset | undefined;
const mnist = async (n: number): Promise<ImageDataset> => {
  digits ??= await loadDataset('mnist', { split: 'train' });
  return selectImages(
    digits,
    Array.from({ length: n }, (_, i) => i),
  );
};
const request = (ds: ImageDataset, over: Partial<PoisonRequest> = {}, p: Record<string, unknown> = {}): PoisonRequest => ({
  train: ds,
  params: checkParams(cl.params, { pgdSteps: 4, ...p }, 'attack cl'),
  targetType: 'cleanLabel',
  targetLabel: 5,
  injectPortion: 0.05,
  seed: 7,
  ...over,
});

test('poisoning with a surrogate file: target-class picks only, labels kept, PGD within the bound, the stamp on top', async () => {
  await initBackend('auto');
  const ds = await mnist(300);
  const spec = specFor('cnn', ds);
  const surrogate = createModel(spec, 11);
  const tmp = tempFolder('cl');
  const before = tf.memory().numTensors;
  try {
    const file = join(tmp.dir, 'surrogate.safetensors');
    await saveModelFile(file, surrogate.params.toStateDict(), specMetadata(spec));
    const logs: string[] = [];
    const events: EngineEvent[] = [];
    const p = await poisonCl({
      ...request(ds, {}, { surrogateModel: file }),
      emit: (e) => (events.push(e), e.type === 'log' && logs.push(e.message)),
    });
    const fives = Array.from(ds.labels).filter((l) => l === 5).length;
    assert.equal(p.poisonedIndices.length, Math.min(15, fives), 'floor(0.05 * 300) picks, at most the class');
    assert.deepEqual(p.labels, ds.labels, 'labels kept');
    const picked = new Set(p.poisonedIndices);
    const s = 28 * 28;
    // What PGD alone gives on the same surrogate, then stamped: the poisoned images exactly.
    const idx = Array.from(p.poisonedIndices);
    const x = tf.tidy(() => tf.div(tf.tensor4d(selectImages(ds, idx).images, [idx.length, 28, 28, 1], 'float32'), 255) as tf.Tensor4D);
    const adv = await pgdLinf(
      surrogate,
      x,
      Int32Array.from(idx, (i) => ds.labels[i]),
      { eps: 8 / 255, step: 1.5 / 255, steps: 4 },
    );
    const direct = toUint8Images(adv);
    // A random start (off by default) begins elsewhere in the bound, seeded.
    const ys = Int32Array.from(idx, (i) => ds.labels[i]);
    const start = { eps: 8 / 255, step: 1.5 / 255, steps: 1, randomStart: true };
    const r1 = await pgdLinf(surrogate, x, ys, { ...start, rng: new Rng(5) });
    const r2 = await pgdLinf(surrogate, x, ys, { ...start, rng: new Rng(5) });
    const [a1, a2, x0] = [r1.dataSync(), r2.dataSync(), x.dataSync()];
    assert.deepEqual(a1, a2, 'seeded');
    assert.ok(
      a1.every((v, k) => Math.abs(v - x0[k]) <= 8 / 255 + 1e-6 && v >= 0 && v <= 1),
      'inside the bound',
    );
    assert.notDeepEqual(toUint8Images(r1), toUint8Images(adv));
    tf.dispose([adv, x, r1, r2]);
    const stamped = applyTrigger({ ...selectImages(ds, idx), images: direct }, cl.trigger(params));
    let moved = 0;
    for (let i = 0; i < ds.count; i++) {
      const got = p.images.subarray(i * s, (i + 1) * s);
      const orig = ds.images.subarray(i * s, (i + 1) * s);
      if (!picked.has(i)) {
        assert.ok(Buffer.from(got).equals(Buffer.from(orig)), `image ${i} untouched`);
        continue;
      }
      assert.equal(ds.labels[i], 5, `image ${i} is of the target class`);
      const k = idx.indexOf(i);
      assert.ok(Buffer.from(got).equals(Buffer.from(stamped.images.subarray(k * s, (k + 1) * s))), `image ${i}: PGD then the stamp`);
      const corner = (q: number): boolean => (q % 28 < 3 || q % 28 >= 25) && (q < 3 * 28 || q >= 25 * 28);
      for (let q = 0; q < s; q++) {
        if (corner(q)) continue;
        assert.ok(Math.abs(got[q] - orig[q]) <= 8, `image ${i} pixel ${q}: ${orig[q]} -> ${got[q]} exceeds 8/255`);
        if (got[q] !== orig[q]) moved++;
      }
    }
    assert.ok(moved > 0, 'PGD moved some pixels');
    assert.match(logs.join('\n'), /CL: \d+ images of class 5 perturbed \(PGD eps 8\/255, step 1.5\/255, 4 steps\) on the surrogate/);
    assert.ok(events.some((e) => e.type === 'phase' && e.phase === 'pgd'));
    assert.ok(events.some((e) => e.type === 'step' && e.phase === 'pgd' && e.step === 4 && e.steps === 4));
    // The batch only splits the work; the same seed gives the same set.
    const again = await poisonCl(request(ds, {}, { surrogateModel: file, pgdBatch: 4 }));
    assert.deepEqual(again.images, p.images);
    assert.equal(tf.memory().numTensors, before, 'tensors leaked');
  } finally {
    surrogate.dispose();
    tmp.remove();
  }
});

test('without a file a clean surrogate is trained first (seeded; phases, steps, logs); cancellation; no leak', async () => {
  await initBackend('auto');
  const ds = await mnist(200);
  const before = tf.memory().numTensors;
  const events: EngineEvent[] = [];
  const req = request(ds, { model: specFor('cnn', ds) }, { surrogateEpochs: 1, pgdSteps: 2 });
  const p = await poisonCl({ ...req, emit: (e) => events.push(e) });
  assert.ok(p.poisonedIndices.length > 0);
  const phases = events.filter((e) => e.type === 'phase').map((e) => (e.type === 'phase' ? e.phase : ''));
  assert.deepEqual(phases, ['surrogate', 'pgd']);
  assert.ok(events.some((e) => e.type === 'step' && e.phase === 'surrogate'));
  assert.ok(!events.some((e) => e.type === 'epoch' || e.type === 'baseline'), 'surrogate epochs are log lines, not the run epochs');
  assert.ok(events.some((e) => e.type === 'log' && /CL surrogate epoch 1\/1/.test(e.message)));
  const same = await poisonCl(req);
  assert.deepEqual(same.images, p.images, 'seeded');
  const controller = new AbortController();
  controller.abort();
  await assert.rejects(poisonCl({ ...req, signal: controller.signal }), RunCancelledError);
  assert.equal(tf.memory().numTensors, before, 'tensors leaked');
});

test('bad input: all2all, a target out of range, a surrogate file for other data', async () => {
  const ds = await mnist(50);
  await assert.rejects(
    poisonCl(request(ds, { targetType: 'all2all' })),
    (e: unknown) => e instanceof InputError && /keeps the labels/.test(e.message),
  );
  await assert.rejects(
    poisonCl(request(ds, { targetLabel: 10 })),
    (e: unknown) => e instanceof InputError && /target label 10 is out of range/.test(e.message),
  );
  const tmp = tempFolder('cl-bad');
  const other = createModel({ arch: 'cnn', numClasses: 3, inChannels: 1, imageSize: 28 }, 0);
  try {
    const file = join(tmp.dir, 'three.safetensors');
    await saveModelFile(file, other.params.toStateDict(), specMetadata(other.spec));
    await assert.rejects(
      poisonCl(request(ds, {}, { surrogateModel: file })),
      (e: unknown) => e instanceof InputError && e.message.includes(file) && /3 classes but the data/.test(e.message),
    );
    await assert.rejects(
      poisonCl(request(ds, {}, { surrogateModel: join(tmp.dir, 'missing.pt') })),
      (e: unknown) => e instanceof InputError && e.message.includes('missing.pt'),
    );
  } finally {
    other.dispose();
    tmp.remove();
  }
});
