// CIFAR-100 binaries (cifar-100-binary layout, written by test/fixtures/data/make_cifar100_fixture.py):
// fine and coarse labels, HWC pixels as torchvision holds them, class names from the meta files, detection
// against CIFAR-10 by record size, and bad input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadDataset, parseDataSource } from '../../src/engine/data';
import { FIXTURES, tempFolder } from '../fixtures/data/paths';
import { rejectsInput } from '../fixtures/data/reject';

const DIR = join(FIXTURES, 'cifar100', 'cifar-100-binary');
interface SplitExpect {
  count: number;
  fine: number[];
  coarse: number[];
  hwcSha256: string;
  firstPixels: number[];
}
const EXPECTED = JSON.parse(readFileSync(join(FIXTURES, 'cifar100.json'), 'utf8')) as {
  train: SplitExpect;
  test: SplitExpect;
  fineNames: string[];
  coarseNames: string[];
};
const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

test('CIFAR-100: fine labels by default, HWC pixels as torchvision, meta class names, folder and file forms', async () => {
  for (const split of ['train', 'test'] as const) {
    const want = EXPECTED[split];
    for (const source of [join(DIR, `${split}.bin`), DIR, join(FIXTURES, 'cifar100')]) {
      const ds = await loadDataset(source, { split });
      assert.deepEqual([ds.count, ds.height, ds.width, ds.channels, ds.numClasses], [want.count, 32, 32, 3, 100], source);
      assert.deepEqual([...ds.labels], want.fine);
      assert.equal(sha256(ds.images), want.hwcSha256);
      assert.deepEqual([...ds.images.subarray(0, 12)], want.firstPixels);
      assert.deepEqual(ds.classNames, EXPECTED.fineNames);
      assert.equal(ds.source, source);
    }
  }
  // Record 1, pixel (row 5, col 7): R, G, B planes at 2 + p, 2 + 1024 + p, 2 + 2048 + p.
  const raw = readFileSync(join(DIR, 'train.bin'));
  const ds = await loadDataset(join(DIR, 'train.bin'), { split: 'train' });
  const p = 5 * 32 + 7;
  assert.deepEqual(
    [...ds.images.subarray(3072 + 3 * p, 3072 + 3 * p + 3)],
    [raw[3074 + 2 + p], raw[3074 + 1026 + p], raw[3074 + 2050 + p]],
  );
});

test("CIFAR-100 '#coarse': the 20 superclasses, their names, through file and folder; '#fine' is the default", async () => {
  const coarse = await loadDataset(`${DIR}#coarse`, { split: 'train' });
  assert.equal(coarse.numClasses, 20);
  assert.deepEqual([...coarse.labels], EXPECTED.train.coarse);
  assert.deepEqual(coarse.classNames, EXPECTED.coarseNames);
  assert.equal(coarse.source, `${DIR}#coarse`);
  const file = await loadDataset(`${join(DIR, 'test.bin')}#coarse`, { split: 'test' });
  assert.deepEqual([...file.labels], EXPECTED.test.coarse);
  const fine = await loadDataset(`${DIR}#fine`, { split: 'test' });
  assert.deepEqual([...fine.labels], EXPECTED.test.fine);
  assert.deepEqual(parseDataSource('/a/b#coarse'), { path: '/a/b', option: 'coarse' });
  assert.deepEqual(parseDataSource('/a/b#other'), { path: '/a/b#other' });
});

test('CIFAR-100 vs CIFAR-10: told apart by record size without meta files; a size that fits neither is named', async () => {
  const { dir, remove } = tempFolder('cifar100');
  try {
    // No meta files and another folder name: the 3,074-byte records alone say CIFAR-100, without class names.
    const bare = join(dir, 'train.bin');
    copyFileSync(join(DIR, 'train.bin'), bare);
    const ds = await loadDataset(bare, { split: 'train' });
    assert.equal(ds.numClasses, 100);
    assert.deepEqual([...ds.labels], EXPECTED.train.fine);
    assert.equal(ds.classNames, undefined);
    // The folder form finds it too (train.bin/test.bin is also how the CIFAR-10 subset is stored).
    assert.equal((await loadDataset(dir, { split: 'train' })).numClasses, 100);
    await rejectsInput(() => loadDataset(dir, { split: 'test' }), dir, /CIFAR-100 folder has no test\.bin for the test split/);
    // A size that fits both (3,073 x 3,074 bytes): CIFAR-10 unless CIFAR-100's meta files are beside it.
    const both = join(dir, 'both');
    mkdirSync(both);
    writeFileSync(join(both, 'data.bin'), Buffer.alloc(3073 * 3074));
    const asCifar10 = await loadDataset(join(both, 'data.bin'), { split: 'train' });
    assert.deepEqual([asCifar10.count, asCifar10.numClasses], [3074, 10]);
    copyFileSync(join(DIR, 'fine_label_names.txt'), join(both, 'fine_label_names.txt'));
    const asCifar100 = await loadDataset(join(both, 'data.bin'), { split: 'train' });
    assert.deepEqual([asCifar100.count, asCifar100.numClasses], [3073, 100]);
    // Fits neither: one message for both formats.
    const odd = join(dir, 'odd.bin');
    writeFileSync(odd, Buffer.alloc(3074 * 2 + 5));
    await rejectsInput(
      () => loadDataset(odd, { split: 'train' }),
      odd,
      /6153 bytes is not a whole number of 3073-byte CIFAR-10 records.*nor of 3074-byte CIFAR-100 records/,
    );
  } finally {
    remove();
  }
});

test('CIFAR-100 bad input: truncated record, labels out of range, wrong meta, option for another format', async () => {
  const { dir, remove } = tempFolder('cifar100-bad');
  try {
    const raw = readFileSync(join(DIR, 'train.bin'));
    const folder = join(dir, 'cifar-100-binary');
    mkdirSync(folder);
    const truncated = join(folder, 'train.bin');
    writeFileSync(truncated, raw.subarray(0, 2 * 3074 + 100));
    await rejectsInput(
      () => loadDataset(truncated, { split: 'train' }),
      truncated,
      /6248 bytes is not a whole number of 3074-byte CIFAR-100 records .*truncated or not a CIFAR-100 binary file/,
    );
    const badFine = Buffer.from(raw.subarray(0, 3 * 3074));
    badFine[2 * 3074 + 1] = 100;
    writeFileSync(truncated, badFine);
    await rejectsInput(
      () => loadDataset(truncated, { split: 'train' }),
      truncated,
      /record 2 \(byte 6148\) has coarse label \d+ and fine label 100/,
    );
    const badCoarse = Buffer.from(raw.subarray(0, 3 * 3074));
    badCoarse[3074] = 20;
    writeFileSync(truncated, badCoarse);
    await rejectsInput(() => loadDataset(`${truncated}#coarse`, { split: 'train' }), truncated, /record 1 .*coarse label 20/);
    writeFileSync(truncated, raw);
    writeFileSync(join(folder, 'coarse_label_names.txt'), 'a\nb\n');
    await rejectsInput(
      () => loadDataset(`${folder}#coarse`, { split: 'train' }),
      join(folder, 'coarse_label_names.txt'),
      /expected 20 class names, found 2/,
    );
    await rejectsInput(() => loadDataset(`${folder}#roi`, { split: 'train' }), truncated, /'#roi' does not apply to CIFAR-100 data/);
    await rejectsInput(
      () => loadDataset('mnist-folder-that-is-not-here#coarse', { split: 'train' }),
      'mnist-folder-that-is-not-here#coarse',
      /no such file or folder/,
    );
  } finally {
    remove();
  }
});
