// A defense's own views beyond its ACC/ASR curves: its findings (facts), its charts (bars over classes or
// histogram bins, x-y lines such as a ROC curve) and its images (recovered triggers). Charts use the same
// chart.js code and theme colours as the epoch curves; images are drawn pixel for pixel, scaled up.
import {
  BarController,
  BarElement,
  Chart,
  LinearScale,
  ScatterController,
  type ChartConfiguration,
  type ChartDataset,
  type Plugin,
} from 'chart.js';
import type { ChartFigure, ImagesFigure } from '../../src/shared/run-events';
import { imagesFigure } from '../common/images';
import type { RunView } from '../../src/shared/run-state';
import { clear, cssVar, h } from './dom';
import { palette, restyleChart, type LineChart } from './charts';

Chart.register(BarController, BarElement, ScatterController, LinearScale);

/** Series colours after ACC green and ASR red: blue, orange, purple, yellow. */
function seriesColours(): string[] {
  return [
    cssVar('--vscode-charts-blue', '#3794ff'),
    cssVar('--vscode-charts-red', '#f14c4c'),
    cssVar('--vscode-charts-orange', '#d18616'),
    cssVar('--vscode-charts-purple', '#b180d7'),
    cssVar('--vscode-charts-yellow', '#cca700'),
    cssVar('--vscode-charts-green', '#89d185'),
  ];
}

/** Draws the figure's threshold as a dashed horizontal line with its label. */
const thresholdLine: Plugin = {
  id: 'nadThreshold',
  afterDatasetsDraw(chart) {
    const t = (chart.options.plugins as { nadThreshold?: ChartFigure['threshold'] } | undefined)?.nadThreshold;
    const x = chart.scales['x'];
    const y = chart.scales['y'];
    if (!t || !x || !y) return;
    const { left, right, top, bottom } = chart.chartArea;
    const ctx = chart.ctx;
    ctx.save();
    ctx.strokeStyle = palette().fg;
    ctx.fillStyle = palette().fg;
    ctx.setLineDash([5, 4]);
    ctx.font = `11px ${palette().font}`;
    ctx.beginPath();
    if (t.axis === 'x') {
      // Category positions are bar indices: interpolate between neighbours for an edge such as 3.5.
      const lo = Math.floor(t.value);
      const px = x.getPixelForValue(lo) + (t.value - lo) * (x.getPixelForValue(lo + 1) - x.getPixelForValue(lo));
      ctx.moveTo(px, top);
      ctx.lineTo(px, bottom);
      ctx.stroke();
      ctx.setLineDash([]);
      ctx.textAlign = 'left';
      ctx.fillText(t.label, px + 4, top + 12);
    } else {
      const py = y.getPixelForValue(t.value);
      ctx.moveTo(left, py);
      ctx.lineTo(right, py);
      ctx.stroke();
      ctx.setLineDash([]);
      ctx.textAlign = 'right';
      ctx.fillText(t.label, right - 2, py - 4);
    }
    ctx.restore();
  },
};
Chart.register(thresholdLine);

function axes(f: ChartFigure, linearX: boolean): NonNullable<ChartConfiguration['options']>['scales'] {
  const p = palette();
  const axis = (title: string) => ({
    ticks: { color: p.fg, font: { family: p.font } },
    grid: { color: p.grid },
    title: { display: true, text: title, color: p.fg, font: { family: p.font } },
  });
  return { x: { ...axis(f.xLabel), ...(linearX ? { type: 'linear' as const } : {}) }, y: { ...axis(f.yLabel), beginAtZero: true } };
}

type PlotFigure = ChartFigure & { readonly chart: Exclude<ChartFigure['chart'], { kind: 'matrix' }> };

function chartConfig(f: PlotFigure): ChartConfiguration {
  const p = palette();
  const colours = seriesColours();
  const plugins = {
    legend: { display: f.chart.series.length > 1, labels: { color: p.fg, boxWidth: 12, font: { family: p.font } } },
    tooltip: { enabled: true },
    nadThreshold: f.threshold,
  };
  const base = { animation: false as const, responsive: true, maintainAspectRatio: false, plugins };
  if (f.chart.kind === 'bar') {
    const datasets: Array<ChartDataset<'bar', number[]>> = f.chart.series.map((s, i) => ({
      label: s.name,
      data: [...s.values],
      backgroundColor: colours[i % colours.length],
      borderWidth: 0,
    }));
    return { type: 'bar', data: { labels: [...f.chart.labels], datasets }, options: { ...base, scales: axes(f, false) } };
  }
  const datasets: Array<ChartDataset<'scatter', Array<{ x: number; y: number }>>> = f.chart.series.map((s, i) => ({
    label: s.name,
    data: s.points.map((q) => ({ x: q.x, y: q.y })),
    borderColor: colours[i % colours.length],
    backgroundColor: colours[i % colours.length],
    showLine: true,
    pointRadius: s.points.length > 40 ? 0 : 3,
    borderWidth: 2,
  }));
  return { type: 'scatter', data: { datasets }, options: { ...base, scales: axes(f, true) } };
}

/** A confusion matrix as a table: each cell shaded by its share of its row, the diagonal outlined. */
function matrixTable(f: ChartFigure & { readonly chart: { kind: 'matrix' } }): HTMLTableElement {
  const m = f.chart;
  const table = h('table', { class: 'data matrix', 'data-chart': f.id, 'aria-label': `${f.title}: rows ${f.yLabel}, columns ${f.xLabel}` });
  const head = h('tr', {}, h('th', { scope: 'col', class: 'corner' }, `${f.yLabel} \\ ${f.xLabel}`));
  for (const c of m.colLabels) head.append(h('th', { scope: 'col' }, c));
  table.append(h('thead', {}, head));
  const body = h('tbody', {});
  m.values.forEach((row, r) => {
    const total = row.reduce((a, v) => a + v, 0);
    const tr = h('tr', {}, h('th', { scope: 'row' }, m.rowLabels[r] ?? String(r)));
    row.forEach((v, c) => {
      const td = h(
        'td',
        { class: r === c ? 'diag' : undefined, title: total ? `${((100 * v) / total).toFixed(1)}% of row` : '' },
        String(v),
      );
      const pct = total ? Math.round((100 * v) / total) : 0;
      // CSSOM, not a style attribute: allowed by the page's CSP.
      td.style.backgroundColor = `color-mix(in srgb, var(--vscode-charts-blue, #3794ff) ${Math.round(pct * 0.85)}%, transparent)`;
      tr.append(td);
    });
    body.append(tr);
  });
  table.append(body);
  return table;
}

export class DefenseFigures {
  readonly element = h('div', { class: 'figures' });
  private readonly factList = h('dl', { class: 'facts defense-facts' });
  private readonly factTitle = h('h3', {});
  private readonly chartGrid = h('div', { class: 'charts' });
  private readonly matrices = h('div', { class: 'matrices' });
  private readonly imageBlocks = h('div', { class: 'figure-images' });
  private readonly charts = new Map<string, { chart: Chart; canvas: HTMLCanvasElement; figure: ChartFigure }>();
  private view: Pick<RunView, 'charts' | 'images' | 'facts'> = { charts: [], images: [] };

  /** `group`: which charts and images this view shows; a defense's own views also show its facts. */
  constructor(private readonly group: 'defense' | 'classes' | 'attack') {
    this.element.append(h('div', { class: 'facts-block' }, this.factTitle, this.factList), this.chartGrid, this.matrices, this.imageBlocks);
    new MutationObserver(() => {
      for (const { chart } of this.charts.values()) restyleChart(chart as unknown as LineChart);
      this.update(this.view, true);
    }).observe(document.body, { attributes: true, attributeFilter: ['class'] });
    this.showFacts();
  }

  private mine(): ChartFigure[] {
    return this.view.charts.filter((c) => (c.group ?? 'defense') === this.group);
  }

  private myImages(view: Pick<RunView, 'images'>): ImagesFigure[] {
    return view.images.filter((f) => (f.group ?? 'defense') === this.group);
  }

  isEmpty(): boolean {
    const facts = this.group === 'defense' && this.view.facts !== undefined;
    return !facts && this.myImages(this.view).length === 0 && this.mine().length === 0;
  }

  update(view: Pick<RunView, 'charts' | 'images' | 'facts'>, restyle = false): void {
    const before = this.view;
    this.view = view;
    if (restyle || before.facts !== view.facts) this.showFacts();
    if (restyle || before.charts !== view.charts) this.showCharts(restyle);
    if (before.images !== view.images) this.showImages(this.myImages(view));
  }

  private showFacts(): void {
    const f = this.group === 'defense' ? this.view.facts : undefined;
    clear(this.factList);
    this.factTitle.textContent = f?.title ?? '';
    (this.factList.parentElement as HTMLElement).hidden = !f;
    for (const fact of f?.facts ?? []) this.factList.append(h('div', {}, h('dt', {}, fact.label), h('dd', {}, fact.value)));
  }

  private showCharts(rebuild: boolean): void {
    const mine = this.mine();
    clear(this.matrices);
    for (const f of mine) {
      if (f.chart.kind === 'matrix') {
        this.matrices.append(
          h(
            'figure',
            { class: 'matrix-figure' },
            h('div', { class: 'scroll-x' }, matrixTable(f as ChartFigure & { chart: { kind: 'matrix' } })),
            h('figcaption', {}, f.title),
          ),
        );
        continue;
      }
      const plot = f as PlotFigure;
      let entry = this.charts.get(f.id);
      if (entry && (rebuild || entry.figure.chart.kind !== f.chart.kind)) {
        entry.chart.destroy();
        entry = { chart: new Chart(entry.canvas, chartConfig(plot)), canvas: entry.canvas, figure: f };
        this.charts.set(f.id, entry);
      } else if (!entry) {
        const canvas = h('canvas', { role: 'img', 'data-chart': f.id });
        this.chartGrid.append(h('figure', { class: 'chart' }, h('div', { class: 'chart-box' }, canvas), h('figcaption', {}, f.title)));
        entry = { chart: new Chart(canvas, chartConfig(plot)), canvas, figure: f };
        this.charts.set(f.id, entry);
      } else if (entry.figure !== f) {
        const next = chartConfig(plot);
        entry.chart.data = next.data;
        entry.chart.options = next.options ?? {};
        entry.chart.update();
        entry.figure = f;
      }
      const n = plot.chart.kind === 'bar' ? plot.chart.labels.length : plot.chart.series.reduce((k, s) => k + s.points.length, 0);
      entry.canvas.setAttribute(
        'aria-label',
        `${f.title}: ${plot.chart.series.map((s) => s.name).join(', ')}; ${n} ${plot.chart.kind === 'bar' ? 'bars' : 'points'}${
          f.threshold ? `; ${f.threshold.label} at ${f.threshold.value}` : ''
        }`,
      );
    }
  }

  private showImages(figures: readonly ImagesFigure[]): void {
    clear(this.imageBlocks);
    for (const fig of figures) this.imageBlocks.append(imagesFigure(fig));
  }

  /** What is drawn (for the host's probe). */
  counts(): { charts: number; chartBars: number; matrices: number; images: number; facts: number } {
    let chartBars = 0;
    for (const { chart } of this.charts.values()) chartBars += chart.data.datasets.reduce((m, d) => m + d.data.length, 0);
    return {
      charts: this.charts.size,
      chartBars,
      matrices: this.matrices.querySelectorAll('table').length,
      images: this.imageBlocks.querySelectorAll('canvas').length,
      facts: this.factList.childElementCount,
    };
  }
}
