// Viridis and bilinear upsampling: how every attention heatmap (the engine's PNGs, the run panel, the
// heatmap editor) is drawn, so they read alike. Perceptually uniform and readable by colour-blind people.
export type Rgb = readonly [number, number, number];

/** matplotlib's viridis at 10 evenly spaced stops, interpolated linearly. */
export const VIRIDIS: readonly Rgb[] = [
  [68, 1, 84],
  [72, 40, 120],
  [62, 74, 137],
  [49, 104, 142],
  [38, 130, 142],
  [31, 158, 137],
  [53, 183, 121],
  [109, 205, 89],
  [180, 222, 44],
  [253, 231, 37],
];

/** A colour map: t in [0, 1] (clamped; NaN = 0) -> RGB, by linear interpolation between stops. */
export function colourMap(stops: readonly Rgb[]): (t: number) => [number, number, number] {
  return (t) => {
    const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (stops.length - 1);
    const i = Math.min(stops.length - 2, Math.floor(x));
    const f = x - i;
    const a = stops[i];
    const b = stops[i + 1];
    return [a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f];
  };
}

export const viridis = colourMap(VIRIDIS);

/** The scale as a CSS gradient, for legends. */
export function viridisGradient(direction = 'to right'): string {
  const stops = VIRIDIS.map(([r, g, b], i) => `rgb(${r}, ${g}, ${b}) ${((i / (VIRIDIS.length - 1)) * 100).toFixed(0)}%`);
  return `linear-gradient(${direction}, ${stops.join(', ')})`;
}

/** Bilinear sample of an h x w map at continuous map coordinates. */
export function sampleBilinear(map: ArrayLike<number>, offset: number, h: number, w: number, y: number, x: number): number {
  const yy = Math.min(h - 1, Math.max(0, y));
  const xx = Math.min(w - 1, Math.max(0, x));
  const y0 = Math.floor(yy);
  const x0 = Math.floor(xx);
  const y1 = Math.min(h - 1, y0 + 1);
  const x1 = Math.min(w - 1, x0 + 1);
  const fy = yy - y0;
  const fx = xx - x0;
  const at = (r: number, c: number): number => map[offset + r * w + c];
  const top = at(y0, x0) * (1 - fx) + at(y0, x1) * fx;
  const bottom = at(y1, x0) * (1 - fx) + at(y1, x1) * fx;
  return top * (1 - fy) + bottom * fy;
}
