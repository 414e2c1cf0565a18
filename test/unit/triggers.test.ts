// Triggers on real images: checked against the paper's own code (digests in test/fixtures/data/paper-triggers.json,
// made by make_paper_trigger_fixture.py running data_loader.py) and against explicit pixel definitions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { InputError, type ImageDataset } from '../../src/engine/types';
import { loadDataset, selectImages } from '../../src/engine/data';
import { readArrayFile, readNpy } from '../../src/engine/data/npy';
import {
  applyTrigger,
  applyTriggerToImage,
  builtInSignalMask,
  builtInTrojanMask,
  createTrigger,
  parseTriggerName,
  TRIGGER_NAMES,
} from '../../src/engine/triggers';
import { SIGNAL_CIFAR10_MASK_NPY, TROJAN_CIFAR10_MASK_NPZ } from '../../src/engine/triggers/embedded-masks';
import { CIFAR_DIR, FASHION_DIR, FIXTURES, TRIGGER_DIR, hasFashion, hasShared } from '../fixtures/data/paths';

interface Fixture {
  readonly count: number;
  readonly triggers: Record<string, { all: string; first: string[] }>;
}
const paper = JSON.parse(readFileSync(join(FIXTURES, 'paper-triggers.json'), 'utf8')) as { cifar: Fixture; fashion: Fixture };
const sha = (a: Uint8Array): string => createHash('sha256').update(a).digest('hex');
const noShared = !hasShared() && '../shared absent';

let cached: ImageDataset | undefined;
async function cifarTest(): Promise<ImageDataset> {
  return (cached ??= await loadDataset(join(CIFAR_DIR, 'test.bin'), { split: 'test' }));
}
const px = (ds: ImageDataset, n: number, r: number, c: number, ch: number): number =>
  ds.images[((n * ds.height + r) * ds.width + c) * ds.channels + ch];

test("every CIFAR trigger equals the paper's code on all 700 test images", { skip: noShared }, async () => {
  const ds = await cifarTest();
  for (const [name, want] of Object.entries(paper.cifar.triggers)) {
    const out = applyTrigger(ds, { name });
    assert.equal(sha(out.images.subarray(0, 3072)), want.first[0], `${name}: first image`);
    assert.equal(sha(out.images), want.all, `${name}: all ${paper.cifar.count} images`);
  }
});

test(
  "grid, square, fourCorner and sig equal the paper's code on 28x28x1 Fashion-MNIST",
  { skip: !hasFashion() && 'dataset-fashion-mnist not installed' },
  async () => {
    const fashion = await loadDataset(FASHION_DIR, { split: 'test' });
    const ds = selectImages(
      fashion,
      Array.from({ length: paper.fashion.count }, (_, i) => i),
    );
    for (const [name, want] of Object.entries(paper.fashion.triggers)) assert.equal(sha(applyTrigger(ds, { name }).images), want.all, name);
  },
);

test('grid, square, fourCorner: explicit pixels in every channel, nothing else changed', { skip: noShared }, async () => {
  const ds = await cifarTest();
  const n = 10;
  const check = (name: string, expected: Map<string, number>): void => {
    const out = applyTrigger(ds, { name });
    for (let r = 0; r < 32; r++) {
      for (let c = 0; c < 32; c++) {
        for (let ch = 0; ch < 3; ch++) {
          const want = expected.get(`${r},${c}`) ?? px(ds, n, r, c, ch);
          assert.equal(px(out, n, r, c, ch), want, `${name} at row ${r} col ${c} ch ${ch}`);
        }
      }
    }
  };
  const patch = (m: Map<string, number>, top: number, left: number, rows: number[][]): void =>
    rows.forEach((row, i) => row.forEach((v, j) => m.set(`${top + i},${left + j}`, v)));
  const grid = new Map<string, number>();
  patch(grid, 29, 29, [
    [0, 0, 255],
    [0, 255, 0],
    [255, 0, 255],
  ]);
  check('gridTrigger', grid);
  const square = new Map<string, number>();
  patch(square, 28, 28, [
    [255, 255, 255],
    [255, 255, 255],
    [255, 255, 255],
  ]);
  check('square', square);
  const corners = new Map(grid);
  patch(corners, 1, 1, [
    [255, 0, 255],
    [0, 255, 0],
    [255, 0, 0],
  ]);
  patch(corners, 29, 1, [
    [255, 0, 0],
    [0, 255, 0],
    [255, 0, 255],
  ]);
  patch(corners, 1, 29, [
    [255, 0, 255],
    [0, 255, 0],
    [0, 0, 255],
  ]);
  check('fourCorner', corners);
  // Size and distance move the square: 5x5 at distance 0 covers rows/cols 27..31.
  const big = applyTrigger(ds, { name: 'square', size: 5, distance: 0 });
  for (let r = 26; r < 32; r++)
    for (let c = 26; c < 32; c++) assert.equal(px(big, n, r, c, 1) === 255, (r >= 27 && c >= 27) || px(ds, n, r, c, 1) === 255);
});

test('signal and trojan follow their formulas with the masks from ../shared', { skip: noShared }, async () => {
  const ds = await cifarTest();
  const mask = readNpy(join(TRIGGER_DIR, 'signal_cifar10_mask.npy')).data;
  const x = readArrayFile(join(TRIGGER_DIR, 'best_square_trigger_cifar10.npz')).data;
  const signal = applyTrigger(ds, { name: 'signal' });
  const trojan = applyTrigger(ds, { name: 'trojan' });
  for (let n = 0; n < 50; n++) {
    for (let r = 0; r < 32; r++) {
      for (let c = 0; c < 32; c++) {
        for (let ch = 0; ch < 3; ch++) {
          const v = px(ds, n, r, c, ch);
          assert.equal(px(signal, n, r, c, ch), Math.floor(0.8 * v + 0.2 * mask[r * 32 + c]));
          assert.equal(px(trojan, n, r, c, ch), Math.floor(Math.fround(v + x[(ch * 32 + r) * 32 + c])) % 256);
        }
      }
    }
  }
  // numpy (2.4, x86-64) on a constant 200 image, channel 0, rows/cols 25..27: the uint8 cast wraps.
  const flat = new Uint8Array(32 * 32 * 3).fill(200);
  const t = applyTriggerToImage(flat, { height: 32, width: 32, channels: 3 }, { name: 'trojanTrigger' });
  const block = [25, 26, 27].map((r) => [25, 26, 27].map((c) => t[(r * 32 + c) * 3]));
  assert.deepEqual(block, [
    [151, 119, 229],
    [23, 81, 192],
    [75, 206, 190],
  ]);
});

test('sig = uint8(clip(0.2 img + 0.8 * 20 sin(2 pi j 6 / W))); sigAdditive = uint8(clip(img + pattern))', { skip: noShared }, async () => {
  const ds = await cifarTest();
  const sig = applyTrigger(ds, { name: 'sig' });
  const add = applyTrigger(ds, { name: 'sigAdditive' });
  const pattern = Array.from({ length: 32 }, (_, j) => 20 * Math.sin((2 * Math.PI * j * 6) / 32));
  const clip = (v: number): number => Math.min(255, Math.max(0, Math.trunc(v)));
  for (let n = 0; n < 50; n++) {
    for (let r = 0; r < 32; r++) {
      for (let c = 0; c < 32; c++) {
        for (let ch = 0; ch < 3; ch++) {
          const v = px(ds, n, r, c, ch);
          assert.equal(px(sig, n, r, c, ch), clip(0.2 * v + 0.8 * pattern[c]), `sig n${n} r${r} c${c}`);
          // float32 sum, as float32(img) + float32 pattern
          assert.equal(px(add, n, r, c, ch), clip(Math.fround(v + Math.fround(pattern[c]))), `sigAdditive n${n} r${r} c${c}`);
        }
      }
    }
  }
});

test('embedded masks are the shared files, byte for byte', { skip: noShared }, () => {
  assert.ok(Buffer.from(SIGNAL_CIFAR10_MASK_NPY, 'base64').equals(readFileSync(join(TRIGGER_DIR, 'signal_cifar10_mask.npy'))));
  assert.ok(Buffer.from(TROJAN_CIFAR10_MASK_NPZ, 'base64').equals(readFileSync(join(TRIGGER_DIR, 'best_square_trigger_cifar10.npz'))));
  assert.deepEqual(builtInSignalMask().data, readNpy(join(TRIGGER_DIR, 'signal_cifar10_mask.npy')).data);
  assert.deepEqual(builtInTrojanMask().data, readArrayFile(join(TRIGGER_DIR, 'best_square_trigger_cifar10.npz')).data);
});

test('user mask files: the shared files as maskFile give the built-in results; misfits are InputErrors', { skip: noShared }, async () => {
  const ds = selectImages(await cifarTest(), [0, 1, 2, 3]);
  const signalFile = join(TRIGGER_DIR, 'signal_cifar10_mask.npy');
  const trojanFile = join(TRIGGER_DIR, 'best_square_trigger_cifar10.npz');
  assert.deepEqual(applyTrigger(ds, { name: 'signal', maskFile: signalFile }).images, applyTrigger(ds, { name: 'signal' }).images);
  assert.deepEqual(applyTrigger(ds, { name: 'trojan', maskFile: trojanFile }).images, applyTrigger(ds, { name: 'trojan' }).images);
  const mnistShape = { height: 28, width: 28, channels: 1 };
  assert.throws(
    () => createTrigger({ name: 'signal' }, mnistShape),
    /signalTrigger's built-in mask is \(32, 32\) for 32x32 CIFAR-10 images; for 28x28x1 data give a mask file/,
  );
  assert.throws(
    () => createTrigger({ name: 'trojan', maskFile: signalFile }, mnistShape),
    (e: unknown) => e instanceof InputError && e.file === signalFile && /mask shape \(32, 32\) does not fit 28x28x1 images/.test(e.message),
  );
  // A blend pattern from a mask file: the signal mask blended at alpha 0.2 is the signal trigger.
  assert.deepEqual(applyTrigger(ds, { name: 'blend', maskFile: signalFile }).images, applyTrigger(ds, { name: 'signal' }).images);
});

test('blend: seeded noise pattern, shared by all images; randomPixel: fresh noise per image, seeded', { skip: noShared }, async () => {
  const ds = selectImages(await cifarTest(), [0, 1, 2, 3, 4, 5, 6, 7]);
  const a = applyTrigger(ds, { name: 'blend' });
  assert.deepEqual(applyTrigger(ds, { name: 'blend', patternSeed: 0 }).images, a.images);
  assert.notDeepEqual(applyTrigger(ds, { name: 'blend', patternSeed: 1 }).images, a.images);
  // Recover the pattern where it is determined: out = floor(0.8 v + 0.2 p) => p in a window; the same window for every image.
  const noiseBounds = (out: ImageDataset, n: number, i: number): [number, number] => {
    const v = ds.images[n * 3072 + i];
    const o = out.images[n * 3072 + i];
    return [(o - 0.8 * v) / 0.2, (o + 1 - 0.8 * v) / 0.2];
  };
  for (let i = 0; i < 3072; i += 37) {
    const [lo0, hi0] = noiseBounds(a, 0, i);
    const [lo1, hi1] = noiseBounds(a, 1, i);
    assert.ok(Math.max(lo0, lo1) < Math.min(hi0, hi1) + 1e-9, `blend pattern shared at ${i}`);
  }
  const r1 = applyTrigger(ds, { name: 'randomPixel' }, { seed: 4 });
  assert.deepEqual(applyTrigger(ds, { name: 'randomPixelTrigger' }, { seed: 4 }).images, r1.images);
  assert.notDeepEqual(applyTrigger(ds, { name: 'randomPixel' }, { seed: 5 }).images, r1.images);
  let differ = 0;
  for (let n = 0; n < 8; n++) {
    for (let p = 0; p < 1024; p++) {
      const bounds = [0, 1, 2].map((ch) => noiseBounds(r1, n, p * 3 + ch));
      // One HxW mask value per pixel, in 0..255, the same in all channels (the code's reshape to (w, h, 1)).
      const lo = Math.max(...bounds.map((b) => b[0]), 0);
      const hi = Math.min(...bounds.map((b) => b[1]), 256);
      assert.ok(lo < hi + 1e-9, `randomPixel image ${n} pixel ${p}`);
    }
    if (n > 0 && sha(r1.images.subarray(n * 3072, n * 3072 + 3072)) !== sha(r1.images.subarray(0, 3072))) differ++;
  }
  assert.equal(differ, 7);
});

test('trigger names: paper and short names, case and separators; unknown names list the valid ones', () => {
  const pairs: Array<[string, string]> = [
    ['gridTrigger', 'gridTrigger'],
    ['grid', 'gridTrigger'],
    ['squareTrigger', 'squareTrigger'],
    ['square', 'squareTrigger'],
    ['fourCornerTrigger', 'fourCornerTrigger'],
    ['four-corner', 'fourCornerTrigger'],
    ['randomPixel', 'randomPixelTrigger'],
    ['signal', 'signalTrigger'],
    ['TROJAN', 'trojanTrigger'],
    ['blend', 'blend'],
    ['blendTrigger', 'blend'],
    ['sig', 'sig'],
    ['sig_additive', 'sigAdditive'],
  ];
  for (const [given, want] of pairs) assert.equal(parseTriggerName(given), want, given);
  assert.throws(
    () => parseTriggerName('checkerboard'),
    (e: unknown) =>
      e instanceof InputError && TRIGGER_NAMES.every((n) => e.message.includes(n)) && /unknown trigger 'checkerboard'/.test(e.message),
  );
  assert.throws(
    () => createTrigger({ name: 'square', size: 0 }, { height: 32, width: 32, channels: 3 }),
    /size must be a whole number >= 1/,
  );
  assert.throws(() => createTrigger({ name: 'blend', alpha: 2 }, { height: 32, width: 32, channels: 3 }), /alpha must be in \[0, 1\]/);
});

test('single images: the same stamp as on a dataset, on 28x28x1 too', async () => {
  const mnist = await loadDataset('mnist', { split: 'test' });
  const shape = { height: 28, width: 28, channels: 1 };
  const first = mnist.images.subarray(0, 784);
  const one = applyTriggerToImage(first, shape, { name: 'grid' });
  assert.deepEqual(one, applyTrigger(selectImages(mnist, [0]), { name: 'grid' }).images);
  assert.deepEqual(
    [25, 26, 27].map((r) => [25, 26, 27].map((c) => one[r * 28 + c])),
    [
      [0, 0, 255],
      [0, 255, 0],
      [255, 0, 255],
    ],
  );
  assert.deepEqual(first, mnist.images.subarray(0, 784), 'the input image is not modified');
});
