// Attention heatmaps as PNG: the map upsampled (bilinear) over the image, coloured with viridis, with a
// colour-scale bar and its min/max values printed in a tiny bitmap font (no font files needed).
import { PNG } from 'pngjs';
import { sampleBilinear, viridis } from '../shared/colormap';

export interface HeatmapOptions {
  /** Pixels per image pixel in the output (default 8). */
  readonly scale?: number;
  /** Opacity of the heatmap over the image (default 0.55). */
  readonly alpha?: number;
  /** Colour range; default the map's own min/max. */
  readonly vmin?: number;
  readonly vmax?: number;
  /** Draw the colour bar with its range (default true). */
  readonly legend?: boolean;
}

/**
 * Render `map` (mh x mw) over `image` (h x w x c uint8, c = 1 or 3) as a PNG file's bytes.
 */
export function renderHeatmapPng(
  image: Uint8Array,
  dims: { height: number; width: number; channels: number },
  map: Float32Array,
  mapDims: { height: number; width: number },
  opts: HeatmapOptions = {},
): Uint8Array {
  const scale = opts.scale ?? 8;
  const alpha = opts.alpha ?? 0.55;
  let vmin = opts.vmin ?? Infinity;
  let vmax = opts.vmax ?? -Infinity;
  if (opts.vmin === undefined || opts.vmax === undefined) {
    for (const v of map) {
      if (opts.vmin === undefined) vmin = Math.min(vmin, v);
      if (opts.vmax === undefined) vmax = Math.max(vmax, v);
    }
  }
  const range = vmax > vmin ? vmax - vmin : 1;
  const { height: h, width: w, channels: c } = dims;
  const H = h * scale;
  const W = w * scale;
  const legend = opts.legend ?? true;
  const barW = legend ? Math.max(10, scale * 2) : 0;
  const textW = legend ? 6 * 2 * 6 : 0;
  const outW = W + (legend ? barW + 6 + textW : 0);
  const png = new PNG({ width: outW, height: H });
  png.data.fill(255);
  for (let Y = 0; Y < H; Y++) {
    for (let X = 0; X < W; X++) {
      const iy = Math.floor(Y / scale);
      const ix = Math.floor(X / scale);
      const p = (iy * w + ix) * c;
      const base = c === 1 ? [image[p], image[p], image[p]] : [image[p], image[p + 1], image[p + 2]];
      // Map cell centres: output pixel centre -> map coordinates.
      const v = sampleBilinear(
        map,
        0,
        mapDims.height,
        mapDims.width,
        ((Y + 0.5) / H) * mapDims.height - 0.5,
        ((X + 0.5) / W) * mapDims.width - 0.5,
      );
      const col = viridis((v - vmin) / range);
      const o = (Y * outW + X) * 4;
      for (let k = 0; k < 3; k++) png.data[o + k] = Math.round(base[k] * (1 - alpha) + col[k] * alpha);
      png.data[o + 3] = 255;
    }
  }
  if (legend) {
    for (let Y = 0; Y < H; Y++) {
      const col = viridis(1 - Y / Math.max(1, H - 1));
      for (let X = W + 4; X < W + 4 + barW; X++) {
        const o = (Y * outW + X) * 4;
        png.data[o] = col[0];
        png.data[o + 1] = col[1];
        png.data[o + 2] = col[2];
      }
    }
    drawText(png, formatValue(vmax), W + 6 + barW, 1, 2);
    drawText(png, formatValue(vmin), W + 6 + barW, H - 11, 2);
  }
  return PNG.sync.write(png);
}

function formatValue(v: number): string {
  if (!Number.isFinite(v)) return '-';
  return Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toFixed(3);
}

// 3x5 bitmap glyphs, rows top to bottom, 3 bits each.
const GLYPHS: Record<string, readonly number[]> = {
  '0': [7, 5, 5, 5, 7],
  '1': [2, 6, 2, 2, 7],
  '2': [7, 1, 7, 4, 7],
  '3': [7, 1, 7, 1, 7],
  '4': [5, 5, 7, 1, 1],
  '5': [7, 4, 7, 1, 7],
  '6': [7, 4, 7, 5, 7],
  '7': [7, 1, 1, 1, 1],
  '8': [7, 5, 7, 5, 7],
  '9': [7, 5, 7, 1, 7],
  '.': [0, 0, 0, 0, 2],
  '-': [0, 0, 7, 0, 0],
  e: [0, 7, 7, 4, 7],
};

function drawText(png: PNG, text: string, x0: number, y0: number, size: number): void {
  let x = x0;
  for (const ch of text) {
    const g = GLYPHS[ch];
    if (g) {
      for (let r = 0; r < 5; r++)
        for (let b = 0; b < 3; b++) {
          if (!((g[r] >> (2 - b)) & 1)) continue;
          for (let dy = 0; dy < size; dy++)
            for (let dx = 0; dx < size; dx++) {
              const X = x + b * size + dx;
              const Y = y0 + r * size + dy;
              if (X >= png.width || Y >= png.height || Y < 0) continue;
              const o = (Y * png.width + X) * 4;
              png.data[o] = png.data[o + 1] = png.data[o + 2] = 20;
            }
        }
    }
    x += 4 * size;
  }
}
