// JPEG to RGB as Pillow gives it (libjpeg-turbo with its defaults), so pixels match what PyTorch code
// trained on. jpeg-js decodes the DCT data (its integer IDCT agrees with libjpeg's to +-1) but upsamples
// subsampled chroma by repeating samples and converts colour in floating point; libjpeg interpolates
// ("fancy upsampling", jdsample.c h2v1/h2v2_fancy_upsample) and converts with fixed-point tables
// (jdcolor.c). On colour edges that changes pixels by tens of levels, so here jpeg-js returns raw Y, Cb, Cr,
// the chroma samples are taken back from its repeated copies and upsampled and converted as libjpeg does.
import * as jpeg from 'jpeg-js';
import { InputError } from '../types';
import { readBytes } from './files';
import type { RgbImage } from './resize';

const MAX_MEMORY_MB = 256;

interface Sampling {
  readonly components: number;
  /** Horizontal and vertical sampling factors per component. */
  readonly h: readonly number[];
  readonly v: readonly number[];
}

/** Sampling factors from the frame header (SOF0..SOF15 except DHT/JPG/DAC), or undefined when absent. */
function frameSampling(bytes: Uint8Array): Sampling | undefined {
  let at = 2;
  while (at + 4 <= bytes.length) {
    if (bytes[at] !== 0xff) return undefined;
    const marker = bytes[at + 1];
    const length = (bytes[at + 2] << 8) | bytes[at + 3];
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      const n = bytes[at + 9];
      const h: number[] = [];
      const v: number[] = [];
      for (let c = 0; c < n && at + 12 + 3 * c < bytes.length; c++) {
        h.push(bytes[at + 11 + 3 * c] >> 4);
        v.push(bytes[at + 11 + 3 * c] & 15);
      }
      return h.length === n ? { components: n, h, v } : undefined;
    }
    if (marker === 0xda) return undefined;
    at += 2 + length;
  }
  return undefined;
}

/** The most pixels a JPEG may declare (64 megapixels, as for PNG). */
const MAX_JPEG_PIXELS = 64 * 2 ** 20;
/**
 * Every 8x8 block of the entropy-coded data takes at least one bit (its DC code; baseline adds an EOB code),
 * so a JPEG holds at most 64 x 8 = 512 pixels per byte of file. A header declaring more is damaged or hostile:
 * jpeg-js would allocate the full frame (a 901-byte file declaring 62016x241 made it allocate 48 MB, for 2 s).
 */
const JPEG_MAX_PIXELS_PER_BYTE = 512;

/** Refuses a JPEG whose frame header (SOF) declares more pixels than the limit or than its bytes can code. */
export function checkJpegSize(bytes: Uint8Array, file: string): void {
  let at = 2;
  while (at + 9 <= bytes.length && bytes[at] === 0xff) {
    const marker = bytes[at + 1];
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      const height = (bytes[at + 5] << 8) | bytes[at + 6];
      const width = (bytes[at + 7] << 8) | bytes[at + 8];
      const most = Math.min(MAX_JPEG_PIXELS, JPEG_MAX_PIXELS_PER_BYTE * bytes.length);
      if (width * height > most)
        throw new InputError(
          `JPEG declares ${width}x${height} pixels, more than ${most} (${MAX_JPEG_PIXELS} at most, and ` +
            `${JPEG_MAX_PIXELS_PER_BYTE} per byte of a ${bytes.length}-byte file)`,
          file,
        );
      return;
    }
    if (marker === 0xda) return;
    at += 2 + ((bytes[at + 2] << 8) | bytes[at + 3]);
  }
}

/** libjpeg's fancy upsampling of one chroma plane (cw x ch samples) by 2 horizontally and `vfac` (1 or 2) vertically. */
function fancyUpsample(plane: Uint8Array, cw: number, ch: number, vfac: 1 | 2): { data: Uint8Array; width: number; height: number } {
  const width = 2 * cw;
  const out = new Uint8Array(width * vfac * ch);
  // Per output row, the (weighted) column values it interpolates between: h2v1 uses the sample row as is
  // (weights in quarters), h2v2 3 x its sample row + the nearer neighbour row (weights in sixteenths); the
  // rows above the first and below the last repeat them, as libjpeg's context rows do.
  const sums = new Int32Array(cw);
  // Rounding biases alternate between the two output columns of a sample (jdsample.c).
  const [shift, biasLeft, biasRight, edge] = vfac === 1 ? [2, 1, 2, 4] : [4, 8, 7, 4];
  for (let row = 0; row < ch; row++) {
    for (let half = 0; half < vfac; half++) {
      const o = (row * vfac + half) * width;
      const r = row * cw;
      if (vfac === 1) for (let c = 0; c < cw; c++) sums[c] = plane[r + c];
      else {
        const n = (half === 0 ? Math.max(row - 1, 0) : Math.min(row + 1, ch - 1)) * cw;
        for (let c = 0; c < cw; c++) sums[c] = plane[r + c] * 3 + plane[n + c];
      }
      if (cw === 1) {
        out[o] = (sums[0] * edge + biasLeft) >> shift;
        out[o + 1] = (sums[0] * edge + biasRight) >> shift;
        continue;
      }
      out[o] = (sums[0] * edge + biasLeft) >> shift;
      out[o + 1] = (sums[0] * 3 + sums[1] + biasRight) >> shift;
      for (let c = 1; c < cw - 1; c++) {
        out[o + 2 * c] = (sums[c] * 3 + sums[c - 1] + biasLeft) >> shift;
        out[o + 2 * c + 1] = (sums[c] * 3 + sums[c + 1] + biasRight) >> shift;
      }
      const last = cw - 1;
      out[o + 2 * last] = (sums[last] * 3 + sums[last - 1] + biasLeft) >> shift;
      out[o + 2 * last + 1] = (sums[last] * edge + biasRight) >> shift;
    }
  }
  return { data: out, width, height: vfac * ch };
}

const FIX = (x: number): number => Math.trunc(x * 65536 + 0.5);
const ONE_HALF = 1 << 15;
// libjpeg's lookup tables (jdcolor.c build_ycc_rgb_table, SCALEBITS 16), indexed by the Cb or Cr sample.
const CR_R = Int32Array.from({ length: 256 }, (_, i) => (FIX(1.402) * (i - 128) + ONE_HALF) >> 16);
const CB_B = Int32Array.from({ length: 256 }, (_, i) => (FIX(1.772) * (i - 128) + ONE_HALF) >> 16);
const CR_G = Int32Array.from({ length: 256 }, (_, i) => -FIX(0.71414) * (i - 128));
const CB_G = Int32Array.from({ length: 256 }, (_, i) => -FIX(0.34414) * (i - 128) + ONE_HALF);
const clamp8 = (x: number): number => (x < 0 ? 0 : x > 255 ? 255 : x);

/** YCbCr to RGB as libjpeg's ycc_rgb_convert. */
function yccToRgb(y: number, cb: number, cr: number, out: Uint8Array, at: number): void {
  out[at] = clamp8(y + CR_R[cr]);
  out[at + 1] = clamp8(y + ((CB_G[cb] + CR_G[cr]) >> 16));
  out[at + 2] = clamp8(y + CB_B[cb]);
}

/** Decode JPEG bytes to RGB as Pillow does (`Image.open(f).convert('RGB')`); `file` names it in errors. */
export function decodeJpegAsPillow(bytes: Uint8Array, file: string): RgbImage {
  let raw: { width: number; height: number; data: Uint8Array };
  checkJpegSize(bytes, file);
  const sampling = frameSampling(bytes);
  const ycc = sampling?.components === 3;
  try {
    // Not tolerant: Pillow refuses truncated or corrupt files too (ImageFile.LOAD_TRUNCATED_IMAGES is off).
    raw = jpeg.decode(bytes, {
      useTArray: true,
      formatAsRGBA: false,
      tolerantDecoding: false,
      ...(ycc ? { colorTransform: false } : {}),
      maxMemoryUsageInMB: MAX_MEMORY_MB,
    });
  } catch (e) {
    throw new InputError(`cannot decode JPEG: ${e instanceof Error ? e.message : String(e)}`, file);
  }
  const { width, height, data } = raw;
  // Grayscale comes back with Y repeated in R, G, B, as convert('RGB') makes it; CMYK converted by jpeg-js.
  if (!ycc || !sampling) return { width, height, rgb: data };
  const n = width * height;
  const rgb = new Uint8Array(n * 3);
  const [lh, ch1, ch2] = sampling.h;
  const [lv, cv1, cv2] = sampling.v;
  const hfac = lh / ch1;
  const vfac = lv / cv1;
  const fancy = ch1 === ch2 && cv1 === cv2 && hfac === 2 && (vfac === 1 || vfac === 2);
  // 4:4:4 or another layout: jpeg-js's sample repetition is libjpeg's too (int_upsample); only convert colour.
  if (!fancy) {
    for (let p = 0; p < n; p++) yccToRgb(data[3 * p], data[3 * p + 1], data[3 * p + 2], rgb, 3 * p);
    return { width, height, rgb };
  }
  // jpeg-js repeated each chroma sample over hfac x vfac pixels: sample (i, j) is at pixel (hfac*i, vfac*j).
  const cw = Math.ceil(width / 2);
  const ch = Math.ceil(height / vfac);
  const planes = [1, 2].map((c) => {
    const plane = new Uint8Array(cw * ch);
    for (let j = 0; j < ch; j++) for (let i = 0; i < cw; i++) plane[j * cw + i] = data[3 * (vfac * j * width + 2 * i) + c];
    return fancyUpsample(plane, cw, ch, vfac as 1 | 2);
  });
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = y * width + x;
      const q = y * planes[0].width + x;
      yccToRgb(data[3 * p], planes[0].data[q], planes[1].data[q], rgb, 3 * p);
    }
  }
  return { width, height, rgb };
}

export function readJpegAsPillow(file: string): RgbImage {
  return decodeJpegAsPillow(readBytes(file), file);
}
