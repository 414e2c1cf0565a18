// GTSRB in the official layout (test/fixtures/data/make_gtsrb_fixture.py: PPMs saved by Pillow, semicolon
// CSVs): 32x32 images byte-for-byte equal to Pillow's Image.resize((32, 32), BILINEAR), as BackdoorBench's
// transforms.Resize((32, 32)), with and without the ROI crop; 43 classes; PPM and CSV errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cpSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { classCounts, loadDataset } from '../../src/engine/data';
import { GTSRB_CLASSES } from '../../src/engine/data/gtsrb';
import { decodePpm } from '../../src/engine/data/ppm';
import { resizeBilinear } from '../../src/engine/data/resize';
import { FIXTURES, tempFolder } from '../fixtures/data/paths';
import { rejectsInput } from '../fixtures/data/reject';

const ROOT = join(FIXTURES, 'gtsrb');
const GTSRB = join(ROOT, 'GTSRB');
interface ImageExpect {
  file: string;
  label: number;
  whole: string;
  roi: string;
  firstPixels: number[];
}
const EXPECTED = JSON.parse(readFileSync(join(FIXTURES, 'gtsrb.json'), 'utf8')) as { train: ImageExpect[]; test: ImageExpect[] };
const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

test('GTSRB: both splits, 43 classes, pixels equal to Pillow resize (whole image, and #roi crop)', async () => {
  for (const split of ['train', 'test'] as const) {
    for (const roi of [false, true]) {
      for (const source of [GTSRB, ROOT]) {
        const ds = await loadDataset(source + (roi ? '#roi' : ''), { split });
        const want = EXPECTED[split];
        assert.deepEqual([ds.count, ds.height, ds.width, ds.channels, ds.numClasses], [want.length, 32, 32, 3, 43]);
        assert.deepEqual(
          [...ds.labels],
          want.map((e) => e.label),
        );
        want.forEach((e, i) => {
          const img = ds.images.subarray(i * 3072, (i + 1) * 3072);
          assert.equal(sha256(img), roi ? e.roi : e.whole, `${split} ${e.file}${roi ? ' #roi' : ''} differs from Pillow`);
          if (!roi) assert.deepEqual([...img.subarray(0, 6)], e.firstPixels);
        });
        assert.equal(ds.classNames, GTSRB_CLASSES);
        assert.equal(ds.classNames?.[14], 'Stop');
      }
    }
  }
  const train = await loadDataset(join(GTSRB, 'Final_Training', 'Images'), { split: 'train' });
  assert.deepEqual(
    classCounts(train).filter((n) => n > 0),
    [2, 2, 1],
  );
  // The test CSV may sit elsewhere (GTSRB_Final_Test_GT.zip unpacked next to the GTSRB folder).
  const { dir, remove } = tempFolder('gtsrb-gt');
  try {
    cpSync(ROOT, dir, { recursive: true });
    renameSync(join(dir, 'GTSRB', 'Final_Test', 'Images', 'GT-final_test.csv'), join(dir, 'GT-final_test.csv'));
    const test = await loadDataset(dir, { split: 'test' });
    assert.equal(sha256(test.images.subarray(0, 3072)), EXPECTED.test[0].whole);
    // BackdoorBench's data folder: Train/Images/<class>/..., Test/GT-final_test.csv, Test/Images/*.ppm.
    const bb = join(dir, 'backdoorbench');
    cpSync(join(dir, 'GTSRB', 'Final_Training'), join(bb, 'Train'), { recursive: true });
    cpSync(join(dir, 'GTSRB', 'Final_Test'), join(bb, 'Test'), { recursive: true });
    renameSync(join(dir, 'GT-final_test.csv'), join(bb, 'Test', 'GT-final_test.csv'));
    assert.deepEqual(
      [...(await loadDataset(bb, { split: 'train' })).labels],
      EXPECTED.train.map((e) => e.label),
    );
    assert.equal(sha256((await loadDataset(bb, { split: 'test' })).images), sha256(test.images));
  } finally {
    remove();
  }
});

test('PIL bilinear resize: identity, enlarge and shrink along one axis only', () => {
  const img = { width: 3, height: 2, rgb: Uint8Array.from({ length: 18 }, (_, i) => i * 10) };
  assert.deepEqual(resizeBilinear(img, 3, 2).rgb, img.rgb);
  // Shrinking 3 -> 1 column widens the triangle to support 3: taps at distance 1, 0, 1 weigh 2/3, 1, 2/3,
  // normalised and rounded to 22-bit fixed point as Pillow does; the rows are left alone.
  const row = resizeBilinear(img, 1, 2).rgb;
  const w = [2 / 3, 1, 2 / 3].map((v) => v / (7 / 3));
  const fixed = w.map((v) => Math.trunc(0.5 + v * (1 << 22)));
  const expect = (c: number, y: number): number =>
    ((1 << 21) + [0, 1, 2].reduce((a, x) => a + img.rgb[(y * 3 + x) * 3 + c] * fixed[x], 0)) >> 22;
  assert.deepEqual([...row], [expect(0, 0), expect(1, 0), expect(2, 0), expect(0, 1), expect(1, 1), expect(2, 1)]);
});

test('PPM: header comments, P3 / P5 / 16-bit / truncated refused with the file named', async () => {
  const body = Uint8Array.from([10, 20, 30, 40, 50, 60]);
  const withComment = Buffer.concat([Buffer.from('P6\n# made by hand\n2 1\n255\n'), body]);
  assert.deepEqual(decodePpm(withComment, 'x.ppm'), { width: 2, height: 1, rgb: body });
  await rejectsInput(() => decodePpm(Buffer.from('P3\n2 1\n255\n10 20 30 40 50 60\n'), 'a.ppm'), 'a.ppm', /ASCII PPM \(P3\)/);
  await rejectsInput(() => decodePpm(Buffer.from('P5\n2 1\n255\nab'), 'g.ppm'), 'g.ppm', /Netpbm P5 image/);
  await rejectsInput(() => decodePpm(Buffer.concat([Buffer.from('P6\n2 1\n65535\n'), body, body]), 'w.ppm'), 'w.ppm', /maxval 65535/);
  await rejectsInput(
    () => decodePpm(Buffer.concat([Buffer.from('P6\n2 2\n255\n'), body]), 't.ppm'),
    't.ppm',
    /truncated PPM: 2x2 RGB needs 12 bytes of pixels, the file holds 6/,
  );
  await rejectsInput(() => decodePpm(Buffer.from('P6\n2'), 'h.ppm'), 'h.ppm', /truncated or malformed PPM header/);
  await rejectsInput(() => decodePpm(Buffer.from('P6 100000 100000 255\n'), 'big.ppm'), 'big.ppm', /larger than 67108864 pixels/);
  await rejectsInput(() => decodePpm(Buffer.from('GIF89a'), 'n.ppm'), 'n.ppm', /not a PPM image/);
});

test('GTSRB bad input: missing CSV column, label out of range, size mismatch, ROI outside, missing and broken images', async () => {
  const { dir, remove } = tempFolder('gtsrb-bad');
  try {
    cpSync(ROOT, dir, { recursive: true });
    const cls = join(dir, 'GTSRB', 'Final_Training', 'Images', '00001');
    const csv = join(cls, 'GT-00001.csv');
    const good = readFileSync(csv, 'utf8');
    const edit = (text: string): void => writeFileSync(csv, text);
    const train = (): unknown => loadDataset(dir, { split: 'train' });
    edit(good.replace(';ClassId', ';Class'));
    await rejectsInput(train, csv, /lacks column\(s\) ClassId; its header is 'Filename;.*;Class'/);
    edit(good.replace(/;1\n/, ';43\n'));
    await rejectsInput(train, csv, /line 2: ClassId 43 is out of range 0\.\.42/);
    edit(good.replace(/;1\n/, ';x\n'));
    await rejectsInput(train, csv, /line 2: ClassId 'x' is not a whole number/);
    edit(good.replace('00000_00000.ppm;45;38', '00000_00000.ppm;45;39'));
    await rejectsInput(train, join(cls, '00000_00000.ppm'), /image is 45x38 but its annotation says 45x39/);
    edit(good.replace(/00000_00000\.ppm;45;38;(\d+);(\d+);(\d+)/, '00000_00000.ppm;45;38;$1;$2;46'));
    await rejectsInput(
      () => loadDataset(`${dir}#roi`, { split: 'train' }),
      join(cls, '00000_00000.ppm'),
      /region of interest .* outside the 45x38 image/,
    );
    edit(good.replace('00000_00000.ppm', 'gone.ppm'));
    await rejectsInput(train, join(cls, 'gone.ppm'), /file not found/);
    edit(good);
    const ppm = join(cls, '00000_00001.ppm');
    writeFileSync(ppm, readFileSync(ppm).subarray(0, 100));
    await rejectsInput(train, ppm, /truncated PPM: 32x32 RGB needs 3072 bytes of pixels, the file holds 87/);
    rmSync(csv);
    await rejectsInput(train, cls, /class folder 00001 has no GT-00001\.csv/);
    await rejectsInput(() => loadDataset(`${dir}#coarse`, { split: 'test' }), dir, /'#coarse' does not apply to GTSRB data/);
    // The test split without the labelled CSV: only the unlabelled one of GTSRB_Final_Test_Images.zip.
    const testImages = join(dir, 'GTSRB', 'Final_Test', 'Images');
    renameSync(join(testImages, 'GT-final_test.csv'), join(testImages, 'GT-final_test.test.csv'));
    await rejectsInput(
      () => loadDataset(dir, { split: 'test' }),
      dir,
      /no GT-final_test\.csv for the test split \(GT-final_test\.test\.csv has no ClassId column/,
    );
  } finally {
    remove();
  }
});
