// The WaNet attack: its warping field and warp against PyTorch (the authors' train.py lines run by
// test/fixtures/attacks/make_wanet_fixture.py with torch 1.13 on stored noise), the `warp` trigger, the
// static poisoning (warped-and-relabelled picks, noise-mode picks with labels kept), and a short
// train-and-evaluate on embedded digits with no tensor leak.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { poisonWanet, wanet } from '../../src/engine/attacks/wanet';
import { ATTACKS } from '../../src/engine/attacks/registry';
import { initBackend } from '../../src/engine/backend';
import { loadDataset, selectImages } from '../../src/engine/data';
import { evaluate } from '../../src/engine/evaluate';
import { createModel, specFor } from '../../src/engine/models';
import { checkParams } from '../../src/engine/params';
import { BADNET_TRAINING } from '../../src/engine/schedules';
import { RunCancelledError, train } from '../../src/engine/train';
import {
  applyTrigger,
  backdoorTestSet,
  createTrigger,
  noisyWarpGrid,
  parseTriggerName,
  resolveTriggerSpec,
  warpFlow,
  warpGrid,
  warpImage,
  warpImageFloat,
  warpLinspace,
  warpTriggerGrid,
} from '../../src/engine/triggers';
import { InputError, type ImageDataset } from '../../src/engine/types';
import { CIFAR_DIR, hasShared } from '../fixtures/data/paths';

interface Case {
  k: number;
  s: number;
  gridRescale: number;
  height: number;
  width: number;
  noise: number[];
  meanAbs: number;
  linspace?: number[];
  flow?: string;
  grid: string;
}
interface Fixture {
  cases: Case[];
  images: { count: number; warped255: string; warpedUint8: string; crossNoise: string; cross255: string };
}
const fixture = JSON.parse(readFileSync(join(__dirname, '..', 'fixtures', 'attacks', 'wanet.json'), 'utf8')) as Fixture;
const f32 = (b64: string): Float32Array => {
  const buf = Buffer.from(b64, 'base64');
  return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
};
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
};
const noShared = !hasShared() && '../shared absent';
const params = checkParams(wanet.params, {}, 'wanet');

test("the warping field equals train.py's (linspace, bicubic flow, clamped grid) on stored noise", () => {
  for (const c of fixture.cases) {
    const what = `k ${c.k} s ${c.s} rescale ${c.gridRescale} ${c.height}x${c.width}`;
    if (c.linspace) assert.deepEqual(Array.from(warpLinspace(c.height)), c.linspace, `${what}: linspace`);
    if (c.flow) {
      const d = maxDiff(warpFlow(c.noise, c.k, c.height, c.width), f32(c.flow));
      assert.ok(d < 1e-5, `${what}: upsampled flow differs by ${d}`);
    }
    const grid = warpGrid(c.noise, c.k, c.height, c.width, c.s, c.gridRescale);
    const want = f32(c.grid);
    const d = maxDiff(grid, want);
    assert.ok(d < 1e-6, `${what}: grid differs by ${d}`);
    // The clamp bites where the case asks for it (grid_rescale 1.25): values at exactly +-1 on both sides.
    const clamped = (g: Float32Array): number => g.filter((v) => Math.abs(v) === 1).length;
    assert.equal(clamped(grid), clamped(want), `${what}: clamped values`);
  }
  assert.ok(f32(fixture.cases[1].grid).filter((v) => Math.abs(v) === 1).length > 100, 'the rescaled case clamps');
});

test('the warp of real CIFAR images equals F.grid_sample (bilinear, align_corners=True); uint8 truncates', { skip: noShared }, async () => {
  const test700 = await loadDataset(join(CIFAR_DIR, 'test.bin'), { split: 'test' });
  const c = fixture.cases[0];
  const grid = f32(c.grid);
  const { count } = fixture.images;
  const want = f32(fixture.images.warped255);
  const wantU8 = Buffer.from(fixture.images.warpedUint8, 'base64');
  const size = 32 * 32 * 3;
  let worst = 0;
  let mismatches = 0;
  for (let n = 0; n < count; n++) {
    const img = test700.images.subarray(n * size, (n + 1) * size);
    const got = warpImageFloat(img, test700, grid);
    worst = Math.max(worst, maxDiff(got, want.subarray(n * size, (n + 1) * size)));
    const u8 = img.slice();
    warpImage(u8, test700, grid);
    for (let i = 0; i < size; i++) {
      const torchU8 = wantU8[n * size + i];
      if (u8[i] === torchU8) continue;
      mismatches++;
      // Only where torch's float32 sits a hair below the integer our exact value is (see warpImage).
      assert.equal(Math.abs(u8[i] - torchU8), 1);
      assert.ok(Math.abs(got[i] - Math.round(got[i])) < 1e-3, `uint8 differs away from an integer: ${got[i]}`);
    }
  }
  assert.ok(worst < 1e-3, `warped values differ from torch by ${worst} (0..255 units)`);
  assert.ok(mismatches <= 0.005 * count * size, `${mismatches} uint8 values differ`);
  // Noise mode: the grid plus the stored noise / H, clamped, then the same warp.
  const noisy = noisyWarpGrid(grid, f32(fixture.images.crossNoise), 32);
  const d = maxDiff(warpImageFloat(test700.images.subarray(0, size), test700, noisy), f32(fixture.images.cross255));
  assert.ok(d < 1e-3, `noise-mode warp differs from torch by ${d}`);
  // The trigger on the same image: our seeded field, so a different warp, but a small one (s = 0.5).
  const stamped = applyTrigger(selectImages(test700, [0, 1, 2, 3]), { name: 'warp' });
  let moved = 0;
  for (let i = 0; i < 4 * size; i++) moved += Math.abs(stamped.images[i] - test700.images[i]);
  assert.ok(moved / (4 * size) > 1 && moved / (4 * size) < 10, `mean change ${moved / (4 * size)}`);
});

test('the warp trigger: names, defaults, checks; seeded, fixed per seed; flat images stay flat', () => {
  assert.equal(parseTriggerName('wanet'), 'warp');
  assert.equal(parseTriggerName('warpTrigger'), 'warp');
  assert.deepEqual(resolveTriggerSpec({ name: 'warp' }), { name: 'warp', k: 4, s: 0.5, gridRescale: 1, patternSeed: 0 });
  assert.deepEqual(wanet.trigger(params), { name: 'warp', k: 4, s: 0.5, gridRescale: 1, patternSeed: 0 });
  const shape = { height: 32, width: 32, channels: 3 };
  assert.throws(
    () => createTrigger({ name: 'warp', k: 0 }, shape),
    (e: unknown) => e instanceof InputError && /k must be/.test(e.message),
  );
  assert.throws(() => createTrigger({ name: 'warp', s: -1 }, shape), /s must be >= 0/);
  assert.throws(() => createTrigger({ name: 'warp', gridRescale: 0 }, shape), /gridRescale must be > 0/);
  assert.deepEqual(warpTriggerGrid({ name: 'warp' }, shape), warpTriggerGrid({ name: 'warp', patternSeed: 0 }, shape));
  assert.notDeepEqual(warpTriggerGrid({ name: 'warp' }, shape), warpTriggerGrid({ name: 'warp', patternSeed: 1 }, shape));
  // s = 0 is the identity grid: the image is unchanged, pixel for pixel.
  const img = Uint8Array.from({ length: 32 * 32 * 3 }, (_, i) => (i * 37) % 256);
  const same = img.slice();
  createTrigger({ name: 'warp', s: 0 }, shape).stamp(same);
  assert.deepEqual(same, img);
  // A flat image stays flat under any warp (exact weights, no float32 drop to one less).
  const flat = new Uint8Array(28 * 28).fill(200);
  createTrigger({ name: 'warp', s: 3, k: 6 }, { height: 28, width: 28, channels: 1 }).stamp(flat);
  assert.ok(flat.every((v) => v === 200));
});

let digits: ImageDataset | undefined;
const mnist = async (): Promise<ImageDataset> => (digits ??= await loadDataset('mnist', { split: 'train' }));

test('poisoning: 10% warped and relabelled, 20% noise-warped with labels kept, the rest untouched; seeded', async () => {
  const ds = selectImages(
    await mnist(),
    Array.from({ length: 1000 }, (_, i) => i),
  );
  const logs: string[] = [];
  const req = { train: ds, params, targetType: 'all2one' as const, targetLabel: 5, injectPortion: 0.1, seed: 3 };
  const p = await poisonWanet({ ...req, emit: (e) => e.type === 'log' && logs.push(e.message) });
  assert.equal(p.poisonedIndices.length, 100);
  assert.equal(p.crossIndices.length, 200);
  assert.match(logs.join('\n'), /100 images warped and relabelled, 200 noise-mode/);
  const bd = new Set(p.poisonedIndices);
  const cross = new Set(p.crossIndices);
  assert.ok([...cross].every((i) => !bd.has(i)));
  const stamped = applyTrigger(ds, wanet.trigger(params));
  const size = 28 * 28;
  const img = (d: ImageDataset, i: number): Buffer => Buffer.from(d.images.subarray(i * size, (i + 1) * size));
  let crossChanged = 0;
  for (let i = 0; i < ds.count; i++) {
    if (bd.has(i)) {
      assert.equal(p.labels[i], 5);
      assert.ok(img(p, i).equals(img(stamped, i)), `image ${i} carries the test-time warp`);
    } else {
      assert.equal(p.labels[i], ds.labels[i]);
      if (!cross.has(i)) assert.ok(img(p, i).equals(img(ds, i)), `image ${i} untouched`);
      else if (!img(p, i).equals(img(stamped, i)) && !img(p, i).equals(img(ds, i))) crossChanged++;
    }
  }
  assert.ok(crossChanged > 190, `noise-mode images differ from both the clean and the warped image (${crossChanged})`);
  assert.deepEqual(p.originalLabels, ds.labels);
  const again = await wanet.poison(req);
  assert.deepEqual(again.images, p.images);
  assert.deepEqual(again.poisonedIndices, p.poisonedIndices);
  assert.notDeepEqual((await wanet.poison({ ...req, seed: 4 })).poisonedIndices, p.poisonedIndices);
  // The test-time set: the same warp on the non-target images, labelled 5.
  const bdTest = backdoorTestSet(ds, { trigger: wanet.trigger(params), targetLabel: 5 });
  assert.ok(img(bdTest, 0).equals(img(stamped, bdTest.sourceIndices[0])));
  // all2all: label + 1; cross ratio 0: no noise mode; a share too large for the cross images is cut at the set.
  const a2a = await wanet.poison({ ...req, targetType: 'all2all' });
  for (const i of a2a.poisonedIndices) assert.equal(a2a.labels[i], (ds.labels[i] + 1) % 10);
  assert.equal((await poisonWanet({ ...req, params: { ...params, crossRatio: 0 } })).crossIndices.length, 0);
  const big = await poisonWanet({ ...req, injectPortion: 0.6 });
  assert.deepEqual([big.poisonedIndices.length, big.crossIndices.length], [600, 400]);
  // Refusals.
  await assert.rejects(wanet.poison({ ...req, targetType: 'cleanLabel' }), /WaNet relabels the images it warps/);
  await assert.rejects(wanet.poison({ ...req, targetLabel: 10 }), /target label 10 is out of range/);
  await assert.rejects(wanet.poison({ ...req, injectPortion: 1.5 }), /inject portion must be in \[0, 1\]/);
  await assert.rejects(wanet.poison({ ...req, params: { ...params, warpK: 0 } }), InputError);
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(wanet.poison({ ...req, signal: ac.signal }), RunCancelledError);
});

test('declarations: parameter keys unique across the registry, checked defaults', () => {
  const others = new Set(ATTACKS.filter((a) => a.name !== 'wanet').flatMap((a) => a.params.map((p) => p.key)));
  for (const p of wanet.params) assert.ok(!others.has(p.key), `${p.key} is another attack's flag`);
  assert.deepEqual(params, { warpK: 4, warpStrength: 0.5, warpGridRescale: 1, crossRatio: 2, warpPerEpoch: false, warpSeed: 0 });
  assert.deepEqual(wanet.defaults, { targetType: 'all2one', injectPortion: 0.1 });
  assert.throws(() => checkParams(wanet.params, { warpK: 2.5 }, 'attack wanet'), /warpK must be a whole number/);
});

test('train on WaNet-poisoned digits and measure ACC/ASR with the warp trigger: no tensor leak', async () => {
  await initBackend('auto');
  const all = await mnist();
  const ds = selectImages(
    all,
    Array.from({ length: 400 }, (_, i) => i),
  );
  const testSet = selectImages(
    await loadDataset('mnist', { split: 'test' }),
    Array.from({ length: 100 }, (_, i) => i),
  );
  const before = tf.memory().numTensors;
  const p = await wanet.poison({ train: ds, params, targetType: 'all2one', targetLabel: 5, injectPortion: 0.1, seed: 0 });
  const model = createModel(specFor('auto', ds), 0);
  try {
    const evalSets = { clean: testSet, backdoor: backdoorTestSet(testSet, { trigger: wanet.trigger(params), targetLabel: 5 }) };
    const records = await train({
      student: model,
      data: p,
      evalSets,
      settings: { ...BADNET_TRAINING, epochs: 1, batchSize: 32 },
      phase: 'train',
    });
    const r = evaluate(model, evalSets);
    assert.equal(records.length, 1);
    assert.ok(Number.isFinite(r.acc) && Number.isFinite(r.asr), JSON.stringify(r));
  } finally {
    model.dispose();
  }
  assert.equal(tf.memory().numTensors, before, 'tensors leaked');
});
