// The native addon's warp kernel (native/addon/warp.c, which triggers/warp-plan.ts's applyWarpPlan and
// applyWarpPlanMany use wherever the addon loads) against the JS warp byte for byte: WaNet fields, their
// noise-mode grids and random grids past the border on CIFAR-shaped batches, 1- to 5-channel images of odd
// sizes, every block remainder; taps built so that a multiply-add fused into FMA would truncate to another
// byte; plans the kernel must refuse. Skipped, with the reason, where the addon does not load.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadNativeAddon } from '../../src/engine/kernels/native-addon';
import { Rng } from '../../src/engine/rng';
import { nativeAddonStatus } from '../fixtures/native-addon';
import { noisyWarpGrid, warpGrid, warpNoise, type ImageShape } from '../../src/engine/triggers';
import {
  applyWarpPlanJs,
  applyWarpPlanMany,
  applyWarpPlanManyJs,
  warpKernel,
  warpPlan,
  type WarpPlan,
} from '../../src/engine/triggers/warp-plan';

const { problem } = nativeAddonStatus();
const nativeWarp = problem ? undefined : loadNativeAddon().warp;
const skip = problem ?? (nativeWarp ? false : 'the native addon predates its warp kernel (rebuild it: node native/build-addon.mjs)');

const randomImages = (rng: Rng, n: number): Uint8Array => Uint8Array.from({ length: n }, () => rng.int(256));
const size = (p: WarpPlan): number => p.shape.height * p.shape.width * p.shape.channels;

/** The first `count` images of `images` warped by the native kernel and by JS (batch and per image): all three equal. */
function assertNativeMatches(images: Uint8Array, count: number, plan: WarpPlan, what: string): void {
  const n = size(plan);
  const js = images.slice();
  applyWarpPlanManyJs(js, count, plan);
  const perImage = images.slice();
  for (let i = 0; i < count; i++) applyWarpPlanJs(perImage.subarray(i * n, (i + 1) * n), plan);
  assert.ok(Buffer.from(js).equals(Buffer.from(perImage)), `${what}: the JS batch and per-image warps differ`);
  const got = images.slice();
  nativeWarp!(got, count, plan.shape.channels, plan.offsets, plan.weights);
  if (!Buffer.from(got).equals(Buffer.from(js))) {
    const i = got.findIndex((v, k) => v !== js[k]);
    assert.fail(`${what}: native and JS differ first at value ${i} (image ${Math.floor(i / n)}): ${got[i]} vs ${js[i]}`);
  }
  assert.ok(count === 0 || !Buffer.from(got).equals(Buffer.from(images)), `${what}: nothing was warped`);
}

const CIFAR: ImageShape = { height: 32, width: 32, channels: 3 };
// Counts around every vector width the kernel uses (2, 4, 8 images per block) and the single-image path.
const COUNTS = [1, 2, 3, 4, 5, 7, 8, 9, 17, 40];

test('native warp equals the JS warp on WaNet fields, noise-mode grids and random grids (CIFAR batches)', { skip }, () => {
  const rng = new Rng(21);
  const n = 32 * 32 * 3;
  const images = randomImages(rng, 41 * n); // one image more than the largest count: the kernel must leave it
  const grids: [string, Float32Array][] = [];
  for (const [k, s] of [
    [4, 0.5],
    [4, 1],
    [8, 2],
  ] as const) {
    const grid = warpGrid(warpNoise(rng, k), k, 32, 32, s, 1);
    grids.push([`k ${k}, s ${s}`, grid]);
    const noise = Float32Array.from({ length: grid.length }, () => rng.next() * 2 - 1);
    grids.push([`k ${k}, s ${s}, noise mode`, noisyWarpGrid(grid, noise, 32)]);
  }
  grids.push(['random grid past the border', Float32Array.from({ length: 32 * 32 * 2 }, () => (rng.next() * 2 - 1) * 1.3)]);
  for (const [what, grid] of grids) {
    const plan = warpPlan(CIFAR, grid);
    for (const count of COUNTS) assertNativeMatches(images, count, plan, `${what}, ${count} images`);
  }
});

test('native warp equals the JS warp on 1- to 5-channel images of odd sizes, and warps nothing for count 0', { skip }, () => {
  const rng = new Rng(22);
  for (const shape of [
    { height: 28, width: 28, channels: 1 },
    { height: 9, width: 13, channels: 3 },
    { height: 5, width: 3, channels: 1 }, // 15 values: not a whole number of 4-byte words
    { height: 5, width: 4, channels: 2 },
    { height: 7, width: 6, channels: 4 },
    { height: 3, width: 5, channels: 5 },
  ]) {
    const grid = Float32Array.from({ length: shape.height * shape.width * 2 }, () => (rng.next() * 2 - 1) * 1.3);
    const plan = warpPlan(shape, grid);
    const images = randomImages(rng, 41 * size(plan));
    for (const count of COUNTS)
      assertNativeMatches(images, count, plan, `${shape.height}x${shape.width}x${shape.channels}, ${count} images`);
    const copy = images.slice();
    nativeWarp!(copy, 0, shape.channels, plan.offsets, plan.weights);
    assert.deepEqual(copy, images, 'count 0 leaves the images');
  }
});

test('applyWarpPlan and applyWarpPlanMany run the native kernel where it loads', { skip }, () => {
  assert.equal(warpKernel(), 'native');
  const rng = new Rng(23);
  const plan = warpPlan(CIFAR, warpGrid(warpNoise(rng, 4), 4, 32, 32, 0.5, 1));
  const images = randomImages(rng, 12 * size(plan));
  const want = images.slice();
  applyWarpPlanManyJs(want, 12, plan);
  const got = images.slice();
  applyWarpPlanMany(got, 12, plan);
  assert.ok(Buffer.from(got).equals(Buffer.from(want)));
  assert.throws(() => applyWarpPlanMany(got, 13, plan), /warp batch: count 13/);
});

// x = m * 2^e exactly (m a signed integer), for the exact fused multiply-add below.
function exact(x: number): [bigint, number] {
  const v = new DataView(new ArrayBuffer(8));
  v.setFloat64(0, x);
  const hi = v.getUint32(0);
  const exp = (hi >>> 20) & 0x7ff;
  const frac = (BigInt(hi & 0xfffff) << 32n) | BigInt(v.getUint32(4));
  const m = exp === 0 ? frac : frac | (1n << 52n);
  return [hi >>> 31 ? -m : m, exp === 0 ? -1074 : exp - 1075];
}

/** fma(a, b, c): a * b + c rounded once (BigInt is exact; Number(bigint) rounds to nearest even), for normal results. */
function fma(a: number, b: number, c: number): number {
  if (c === 0) return a * b;
  const [ma, ea] = exact(a);
  const [mb, eb] = exact(b);
  const [mc, ec] = exact(c);
  const e = Math.min(ea + eb, ec);
  return Number(((ma * mb) << BigInt(ea + eb - e)) + (mc << BigInt(ec - e))) * 2 ** e;
}

test('native warp rounds each product as JS does: taps where an FMA would truncate to another byte', { skip }, () => {
  // Two taps on the values 3 and 5 with weights that put w0 * 3 + w1 * 5 + 1e-3 a hair under an integer, where
  // fusing either product into the sum (as GCC does with -mfma unless told not to) lands on the integer.
  const rng = new Rng(24);
  const EPS = 1e-3;
  const pairs: [number, number][] = [];
  for (let tries = 0; tries < 10000 && pairs.length < 8; tries++) {
    const w1 = (rng.next() + rng.next() / 2 ** 32) * 0.5; // all 53 bits, so that w1 * 5 rounds
    const base = (3 - EPS - 5 * w1) / 3;
    for (let j = -60; j <= 60; j++) {
      const w0 = base + j * Number.EPSILON * base;
      const plain = Math.trunc(w0 * 3 + w1 * 5 + EPS);
      if (plain === 2 && plain !== Math.trunc(fma(w1, 5, w0 * 3) + EPS) && plain !== Math.trunc(fma(w0, 3, w1 * 5) + EPS)) {
        pairs.push([w0, w1]);
        break;
      }
    }
  }
  assert.equal(pairs.length, 8, 'weights on the edge found');
  for (const channels of [1, 3]) {
    const shape = { height: 4, width: 6, channels };
    const pixels = 24;
    const offsets = new Int32Array(4 * pixels);
    const weights = new Float64Array(4 * pixels);
    // Pixel p: the pair on taps (t, t + 1), t = p % 3, so that each position of the sum is tried; its other taps weigh 0.
    for (let p = 0; p < pixels; p++) {
      const t = p % 3;
      const [w0, w1] = pairs[p % pairs.length];
      offsets[4 * p + t + 1] = channels; // pixel 1; tap t reads pixel 0
      weights[4 * p + t] = w0;
      weights[4 * p + t + 1] = w1;
    }
    const plan: WarpPlan = { shape, offsets, weights };
    const n = pixels * channels;
    const images = randomImages(rng, 9 * n);
    for (let i = 0; i < 9; i++) {
      images.fill(3, i * n, i * n + channels); // pixel 0
      images.fill(5, i * n + channels, i * n + 2 * channels); // pixel 1
    }
    const js = images.slice();
    applyWarpPlanManyJs(js, 9, plan);
    for (let i = 0; i < 9 * n; i++) assert.equal(js[i], 2, `JS: value ${i} truncates to 2`);
    for (const count of [1, 9]) assertNativeMatches(images, count, plan, `${channels} channel(s), ${count} images`);
  }
});

test('native warp refuses plans that do not fit the images, and leaves the images', { skip }, () => {
  const plan = warpPlan(CIFAR, warpGrid(warpNoise(new Rng(0), 4), 4, 32, 32, 0.5, 1));
  const images = randomImages(new Rng(25), 3 * size(plan));
  const copy = images.slice();
  const w = (count: number, channels: number, offsets: Int32Array, weights: Float64Array): void =>
    nativeWarp!(copy, count, channels, offsets, weights);
  const bad = (edit: (o: Int32Array, x: Float64Array) => void): [Int32Array, Float64Array] => {
    const o = plan.offsets.slice();
    const x = plan.weights.slice();
    edit(o, x);
    return [o, x];
  };
  assert.throws(() => w(4, 3, plan.offsets, plan.weights), /do not fit/, 'more images than the array holds');
  assert.throws(() => w(-1, 3, plan.offsets, plan.weights), /do not fit/, 'negative count');
  assert.throws(() => w(1.5, 3, plan.offsets, plan.weights), /do not fit/, 'fractional count');
  assert.throws(() => w(Number.NaN, 3, plan.offsets, plan.weights), /do not fit/, 'NaN count');
  assert.throws(() => w(Infinity, 3, plan.offsets, plan.weights), /do not fit/, 'infinite count');
  assert.throws(() => w(1, 1.5, plan.offsets, plan.weights), /do not fit/, 'fractional channels');
  assert.throws(() => w(1, 0, plan.offsets, plan.weights), /do not fit/, 'no channels');
  assert.throws(() => w(1, 3, plan.offsets.subarray(1), plan.weights.subarray(1)), /do not fit/, 'taps not 4 per pixel');
  assert.throws(() => w(1, 3, plan.offsets, plan.weights.subarray(4)), /do not fit/, 'fewer weights than offsets');
  assert.throws(() => w(1, 3, ...bad((o) => (o[7] = 32 * 32 * 3 - 2))), /outside the image/, 'offset past the last pixel');
  assert.throws(() => w(1, 3, ...bad((o) => (o[0] = -3))), /outside the image/, 'negative offset');
  assert.throws(() => w(1, 3, ...bad((_, x) => (x[5] = 1.5))), /outside \[0, 1\]/, 'weight above 1');
  assert.throws(() => w(1, 3, ...bad((_, x) => (x[5] = Number.NaN))), /outside \[0, 1\]/, 'NaN weight');
  assert.throws(() => nativeWarp!(copy, 1, 3, new Uint32Array(plan.offsets.length) as unknown as Int32Array, plan.weights), /warp\(images/);
  assert.throws(() => nativeWarp!(Array.from(copy) as unknown as Uint8Array, 1, 3, plan.offsets, plan.weights), /warp\(images/);
  assert.deepEqual(copy, images);
});
