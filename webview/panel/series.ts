// A defense's own curves (series events: ACC/ASR against channels pruned, against t on the path...):
// one chart per series, drawn by the same chart code and theme colours as the epoch curves.
import type { Series } from '../../src/shared/run-state';
import { h } from './dom';
import { makeLineChart, palette, restyleChart, type LineChart } from './charts';

export class SeriesCharts {
  readonly element = h('div', { class: 'charts' });
  private readonly charts = new Map<string, { chart: LineChart; canvas: HTMLCanvasElement }>();
  private series: readonly Series[] = [];

  constructor() {
    new MutationObserver(() => {
      for (const { chart } of this.charts.values()) restyleChart(chart);
      this.update(this.series);
    }).observe(document.body, { attributes: true, attributeFilter: ['class'] });
  }

  update(series: readonly Series[]): void {
    this.series = series;
    const p = palette();
    for (const s of series) {
      let entry = this.charts.get(s.id);
      if (!entry) {
        const canvas = h('canvas', { role: 'img', 'data-series': s.id });
        this.element.append(h('figure', { class: 'chart' }, h('div', { class: 'chart-box' }, canvas), h('figcaption', {}, s.title)));
        entry = { chart: makeLineChart(canvas, s.xLabel, true), canvas };
        this.charts.set(s.id, entry);
      }
      const line = (label: string, color: string, values: number[]) => ({
        label,
        data: values,
        borderColor: color,
        backgroundColor: color,
        pointRadius: s.points.length > 40 ? 0 : 3,
        borderWidth: 2,
      });
      entry.chart.data.labels = s.points.map((q) => String(q.x));
      entry.chart.data.datasets = [
        line(
          'ACC',
          p.acc,
          s.points.map((q) => q.acc),
        ),
        line(
          'ASR',
          p.asr,
          s.points.map((q) => q.asr),
        ),
      ];
      entry.chart.update();
      const last = s.points[s.points.length - 1];
      entry.canvas.setAttribute(
        'aria-label',
        `${s.title}: ${s.points.length} points${last ? `; at ${s.xLabel} ${last.x}: ACC ${last.acc.toFixed(2)}%, ASR ${last.asr.toFixed(2)}%` : ''}`,
      );
    }
  }

  /** Data points drawn (for the host's probe). */
  points(): number {
    return this.series.reduce((n, s) => n + 2 * s.points.length, 0);
  }
}
