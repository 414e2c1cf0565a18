// The Refool attack: blend_images (the authors' code, as BackdoorBench runs it) against OpenCV/numpy on
// stored draws (test/fixtures/attacks/make_refool_fixture.py), its pieces (INTER_LINEAR resize,
// GaussianBlur with BORDER_REFLECT_101, the vignette), the seeded draws, the reflection sources and their
// errors, the clean-label poisoning, the test-time trigger rebuilding the poisoning's candidates, and a
// short train-and-evaluate on digits with no tensor leak.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import * as tf from '@tensorflow/tfjs-core';
import { poisonRefool, refool } from '../../src/engine/attacks/refool';
import { ATTACKS } from '../../src/engine/attacks/registry';
import { initBackend } from '../../src/engine/backend';
import { loadDataset, selectImages } from '../../src/engine/data';
import { evaluate } from '../../src/engine/evaluate';
import { createModel, specFor } from '../../src/engine/models';
import { checkParams } from '../../src/engine/params';
import { Rng } from '../../src/engine/rng';
import { BADNET_TRAINING } from '../../src/engine/schedules';
import { RunCancelledError, train } from '../../src/engine/train';
import {
  backdoorTestSet,
  blendReflection,
  createTrigger,
  datasetPool,
  drawReflection,
  gaussianBlur,
  loadReflectionCandidates,
  openReflectionSource,
  reflectionCandidates,
  reflectionImage,
  reflectionVignette,
  resolveTriggerSpec,
  type ReflectionDraws,
} from '../../src/engine/triggers';
import { InputError, type ImageDataset } from '../../src/engine/types';
import { CIFAR_DIR, hasShared, tempFolder } from '../fixtures/data/paths';

interface Case {
  target: number;
  reflection: number;
  shape: [number, number, number];
  image: string | null;
  reflectionPixels: string | null;
  draws: ReflectionDraws;
  out: string;
}
interface Fixture {
  targets: string[];
  reflections: { shape: [number, number, number]; pixels: string; resized: string }[];
  checks: { vignette32: string; vignette20: string; blur: { sigma: number; size: number; out: string }[] };
  cases: Case[];
}
const fixture = JSON.parse(readFileSync(join(__dirname, '..', 'fixtures', 'attacks', 'refool.json'), 'utf8')) as Fixture;
const bytes = (b64: string): Buffer => Buffer.from(b64, 'base64');
const u8 = (b64: string): Uint8Array => new Uint8Array(bytes(b64));
const f32 = (b64: string): Float32Array => {
  const b = bytes(b64);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
};
const f64 = (b64: string): Float64Array => {
  const b = bytes(b64);
  return new Float64Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
};
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
};
const CIFAR = { height: 32, width: 32, channels: 3 };
const shapeOf = (s: readonly number[]): { height: number; width: number; channels: number } => ({
  height: s[0],
  width: s[1],
  channels: s[2],
});
const reflections = fixture.reflections.map((r) => reflectionImage(u8(r.pixels), shapeOf(r.shape), CIFAR));
const noShared = !hasShared() && '../shared absent';
const params = checkParams(refool.params, {}, 'refool');

test('the vignette, INTER_LINEAR resize and the Gaussian blur equal OpenCV/scipy', () => {
  for (const n of [32, 20] as const) {
    const want = f64(fixture.checks[`vignette${n}`]);
    const got = reflectionVignette(n);
    for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i] - want[i]) <= 1e-12 * want[i], `vignette ${n} at ${i}`);
  }
  // The fixture's reflections: 32x32 (identity), 45x38 (shrunk) and 20x24 (enlarged) to 32x32, float32.
  fixture.reflections.forEach((r, i) => assert.ok(maxDiff(reflections[i], f32(r.resized)) <= 2e-7, `resize from ${r.shape.join('x')}`));
  assert.deepEqual(Array.from(reflections[0]), Array.from(f32(fixture.reflections[0].resized)), 'same size: the identity');
  const linear = Float32Array.from(reflections[0], (v) => Math.fround(Math.pow(v, 2.2)));
  for (const b of fixture.checks.blur) {
    assert.equal(b.size, 2 * Math.ceil(2 * b.sigma) + 1);
    const d = maxDiff(gaussianBlur({ data: linear, ...CIFAR }, b.sigma, b.size), f32(b.out));
    assert.ok(d <= 5e-7, `blur sigma ${b.sigma}: differs by ${d}`);
  }
});

test('blend_images on stored draws equals the OpenCV/numpy reference pixel for pixel (ghost, blur, same; square and 16x32)', () => {
  const seen = new Set<string>();
  for (const c of fixture.cases) {
    const shape = shapeOf(c.shape);
    const image = c.image ? u8(c.image) : u8(fixture.targets[c.target]);
    const reflection = c.reflectionPixels ? reflectionImage(u8(c.reflectionPixels), shape, shape) : reflections[c.reflection];
    const out = image.slice();
    blendReflection(out, shape, reflection, c.draws);
    const want = u8(c.out);
    let differ = 0;
    for (let i = 0; i < want.length; i++) if (out[i] !== want[i]) differ++;
    assert.equal(differ, 0, `${c.draws.model} ${c.shape.join('x')} (${JSON.stringify(c.draws)}): ${differ} values differ`);
    assert.ok(maxDiff(out, image) > 10, 'the reflection shows');
    seen.add(`${c.draws.model} ${c.shape.join('x')}`);
  }
  assert.equal(seen.size, 6, 'every model on both shapes');
});

test('draws: ranges as blend_images (offsets 3..8, ghost alpha, sigma 1..5, att), random model shares, seeded', () => {
  const rng = new Rng(1);
  const counts = { ghost: 0, same: 0, blur: 0 };
  for (let k = 0; k < 4000; k++) {
    const d = drawReflection(rng, 'random', -1, CIFAR);
    counts[d.model]++;
    assert.ok(d.alphaT >= 0.55 && d.alphaT <= 0.95, `alpha_t ${d.alphaT}`);
    if (d.model === 'ghost') {
      for (const o of d.offset) assert.ok(Number.isInteger(o) && o >= 3 && o <= 8, `offset ${o}`);
      assert.ok(
        (d.ghostAlpha >= 0.15 && d.ghostAlpha <= 0.5) || (d.ghostAlpha >= 0.5 && d.ghostAlpha <= 0.85),
        `ghost alpha ${d.ghostAlpha}`,
      );
    } else {
      assert.ok(d.model === 'same' ? d.sigma === 0 : d.sigma >= 1 && d.sigma <= 5, `sigma ${d.sigma}`);
      assert.ok(d.att >= 1.08 && d.att <= 1.18, `att ${d.att}`);
      assert.deepEqual(d.maskOffset, [0, 0], 'square images sit at the vignette origin');
    }
  }
  assert.ok(Math.abs(counts.ghost / 4000 - 0.49) < 0.03, JSON.stringify(counts));
  assert.ok(Math.abs(counts.same - counts.blur) / 4000 < 0.04, JSON.stringify(counts));
  assert.equal(drawReflection(new Rng(2), 'ghost', 0.4, CIFAR).alphaT, 0.4);
  assert.deepEqual(drawReflection(new Rng(3), 'blur', 0.4, CIFAR), drawReflection(new Rng(3), 'blur', 0.4, CIFAR));
  // A side 10+ px shorter than the longest gets a random place in the vignette, as the code's randint.
  for (let k = 0; k < 50; k++) {
    const d = drawReflection(rng, 'same', 0.4, { height: 16, width: 32, channels: 3 });
    assert.ok(d.model !== 'ghost' && d.maskOffset[0] >= 0 && d.maskOffset[0] < 6 && d.maskOffset[1] === 0);
  }
});

function writePng(file: string, w: number, h: number, seed: number): void {
  const png = new PNG({ width: w, height: h });
  const rng = new Rng(seed);
  for (let i = 0; i < w * h * 4; i++) png.data[i] = i % 4 === 3 ? 255 : rng.int(256);
  writeFileSync(file, PNG.sync.write(png));
}

test('reflection sources: a folder of images of any size, a data set, and their errors', () => {
  const { dir, remove } = tempFolder('refool');
  try {
    const flat = join(dir, 'flat');
    mkdirSync(flat);
    writePng(join(flat, 'a.png'), 40, 30, 1);
    writePng(join(flat, 'b.png'), 20, 24, 2);
    const pool = openReflectionSource(flat);
    assert.equal(pool.count, 2);
    const c = loadReflectionCandidates(flat, CIFAR, { count: 5, seed: 0 });
    assert.equal(c.length, 2, 'fewer candidates than asked when the source has fewer');
    assert.ok(c.every((r) => r.length === 32 * 32 * 3 && r.every((v) => v >= 0 && v <= 1)));
    const grey = reflectionCandidates(pool, { height: 28, width: 28, channels: 1 }, { count: 2, seed: 0 });
    assert.ok(
      grey.every((r) => r.length === 28 * 28),
      'colour reflections on grey images: luma',
    );

    const empty = join(dir, 'empty');
    mkdirSync(empty);
    writeFileSync(join(empty, 'notes.txt'), 'no images');
    const inputError = (re: RegExp) => (e: unknown) => e instanceof InputError && re.test(e.message);
    assert.throws(() => openReflectionSource(empty), inputError(/holds no \.png\/\.jpg images/));
    assert.throws(() => openReflectionSource(join(dir, 'missing')), inputError(/reflection source not found/));
    assert.throws(() => createTrigger({ name: 'reflection' }, CIFAR), inputError(/reflectionSource is required/));
    assert.throws(
      () => resolveTriggerSpec({ name: 'refool', reflectionSource: flat, reflectionModel: 'mirror' }),
      inputError(/reflectionModel must be one of/),
    );
    assert.throws(
      () => createTrigger({ name: 'reflection', reflectionSource: flat }, { height: 8, width: 8, channels: 3 }),
      inputError(/at least 9x9/),
    );
    const oneClass: ImageDataset = {
      images: new Uint8Array(2 * 12 * 12),
      labels: Int32Array.from([3, 3]),
      count: 2,
      height: 12,
      width: 12,
      channels: 1,
      numClasses: 4,
      source: 'two images',
    };
    assert.throws(
      () => reflectionCandidates(datasetPool(oneClass), CIFAR, { count: 3, seed: 0, excludeLabel: 3 }),
      inputError(/no images outside class 3/),
    );
    const twoChannel = { ...oneClass, channels: 2, images: new Uint8Array(2 * 12 * 12 * 2) };
    assert.throws(() => reflectionCandidates(datasetPool(twoChannel), CIFAR, { count: 1, seed: 0 }), inputError(/2 channels do not fit/));
  } finally {
    remove();
  }
});

test(
  'clean-label poisoning on CIFAR: only target-class picks get a reflection, labels kept; the trigger rebuilds the candidates',
  { skip: noShared },
  async () => {
    const trainPath = join(CIFAR_DIR, 'train.bin');
    const full = await loadDataset(trainPath, { split: 'train' });
    const ds = selectImages(
      full,
      Array.from({ length: 600 }, (_, i) => i),
    );
    const req = {
      train: ds,
      params: { ...params, reflectionCount: 20 },
      targetType: 'cleanLabel' as const,
      targetLabel: 5,
      injectPortion: 0.05,
      seed: 3,
    };
    const p = await poisonRefool(req);
    const targets = Array.from(ds.labels).filter((l) => l === 5).length;
    assert.equal(p.poisonedIndices.length, Math.min(Math.floor(600 * 0.05), targets));
    assert.deepEqual(Array.from(p.labels), Array.from(ds.labels), 'labels kept');
    const size = 32 * 32 * 3;
    const picked = new Set(p.poisonedIndices);
    for (let i = 0; i < ds.count; i++) {
      const same = maxDiff(p.images.subarray(i * size, (i + 1) * size), ds.images.subarray(i * size, (i + 1) * size)) === 0;
      assert.equal(!same, picked.has(i), `image ${i} (label ${ds.labels[i]})`);
      if (picked.has(i)) assert.equal(ds.labels[i], 5);
    }
    assert.deepEqual(Array.from((await poisonRefool(req)).images), Array.from(p.images), 'seeded');
    const dirty = await poisonRefool({ ...req, targetType: 'all2one' });
    assert.equal(dirty.poisonedIndices.length, 30);
    assert.ok(Array.from(dirty.poisonedIndices).every((i) => dirty.labels[i] === 5));

    // The trigger spec names the training data and leaves the target out: the same candidates as poisoning full.
    const spec = refool.trigger(params, { data: trainPath, targetLabel: 5 });
    assert.deepEqual(resolveTriggerSpec(spec), {
      name: 'reflection',
      reflectionSource: trainPath,
      reflectionExclude: 5,
      reflectionCount: 200,
      reflectionModel: 'random',
      alpha: 0.4,
      patternSeed: 0,
    });
    const fromFile = loadReflectionCandidates(trainPath, CIFAR, { count: 200, seed: 0, excludeLabel: 5 });
    const inMemory = reflectionCandidates(datasetPool(full), CIFAR, { count: 200, seed: 0, excludeLabel: 5 });
    assert.deepEqual(fromFile, inMemory);
    const testSet = selectImages(await loadDataset(join(CIFAR_DIR, 'test.bin'), { split: 'test' }), [0, 1, 2, 3, 4, 5]);
    const bd = backdoorTestSet(testSet, { trigger: spec, targetType: 'cleanLabel', targetLabel: 5 });
    assert.ok(bd.count > 0 && Array.from(bd.labels).every((l) => l === 5));
    assert.ok(maxDiff(bd.images, selectImages(testSet, bd.sourceIndices).images) > 10, 'test images get a reflection');
    await assert.rejects(poisonRefool({ ...req, targetLabel: 10 }), InputError);
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(poisonRefool({ ...req, signal: ac.signal }), RunCancelledError);
  },
);

test('declarations: parameter keys unique across the registry, checked defaults', () => {
  const others = new Set(ATTACKS.filter((a) => a.name !== 'refool').flatMap((a) => a.params.map((p) => p.key)));
  for (const p of refool.params) assert.ok(!others.has(p.key), `${p.key} is another attack's flag`);
  assert.deepEqual(params, {
    reflectionSource: '',
    reflectionModel: 'random',
    reflectionCount: 200,
    reflectionAlpha: 0.4,
    reflectionSeed: 0,
  });
  assert.deepEqual(refool.defaults, { targetType: 'cleanLabel', injectPortion: 0.1 });
  assert.equal(refool.labels, 'clean');
  assert.throws(() => checkParams(refool.params, { reflectionModel: 'mirror' }, 'attack refool'), /reflectionModel must be one of/);
  assert.throws(() => checkParams(refool.params, { reflectionAlpha: 1.5 }, 'attack refool'), /reflectionAlpha must be <= 1/);
});

test('train on Refool-poisoned digits and measure ACC/ASR with the reflection trigger: no tensor leak', async () => {
  await initBackend('auto');
  const ds = selectImages(
    await loadDataset('mnist', { split: 'train' }),
    Array.from({ length: 400 }, (_, i) => i),
  );
  const testSet = selectImages(
    await loadDataset('mnist', { split: 'test' }),
    Array.from({ length: 100 }, (_, i) => i),
  );
  const p1 = { ...params, reflectionSource: 'mnist', reflectionCount: 10, reflectionModel: 'blur' };
  const before = tf.memory().numTensors;
  const p = await refool.poison({ train: ds, params: p1, targetType: 'cleanLabel', targetLabel: 5, injectPortion: 0.1, seed: 0 });
  assert.ok(p.poisonedIndices.length > 0);
  const model = createModel(specFor('auto', ds), 0);
  try {
    const evalSets = {
      clean: testSet,
      backdoor: backdoorTestSet(testSet, { trigger: refool.trigger(p1), targetType: 'cleanLabel', targetLabel: 5 }),
    };
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

const CLI = join(__dirname, '..', '..', 'dist', 'cli.js');
test(
  'nad train --attack refool: a missing reflection folder and an unknown model end with exit code 2 and a message',
  { skip: !existsSync(CLI) && 'dist/cli.js not built (npm run build)' },
  () => {
    const { dir, remove } = tempFolder('refool-cli');
    try {
      const nad = (...args: string[]) =>
        spawnSync(
          process.execPath,
          [CLI, 'train', '--attack', 'refool', '--data', 'mnist', '--epochs', '1', '--runs-dir', dir, '-q', ...args],
          {
            encoding: 'utf8',
            timeout: 120_000,
          },
        );
      const missing = nad('--reflection-source', join(dir, 'no-such-folder'));
      assert.equal(missing.status, 2, missing.stderr);
      assert.match(missing.stderr, /no-such-folder: reflection source not found/);
      const model = nad('--reflection-model', 'mirror');
      assert.equal(model.status, 2, model.stderr);
      assert.match(model.stderr, /reflectionModel must be one of random, same, blur, ghost/);
    } finally {
      remove();
    }
  },
);
