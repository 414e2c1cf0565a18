// What every Chart.js chart of the pages shares: drawn at once (no animation), filling its box, data given as
// points (no parsing), in the theme's text colour and font.
export function baseChartOptions(color: string, font: { family: string; size: number }) {
  return { animation: false, responsive: true, maintainAspectRatio: false, parsing: false, color, font } as const;
}
