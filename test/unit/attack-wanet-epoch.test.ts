// WaNet warped anew every epoch (warpPerEpoch, as the authors' train.py warps each batch): the draws of an epoch
// come from the run's seed and the epoch alone, differ between epochs, warp with the test-time trigger's grid
// and rounding, relabel only what they warp; the training loop calls the hook once per epoch (from the resumed
// epoch on) and no tensor is left behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { poisonWanet, wanet, type WanetPoisonedDataset } from '../../src/engine/attacks/wanet';
import { initBackend } from '../../src/engine/backend';
import { loadDataset, selectImages } from '../../src/engine/data';
import { createModel, specFor } from '../../src/engine/models';
import { checkParams } from '../../src/engine/params';
import { BADNET_TRAINING } from '../../src/engine/schedules';
import { train } from '../../src/engine/train';
import { applyTrigger, backdoorTestSet } from '../../src/engine/triggers';
import type { ImageDataset } from '../../src/engine/types';
import { CIFAR_DIR, hasShared } from '../fixtures/data/paths';

const params = checkParams(wanet.params, { warpPerEpoch: true }, 'attack wanet');
const first = (ds: ImageDataset, n: number): ImageDataset =>
  selectImages(
    ds,
    Array.from({ length: n }, (_, i) => i),
  );
let digits: ImageDataset | undefined;
const mnist = async (): Promise<ImageDataset> => (digits ??= first(await loadDataset('mnist', { split: 'train' }), 300));

/** The draws of one data set: each epoch's picks and images against the clean set and the test-time warp. */
async function checkDraws(ds: ImageDataset): Promise<void> {
  const req = { train: ds, params, targetType: 'all2one' as const, targetLabel: 5, injectPortion: 0.1, seed: 7 };
  const logs: string[] = [];
  const p = await poisonWanet({ ...req, emit: (e) => e.type === 'log' && logs.push(e.message) });
  assert.match(logs.join('\n'), /drawn anew every epoch/);
  const epochData = p.epochData;
  assert.ok(epochData, 'warpPerEpoch gives the per-epoch hook');
  const draw = (e: number): WanetPoisonedDataset => epochData(e) as WanetPoisonedDataset;
  const stamped = applyTrigger(ds, wanet.trigger(params)); // the static warp: same grid, same rounding
  const size = ds.height * ds.width * ds.channels;
  const img = (d: ImageDataset, i: number): Buffer => Buffer.from(d.images.subarray(i * size, (i + 1) * size));
  const n = ds.count;
  const draws = [0, 1, 2, 5].map(draw);
  assert.ok(draws[0].images === p.images && draws[0].labels === p.labels, "epoch 0's draw is the poisoned set itself");
  for (const [e, d] of draws.entries()) {
    const what = `draw ${e}`;
    assert.equal(d.poisonedIndices.length, Math.floor(n * 0.1), what);
    assert.equal(d.crossIndices.length, Math.floor(n * 0.1) * 2, what);
    const bd = new Set(d.poisonedIndices);
    const cross = new Set(d.crossIndices);
    let crossMoved = 0;
    for (let i = 0; i < n; i++) {
      if (bd.has(i)) {
        assert.equal(d.labels[i], 5, `${what}: image ${i} relabelled`);
        assert.ok(img(d, i).equals(img(stamped, i)), `${what}: image ${i} carries the test-time warp`);
        continue;
      }
      assert.equal(d.labels[i], ds.labels[i], `${what}: image ${i} keeps its label`);
      if (!cross.has(i)) assert.ok(img(d, i).equals(img(ds, i)), `${what}: image ${i} untouched`);
      else if (!img(d, i).equals(img(ds, i)) && !img(d, i).equals(img(stamped, i))) crossMoved++;
    }
    assert.ok(crossMoved >= 0.9 * cross.size, `${what}: noise-mode images are warped differently (${crossMoved} of ${cross.size})`);
    assert.deepEqual(d.originalLabels, ds.labels.subarray(0, n));
  }
  // Different epochs pick (and noise) differently; every image is warped in some epochs and clean in others.
  for (let a = 0; a < draws.length; a++)
    for (let b = a + 1; b < draws.length; b++) {
      assert.notDeepEqual(draws[a].poisonedIndices, draws[b].poisonedIndices, `epochs ${a} and ${b} pick alike`);
      assert.notDeepEqual(draws[a].crossIndices, draws[b].crossIndices);
    }
  // The same seed and epoch: the same draw, from this hook again or from a fresh poisoning (a resumed run).
  const again = await poisonWanet(req);
  for (const e of [0, 1, 5]) {
    const [x, y] = [draw(e), (again.epochData?.(e) ?? again) as WanetPoisonedDataset];
    assert.deepEqual([x.images, x.labels, x.poisonedIndices, x.crossIndices], [y.images, y.labels, y.poisonedIndices, y.crossIndices]);
  }
  assert.deepEqual(draw(2).images, draws[2].images, 'a repeated call gives the same images');
  const other = await poisonWanet({ ...req, seed: 8 });
  assert.notDeepEqual(other.epochData?.(1).poisonedIndices, draws[1].poisonedIndices, 'another seed draws otherwise');
  assert.throws(() => epochData(-1), RangeError);
  // The default stays the static scheme: one set, no hook, the same as before this option.
  const fixed = await poisonWanet({ ...req, params: checkParams(wanet.params, {}, 'attack wanet') });
  assert.equal(fixed.epochData, undefined);
}

test('per-epoch draws on digits: seeded by seed and epoch, warped as the test-time trigger, labels right', async () => {
  await checkDraws(await mnist());
});

test('per-epoch draws on CIFAR images', { skip: !hasShared() && '../shared absent' }, async () => {
  await checkDraws(first(await loadDataset(join(CIFAR_DIR, 'test.bin'), { split: 'test' }), 120));
});

test('the training loop trains epoch e on its draw, from the resumed epoch on; no tensor grows across epochs', async () => {
  await initBackend('auto');
  const ds = await mnist();
  const testSet = first(await loadDataset('mnist', { split: 'test' }), 60);
  const p = await wanet.poison({ train: ds, params, targetType: 'all2one', targetLabel: 5, injectPortion: 0.1, seed: 0 });
  const hook = p.epochData;
  assert.ok(hook);
  const calls: number[] = [];
  const epochData = (e: number): ImageDataset => {
    calls.push(e);
    return hook(e);
  };
  const evalSets = { clean: testSet, backdoor: backdoorTestSet(testSet, { trigger: wanet.trigger(params), targetLabel: 5 }) };
  const settings = { ...BADNET_TRAINING, epochs: 3, batchSize: 50, augment: true, hflip: false };
  const before = tf.memory().numTensors;
  const model = createModel(specFor('auto', ds), 0);
  const counts: number[] = [];
  try {
    const run = (startEpoch: number): ReturnType<typeof train> =>
      train({
        student: model,
        data: p,
        epochData,
        startEpoch,
        evalSets,
        settings,
        phase: 'train',
        onEpochEnd: () => void counts.push(tf.memory().numTensors),
      });
    assert.equal((await run(0)).length, 3);
    assert.deepEqual(calls, [0, 1, 2]);
    assert.equal(new Set(counts).size, 1, `tensors per epoch: ${counts.join(', ')}`);
    await run(2); // resumed after two epochs: only the third draw
    assert.deepEqual(calls, [0, 1, 2, 2]);
    assert.equal(counts[3], counts[0], 'tensors after the resumed epoch');
    // A hook whose set does not stand in for the data is a bug, said as such.
    await assert.rejects(
      train({ student: model, data: p, epochData: () => first(ds, 10), evalSets, settings, phase: 'train' }),
      /the training set of epoch 1 is 10 28x28x1, 10 classes, not 300 28x28x1, 10 classes/,
    );
  } finally {
    model.dispose();
  }
  assert.equal(tf.memory().numTensors, before, 'tensors leaked');
});
