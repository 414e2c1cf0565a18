// NAD's training augmentation (RandomCrop pad 4, horizontal flip, Cutout(1, 3)) and ToTensor scaling.
// Images carry their own coordinates (ch0 = row + 1, ch1 = col + 1, ch2 = 255), so each output pixel tells
// where it came from, and zeros are padding or cutout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { ImageDataset } from '../../src/engine/types';
import { Rng } from '../../src/engine/rng';
import { loadDataset } from '../../src/engine/data';
import { augmentBatch, toFloatBatch } from '../../src/engine/data/augment';
import { CIFAR_DIR, hasShared } from '../fixtures/data/paths';

const S = 32;
function coordinateImages(n: number): ImageDataset {
  const images = new Uint8Array(n * S * S * 3);
  for (let k = 0; k < n; k++) {
    for (let r = 0; r < S; r++) {
      for (let c = 0; c < S; c++) images.set([r + 1, c + 1, 255], ((k * S + r) * S + c) * 3);
    }
  }
  return { images, labels: new Int32Array(n), count: n, height: S, width: S, channels: 3, numClasses: 10, source: 'synthetic' };
}

interface Observed {
  dy: number;
  dx: number;
  flipped: boolean;
  cut: Array<[number, number]>;
}

/** Read back one augmented image's crop offset, flip and cutout pixels. */
function observe(batch: Float32Array, k: number): Observed {
  const at = (r: number, c: number, ch: number): number => Math.round(batch[((k * S + r) * S + c) * 3 + ch] * 255);
  let found: Observed | undefined;
  // Any two horizontally adjacent kept pixels give the offset and the direction.
  for (let r = 0; r < S && !found; r++) {
    for (let c = 0; c + 1 < S && !found; c++) {
      if (at(r, c, 2) === 255 && at(r, c + 1, 2) === 255) {
        const flipped = at(r, c + 1, 1) < at(r, c, 1);
        const srcCol = at(r, c, 1) - 1;
        found = { dy: at(r, c, 0) - 1 - r, dx: flipped ? srcCol - (S - 1 - c) : srcCol - c, flipped, cut: [] };
      }
    }
  }
  assert.ok(found, 'some image content survives the crop');
  const o: Observed = found;
  for (let r = 0; r < S; r++) {
    for (let c = 0; c < S; c++) {
      const sr = r + o.dy;
      const sc = (o.flipped ? S - 1 - c : c) + o.dx;
      const inside = sr >= 0 && sr < S && sc >= 0 && sc < S;
      if (!inside) {
        for (let ch = 0; ch < 3; ch++) assert.equal(at(r, c, ch), 0, 'padding is zero');
      } else if (at(r, c, 2) === 0) {
        o.cut.push([r, c]);
        for (let ch = 0; ch < 3; ch++) assert.equal(at(r, c, ch), 0, 'cutout zeroes every channel');
      } else {
        assert.deepEqual([at(r, c, 0), at(r, c, 1)], [sr + 1, sc + 1], 'pixel comes from its cropped/flipped source');
      }
    }
  }
  return o;
}

test('augmentBatch: crop offsets uniform over 0..8, flips about half, cutout a 2x2 zero patch', () => {
  const n = 1000;
  const ds = coordinateImages(n);
  const batch = augmentBatch(
    ds,
    Array.from({ length: n }, (_, i) => i),
    new Rng(42),
  );
  const offsets = new Array<number>(9).fill(0);
  let flips = 0;
  let fullPatches = 0;
  for (let k = 0; k < n; k++) {
    const o = observe(batch, k);
    assert.ok(o.dy >= -4 && o.dy <= 4 && o.dx >= -4 && o.dx <= 4, `offsets ${o.dy}, ${o.dx}`);
    offsets[o.dy + 4]++;
    offsets[o.dx + 4]++;
    if (o.flipped) flips++;
    // The cut pixels form a rectangle of at most 2x2 (smaller at the top/left edges or under padding).
    if (o.cut.length > 0) {
      const rows = new Set(o.cut.map(([r]) => r));
      const cols = new Set(o.cut.map(([, c]) => c));
      assert.ok(rows.size <= 2 && cols.size <= 2 && o.cut.length === rows.size * cols.size, `cut ${JSON.stringify(o.cut)}`);
      if (o.cut.length === 4) fullPatches++;
    }
  }
  assert.ok(
    offsets.every((m) => m > 150 && m < 300),
    `crop offsets 0..8 (rows and columns) spread: ${offsets}`,
  );
  assert.ok(flips > 440 && flips < 560, `flips ${flips} of ${n}`);
  // P(2x2) = P(y >= 1, x >= 1) = (31/32)^2, less where the patch falls on padding.
  assert.ok(fullPatches > 700, `full 2x2 patches ${fullPatches}`);
});

test('augmentBatch: determinism by seed, allocation-free with out, other options', () => {
  const ds = coordinateImages(8);
  const idx = [3, 1, 4, 1, 5];
  const a = augmentBatch(ds, idx, new Rng(9));
  const out = new Float32Array(8 * S * S * 3);
  const b = augmentBatch(ds, idx, new Rng(9), out);
  assert.deepEqual(b, a);
  assert.equal(b.buffer, out.buffer, 'writes into the given array');
  assert.notDeepEqual(augmentBatch(ds, idx, new Rng(10)), a);
  const exact = new Float32Array(5 * S * S * 3);
  assert.equal(augmentBatch(ds, idx, new Rng(9), exact), exact);
  assert.throws(() => augmentBatch(ds, idx, new Rng(9), new Float32Array(10)), /output holds 10 values/);
  assert.throws(() => augmentBatch(ds, [8], new Rng(9)), /image index 8 out of range/);
  // No augmentation at all = toFloatBatch.
  const plain = augmentBatch(ds, idx, new Rng(1), undefined, { padding: 0, flip: false, cutoutHoles: 0 });
  assert.deepEqual(plain, toFloatBatch(ds, idx));
});

test('toFloatBatch: x / 255 in float32 (ToTensor, no normalisation), NHWC', { skip: !hasShared() && '../shared absent' }, async () => {
  const ds = await loadDataset(join(CIFAR_DIR, 'test.bin'), { split: 'test' });
  const idx = [699, 0, 42];
  const x = toFloatBatch(ds, idx);
  assert.equal(x.length, 3 * 3072);
  idx.forEach((i, k) => {
    for (let j = 0; j < 3072; j++) assert.equal(x[k * 3072 + j], Math.fround(ds.images[i * 3072 + j] / 255));
  });
  assert.equal(toFloatBatch(ds, [5], new Float32Array(4 * 3072)).length, 3072, 'a view of the first n images');
});

test(
  'augmentBatch is fast: a 64-image CIFAR batch in a few milliseconds (2 ms measured on 2 busy cores)',
  { skip: !hasShared() && '../shared absent' },
  async () => {
    const ds = await loadDataset(join(CIFAR_DIR, 'train.bin'), { split: 'train' });
    const rng = new Rng(0);
    const out = new Float32Array(64 * 3072);
    const idx = new Int32Array(64);
    const t0 = process.hrtime.bigint();
    const steps = 200;
    for (let s = 0; s < steps; s++) {
      for (let k = 0; k < 64; k++) idx[k] = rng.int(ds.count);
      augmentBatch(ds, idx, rng, out);
    }
    const ms = Number(process.hrtime.bigint() - t0) / 1e6 / steps;
    // Generous bound for shared machines; it catches per-pixel allocation, not small slowdowns.
    assert.ok(ms < 20, `${ms.toFixed(3)} ms per batch`);
  },
);
