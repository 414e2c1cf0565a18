// Tiny-ImageNet in the official layout (test/fixtures/data/make_tiny_imagenet_fixture.py: JPEGs saved by
// Pillow): wnids.txt order, words.txt names, val/ as the test split, pixels against Pillow's decoder, errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { loadDataset } from '../../src/engine/data';
import { readJpegAsPillow } from '../../src/engine/data/jpeg';
import { FIXTURES, tempFolder } from '../fixtures/data/paths';
import { rejectsInput } from '../fixtures/data/reject';

const ROOT = join(FIXTURES, 'tiny-imagenet');
const DATA = join(ROOT, 'tiny-imagenet-200');
const EXPECTED = JSON.parse(readFileSync(join(FIXTURES, 'tiny-imagenet.json'), 'utf8')) as {
  names: string[];
  train: { labels: number[]; checked: number[]; pixels: string };
  val: { labels: number[]; checked: number[]; pixels: string };
  odd: { width: number; height: number; pixels: string };
};
const SIZE = 64 * 64 * 3;

/**
 * Largest and mean absolute difference to Pillow's pixels. Tolerance: jpeg-js's integer IDCT and
 * libjpeg-turbo's (Pillow) round differently by at most 1 per sample; a Cb/Cr sample off by 1 moves R or B
 * by up to 1.772 levels, so a pixel may differ by 1 (luma) + 2 (chroma) = 3, and such pixels are rare.
 */
function difference(a: Uint8Array, b: Uint8Array): { max: number; mean: number } {
  assert.equal(a.length, b.length);
  let max = 0;
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    max = Math.max(max, d);
    sum += d;
  }
  return { max, mean: sum / a.length };
}

test('Tiny-ImageNet: 64x64 RGB, wnids.txt order, words.txt names, val as test split, pixels as Pillow decodes', async () => {
  for (const [split, key] of [
    ['train', 'train'],
    ['test', 'val'],
  ] as const) {
    const want = EXPECTED[key];
    const pillow = inflateSync(Buffer.from(want.pixels, 'base64'));
    for (const source of [DATA, ROOT]) {
      const ds = await loadDataset(source, { split });
      assert.deepEqual([ds.count, ds.height, ds.width, ds.channels, ds.numClasses], [want.labels.length, 64, 64, 3, 3]);
      assert.deepEqual([...ds.labels], want.labels);
      assert.deepEqual(ds.classNames, EXPECTED.names);
      want.checked.forEach((index, k) => {
        const { max, mean } = difference(ds.images.subarray(index * SIZE, (index + 1) * SIZE), pillow.subarray(k * SIZE, (k + 1) * SIZE));
        assert.ok(max <= 3 && mean < 0.3, `${split} image ${index}: max ${max}, mean ${mean.toFixed(3)} from Pillow`);
      });
    }
  }
  // The grayscale train image (goldfish, index 2) is R = G = B, within 1 of Pillow (luma IDCT rounding only).
  const train = await loadDataset(DATA, { split: 'train' });
  const grey = train.images.subarray(2 * SIZE, 3 * SIZE);
  for (let p = 0; p < 64 * 64; p++) assert.ok(grey[3 * p] === grey[3 * p + 1] && grey[3 * p] === grey[3 * p + 2]);
  const pillowGrey = inflateSync(Buffer.from(EXPECTED.train.pixels, 'base64')).subarray(SIZE, 2 * SIZE);
  assert.ok(difference(grey, pillowGrey).max <= 1);
});

test('JPEG decoding as Pillow: an odd-sized 4:2:0 image (last chroma row and column)', () => {
  const img = readJpegAsPillow(join(ROOT, 'odd-37x23.jpg'));
  assert.deepEqual([img.width, img.height], [EXPECTED.odd.width, EXPECTED.odd.height]);
  const { max, mean } = difference(img.rgb, inflateSync(Buffer.from(EXPECTED.odd.pixels, 'base64')));
  assert.ok(max <= 3 && mean < 0.3, `max ${max}, mean ${mean.toFixed(3)} from Pillow`);
});

test('Tiny-ImageNet bad input: missing annotation, unknown class, missing and broken images, wrong size', async () => {
  const { dir, remove } = tempFolder('tiny-bad');
  try {
    cpSync(DATA, dir, { recursive: true });
    const annotations = join(dir, 'val', 'val_annotations.txt');
    const good = readFileSync(annotations, 'utf8');
    const val = (): unknown => loadDataset(dir, { split: 'test' });
    writeFileSync(annotations, good.split('\n').slice(1).join('\n'));
    await rejectsInput(val, annotations, /1 image\(s\) have no annotation, e\.g\. val_0\.JPEG/);
    writeFileSync(annotations, good.replace('n02124075', 'n99999999'));
    await rejectsInput(val, annotations, /line 2: class 'n99999999' of 'val_1\.JPEG' is not in wnids\.txt/);
    writeFileSync(annotations, good + 'val_9.JPEG\tn09193705\t0\t0\t1\t1\n');
    await rejectsInput(val, join(dir, 'val', 'images', 'val_9.JPEG'), /file not found/);
    writeFileSync(annotations, good);
    const broken = join(dir, 'val', 'images', 'val_1.JPEG');
    writeFileSync(broken, readFileSync(broken).subarray(0, 300));
    await rejectsInput(val, broken, /cannot decode JPEG/);
    const small = join(dir, 'val', 'images', 'val_2.JPEG');
    cpSync(join(ROOT, 'odd-37x23.jpg'), small);
    cpSync(join(DATA, 'val', 'images', 'val_1.JPEG'), broken);
    await rejectsInput(val, small, /image is 37x23; Tiny-ImageNet images are 64x64/);
    rmSync(join(dir, 'train', 'n09193705'), { recursive: true });
    await rejectsInput(
      () => loadDataset(dir, { split: 'train' }),
      join(dir, 'train', 'n09193705', 'images'),
      /class n09193705 of wnids\.txt has no train\/n09193705\/images folder/,
    );
    rmSync(annotations);
    await rejectsInput(val, annotations, /file not found/);
    await rejectsInput(() => loadDataset(`${dir}#coarse`, { split: 'train' }), dir, /'#coarse' does not apply/);
  } finally {
    remove();
  }
});
