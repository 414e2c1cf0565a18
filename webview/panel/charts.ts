// Loss and ACC/ASR per epoch with chart.js (only the parts a line chart needs are registered). Colours
// come from the theme's --vscode-charts-* variables and follow theme changes.
import {
  CategoryScale,
  Chart,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
  type ChartDataset,
  type ScriptableLineSegmentContext,
} from 'chart.js';
import { phaseLabel, type EpochPoint } from '../../src/shared/run-state';
import { cssVar, h } from './dom';

Chart.register(LineController, LineElement, PointElement, LinearScale, CategoryScale, Legend, Tooltip);

const SHORT: Readonly<Record<string, string>> = { train: 'T', teacher: 'F', nad: 'N', finetune: 'FT', eval: 'E' };
const short = (phase: string): string => SHORT[phase] ?? phase.charAt(0).toUpperCase();
/** The x axis names the phases shown: "epoch (F = teacher, N = NAD)". */
const xTitleOf = (epochs: readonly EpochPoint[]): string => {
  const phases = [...new Set(epochs.map((e) => e.phase))];
  return phases.length ? `epoch (${phases.map((ph) => `${short(ph)} = ${phaseLabel(ph)}`).join(', ')})` : 'epoch';
};

export interface Palette {
  readonly fg: string;
  readonly grid: string;
  readonly loss: string;
  readonly acc: string;
  readonly asr: string;
  readonly font: string;
}

export function palette(): Palette {
  return {
    fg: cssVar('--vscode-foreground', '#cccccc'),
    grid: cssVar('--vscode-editorWidget-border', cssVar('--vscode-panel-border', 'rgba(128,128,128,0.35)')),
    loss: cssVar('--vscode-charts-blue', '#3794ff'),
    acc: cssVar('--vscode-charts-green', '#89d185'),
    asr: cssVar('--vscode-charts-red', '#f14c4c'),
    font: cssVar('--vscode-font-family', 'sans-serif'),
  };
}

export type LineChart = Chart<'line', Array<number | null>, string>;

/** A themed line chart: x labels, y in percent (0-100) or from zero. */
export function makeLineChart(canvas: HTMLCanvasElement, xTitle: string, percent: boolean): LineChart {
  const p = palette();
  return new Chart<'line', Array<number | null>, string>(canvas, {
    type: 'line',
    data: { labels: [], datasets: [] },
    options: {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      interaction: { mode: 'index', intersect: false },
      plugins: { legend: { labels: { color: p.fg, boxWidth: 12, font: { family: p.font } } }, tooltip: { enabled: true } },
      scales: {
        x: {
          ticks: { color: p.fg, font: { family: p.font } },
          grid: { color: p.grid },
          title: { display: true, text: xTitle, color: p.fg, font: { family: p.font } },
        },
        y: {
          ticks: { color: p.fg, font: { family: p.font } },
          grid: { color: p.grid },
          ...(percent ? { min: 0, max: 100 } : { beginAtZero: true }),
        },
      },
    },
  });
}

/** Re-reads the theme's colours into a chart's axes and legend. */
export function restyleChart(c: LineChart): void {
  const p = palette();
  const scales = c.options.scales as Record<string, { ticks?: { color?: string }; grid?: { color?: string }; title?: { color?: string } }>;
  for (const s of Object.values(scales)) {
    if (s.ticks) s.ticks.color = p.fg;
    if (s.grid) s.grid.color = p.grid;
    if (s.title) s.title.color = p.fg;
  }
  const legend = c.options.plugins?.legend?.labels;
  if (legend) legend.color = p.fg;
}

export class Curves {
  readonly element: HTMLElement;
  private readonly loss: LineChart;
  private readonly rates: LineChart;
  private readonly lossCanvas: HTMLCanvasElement;
  private readonly ratesCanvas: HTMLCanvasElement;
  private epochs: readonly EpochPoint[] = [];

  constructor() {
    this.lossCanvas = h('canvas', { role: 'img', 'aria-label': 'Training loss per epoch' });
    this.ratesCanvas = h('canvas', { role: 'img', 'aria-label': 'Clean accuracy (ACC) and attack success rate (ASR) per epoch' });
    this.element = h(
      'div',
      { class: 'charts' },
      h('figure', { class: 'chart' }, h('div', { class: 'chart-box' }, this.lossCanvas), h('figcaption', {}, 'Loss')),
      h('figure', { class: 'chart' }, h('div', { class: 'chart-box' }, this.ratesCanvas), h('figcaption', {}, 'ACC and ASR (%)')),
    );
    this.loss = makeLineChart(this.lossCanvas, 'epoch', false);
    this.rates = makeLineChart(this.ratesCanvas, 'epoch', true);
    // Theme switches change the body's class: recolour.
    new MutationObserver(() => this.restyle()).observe(document.body, { attributes: true, attributeFilter: ['class'] });
  }

  update(epochs: readonly EpochPoint[]): void {
    this.epochs = epochs;
    const labels = epochs.map((e) => `${short(e.phase)}${e.epoch}`);
    for (const c of [this.loss, this.rates]) {
      const x = (c.options.scales as Record<string, { title?: { text?: string } }>)['x'];
      if (x?.title) x.title.text = xTitleOf(epochs);
    }
    const p = palette();
    // Earlier phases (teacher finetuning) dashed, the run's main phase solid.
    const last = epochs.length ? epochs[epochs.length - 1].phase : undefined;
    const dashed = (ctx: ScriptableLineSegmentContext): number[] | undefined =>
      epochs[ctx.p1DataIndex]?.phase !== last ? [5, 4] : undefined;
    const line = (label: string, color: string, values: number[]): ChartDataset<'line', Array<number | null>> => ({
      label,
      data: values,
      borderColor: color,
      backgroundColor: color,
      pointRadius: epochs.length > 40 ? 0 : 3,
      borderWidth: 2,
      segment: { borderDash: dashed },
    });
    this.loss.data.labels = labels;
    this.loss.data.datasets = [
      line(
        'loss',
        p.loss,
        epochs.map((e) => e.loss),
      ),
    ];
    this.rates.data.labels = labels;
    this.rates.data.datasets = [
      line(
        'ACC',
        p.acc,
        epochs.map((e) => e.acc),
      ),
      line(
        'ASR',
        p.asr,
        epochs.map((e) => e.asr),
      ),
    ];
    this.loss.update();
    this.rates.update();
    const lastPoint = epochs[epochs.length - 1];
    this.lossCanvas.setAttribute(
      'aria-label',
      lastPoint ? `Loss per epoch; last ${lastPoint.loss.toFixed(4)} after ${labels[labels.length - 1]}` : 'Loss per epoch; no epoch yet',
    );
    this.ratesCanvas.setAttribute(
      'aria-label',
      lastPoint
        ? `ACC and ASR per epoch; last ACC ${lastPoint.acc.toFixed(2)}%, ASR ${lastPoint.asr.toFixed(2)}%`
        : 'ACC and ASR per epoch; no epoch yet',
    );
  }

  /** Data points drawn (for the host's probe). */
  points(): number {
    return [this.loss, this.rates].reduce((n, c) => n + c.data.datasets.reduce((m, d) => m + d.data.length, 0), 0);
  }

  private restyle(): void {
    restyleChart(this.loss);
    restyleChart(this.rates);
    this.update(this.epochs);
  }
}
