// The batch warp (triggers/warp-plan.ts's applyWarpPlanMany, the `warp` trigger's stampMany) against the
// per-image one (applyWarpPlan) byte for byte: WaNet fields, their noise-mode grids, random grids reaching past
// the border (zero padding), RGB and grey images, batches that end mid-block, and bad counts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/engine/rng';
import {
  applyWarpPlan,
  applyWarpPlanMany,
  createTrigger,
  noisyWarpGrid,
  warpGrid,
  warpNoise,
  warpPlan,
  warpScratchLength,
  type ImageShape,
  type WarpPlan,
} from '../../src/engine/triggers';

const randomImages = (rng: Rng, n: number): Uint8Array => Uint8Array.from({ length: n }, () => rng.int(256));

/** Each of the first `count` images warped alone; the rest of `images` left as is. */
function perImage(images: Uint8Array, count: number, plan: WarpPlan): Uint8Array {
  const size = plan.shape.height * plan.shape.width * plan.shape.channels;
  const out = images.slice();
  const scratch = new Uint8Array(size);
  for (let i = 0; i < count; i++) applyWarpPlan(out.subarray(i * size, (i + 1) * size), plan, scratch);
  return out;
}

function assertBatchMatches(images: Uint8Array, count: number, plan: WarpPlan, what: string, scratch?: Uint8Array): void {
  const want = perImage(images, count, plan);
  const got = images.slice();
  applyWarpPlanMany(got, count, plan, scratch);
  assert.ok(Buffer.from(got).equals(Buffer.from(want)), `${what}: the batch warp differs from the per-image warp`);
  assert.ok(!Buffer.from(got).equals(Buffer.from(images)) || count === 0, `${what}: nothing was warped`);
}

const CIFAR: ImageShape = { height: 32, width: 32, channels: 3 };

test('batch warp equals the per-image warp on WaNet fields and their noise-mode grids (CIFAR shape)', () => {
  const rng = new Rng(16);
  const size = 32 * 32 * 3;
  const block = warpScratchLength(warpPlan(CIFAR, warpGrid(warpNoise(new Rng(0), 4), 4, 32, 32, 0.5, 1))) / size;
  assert.ok(block > 1, 'a block holds several CIFAR images');
  const count = 2 * block + 3; // two full blocks and a partial one
  const images = randomImages(rng, (count + 2) * size); // two trailing images the warp must not touch
  for (const [k, s] of [
    [4, 0.5],
    [4, 1],
    [8, 2],
  ] as const) {
    const grid = warpGrid(warpNoise(rng, k), k, 32, 32, s, 1);
    assertBatchMatches(images, count, warpPlan(CIFAR, grid), `k ${k}, s ${s}`);
    for (let t = 0; t < 3; t++) {
      const noise = Float32Array.from({ length: grid.length }, () => rng.next() * 2 - 1);
      const noisy = noisyWarpGrid(grid, noise, 32);
      assertBatchMatches(images, count, warpPlan(CIFAR, noisy), `k ${k}, s ${s}, noise mode ${t}`, new Uint8Array(7));
    }
  }
});

test('batch warp equals the per-image warp on random grids past the border, RGB and grey, any count', () => {
  const rng = new Rng(17);
  for (const shape of [
    { height: 9, width: 13, channels: 3 },
    { height: 28, width: 28, channels: 1 },
    { height: 5, width: 4, channels: 2 },
  ]) {
    const size = shape.height * shape.width * shape.channels;
    const grid = Float32Array.from({ length: shape.height * shape.width * 2 }, () => (rng.next() * 2 - 1) * 1.3);
    const plan = warpPlan(shape, grid);
    const block = warpScratchLength(plan) / size;
    for (const count of [0, 1, block - 1, block, block + 1, 3 * block + 5]) {
      const images = randomImages(rng, (count + 1) * size);
      if (count === 0) {
        const copy = images.slice();
        applyWarpPlanMany(copy, 0, plan);
        assert.deepEqual(copy, images, 'count 0 leaves the images');
      } else assertBatchMatches(images, count, plan, `${shape.height}x${shape.width}x${shape.channels}, ${count} images`);
    }
  }
});

test("the warp trigger's stampMany equals its stamp on each image", () => {
  const rng = new Rng(18);
  const trigger = createTrigger({ name: 'warp', patternSeed: 3 }, CIFAR);
  assert.ok(trigger.stampMany, 'the warp trigger has a batch path');
  const size = 32 * 32 * 3;
  const count = 40;
  const images = randomImages(rng, count * size);
  const want = images.slice();
  for (let i = 0; i < count; i++) trigger.stamp(want.subarray(i * size, (i + 1) * size));
  const got = images.slice();
  trigger.stampMany(got, count);
  assert.ok(Buffer.from(got).equals(Buffer.from(want)), 'stampMany differs from stamp');
});

test('batch warp rejects a count the images cannot hold', () => {
  const plan = warpPlan(CIFAR, warpGrid(warpNoise(new Rng(0), 4), 4, 32, 32, 0.5, 1));
  const images = new Uint8Array(3 * 32 * 32 * 3);
  for (const count of [4, -1, 1.5, Number.NaN])
    assert.throws(() => applyWarpPlanMany(images, count, plan), /warp batch: count/, `count ${count}`);
});
