// The triggers as pure functions on one uint8 HWC image, in place, transcribing the paper's numpy code
// (data_loader.py) including its dtype details. In that code `img[a][b]` is row a, column b, and its
// `width`/`height` are img.shape[0]/[1], i.e. the number of rows/columns: we name them rows/cols.
import type { Rng } from '../rng';

export interface ImageShape {
  readonly height: number;
  readonly width: number;
  readonly channels: number;
}

/** Set pixel (row, col) to `v` in every channel, as numpy's `img[row][col] = v` does on an HWC array. */
function put(img: Uint8Array, s: ImageShape, row: number, col: number, v: number): void {
  const at = (row * s.width + col) * s.channels;
  for (let c = 0; c < s.channels; c++) img[at + c] = v;
}

/** The 3x3 pattern of `_gridTriger`, by offset from the bottom-right corner: [rowsBack][colsBack]. */
const GRID_FROM_CORNER = [
  [255, 0, 255], // img[w-1][h-1], img[w-1][h-2], img[w-1][h-3]
  [0, 255, 0], // img[w-2][...]
  [255, 0, 0], // img[w-3][...]
];

/** `_gridTriger`: rows H-3..H-1 x cols W-3..W-1 = [[0,0,255],[0,255,0],[255,0,255]]. Ignores size and distance, as the code does. */
export function stampGrid(img: Uint8Array, s: ImageShape): void {
  for (let r = 0; r < 3; r++) for (let c = 0; c < 3; c++) put(img, s, s.height - 1 - r, s.width - 1 - c, GRID_FROM_CORNER[r][c]);
}

/** `_squareTrigger`: 255 in rows H-distance-size..H-distance-1 and the same columns (W-4..W-2 by default). */
export function stampSquare(img: Uint8Array, s: ImageShape, size: number, distance: number): void {
  for (let r = Math.max(0, s.height - distance - size); r < s.height - distance; r++) {
    for (let c = Math.max(0, s.width - distance - size); c < s.width - distance; c++) put(img, s, r, c, 255);
  }
}

/**
 * `_fourCornerTrigger`, where its code (not its comments) puts the patches: the grid at the bottom-right,
 * and three more at rows 1..3 x cols 1..3, rows H-3..H-1 x cols 1..3, rows 1..3 x cols W-3..W-1.
 */
export function stampFourCorner(img: Uint8Array, s: ImageShape): void {
  const H = s.height;
  const W = s.width;
  stampGrid(img, s); // "right bottom"
  // "left top": img[1..3][1..3]
  const topLeft = [
    [255, 0, 255],
    [0, 255, 0],
    [255, 0, 0],
  ];
  for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) put(img, s, 1 + i, 1 + j, topLeft[i][j]);
  // "right top" in the comments: img[w-1-i][1+j], i.e. the bottom-left corner.
  for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) put(img, s, H - 1 - i, 1 + j, GRID_FROM_CORNER[i][j]);
  // "left bottom" in the comments: img[1+i][h-1-j] = topLeft[j][i], i.e. the top-right corner.
  for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) put(img, s, 1 + i, W - 1 - j, GRID_FROM_CORNER[j][i]);
}

/** numpy's float -> uint8 `astype` for values already in [0, 255]: truncation toward zero. */
const toUint8 = (v: number): number => (v <= 0 ? 0 : v >= 255 ? 255 : Math.trunc(v));

/**
 * The label-consistent attack's "all-corners" trigger (Turner et al. 2019): the `trigger_mask` list of the
 * authors' poison_attack.py (MadryLab/label-consistent-backdoor-code), which BackdoorBench's
 * utils/bd_img_transform/lc.py copies, grouped by corner: signs[i][j] is the entry at (rows[i], cols[j]),
 * negative indices counted from the end as numpy's. Transcribed as listed, which is not a strict
 * checkerboard (top-left [0][2] is -1).
 */
// prettier-ignore
const LC_CORNERS: readonly { rows: readonly number[]; cols: readonly number[]; signs: readonly (readonly number[])[] }[] = [
  { rows: [0, 1, 2], cols: [0, 1, 2], signs: [[1, -1, -1], [-1, 1, -1], [1, -1, 1]] },
  { rows: [-1, -2, -3], cols: [0, 1, 2], signs: [[1, -1, 1], [-1, 1, -1], [1, -1, -1]] },
  { rows: [0, 1, 2], cols: [-1, -2, -3], signs: [[1, -1, -1], [-1, 1, -1], [1, -1, 1]] },
  { rows: [-1, -2, -3], cols: [-1, -2, -3], signs: [[1, -1, 1], [-1, 1, -1], [1, -1, -1]] },
];

/**
 * `poison_from_indices` with `reduced_amplitude` r (BackdoorBench's path; r = 1 is the full-amplitude trigger,
 * since +-255 clipped to [0, 255] overwrites): image[row][col] += sign * r * 255 in float32 (the offset is
 * a float64 product cast to float32, as numpy adds a Python float to a float32 array), clipped to [0, 255],
 * then truncated to uint8 as BackdoorBench stores the image. Every channel of the pixel gets the same offset.
 * Images other than 32x32 get the same 3x3 patches in their corners (BackdoorBench resizes a 32x32 mask).
 */
export function stampLcCheckerboard(img: Uint8Array, s: ImageShape, amplitude: number): void {
  const up = Math.fround(amplitude * 255);
  for (const { rows, cols, signs } of LC_CORNERS) {
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 3; j++) {
        const row = rows[i] < 0 ? s.height + rows[i] : rows[i];
        const col = cols[j] < 0 ? s.width + cols[j] : cols[j];
        const at = (row * s.width + col) * s.channels;
        for (let k = 0; k < s.channels; k++) img[at + k] = toUint8(Math.fround(img[at + k] + signs[i][j] * up));
      }
    }
  }
}

/**
 * `_signalTrigger` / `_randomPixelTrigger` blend: uint8((1 - alpha) * img + alpha * mask), in float64 as numpy
 * computes it, then clipped. `mask` is HxW (the same value in every channel, as the code's reshape) or HxWxC.
 */
export function blendMask(img: Uint8Array, s: ImageShape, mask: ArrayLike<number>, alpha: number): void {
  const perChannel = mask.length === s.height * s.width * s.channels;
  const keep = 1 - alpha;
  const n = s.height * s.width;
  for (let p = 0; p < n; p++) {
    for (let c = 0; c < s.channels; c++) {
      const i = p * s.channels + c;
      img[i] = toUint8(keep * img[i] + alpha * mask[perChannel ? i : p]);
    }
  }
}

/** `_randomPixelTrigger`: a fresh uniform 0..255 HxW noise mask per image (as the code draws it), blended with alpha. */
export function blendRandomPixels(img: Uint8Array, s: ImageShape, rng: Rng, alpha: number, scratch?: Uint8Array): void {
  const n = s.height * s.width;
  const mask = scratch?.length === n ? scratch : new Uint8Array(n);
  for (let p = 0; p < n; p++) mask[p] = rng.int(256);
  blendMask(img, s, mask, alpha);
}

/**
 * `_trojanTrigger`: uint8(img + mask) with the sum in float32 (uint8 + float32 array). numpy's cast of a
 * sum above 255 wraps modulo 256 (verified with numpy 2.4 on x86-64: 407.35 -> 151); its clip comes after
 * the cast and changes nothing. `maskHWC` is float32 HxWxC (the file's (C, H, W) transposed).
 */
export function addTrojanMask(img: Uint8Array, s: ImageShape, maskHWC: Float32Array): void {
  const n = s.height * s.width * s.channels;
  for (let i = 0; i < n; i++) {
    const t = Math.trunc(Math.fround(img[i] + maskHWC[i]));
    img[i] = ((t % 256) + 256) % 256;
  }
}

/** plant_sin_trigger's pattern row: float32(delta * sin(2 pi j f / m)) for column j, m = image width. */
export function sinusoidRow(width: number, delta: number, frequency: number): Float32Array {
  const row = new Float32Array(width);
  for (let j = 0; j < width; j++) row[j] = delta * Math.sin((2 * Math.PI * j * frequency) / width);
  return row;
}

/**
 * SIG (Barni et al. 2019) as the paper's `plant_sin_trigger`: img' = uint8(clip(alpha * img + (1 - alpha) * pattern)),
 * pattern[i][j] = delta * sin(2 pi j f / W) in every row and channel; alpha 0.2 weights the IMAGE, so the
 * image keeps a fifth of its contrast. dtypes as that code: alpha * uint32(img) in float64, (1 - alpha) * pattern
 * in float32, summed in float64.
 */
export function stampSinusoid(img: Uint8Array, s: ImageShape, alpha: number, delta: number, frequency: number): void {
  const row = sinusoidRow(s.width, delta, frequency);
  const patternWeight = Math.fround(1 - alpha);
  const weighted = row.map((v) => Math.fround(patternWeight * v));
  for (let r = 0; r < s.height; r++) {
    for (let c = 0; c < s.width; c++) {
      const at = (r * s.width + c) * s.channels;
      for (let k = 0; k < s.channels; k++) img[at + k] = toUint8(alpha * img[at + k] + weighted[c]);
    }
  }
}

/** The additive SIG variant: uint8(clip(img + pattern, 0, 255)), in float32 as float32(img) + pattern. */
export function addSinusoid(img: Uint8Array, s: ImageShape, delta: number, frequency: number): void {
  const row = sinusoidRow(s.width, delta, frequency);
  for (let r = 0; r < s.height; r++) {
    for (let c = 0; c < s.width; c++) {
      const at = (r * s.width + c) * s.channels;
      for (let k = 0; k < s.channels; k++) img[at + k] = toUint8(Math.fround(img[at + k] + row[c]));
    }
  }
}

// WaNet (Nguyen & Tran, ICLR 2021): the warping field and the warp of the authors' train.py
// (VinAIResearch/Warping-based_Backdoor_Attack-release), as BackdoorBench's attack/wanet.py copies it:
//   ins = torch.rand(1, 2, k, k) * 2 - 1;  ins = ins / torch.mean(torch.abs(ins))
//   noise_grid = F.upsample(ins, size=input_height, mode="bicubic", align_corners=True).permute(0, 2, 3, 1)
//   identity_grid = stack((y, x), 2) of torch.meshgrid(linspace(-1, 1, H), linspace(-1, 1, H))
//   grid_temps = clamp((identity_grid + s * noise_grid / input_height) * grid_rescale, -1, 1)
//   inputs_bd = F.grid_sample(inputs, grid_temps, align_corners=True)   (bilinear, zero padding)
// Grids are H x W x 2 float32, row-major, (x, y) per pixel in [-1, 1], as torch's. The steps torch does in
// float32 (linspace, the grid's sums, the sample position) are rounded with Math.fround where they are;
// the bicubic sums and the bilinear mix are in float64. Non-square images: the flow is upsampled to
// (H, W) with one linspace per axis, and still divided by H (the code's input_height).

/** `torch.rand(1, 2, k, k) * 2 - 1` from our seeded stream: the k x k flow noise, layout (2, k, k), float32. */
export function warpNoise(rng: Rng, k: number): Float32Array {
  const out = new Float32Array(2 * k * k);
  for (let i = 0; i < out.length; i++) out[i] = rng.next() * 2 - 1;
  return out;
}

/** torch.linspace(-1, 1, n) in float32: start + step * i below the half, end - step * (n - 1 - i) from it. */
export function warpLinspace(n: number): Float32Array {
  const out = new Float32Array(n);
  if (n === 1) out[0] = -1;
  const step = Math.fround(2 / (n - 1));
  const half = Math.floor(n / 2);
  for (let i = 0; i < n; i++) out[i] = i < half ? -1 + Math.fround(step * i) : 1 - Math.fround(step * (n - 1 - i));
  return out;
}

/** Bicubic (A = -0.75, align_corners=True, borders replicated) weights from `from` samples to `to`: to x from. */
function bicubicWeights(from: number, to: number): Float64Array {
  const A = -0.75;
  const m = new Float64Array(to * from);
  const scale = to > 1 ? Math.fround((from - 1) / (to - 1)) : 0;
  for (let i = 0; i < to; i++) {
    const real = Math.fround(scale * i);
    const i0 = Math.floor(real);
    const t = Math.fround(real - i0);
    const x1 = t + 1;
    const x2 = 1 - t;
    const x3 = 2 - t;
    const c = [
      ((A * x1 - 5 * A) * x1 + 8 * A) * x1 - 4 * A,
      ((A + 2) * t - (A + 3)) * t * t + 1,
      ((A + 2) * x2 - (A + 3)) * x2 * x2 + 1,
      ((A * x3 - 5 * A) * x3 + 8 * A) * x3 - 4 * A,
    ];
    for (let j = 0; j < 4; j++) m[i * from + Math.min(Math.max(i0 - 1 + j, 0), from - 1)] += c[j];
  }
  return m;
}

/** The flow: noise / mean(|noise|), upsampled bicubic (align_corners=True) from k x k to H x W; H x W x 2. */
export function warpFlow(noise: ArrayLike<number>, k: number, height: number, width: number): Float32Array {
  if (noise.length !== 2 * k * k) throw new RangeError(`warp noise has ${noise.length} values, k = ${k} needs ${2 * k * k}`);
  let sum = 0;
  for (let i = 0; i < noise.length; i++) sum += Math.abs(noise[i]);
  const mean = Math.fround(sum / noise.length);
  const ins = Float32Array.from(noise, (v) => v / mean);
  const wh = bicubicWeights(k, height);
  const ww = bicubicWeights(k, width);
  const rows = new Float64Array(k * width); // per channel: the k input rows upsampled along the width
  const out = new Float32Array(height * width * 2);
  for (let c = 0; c < 2; c++) {
    rows.fill(0);
    for (let a = 0; a < k; a++)
      for (let j = 0; j < width; j++) for (let b = 0; b < k; b++) rows[a * width + j] += ww[j * k + b] * ins[(c * k + a) * k + b];
    for (let i = 0; i < height; i++) {
      for (let j = 0; j < width; j++) {
        let v = 0;
        for (let a = 0; a < k; a++) v += wh[i * k + a] * rows[a * width + j];
        out[(i * width + j) * 2 + c] = v;
      }
    }
  }
  return out;
}

const clampUnit = (v: number): number => (v < -1 ? -1 : v > 1 ? 1 : v);

/** grid_temps = clamp((identity_grid + s * flow / H) * grid_rescale, -1, 1), each step in float32 as torch. */
export function warpGrid(noise: ArrayLike<number>, k: number, height: number, width: number, s: number, gridRescale: number): Float32Array {
  const flow = warpFlow(noise, k, height, width);
  const xs = warpLinspace(width);
  const ys = warpLinspace(height);
  const f32 = Math.fround;
  const sf = f32(s);
  const rf = f32(gridRescale);
  const grid = new Float32Array(height * width * 2);
  for (let i = 0; i < height; i++) {
    for (let j = 0; j < width; j++) {
      const at = (i * width + j) * 2;
      grid[at] = clampUnit(f32(f32(xs[j] + f32(f32(sf * flow[at]) / height)) * rf));
      grid[at + 1] = clampUnit(f32(f32(ys[i] + f32(f32(sf * flow[at + 1]) / height)) * rf));
    }
  }
  return grid;
}

/**
 * WaNet's noise mode ("cross" samples): clamp(grid_temps + ins / H, -1, 1) with ins = torch.rand(H, W, 2) * 2 - 1,
 * given here as `noise` (H x W x 2 values in [-1, 1]); written to `out`.
 */
export function noisyWarpGrid(grid: Float32Array, noise: ArrayLike<number>, height: number, out?: Float32Array): Float32Array {
  if (noise.length !== grid.length) throw new RangeError(`noise has ${noise.length} values, the grid ${grid.length}`);
  const o = out?.length === grid.length ? out : new Float32Array(grid.length);
  for (let i = 0; i < grid.length; i++) o[i] = clampUnit(Math.fround(grid[i] + Math.fround(Math.fround(noise[i]) / height)));
  return o;
}
