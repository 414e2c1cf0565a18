// BadNets' `bbSquare` pattern, BackdoorBench's default CIFAR-10 trigger (a 3x3 white square flush with the
// bottom-right corner), against BackdoorBench's own lines (generate_white_square.py and AddMaskPatchTrigger,
// run by test/fixtures/attacks/make_badnets_bb_fixture.py): pixel by pixel on seeded random images, by
// digest on ../shared's CIFAR-10 test images; and the registry's parameters and poisoning.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { badnets } from '../../src/engine/attacks/badnets';
import { attackNamed } from '../../src/engine/attacks/registry';
import { loadDataset } from '../../src/engine/data';
import { checkParams } from '../../src/engine/params';
import { applyTrigger, createTrigger } from '../../src/engine/triggers';
import { InputError, type ImageDataset } from '../../src/engine/types';
import { CIFAR_DIR, hasShared } from '../fixtures/data/paths';

interface Fixture {
  trigger: string;
  synthetic: { images: string; stamped: string };
  cifarTest?: string[];
}
const fixture = JSON.parse(readFileSync(join(__dirname, '..', 'fixtures', 'attacks', 'badnets-bb.json'), 'utf8')) as Fixture;
const bytes = (b64: string): Uint8Array => new Uint8Array(Buffer.from(b64, 'base64'));
const shape = { height: 32, width: 32, channels: 3 };
const bbTrigger = () => badnets.trigger(checkParams(badnets.params, { pattern: 'bbSquare' }, 'test'));

test('bbSquare is the square trigger, size 3, at distance 0; its pixels are BackdoorBench trigger_image.png', () => {
  assert.deepEqual(bbTrigger(), { name: 'squareTrigger', size: 3, distance: 0 });
  // The trigger image itself: stamping a black image gives BackdoorBench's PNG.
  const black = new Uint8Array(32 * 32 * 3);
  createTrigger(bbTrigger(), shape).stamp(black);
  assert.deepEqual(black, bytes(fixture.trigger));
  // patchDistance does not move it (BackdoorBench's distances are 0); patchSize sizes it.
  const p = checkParams(badnets.params, { pattern: 'bbSquare', patchDistance: 4, patchSize: 5 }, 'test');
  assert.deepEqual(badnets.trigger(p), { name: 'squareTrigger', size: 5, distance: 0 });
});

test('bbSquare equals AddMaskPatchTrigger pixel by pixel on random images', () => {
  const images = bytes(fixture.synthetic.images);
  const ds: ImageDataset = { ...shape, count: 2, numClasses: 10, images, labels: new Int32Array(2), source: 'synthetic' };
  const stamped = applyTrigger(ds, bbTrigger());
  const want = bytes(fixture.synthetic.stamped);
  let changed = 0;
  for (let i = 0; i < want.length; i++) {
    assert.equal(stamped.images[i], want[i], `value ${i}`);
    if (images[i] !== want[i]) changed++;
  }
  assert.ok(changed > 0 && changed <= 2 * 27, `${changed} values changed`);
});

test('bbSquare equals AddMaskPatchTrigger on CIFAR-10 test images', { skip: hasShared() ? false : 'needs ../shared' }, async () => {
  assert.ok(fixture.cifarTest, 'the fixture was made without ../shared');
  const ds = await loadDataset(join(CIFAR_DIR, 'test.bin'), { split: 'test' });
  const first = { ...ds, count: 20, images: ds.images.subarray(0, 20 * 3072), labels: ds.labels.subarray(0, 20) };
  const stamped = applyTrigger(first, bbTrigger());
  for (let i = 0; i < 20; i++) {
    const digest = createHash('sha256')
      .update(stamped.images.subarray(i * 3072, (i + 1) * 3072))
      .digest('hex');
    assert.equal(digest, fixture.cifarTest[i], `image ${i}`);
  }
});

test('badnets --pattern bbSquare: poisons 10% of digits with the square, relabelled; a bad pattern names the parameter', async () => {
  const attack = attackNamed('badnets');
  assert.ok(attack);
  const ds = await loadDataset('mnist', { split: 'test' });
  const params = checkParams(attack.params, { pattern: 'bbSquare' }, 'attack badnets');
  const out = await attack.poison({ train: ds, params, targetType: 'all2one', targetLabel: 3, injectPortion: 0.1, seed: 7 });
  assert.equal(out.poisonedIndices.length, Math.floor(ds.count * 0.1));
  const size = ds.height * ds.width;
  for (const i of out.poisonedIndices) {
    assert.equal(out.labels[i], 3);
    for (let r = ds.height - 3; r < ds.height; r++)
      for (let c = ds.width - 3; c < ds.width; c++) assert.equal(out.images[i * size + r * ds.width + c], 255);
  }
  assert.throws(
    () => checkParams(attack.params, { pattern: 'bb-square' }, 'attack badnets'),
    (e: unknown) => e instanceof InputError && /pattern/.test(e.message),
  );
});
