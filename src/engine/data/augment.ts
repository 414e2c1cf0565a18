// Batches as float32 NHWC in [0, 1]: NAD's ToTensor (x / 255, no normalisation in its transforms) and its
// training augmentation RandomCrop(pad 4) -> RandomHorizontalFlip -> ToTensor -> Cutout(1, 3).
// Runs every step: plain typed-array loops, no allocation when `out` is given.
import type { ImageDataset } from '../types';
import type { Rng } from '../rng';

/** v / 255 in float32, as torch's ToTensor computes it. */
const TO_UNIT = Float32Array.from({ length: 256 }, (_, v) => v / 255);

export interface AugmentOptions {
  /** Zero padding of the random crop (crop size = image size). Default 4. */
  readonly padding?: number;
  /** Random horizontal flip with probability 0.5. Default true. */
  readonly flip?: boolean;
  /** Cutout holes and length. Defaults 1 and 3 (NAD's Cutout(1, 3)). */
  readonly cutoutHoles?: number;
  readonly cutoutLength?: number;
  /**
   * Largest rotation in degrees (default 0: none). With p = 0.5 an image is rotated about its centre by an angle
   * uniform in [-rotation, rotation], bilinear, zeros outside: WaNet's PostTensorTransform (RandomRotation(10),
   * p 0.5, which the WaNet code trains with on CIFAR).
   */
  readonly rotation?: number;
}

/** The first n*H*W*C values of `out`, or a new array; checks it is large enough. */
function outputFor(ds: ImageDataset, n: number, out: Float32Array | undefined): Float32Array {
  const len = n * ds.height * ds.width * ds.channels;
  if (!out) return new Float32Array(len);
  if (out.length < len) throw new RangeError(`output holds ${out.length} values, the batch needs ${len}`);
  return out.length === len ? out : out.subarray(0, len);
}

function checkIndex(ds: ImageDataset, i: number): void {
  if (!(i >= 0 && i < ds.count && Number.isInteger(i))) throw new RangeError(`image index ${i} out of range 0..${ds.count - 1}`);
}

/** The images at `indices` as float32 NHWC in [0, 1], unaugmented (evaluation). */
export function toFloatBatch(ds: ImageDataset, indices: ArrayLike<number>, out?: Float32Array): Float32Array {
  const dst = outputFor(ds, indices.length, out);
  const size = ds.height * ds.width * ds.channels;
  const src = ds.images;
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k];
    checkIndex(ds, i);
    dst.set(src.subarray(i * size, (i + 1) * size), k * size);
  }
  // Same values as TO_UNIT (v / 255 rounded to float32), faster than a lookup per value.
  for (let j = 0; j < dst.length; j++) dst[j] = dst[j] / 255;
  return dst;
}

/**
 * The images at `indices`, augmented as NAD trains: crop offsets (dy, dx) uniform in 0..2*padding of the
 * zero-padded image, then a horizontal flip with p = 0.5, then Cutout. Cutout follows the paper's code:
 * centre (y, x) uniform over the image, rows clip(y - L//2) .. clip(y + L//2) exclusive, so length 3 cuts
 * a 2x2 patch (1 row or column at the top/left edges). With `rotation` > 0 the cropped and flipped image is
 * rotated before Cutout (rotateInPlace). Draws per image, in this order: dy, dx, flip, [rotate?, angle when
 * rotation > 0], then y, x per hole, so a seed reproduces the batch (and without rotation, the batches of before).
 */
export function augmentBatch(
  ds: ImageDataset,
  indices: ArrayLike<number>,
  rng: Rng,
  out?: Float32Array,
  opts: AugmentOptions = {},
): Float32Array {
  const pad = opts.padding ?? 4;
  const flip = opts.flip ?? true;
  const holes = opts.cutoutHoles ?? 1;
  const half = Math.floor((opts.cutoutLength ?? 3) / 2);
  const H = ds.height;
  const W = ds.width;
  const C = ds.channels;
  const size = H * W * C;
  const dst = outputFor(ds, indices.length, out);
  const src = ds.images;
  const rotation = opts.rotation ?? 0;
  const scratch = rotation > 0 ? new Float32Array(size) : undefined;
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k];
    checkIndex(ds, i);
    const dy = rng.int(2 * pad + 1) - pad;
    const dx = rng.int(2 * pad + 1) - pad;
    const flipped = flip && rng.next() < 0.5;
    const base = i * size;
    const to = k * size;
    for (let r = 0; r < H; r++) {
      const sr = r + dy;
      const rowOut = to + r * W * C;
      if (sr < 0 || sr >= H) {
        dst.fill(0, rowOut, rowOut + W * C);
        continue;
      }
      const rowIn = base + sr * W * C;
      for (let c = 0; c < W; c++) {
        // Flip after crop: output column c shows cropped column W-1-c.
        const sc = (flipped ? W - 1 - c : c) + dx;
        const o = rowOut + c * C;
        if (sc < 0 || sc >= W) {
          for (let ch = 0; ch < C; ch++) dst[o + ch] = 0;
        } else {
          const s = rowIn + sc * C;
          for (let ch = 0; ch < C; ch++) dst[o + ch] = TO_UNIT[src[s + ch]];
        }
      }
    }
    if (rotation > 0 && rng.next() < 0.5) rotateInPlace(dst, to, H, W, C, (rng.next() * 2 - 1) * rotation, scratch);
    for (let h = 0; h < holes; h++) {
      const y = rng.int(H);
      const x = rng.int(W);
      const y1 = Math.max(0, y - half);
      const y2 = Math.min(H, y + half);
      const x1 = Math.max(0, x - half);
      const x2 = Math.min(W, x + half);
      for (let r = y1; r < y2; r++) dst.fill(0, to + (r * W + x1) * C, to + (r * W + x2) * C);
    }
  }
  return dst;
}

/**
 * Rotates the H x W x C float image at `at` in `img` by `degrees` about its centre ((W-1)/2, (H-1)/2), in place:
 * output pixel (x, y) samples the source at R(-degrees)(x - cx, y - cy) + (cx, cy), bilinear, zeros outside, as
 * torch's F.grid_sample(align_corners=True) does on F.affine_grid(theta = [[cos, sin, 0], [-sin, cos, 0]]) for a
 * square image, and kornia's rotate (which RandomRotation calls) likewise. `scratch` holds the source copy.
 */
export function rotateInPlace(
  img: Float32Array,
  at: number,
  H: number,
  W: number,
  C: number,
  degrees: number,
  scratch?: Float32Array,
): void {
  const n = H * W * C;
  const src = scratch && scratch.length >= n ? scratch : new Float32Array(n);
  src.set(img.subarray(at, at + n));
  const rad = (degrees * Math.PI) / 180;
  const cos = Math.cos(rad);
  const sin = Math.sin(rad);
  const cx = (W - 1) / 2;
  const cy = (H - 1) / 2;
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const u = x - cx;
      const v = y - cy;
      const sx = cos * u + sin * v + cx;
      const sy = -sin * u + cos * v + cy;
      const x0 = Math.floor(sx);
      const y0 = Math.floor(sy);
      const fx = sx - x0;
      const fy = sy - y0;
      const o = at + (y * W + x) * C;
      for (let c = 0; c < C; c++) {
        let acc = 0;
        for (let dy = 0; dy < 2; dy++) {
          const yy = y0 + dy;
          if (yy < 0 || yy >= H) continue;
          const wy = dy ? fy : 1 - fy;
          for (let dx = 0; dx < 2; dx++) {
            const xx = x0 + dx;
            if (xx < 0 || xx >= W) continue;
            acc += wy * (dx ? fx : 1 - fx) * src[(yy * W + xx) * C + c];
          }
        }
        img[o + c] = acc;
      }
    }
  }
}
