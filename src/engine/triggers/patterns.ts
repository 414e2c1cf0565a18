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
