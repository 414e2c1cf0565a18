// DatasetBD semantics on the real CIFAR-10 subset: which images are poisoned and how labels change
// (train mode), and the triggered test set ASR is measured on (test mode, inject_portion = 1).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { InputError, type ImageDataset } from '../../src/engine/types';
import { classCounts, loadDataset } from '../../src/engine/data';
import { applyTrigger, backdoorTestSet, createTrigger, poisonTrainingSet } from '../../src/engine/triggers';
import { CIFAR_DIR, hasShared } from '../fixtures/data/paths';

const noShared = !hasShared() && '../shared absent';
const IMG = 3072;
const load = (f: string): Promise<ImageDataset> => loadDataset(join(CIFAR_DIR, f), { split: f === 'train.bin' ? 'train' : 'test' });
const same = (a: ImageDataset, i: number, b: ImageDataset, j: number): boolean =>
  Buffer.from(a.images.subarray(i * IMG, (i + 1) * IMG)).equals(b.images.subarray(j * IMG, (j + 1) * IMG));

test('all2one train poisoning: exactly floor(10%) images, triggered and relabelled 5; the rest untouched', { skip: noShared }, async () => {
  const train = await load('train.bin');
  const p = poisonTrainingSet(train, { trigger: { name: 'gridTrigger' }, seed: 1 });
  assert.equal(p.count, 5085);
  assert.equal(p.poisonedIndices.length, 508); // int(5085 * 0.1)
  const stamped = applyTrigger(train, { name: 'grid' });
  const poisoned = new Set(p.poisonedIndices);
  for (let i = 0; i < train.count; i++) {
    if (poisoned.has(i)) {
      assert.equal(p.labels[i], 5);
      assert.ok(same(p, i, stamped, i), `image ${i} carries the grid`);
    } else {
      assert.equal(p.labels[i], train.labels[i]);
      assert.ok(same(p, i, train, i), `image ${i} unchanged`);
    }
  }
  assert.deepEqual(p.originalLabels, train.labels);
  // Picked uniformly: some of every class, including the target class itself (relabelled to itself, but triggered).
  const pickedClasses = classCounts({ ...train, labels: Int32Array.from(p.poisonedIndices, (i) => train.labels[i]), count: 508 });
  assert.ok(
    pickedClasses.every((n) => n > 20),
    `per-class picks ${pickedClasses}`,
  );
  // The input dataset is not modified.
  assert.deepEqual(train.labels, (await load('train.bin')).labels);
});

test('poisoning is reproducible by seed and differs across seeds; the portion is configurable', { skip: noShared }, async () => {
  const train = await load('train.bin');
  const opts = { trigger: { name: 'randomPixel' }, seed: 7 };
  const a = poisonTrainingSet(train, opts);
  const b = poisonTrainingSet(train, opts);
  assert.deepEqual(a.poisonedIndices, b.poisonedIndices);
  assert.deepEqual(a.images, b.images);
  const c = poisonTrainingSet(train, { ...opts, seed: 8 });
  assert.notDeepEqual(c.poisonedIndices, a.poisonedIndices);
  assert.equal(poisonTrainingSet(train, { trigger: { name: 'grid' }, seed: 1, injectPortion: 0.05 }).poisonedIndices.length, 254);
  assert.equal(poisonTrainingSet(train, { trigger: { name: 'grid' }, seed: 1, injectPortion: 0 }).poisonedIndices.length, 0);
  assert.throws(() => poisonTrainingSet(train, { trigger: { name: 'grid' }, seed: 1, injectPortion: 1.1 }), InputError);
  assert.throws(
    () => poisonTrainingSet(train, { trigger: { name: 'grid' }, seed: 1, targetLabel: 10 }),
    /target label 10 is out of range for 10 classes/,
  );
});

test(
  'all2all relabels label + 1 mod 10; cleanLabel triggers only picked target-class images and keeps labels',
  { skip: noShared },
  async () => {
    const train = await load('train.bin');
    const all = poisonTrainingSet(train, { trigger: { name: 'square' }, targetType: 'all2all', seed: 3 });
    assert.equal(all.poisonedIndices.length, 508);
    for (const i of all.poisonedIndices) assert.equal(all.labels[i], (train.labels[i] + 1) % 10);
    const clean = poisonTrainingSet(train, { trigger: { name: 'square' }, targetType: 'cleanLabel', seed: 3 });
    // Same seed, same picks: cleanLabel poisons the picks that are dogs.
    const dogs = [...all.poisonedIndices].filter((i) => train.labels[i] === 5);
    assert.deepEqual([...clean.poisonedIndices], dogs);
    assert.ok(dogs.length > 20 && dogs.length < 100);
    assert.deepEqual(clean.labels, train.labels);
    const stamped = applyTrigger(train, { name: 'square' });
    for (const i of dogs) assert.ok(same(clean, i, stamped, i));
  },
);

test(
  'backdoorTestSet: all2one leaves out the 71 dogs of test.bin (629 images), all labelled 5 and triggered',
  { skip: noShared },
  async () => {
    const test700 = await load('test.bin');
    const bd = backdoorTestSet(test700, { trigger: { name: 'gridTrigger' }, targetType: 'all2one', targetLabel: 5 });
    assert.equal(bd.count, 629);
    assert.ok(bd.labels.every((l) => l === 5));
    assert.ok(bd.originalLabels.every((l) => l !== 5));
    const stamped = applyTrigger(test700, { name: 'grid' });
    bd.sourceIndices.forEach((src, k) => {
      assert.equal(bd.originalLabels[k], test700.labels[src]);
      assert.ok(same(bd, k, stamped, src));
    });
    // Defaults are the paper's (all2one, target 5).
    assert.deepEqual(backdoorTestSet(test700, { trigger: { name: 'grid' } }).sourceIndices, bd.sourceIndices);
    assert.equal(backdoorTestSet(test700, { trigger: { name: 'grid' }, targetLabel: 0 }).count, 700 - 73);
    assert.equal(backdoorTestSet(test700, { trigger: { name: 'grid' }, targetType: 'cleanLabel' }).count, 629);
    // all2all: the paper's test mode keeps every image, labelled label + 1.
    const a2a = backdoorTestSet(test700, { trigger: createTrigger({ name: 'grid' }, test700), targetType: 'all2all' });
    assert.equal(a2a.count, 700);
    a2a.labels.forEach((l, k) => assert.equal(l, (test700.labels[k] + 1) % 10));
  },
);
