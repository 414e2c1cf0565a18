// WaNet's warp applied to images: the bilinear taps of a sampling grid (patterns.ts builds the grid: warpGrid,
// noisyWarpGrid), made once per grid and applied to each uint8 image, as F.grid_sample(mode='bilinear',
// padding_mode='zeros', align_corners=True) and BackdoorBench's uint8 storage do. Nguyen & Tran, WaNet, ICLR
// 2021 (github.com/VinAIResearch/Warping-based_Backdoor_Attack-release); SCLBD/BackdoorBench.
// Where the native addon loads (whatever the backend: the warp is no tfjs op), its warp kernel
// (native/addon/warp.c) does the work, byte for byte this file's JS, which stays as the fallback.
import { loadNativeAddon } from '../kernels/native-addon';
import type { NativeKernelAddon } from '../kernels/simd-interfaces';
import type { ImageShape } from './patterns';

/** Margin (0..255 units) under which a warped value counts as the integer above (see applyWarpPlan). */
const WARP_EPS = 1e-3;

/**
 * A warp's bilinear taps, computed once per grid (the attack's field is fixed, so every image of a data set
 * shares them): for each output pixel, four source offsets and weights (y0x0, y0x1, y1x0, y1x1); a tap outside the image
 * (zero padding) has weight 0. The float64 sums are those of grid_sample's bilinear formula, taps in that order.
 */
export interface WarpPlan {
  readonly shape: ImageShape;
  readonly offsets: Int32Array;
  readonly weights: Float64Array;
}

/** The taps of `grid` (H*W*2, grid_sample's normalised coordinates) for images of shape `s`; `reuse`'s arrays when they fit. */
export function warpPlan(s: ImageShape, grid: ArrayLike<number>, reuse?: WarpPlan): WarpPlan {
  const W = s.width;
  const H = s.height;
  const C = s.channels;
  if (grid.length !== H * W * 2) throw new RangeError(`warp grid has ${grid.length} values, ${H}x${W} needs ${H * W * 2}`);
  const fits = reuse && reuse.offsets.length === 4 * H * W;
  const offsets = fits ? reuse.offsets : new Int32Array(4 * H * W);
  const weights = fits ? reuse.weights : new Float64Array(4 * H * W);
  const sx = Math.fround((W - 1) / 2);
  const sy = Math.fround((H - 1) / 2);
  for (let p = 0; p < H * W; p++) {
    // grid_sample's unnormalize with align_corners=True, in float32: (coord + 1) * ((size - 1) / 2).
    const ix = Math.fround(Math.fround(grid[2 * p] + 1) * sx);
    const iy = Math.fround(Math.fround(grid[2 * p + 1] + 1) * sy);
    const x0 = Math.floor(ix);
    const y0 = Math.floor(iy);
    const wx = ix - x0;
    const wy = iy - y0;
    for (let dy = 0; dy < 2; dy++) {
      for (let dx = 0; dx < 2; dx++) {
        const k = 4 * p + 2 * dy + dx;
        const y = y0 + dy;
        const x = x0 + dx;
        const inside = y >= 0 && y < H && x >= 0 && x < W;
        offsets[k] = inside ? (y * W + x) * C : 0;
        weights[k] = inside ? (dx ? wx : 1 - wx) * (dy ? wy : 1 - wy) : 0;
      }
    }
  }
  return { shape: { height: H, width: W, channels: C }, offsets, weights };
}

/**
 * F.grid_sample(img, grid, mode='bilinear', padding_mode='zeros', align_corners=True) on one uint8 HWC image, in
 * place, with a plan's taps; `scratch` (H*W*C bytes) holds the source copy. Rounding to uint8 happens here, once
 * per warp, as BackdoorBench stores its warped images (ToPILImage on the float tensor: `x.mul(255).byte()`,
 * truncation): the float64 value (x 255 already, the image being 0..255) is truncated, with a 1e-3 margin so that
 * a value that is an integer up to float32 error stays that integer: flat areas, and samples that land on a pixel
 * but whose float32 position (linspace, the unnormalised coordinate) is a few 1e-6 off it, so that s = 0 is the
 * identity. Torch's float32 falls a hair below there and gives one less, on ~0.2% of CIFAR values.
 */
export function applyWarpPlan(img: Uint8Array, plan: WarpPlan, scratch?: Uint8Array): void {
  const native = nativeWarp();
  if (native) native.warp(img, 1, plan.shape.channels, plan.offsets, plan.weights);
  else applyWarpPlanJs(img, plan, scratch);
}

/** applyWarpPlan in JS (the fallback where the addon does not load; the tests' reference for the native kernel). */
export function applyWarpPlanJs(img: Uint8Array, plan: WarpPlan, scratch?: Uint8Array): void {
  const C = plan.shape.channels;
  const n = plan.shape.height * plan.shape.width * C;
  const src = scratch && scratch.length >= n ? scratch.subarray(0, n) : new Uint8Array(n);
  src.set(img.subarray(0, n));
  const { offsets: o, weights: w } = plan;
  // toUint8's truncation: the weights sum to 1, so 0 <= v + WARP_EPS < 256, where a Uint8Array store truncates.
  if (C === 3) applyRgbBlock(img, 0, src, 1, o, w, n);
  else for (let k = 0, at = 0; at < n; k += 4, at += C) for (let c = 0; c < C; c++) img[at + c] = tapSum(src, o, w, k, c) + WARP_EPS;
}

/** Bytes of source copy a batch warp works through at a time (images per block: this / image size): L1-sized. */
const WARP_BLOCK_BYTES = 48 * 1024;

/** How many images applyWarpPlanMany warps per block with `plan`, and so the scratch length (x image size) it uses. */
export function warpScratchLength(plan: WarpPlan): number {
  const n = plan.shape.height * plan.shape.width * plan.shape.channels;
  return Math.max(1, Math.floor(WARP_BLOCK_BYTES / n)) * n;
}

/**
 * applyWarpPlan on `count` consecutive uint8 HWC images of `images`, in place, byte for byte the same: a block of
 * images is copied to `scratch` (warpScratchLength bytes; allocated when missing or short) and warped pixel by
 * pixel, each pixel's taps loaded once for the whole block (1.2-1.4x the per-image loop on CIFAR). Where the addon
 * loads, its kernel does the same (scratch unused), 4-7x faster on CIFAR (docs/performance.md).
 */
export function applyWarpPlanMany(images: Uint8Array, count: number, plan: WarpPlan, scratch?: Uint8Array): void {
  const native = nativeWarp();
  if (!native) return applyWarpPlanManyJs(images, count, plan, scratch);
  checkCount(images, count, plan);
  native.warp(images, count, plan.shape.channels, plan.offsets, plan.weights);
}

/** applyWarpPlanMany in JS (the fallback where the addon does not load; the tests' reference for the native kernel). */
export function applyWarpPlanManyJs(images: Uint8Array, count: number, plan: WarpPlan, scratch?: Uint8Array): void {
  checkCount(images, count, plan);
  const n = plan.shape.height * plan.shape.width * plan.shape.channels;
  const len = warpScratchLength(plan);
  const src = scratch && scratch.length >= len ? scratch.subarray(0, len) : new Uint8Array(len);
  if (plan.shape.channels !== 3) {
    for (let i = 0; i < count; i++) applyWarpPlanJs(images.subarray(i * n, (i + 1) * n), plan, src);
    return;
  }
  const block = len / n;
  for (let i = 0; i < count; i += block) {
    const m = Math.min(block, count - i);
    src.set(images.subarray(i * n, (i + m) * n));
    applyRgbBlock(images, i * n, src, m, plan.offsets, plan.weights, n);
  }
}

function checkCount(images: Uint8Array, count: number, plan: WarpPlan): void {
  const n = plan.shape.height * plan.shape.width * plan.shape.channels;
  if (!Number.isInteger(count) || count < 0 || count * n > images.length)
    throw new RangeError(`warp batch: count ${count} needs ${count * n} image values, got ${images.length}`);
}

type NativeWarp = Required<Pick<NativeKernelAddon, 'warp'>>;
/** The addon, once it was tried: null where it does not load here or predates the warp kernel. */
let addon: NativeWarp | null | undefined;

/** The native addon's warp, if it loads (tried once per process). */
function nativeWarp(): NativeWarp | undefined {
  if (addon === undefined) {
    try {
      const a = loadNativeAddon();
      addon = a.warp ? (a as NativeWarp) : null;
    } catch {
      addon = null; // no addon for this platform, or it did not load: the JS warp
    }
  }
  return addon ?? undefined;
}

/** Where the warp runs in this process: 'native' (the addon's kernel) or 'js'. */
export function warpKernel(): 'native' | 'js' {
  return nativeWarp() ? 'native' : 'js';
}

/**
 * The RGB warp of the `m` images of `src` (n bytes each), written to `img` from `at0`: pixels outside, images inside;
 * tapSum unrolled, each tap loaded once per pixel for all `m` (about 2x tapSum's loop for one image, 1.3x more for a block).
 */
function applyRgbBlock(img: Uint8Array, at0: number, src: Uint8Array, m: number, o: Int32Array, w: Float64Array, n: number): void {
  for (let k = 0, at = 0; at < n; k += 4, at += 3) {
    const o0 = o[k];
    const o1 = o[k + 1];
    const o2 = o[k + 2];
    const o3 = o[k + 3];
    const w0 = w[k];
    const w1 = w[k + 1];
    const w2 = w[k + 2];
    const w3 = w[k + 3];
    for (let j = 0, s = 0, d = at0 + at; j < m; j++, s += n, d += n) {
      const a0 = s + o0;
      const a1 = s + o1;
      const a2 = s + o2;
      const a3 = s + o3;
      img[d] = w0 * src[a0] + w1 * src[a1] + w2 * src[a2] + w3 * src[a3] + WARP_EPS;
      img[d + 1] = w0 * src[a0 + 1] + w1 * src[a1 + 1] + w2 * src[a2 + 1] + w3 * src[a3 + 1] + WARP_EPS;
      img[d + 2] = w0 * src[a0 + 2] + w1 * src[a1 + 2] + w2 * src[a2 + 2] + w3 * src[a3 + 2] + WARP_EPS;
    }
  }
}

/** The warp as floats (0..255 units, before the uint8 rounding), for checks against torch's grid_sample. */
export function warpImageFloat(img: Uint8Array, s: ImageShape, grid: ArrayLike<number>): Float64Array {
  const { offsets: o, weights: w } = warpPlan(s, grid);
  const out = new Float64Array(s.height * s.width * s.channels);
  for (let k = 0, at = 0; at < out.length; k += 4, at += s.channels)
    for (let c = 0; c < s.channels; c++) out[at + c] = tapSum(img, o, w, k, c);
  return out;
}

/**
 * Channel `c` of the output pixel whose taps start at `k`: grid_sample's bilinear sum in float64, taps in order
 * (y0x0, y0x1, y1x0, y1x1). A tap outside the image adds +0, which leaves a sum of non-negative terms unchanged.
 */
function tapSum(src: Uint8Array, o: Int32Array, w: Float64Array, k: number, c: number): number {
  return w[k] * src[o[k] + c] + w[k + 1] * src[o[k + 1] + c] + w[k + 2] * src[o[k + 2] + c] + w[k + 3] * src[o[k + 3] + c];
}

/** One image warped with `grid` (a plan made for this call; a grid used for many images should make its plan once). */
export function warpImage(img: Uint8Array, s: ImageShape, grid: ArrayLike<number>, scratch?: Uint8Array): void {
  applyWarpPlan(img, warpPlan(s, grid), scratch);
}
