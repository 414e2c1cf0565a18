// Resizing RGB images as torchvision's `Resize((h, w))` does on a PIL image: PIL's bilinear filter with
// antialiasing (the filter widens by the scale factor when shrinking), two separable passes (horizontal,
// then vertical), each with 22-bit fixed-point weights and rounding to uint8 in between. The arithmetic
// follows Pillow's libImaging/Resample.c, so results are byte-for-byte PIL's (checked against Pillow in
// test/unit/data-gtsrb.test.ts).

/** An RGB image: 3 bytes per pixel, row-major. */
export interface RgbImage {
  readonly width: number;
  readonly height: number;
  readonly rgb: Uint8Array;
}

const PRECISION_BITS = 32 - 8 - 2;

function bilinear(x: number): number {
  const a = Math.abs(x);
  return a < 1 ? 1 - a : 0;
}

interface Coefficients {
  /** Kernel length per output pixel (the same for all). */
  readonly ksize: number;
  /** Per output pixel: first input index and number of taps. */
  readonly bounds: Int32Array;
  /** Fixed-point weights, `ksize` per output pixel. */
  readonly weights: Int32Array;
}

/** Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` for the bilinear filter (support 1). */
function coefficients(inSize: number, outSize: number): Coefficients {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filterScale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const weights = new Int32Array(outSize * ksize);
  const k = new Float64Array(ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    // C's (int) cast truncates toward zero.
    const xmin = Math.max(0, Math.trunc(center - support + 0.5));
    const xmax = Math.min(inSize, Math.trunc(center + support + 0.5)) - xmin;
    let sum = 0;
    for (let x = 0; x < xmax; x++) {
      k[x] = bilinear((x + xmin - center + 0.5) / filterScale);
      sum += k[x];
    }
    for (let x = 0; x < ksize; x++) {
      const w = x < xmax && sum !== 0 ? k[x] / sum : 0;
      weights[xx * ksize + x] = Math.trunc(w < 0 ? -0.5 + w * (1 << PRECISION_BITS) : 0.5 + w * (1 << PRECISION_BITS));
    }
    bounds[2 * xx] = xmin;
    bounds[2 * xx + 1] = xmax;
  }
  return { ksize, bounds, weights };
}

function clip8(acc: number): number {
  const v = acc >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/** Resize to `width` x `height` with PIL's antialiased bilinear filter (`Image.resize(..., BILINEAR)`). */
export function resizeBilinear(img: RgbImage, width: number, height: number): RgbImage {
  if (img.width === width && img.height === height) return { width, height, rgb: img.rgb.slice() };
  const h = coefficients(img.width, width);
  const v = coefficients(img.height, height);
  // Rows of the source the vertical pass reads; the horizontal pass computes only those.
  const yFirst = v.bounds[0];
  const yLast = v.bounds[2 * height - 2] + v.bounds[2 * height - 1];
  const half = 1 << (PRECISION_BITS - 1);
  let rows = img.rgb;
  let rowsWidth = img.width;
  let rowOffset = 0;
  if (width !== img.width) {
    const tmpRows = yLast - yFirst;
    const tmp = new Uint8Array(tmpRows * width * 3);
    for (let y = 0; y < tmpRows; y++) {
      const src = (y + yFirst) * img.width * 3;
      for (let xx = 0; xx < width; xx++) {
        const xmin = h.bounds[2 * xx];
        const taps = h.bounds[2 * xx + 1];
        const kw = xx * h.ksize;
        for (let c = 0; c < 3; c++) {
          let acc = half;
          for (let x = 0; x < taps; x++) acc += img.rgb[src + (x + xmin) * 3 + c] * h.weights[kw + x];
          tmp[(y * width + xx) * 3 + c] = clip8(acc);
        }
      }
    }
    rows = tmp;
    rowsWidth = width;
    rowOffset = yFirst;
  }
  if (height === img.height) return { width, height, rgb: rows === img.rgb ? rows.slice() : rows };
  const out = new Uint8Array(height * width * 3);
  for (let yy = 0; yy < height; yy++) {
    const ymin = v.bounds[2 * yy] - rowOffset;
    const taps = v.bounds[2 * yy + 1];
    const kw = yy * v.ksize;
    for (let i = 0; i < width * 3; i++) {
      let acc = half;
      for (let y = 0; y < taps; y++) acc += rows[(y + ymin) * rowsWidth * 3 + i] * v.weights[kw + y];
      out[yy * width * 3 + i] = clip8(acc);
    }
  }
  return { width, height, rgb: out };
}

/** The pixels of `img` inside the box [x1, x2) x [y1, y2), as PIL's `Image.crop((x1, y1, x2, y2))`. */
export function cropRgb(img: RgbImage, x1: number, y1: number, x2: number, y2: number): RgbImage {
  const width = x2 - x1;
  const height = y2 - y1;
  const rgb = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++)
    rgb.set(img.rgb.subarray(((y1 + y) * img.width + x1) * 3, ((y1 + y) * img.width + x2) * 3), y * width * 3);
  return { width, height, rgb };
}
