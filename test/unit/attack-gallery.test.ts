// The trigger gallery: the amplified difference, the spread of picks, and the figures of a real BadNets
// poisoning of embedded digits (clean and poisoned pixels are the datasets' own, the difference is
// exactly where the trigger is, captions name the label change), and of the test-time trigger.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { amplifiedDifference, spread, testGallery, trainGallery } from '../../src/engine/attacks/gallery';
import { loadDataset, selectImages } from '../../src/engine/data';
import { backdoorTestSet, poisonTrainingSet } from '../../src/engine/triggers';
import type { FigureImage } from '../../src/shared/run-events';

const decode = (img: FigureImage): Uint8Array => new Uint8Array(Buffer.from(img.pixels, 'base64'));

test('amplifiedDifference scales the largest difference to 255 and counts changed values', () => {
  const a = Uint8Array.from([10, 20, 30, 40]);
  const b = Uint8Array.from([10, 25, 20, 40]);
  const d = amplifiedDifference(a, b);
  assert.equal(d.changed, 2);
  assert.equal(d.factor, 25.5);
  assert.deepEqual([...d.pixels], [0, 128, 255, 0]);
  const same = amplifiedDifference(a, a);
  assert.deepEqual({ changed: same.changed, factor: same.factor, max: Math.max(...same.pixels) }, { changed: 0, factor: 1, max: 0 });
  assert.throws(() => amplifiedDifference(a, b.subarray(1)), /different sizes/);
});

test('spread picks evenly over the set, never more than there are', () => {
  assert.deepEqual(spread(10, 4), [0, 2, 5, 7]);
  assert.deepEqual(spread(2, 4), [0, 1]);
  assert.deepEqual(spread(0, 4), []);
});

test('a BadNets gallery on digits: clean and poisoned pixels are the sets own, the difference lies on the trigger', async () => {
  const all = await loadDataset('mnist', { split: 'train' });
  const clean = selectImages(
    all,
    Array.from({ length: 200 }, (_, i) => i),
  );
  const poisoned = poisonTrainingSet(clean, {
    trigger: { name: 'gridTrigger' },
    targetType: 'all2one',
    targetLabel: 0,
    injectPortion: 0.1,
    seed: 3,
  });
  const fig = trainGallery({ clean, poisoned, count: 4 });
  assert.equal(fig.group, 'attack');
  assert.equal(fig.images.length, 12);
  const size = clean.height * clean.width * clean.channels;
  for (let k = 0; k < 4; k++) {
    const index = poisoned.poisonedIndices[spread(poisoned.poisonedIndices.length, 4)[k]];
    const [c, p, d] = fig.images.slice(3 * k, 3 * k + 3);
    assert.deepEqual(decode(c), clean.images.subarray(index * size, (index + 1) * size));
    assert.deepEqual(decode(p), poisoned.images.subarray(index * size, (index + 1) * size));
    assert.equal(c.caption, `#${index} clean: ${clean.classNames?.[clean.labels[index]] ?? clean.labels[index]}`);
    assert.match(p.caption, /^poisoned, label 0$/);
    assert.equal(p.marked, true);
    // The grid trigger sits in the bottom-right corner: every changed pixel is in the last 4 rows and columns.
    const diff = decode(d);
    let changed = 0;
    for (let i = 0; i < diff.length; i++) {
      if (diff[i] === 0) continue;
      changed++;
      const y = Math.floor(i / (clean.width * clean.channels));
      const x = Math.floor(i / clean.channels) % clean.width;
      assert.ok(y >= clean.height - 4 && x >= clean.width - 4, `a difference at (${y}, ${x})`);
    }
    assert.ok(changed > 0 && changed <= 9, `${changed} pixels changed`);
    assert.match(d.caption, /^difference x\d/);
  }

  const test = await loadDataset('mnist', { split: 'test' });
  const small = selectImages(
    test,
    Array.from({ length: 50 }, (_, i) => i),
  );
  const triggered = backdoorTestSet(small, { trigger: { name: 'gridTrigger' }, targetType: 'all2one', targetLabel: 0 });
  const t = testGallery({ clean: small, triggered, count: 4 });
  assert.equal(t.images.length, 12);
  assert.equal(t.images[0].caption.startsWith('test #'), true);
  assert.match(t.images[1].caption, /^with the trigger \(target 0\)$/);
  // Non-target images only: no clean image of the gallery is of class 0.
  for (let k = 0; k < 4; k++) assert.notEqual(small.labels[triggered.sourceIndices[spread(triggered.count, 4)[k]]], 0);
});
