// Viridis: the one colour scale of every attention heatmap (the engine's PNGs, the run panel, the
// heatmap editor), so they read alike. Perceptually uniform and readable by colour-blind people.
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
