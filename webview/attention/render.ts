// Drawing an attention map over its image on a canvas: the image with nearest-neighbour pixels, the map
// upsampled bilinearly (align_corners=false, as src/engine/heatmap.ts and PyTorch's interpolate) and coloured.
import type { ColourScale } from '../../src/shared/attention-protocol';
import { colourMap, sampleBilinear, viridis, type Rgb } from '../../src/shared/colormap';

export type { Rgb };

/** Parse a CSS colour (#rgb, #rrggbb, #rrggbbaa, rgb()/rgba()) to RGB; undefined when unknown. */
export function parseColour(css: string): Rgb | undefined {
  const s = css.trim();
  const hex = /^#([0-9a-f]{3}|[0-9a-f]{6}|[0-9a-f]{8})$/i.exec(s);
  if (hex) {
    const v = hex[1].length === 3 ? hex[1].replace(/./g, (c) => c + c) : hex[1].slice(0, 6);
    return [parseInt(v.slice(0, 2), 16), parseInt(v.slice(2, 4), 16), parseInt(v.slice(4, 6), 16)];
  }
  const fn = /^rgba?\(\s*([\d.]+)[\s,]+([\d.]+)[\s,]+([\d.]+)/i.exec(s);
  return fn ? [Number(fn[1]), Number(fn[2]), Number(fn[3])] : undefined;
}

/** The colour function of a scale; `theme` follows the theme's chart colours (readable in every theme). */
export function scaleFunction(scale: ColourScale, themeStops: readonly Rgb[]): (t: number) => Rgb {
  return scale === 'viridis' ? viridis : colourMap(themeStops);
}

export interface OverlayInput {
  /** HWC uint8 pixels of the image. */
  readonly pixels: Uint8Array;
  readonly height: number;
  readonly width: number;
  readonly channels: number;
  /** The group's values for all images; this image's map starts at `offset`. */
  readonly map: ArrayLike<number>;
  readonly offset: number;
  readonly mapHeight: number;
  readonly mapWidth: number;
  readonly min: number;
  readonly max: number;
  readonly opacity: number;
  readonly colour: (t: number) => Rgb;
}

/** Paint the overlay into `ctx` at `scale` canvas pixels per image pixel. */
export function drawOverlay(ctx: CanvasRenderingContext2D, scale: number, o: OverlayInput): void {
  const H = o.height * scale;
  const W = o.width * scale;
  const out = ctx.createImageData(W, H);
  const range = o.max > o.min ? o.max - o.min : 1;
  const a = o.opacity;
  for (let Y = 0; Y < H; Y++) {
    const iy = Math.floor(Y / scale);
    const my = ((Y + 0.5) / H) * o.mapHeight - 0.5;
    for (let X = 0; X < W; X++) {
      const ix = Math.floor(X / scale);
      const p = (iy * o.width + ix) * o.channels;
      const r = o.pixels[p];
      const g = o.channels === 1 ? r : o.pixels[p + 1];
      const b = o.channels === 1 ? r : o.pixels[p + 2];
      const v = sampleBilinear(o.map, o.offset, o.mapHeight, o.mapWidth, my, ((X + 0.5) / W) * o.mapWidth - 0.5);
      const c = o.colour((v - o.min) / range);
      const q = (Y * W + X) * 4;
      out.data[q] = r * (1 - a) + c[0] * a;
      out.data[q + 1] = g * (1 - a) + c[1] * a;
      out.data[q + 2] = b * (1 - a) + c[2] * a;
      out.data[q + 3] = 255;
    }
  }
  ctx.putImageData(out, 0, 0);
}

/** A horizontal colour bar for the legend. */
export function drawColourBar(ctx: CanvasRenderingContext2D, width: number, height: number, colour: (t: number) => Rgb): void {
  const img = ctx.createImageData(width, height);
  for (let x = 0; x < width; x++) {
    const c = colour(x / Math.max(1, width - 1));
    for (let y = 0; y < height; y++) {
      const q = (y * width + x) * 4;
      img.data[q] = c[0];
      img.data[q + 1] = c[1];
      img.data[q + 2] = c[2];
      img.data[q + 3] = 255;
    }
  }
  ctx.putImageData(img, 0, 0);
}

/** Min and max of one image's map. */
export function mapRange(map: ArrayLike<number>, offset: number, size: number): { min: number; max: number } {
  let min = Infinity;
  let max = -Infinity;
  for (let i = offset; i < offset + size; i++) {
    if (map[i] < min) min = map[i];
    if (map[i] > max) max = map[i];
  }
  return { min, max };
}

/** Compact number for labels: 3 significant digits, exponent for tiny values. */
export function formatValue(v: number): string {
  if (!Number.isFinite(v)) return '–';
  if (v === 0) return '0';
  const a = Math.abs(v);
  return a < 1e-3 || a >= 1e4 ? v.toExponential(2) : v.toPrecision(3);
}

/** Decode base64 pixels (atob is in every webview). */
export function decodePixels(b64: string): Uint8Array {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
