// Refool's reflection trigger (Liu, Ma, Bailey, Lu, "Reflection Backdoor: A Natural Backdoor Attack on Deep
// Neural Networks", ECCV 2020): a reflection image R is added to the image T with one of the paper's three
// reflection models, in linear light (both layers raised to the power 2.2, the result back by 1/2.2):
// - ghost effect: R shifted by (o0, o1) in 3..8 px and mixed with itself (weights ghostAlpha, 1 - ghostAlpha),
//   then T * alphaT + R' * (1 - alphaT);
// - out of focus: R blurred by a Gaussian (sigma in [1, 5], kernel side 2 ceil(2 sigma) + 1), its over-bright
//   part pulled down by the mean excess times att in [1.08, 1.18], weighted by a centred Gaussian vignette
//   times (1 - alphaT / 2), plus T * alphaT;
// - same depth of field: the out-of-focus model with the paper's delta kernel (R not blurred).
// The formulas are `blend_images` of the authors' code (github.com/DreamtaleCore/Refool), which BackdoorBench
// (attack/refool.py) adopts unchanged; its random draws come in here as a `ReflectionDraws` value, so the
// blend itself is a pure function (test/fixtures/attacks/make_refool_fixture.py checks it against
// OpenCV/numpy). What the code's positional OpenCV arguments resolve to, and what we do:
// - `cv2.resize(x, (w, h), cv2.INTER_CUBIC)` passes INTER_CUBIC as `dst`, so it is INTER_LINEAR (half-pixel
//   centres, edge clamped): `resizeLinear`. It is the identity at the image's own size, and resizes a
//   reflection of another size, and the ghost's cropped (h - o0) x (w - o1) image back to h x w.
// - `cv2.GaussianBlur(r, (sz, sz), sigma, sigma, 0)` passes sigma as `dst` and 0 as sigmaY (= sigmaX), so
//   the border is OpenCV's default BORDER_REFLECT_101: `gaussianBlur`, separable, float32.
// - Precision follows the code's dtypes: the ghost branch is float32 throughout, the focal branch float32
//   up to the clipped blurred reflection and float64 from the vignette on; uint8 by truncation (np.uint8).
// The code hard-codes 3 channels; we loop over the image's channels.
import { InputError } from '../types';
import type { Rng } from '../rng';
import type { ImageShape } from './patterns';

export const REFLECTION_MODELS = ['random', 'same', 'blur', 'ghost'] as const;
export type ReflectionModel = (typeof REFLECTION_MODELS)[number];
/** blend_images' ghost_rate (BackdoorBench default.yaml: 0.49): the share of ghost reflections under `random`. */
export const GHOST_RATE = 0.49;

/** The random draws of one blend (all of blend_images' draws, made explicit). */
export type ReflectionDraws =
  | {
      readonly model: 'ghost';
      /** Weight of the image (the code's alpha_t); the reflection gets 1 - alphaT. */
      readonly alphaT: number;
      /** Ghost shift (rows, columns): random.randint(3, 8) each. */
      readonly offset: readonly [number, number];
      /** abs(round(random()) - uniform(0.15, 0.5)). */
      readonly ghostAlpha: number;
    }
  | {
      readonly model: 'same' | 'blur';
      readonly alphaT: number;
      /** Gaussian sigma, uniform(1, 5); unused for `same`. */
      readonly sigma: number;
      /** 1.08 + random() / 10: how hard the over-bright part of the reflection is pulled down. */
      readonly att: number;
      /** Top-left (row, column) of the image in the vignette (0, 0 unless one side is 10+ px shorter). */
      readonly maskOffset: readonly [number, number];
    };

const f32 = Math.fround;
const GAMMA = 2.2;

/** A float32 image in [0, 1], HWC. */
export interface FloatImage {
  readonly data: Float32Array;
  readonly height: number;
  readonly width: number;
  readonly channels: number;
}

/** cv2.resize with INTER_LINEAR on a float32 HWC image: half-pixel centres, coordinates clamped to the edge. */
export function resizeLinear(src: FloatImage, height: number, width: number): FloatImage {
  const { height: sh, width: sw, channels: C } = src;
  if (sh === height && sw === width) return { ...src, data: src.data.slice() };
  const axis = (dsize: number, ssize: number): { i0: Int32Array; a: Float32Array } => {
    const scale = 1 / (dsize / ssize);
    const i0 = new Int32Array(dsize);
    const a = new Float32Array(dsize);
    for (let d = 0; d < dsize; d++) {
      let fx = f32((d + 0.5) * scale - 0.5);
      let sx = Math.floor(fx);
      fx = f32(fx - sx);
      if (sx < 0 || sx >= ssize - 1) {
        fx = 0;
        sx = sx < 0 ? 0 : ssize - 1;
      }
      i0[d] = sx;
      a[d] = fx;
    }
    return { i0, a };
  };
  const xs = axis(width, sw);
  const ys = axis(height, sh);
  // Rows first (HResizeLinear), then columns (VResizeLinear), each a float32 weighted sum.
  const rows = new Float32Array(sh * width * C);
  for (let y = 0; y < sh; y++)
    for (let x = 0; x < width; x++) {
      const s0 = xs.i0[x];
      const s1 = Math.min(s0 + 1, sw - 1);
      const a1 = xs.a[x];
      const a0 = f32(1 - a1);
      for (let c = 0; c < C; c++) {
        const v0 = src.data[(y * sw + s0) * C + c];
        const v1 = src.data[(y * sw + s1) * C + c];
        rows[(y * width + x) * C + c] = f32(f32(v0 * a0) + f32(v1 * a1));
      }
    }
  const out = new Float32Array(height * width * C);
  for (let y = 0; y < height; y++) {
    const r0 = ys.i0[y];
    const r1 = Math.min(r0 + 1, sh - 1);
    const b1 = ys.a[y];
    const b0 = f32(1 - b1);
    for (let i = 0; i < width * C; i++)
      out[y * width * C + i] = f32(f32(rows[r0 * width * C + i] * b0) + f32(rows[r1 * width * C + i] * b1));
  }
  return { data: out, height, width, channels: C };
}

/** OpenCV's BORDER_REFLECT_101 index (… 2 1 | 0 1 2 … n-1 | n-2 …). */
function reflect101(i: number, n: number): number {
  if (n === 1) return 0;
  while (i < 0 || i >= n) i = i < 0 ? -i : 2 * n - 2 - i;
  return i;
}

/** cv2.getGaussianKernel(size, sigma) as float32: exp(-x^2 / (2 sigma^2)) normalised in float64. */
export function gaussianKernel(size: number, sigma: number): Float32Array {
  const k = new Float64Array(size);
  let sum = 0;
  for (let i = 0; i < size; i++) {
    const x = i - (size - 1) * 0.5;
    k[i] = Math.exp((-0.5 / (sigma * sigma)) * x * x);
    sum += k[i];
  }
  return Float32Array.from(k, (v) => v * (1 / sum));
}

/** cv2.GaussianBlur(src, (size, size), sigma) on a float32 HWC image, BORDER_REFLECT_101, rows then columns. */
export function gaussianBlur(src: FloatImage, sigma: number, size: number): Float32Array {
  const { height: H, width: W, channels: C } = src;
  const k = gaussianKernel(size, sigma);
  const half = (size - 1) / 2;
  const rows = new Float32Array(H * W * C);
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++)
      for (let c = 0; c < C; c++) {
        let s = 0;
        for (let j = 0; j < size; j++) s = f32(s + f32(k[j] * src.data[(y * W + reflect101(x + j - half, W)) * C + c]));
        rows[(y * W + x) * C + c] = s;
      }
  const out = new Float32Array(H * W * C);
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++)
      for (let c = 0; c < C; c++) {
        let s = 0;
        for (let j = 0; j < size; j++) s = f32(s + f32(k[j] * rows[(reflect101(y + j - half, H) * W + x) * C + c]));
        out[(y * W + x) * C + c] = s;
      }
  return out;
}

/** erf by its everywhere-convergent series 2/sqrt(pi) e^(-x^2) sum 2^n x^(2n+1) / (1*3*...*(2n+1)) (no cancellation). */
function erf(x: number): number {
  if (x < 0) return -erf(-x);
  if (x > 6) return 1;
  let term = x;
  let sum = x;
  for (let n = 1; term > sum * 1e-17; n++) {
    term *= (2 * x * x) / (2 * n + 1);
    sum += term;
  }
  return Math.min(1, (2 / Math.sqrt(Math.PI)) * Math.exp(-x * x) * sum);
}

/**
 * blend_images' gen_kernel(n, 3): a 2-D Gaussian of n x n cells over +-3 sigma (cell masses from the normal
 * CDF, sqrt of their outer product), divided by its sum and then by its maximum. Float64, row-major.
 */
export function reflectionVignette(n: number, nsig = 3): Float64Array {
  const interval = (2 * nsig + 1) / n;
  const lo = -nsig - interval / 2;
  const step = (2 * nsig + interval) / n; // np.linspace(lo, -lo, n + 1)
  const cdf = (i: number): number => 0.5 * (1 + erf((i === n ? -lo : lo + i * step) / Math.SQRT2));
  const k1 = Float64Array.from({ length: n }, (_, i) => cdf(i + 1) - cdf(i));
  const out = new Float64Array(n * n);
  let sum = 0;
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) sum += out[i * n + j] = Math.sqrt(k1[i] * k1[j]);
  let max = 0;
  for (let i = 0; i < out.length; i++) max = Math.max(max, (out[i] /= sum));
  for (let i = 0; i < out.length; i++) out[i] /= max;
  return out;
}

const vignettes = new Map<number, Float64Array>();
const vignetteOf = (n: number): Float64Array => {
  let v = vignettes.get(n);
  if (!v) vignettes.set(n, (v = reflectionVignette(n)));
  return v;
};

/** blend_images' draws for one image, from our seeded Rng (the code draws from Python's and numpy's generators). */
export function drawReflection(rng: Rng, model: ReflectionModel, alpha: number, shape: ImageShape): ReflectionDraws {
  const uniform = (a: number, b: number): number => a + (b - a) * rng.next();
  const alphaT = alpha >= 0 ? alpha : 1 - uniform(0.05, 0.45);
  const kind = model !== 'random' ? model : rng.next() < GHOST_RATE ? 'ghost' : rng.next() < 0.5 ? 'same' : 'blur';
  if (kind === 'ghost') {
    const offset: [number, number] = [3 + rng.int(6), 3 + rng.int(6)];
    const round = rng.next() > 0.5 ? 1 : 0; // Python's round() of random(): 0.5 rounds to even, 0
    return { model: 'ghost', alphaT, offset, ghostAlpha: Math.abs(round - uniform(0.15, 0.5)) };
  }
  const sigma = kind === 'blur' ? uniform(1, 5) : 0;
  const att = 1.08 + rng.next() / 10;
  const max = Math.max(shape.height, shape.width);
  const at = (side: number): number => (side < max - 10 ? rng.int(max - side - 10) : 0);
  const maskOffset: [number, number] = [at(shape.height), at(shape.width)];
  return { model: kind, alphaT, sigma, att, maskOffset };
}

/**
 * Blend one reflection into one uint8 HWC image, in place: blend_images(img_t, img_r, max(H, W), ...) with
 * the given draws. `reflection` is the reflection as float32 in [0, 1] at the image's size (`reflectionImage`).
 */
export function blendReflection(image: Uint8Array, shape: ImageShape, reflection: Float32Array, d: ReflectionDraws): void {
  const { height: H, width: W, channels: C } = shape;
  const n = H * W * C;
  if (image.length !== n || reflection.length !== n) throw new RangeError(`image and reflection must have ${n} values`);
  const t = new Float32Array(n);
  const r = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    t[i] = f32(Math.pow(f32(image[i] / 255), GAMMA));
    r[i] = f32(Math.pow(reflection[i], GAMMA));
  }
  const aT = f32(d.alphaT);
  if (d.model === 'ghost') {
    const [o0, o1] = d.offset;
    if (o0 >= H || o1 >= W) throw new InputError(`a ghost shift of (${o0}, ${o1}) px needs images larger than that, not ${H}x${W}`);
    const ga = f32(d.ghostAlpha);
    const gb = f32(1 - d.ghostAlpha);
    // The padded-and-shifted mix, cropped: r[y + o0, x + o1] * ga + r[y, x] * (1 - ga) on (H - o0) x (W - o1).
    const h = H - o0;
    const w = W - o1;
    const crop = new Float32Array(h * w * C);
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++)
        for (let c = 0; c < C; c++)
          crop[(y * w + x) * C + c] = f32(f32(r[((y + o0) * W + x + o1) * C + c] * ga) + f32(r[(y * W + x) * C + c] * gb));
    const ghost = resizeLinear({ data: crop, height: h, width: w, channels: C }, H, W).data;
    const aR = f32(1 - d.alphaT);
    for (let i = 0; i < n; i++) {
      const v = f32(Math.pow(f32(f32(ghost[i] * aR) + f32(t[i] * aT)), 1 / GAMMA));
      image[i] = Math.floor(f32(Math.min(1, Math.max(0, v)) * 255));
    }
    return;
  }
  const blurred =
    d.model === 'blur' ? gaussianBlur({ data: r, height: H, width: W, channels: C }, d.sigma, 2 * Math.ceil(2 * d.sigma) + 1) : r;
  // Pull the reflection down by the mean excess of the over-bright pixels (blend > 1), per channel.
  for (let c = 0; c < C; c++) {
    let sum = 0;
    let count = 0;
    for (let p = 0; p < H * W; p++) {
      const b = f32(blurred[p * C + c] + t[p * C + c]);
      if (b > 1) {
        sum += b;
        count++;
      }
    }
    const shift = (Math.max(1, sum / (count + 1e-6)) - 1) * d.att;
    for (let p = 0; p < H * W; p++) {
      const v = f32(blurred[p * C + c] - shift);
      blurred[p * C + c] = v >= 1 ? 1 : v <= 0 ? 0 : v;
    }
  }
  const size = Math.max(H, W);
  const mask = vignetteOf(size);
  const [mh, mw] = d.maskOffset;
  const scale = 1 - d.alphaT / 2;
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) {
      const g = mask[(mh + y) * size + mw + x] * scale;
      for (let c = 0; c < C; c++) {
        const i = (y * W + x) * C + c;
        const v = Math.pow(blurred[i] * g + f32(t[i] * aT), 1 / GAMMA);
        image[i] = Math.floor(Math.min(1, Math.max(0, v)) * 255);
      }
    }
}

/**
 * A reflection as float32 in [0, 1] at the image's shape: np.float32(img_r) / 255., channels matched (a grey
 * reflection repeated over colour channels; a colour one on grey images as luma 0.299 R + 0.587 G + 0.114 B),
 * then cv2.resize INTER_LINEAR to H x W as blend_images does (the identity at the same size).
 */
export function reflectionImage(pixels: Uint8Array, from: ImageShape, to: ImageShape): Float32Array {
  const { height: h, width: w, channels: c } = from;
  const C = to.channels;
  if (c !== C && c !== 1 && !(c === 3 && C === 1))
    throw new InputError(`reflections with ${c} channels do not fit ${C}-channel images (give 1- or ${C}-channel reflections)`);
  const data = new Float32Array(h * w * C);
  for (let p = 0; p < h * w; p++)
    for (let k = 0; k < C; k++) {
      const v =
        c === C ? pixels[p * c + k] : c === 1 ? pixels[p] : 0.299 * pixels[p * 3] + 0.587 * pixels[p * 3 + 1] + 0.114 * pixels[p * 3 + 2];
      data[p * C + k] = f32(v / 255);
    }
  return resizeLinear({ data, height: h, width: w, channels: C }, to.height, to.width).data;
}

/** RefoolTrigger.add_trigger: a candidate picked at random, then blend_images' draws, then the blend; in place. */
export function stampReflection(
  image: Uint8Array,
  shape: ImageShape,
  candidates: readonly Float32Array[],
  model: ReflectionModel,
  alpha: number,
  rng: Rng,
): void {
  const reflection = candidates[rng.int(candidates.length)];
  blendReflection(image, shape, reflection, drawReflection(rng, model, alpha, shape));
}
