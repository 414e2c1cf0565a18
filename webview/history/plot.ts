// The history page's plot: one metric (y) against one parameter or metric (x) across the shown runs, one
// point per run in the run's own colour (the same as on Compare Runs). The points are also listed in a
// table (screen readers, tests); the plot exports as PNG and SVG, its data as CSV and JSON.
import { Chart, Legend, LinearScale, PointElement, ScatterController, Title, Tooltip, type ChartDataset } from 'chart.js';
import type { ColumnDef } from '../../src/shared/history-columns';
import { cellValue, csvText } from '../../src/shared/history-columns';
import type { ExportFormat, HistoryRow, PlotChoice, PlotPoint } from '../../src/shared/history-protocol';
import { h, themeColour } from '../common/vscode-api';
import { niceAxis, scatterSvg, type Axis } from './plot-svg';
import { runColour, runPointStyle } from './run-colours';
import { baseChartOptions } from '../common/chart-options';

Chart.register(ScatterController, PointElement, LinearScale, Legend, Tooltip, Title);

/** Metrics in percent (ACC, ASR, RA and the results' per-model numbers) get a fixed 0-100 axis. */
function isPercent(id: string): boolean {
  return ['acc', 'asr', 'ra'].includes(id) || /^metrics\.(?!report\.).*\.(acc|asr|ra)$/.test(id);
}

function axisTitle(c: ColumnDef | undefined): string {
  return c ? `${c.title}${isPercent(c.id) ? ' (%)' : ''}` : '';
}

interface Drawn {
  readonly points: ReadonlyArray<PlotPoint & { readonly name: string; readonly colour: number }>;
  readonly x?: ColumnDef;
  readonly y?: ColumnDef;
  readonly xAxis: Axis;
  readonly yAxis: Axis;
}

export interface PlotCallbacks {
  readonly choose: (choice: PlotChoice) => void;
  readonly exportFile: (format: ExportFormat, content: string, base64: boolean) => void;
}

export class RunPlot {
  readonly element: HTMLElement;
  private readonly xSelect = h('select', { id: 'plot-x', 'aria-label': 'x axis: a parameter or metric' });
  private readonly ySelect = h('select', { id: 'plot-y', 'aria-label': 'y axis: a metric' });
  private readonly canvas = h('canvas', { id: 'plot-canvas', role: 'img' });
  private readonly dataBody = h('tbody');
  private readonly dataHead = h('tr');
  private readonly note = h('p', { class: 'plot-note', id: 'plot-note' });
  private chart: { destroy(): void } | undefined;
  private drawnKey = '';
  private drawn: Drawn | undefined;

  constructor(private readonly callbacks: PlotCallbacks) {
    for (const s of [this.xSelect, this.ySelect])
      s.addEventListener('change', () => this.callbacks.choose({ x: this.xSelect.value, y: this.ySelect.value }));
    const button = (id: string, label: string, title: string, run: () => void): HTMLElement => {
      const b = h('vscode-button', { id, secondary: true, title }, label);
      b.addEventListener('click', run);
      return b;
    };
    this.element = h(
      'section',
      { class: 'plot', id: 'plot', 'aria-label': 'Plot' },
      h('h2', {}, 'Plot across runs'),
      h(
        'div',
        { class: 'toolbar' },
        h('label', { class: 'axis' }, 'y ', this.ySelect),
        h('label', { class: 'axis' }, 'against x ', this.xSelect),
        button('plot-png', 'PNG', 'Save the plot as a PNG image', () => this.exportPng()),
        button('plot-svg', 'SVG', 'Save the plot as an SVG image', () => this.exportSvg()),
        button('plot-csv', 'CSV', 'Save the plotted points as CSV', () => this.exportData('csv')),
        button('plot-json', 'JSON', 'Save the plotted points as JSON', () => this.exportData('json')),
      ),
      this.note,
      h('figure', { class: 'chart' }, h('div', { class: 'chart-box plot-box' }, this.canvas)),
      h(
        'details',
        { class: 'plot-data' },
        h('summary', {}, 'Plotted values'),
        h('table', { id: 'plot-data' }, h('thead', {}, this.dataHead), this.dataBody),
      ),
    );
  }

  /** Draws the shown runs for `choice` (or defaults); `differing`: columns that differ among the shown runs. */
  update(rows: readonly HistoryRow[], columns: readonly ColumnDef[], differing: ReadonlySet<string>, choice: PlotChoice): Drawn {
    const numeric = columns.filter((c) => c.numeric && c.id !== 'name');
    const xs = numeric.filter((c) => c.group === 'params' || c.group === 'metrics');
    const ys = numeric.filter((c) => c.group === 'metrics');
    // By default: a parameter that differs among the shown runs, β first (the shortest key: training.betas.0
    // before teacherTraining.betas.0).
    const varying = xs.filter((c) => c.group === 'params' && differing.has(c.id)).sort((a, b) => a.id.length - b.id.length);
    const x =
      xs.find((c) => c.id === choice.x) ?? varying.find((c) => /beta/i.test(c.id)) ?? varying[0] ?? xs.find((c) => c.group === 'params');
    const y = ys.find((c) => c.id === choice.y) ?? ys.find((c) => c.id === 'asr');
    fillSelect(this.xSelect, xs, x?.id);
    fillSelect(this.ySelect, ys, y?.id);
    const points =
      x && y
        ? rows.flatMap((r) => {
            const vx = cellValue(r, x.id);
            const vy = cellValue(r, y.id);
            return typeof vx === 'number' && typeof vy === 'number' ? [{ id: r.id, name: r.name, colour: r.colour, x: vx, y: vy }] : [];
          })
        : [];
    const drawn: Drawn = {
      points,
      x,
      y,
      xAxis: niceAxis(
        points.map((p) => p.x),
        x ? isPercent(x.id) : false,
      ),
      yAxis: niceAxis(
        points.map((p) => p.y),
        y ? isPercent(y.id) : false,
      ),
    };
    this.drawn = drawn;
    this.note.textContent =
      x && y
        ? `${points.length} of ${rows.length} shown run${rows.length === 1 ? '' : 's'} have both ${y.title} and ${x.title}.`
        : 'No numeric parameter or metric to plot yet.';
    this.canvas.setAttribute(
      'aria-label',
      x && y ? `${y.title} against ${x.title} for ${points.length} runs; the values are in the table below.` : 'empty plot',
    );
    this.renderTable(drawn);
    const key = JSON.stringify([points, x?.id, y?.id]);
    if (key !== this.drawnKey) {
      this.drawnKey = key;
      this.draw(drawn);
    }
    return drawn;
  }

  private renderTable(d: Drawn): void {
    this.dataHead.replaceChildren(
      h('th', { scope: 'col' }, 'Run'),
      h('th', { scope: 'col', class: 'num' }, d.x?.title ?? 'x'),
      h('th', { scope: 'col', class: 'num' }, d.y?.title ?? 'y'),
    );
    this.dataBody.replaceChildren(
      ...d.points.map((p) => {
        const swatch = h('span', { class: 'swatch', 'aria-hidden': 'true' });
        swatch.style.background = runColour(p.colour);
        return h(
          'tr',
          { 'data-id': p.id, 'data-x': String(p.x), 'data-y': String(p.y) },
          h('th', { scope: 'row' }, swatch, p.name),
          h('td', { class: 'num' }, String(p.x)),
          h('td', { class: 'num' }, String(p.y)),
        );
      }),
    );
  }

  private colours(): { fg: string; grid: string; bg: string; font: string } {
    return {
      fg: themeColour('--vscode-foreground', '#cccccc'),
      grid: themeColour('--vscode-editorWidget-border', themeColour('--vscode-panel-border', '#80808040')),
      bg: themeColour('--vscode-editor-background', '#1e1e1e'),
      font: themeColour('--vscode-font-family', 'sans-serif'),
    };
  }

  private draw(d: Drawn): void {
    this.chart?.destroy();
    const { fg, grid, font: family } = this.colours();
    const font = { family, size: 12 };
    const datasets: Array<ChartDataset<'scatter', Array<{ x: number; y: number }>>> = d.points.map((p) => ({
      label: p.name,
      data: [{ x: p.x, y: p.y }],
      backgroundColor: runColour(p.colour),
      borderColor: runColour(p.colour),
      pointStyle: runPointStyle(p.colour),
      pointRadius: 6,
      pointHoverRadius: 8,
      clip: 8,
    }));
    const axis = (a: Axis, column: ColumnDef | undefined): object => ({
      type: 'linear',
      min: a.min,
      max: a.max,
      afterBuildTicks: (scale: { ticks: Array<{ value: number }> }) => {
        scale.ticks = a.ticks.map((value) => ({ value }));
      },
      title: { display: true, text: axisTitle(column), color: fg, font },
      ticks: { color: fg, font },
      grid: { color: grid },
    });
    this.chart = new Chart(this.canvas, {
      type: 'scatter',
      data: { datasets },
      options: {
        ...baseChartOptions(fg, font),
        plugins: {
          title: {
            display: true,
            text: d.x && d.y ? `${d.y.title} against ${d.x.title}` : 'Nothing to plot',
            color: fg,
            font: { ...font, size: 13, weight: 'bold' },
          },
          // One legend entry per run: readable up to a dozen runs; beyond, the tooltip names the run.
          legend: { display: d.points.length <= 12, labels: { color: fg, font, usePointStyle: true, boxWidth: 8, boxHeight: 8 } },
          tooltip: {
            callbacks: { label: (item) => `${item.dataset.label ?? ''}: ${d.x?.title} ${item.parsed.x}, ${d.y?.title} ${item.parsed.y}` },
          },
        },
        scales: { x: axis(d.xAxis, d.x), y: axis(d.yAxis, d.y) },
      },
    });
  }

  /** Redraws with the theme's colours. */
  retheme(): void {
    if (this.drawn) this.draw(this.drawn);
  }

  private baseName(): string {
    return this.drawn?.x && this.drawn.y ? `${this.drawn.y.title} against ${this.drawn.x.title}` : 'plot';
  }

  private exportPng(): void {
    // The canvas is transparent: paint the theme's background under it so the file reads anywhere.
    const out = document.createElement('canvas');
    out.width = this.canvas.width;
    out.height = this.canvas.height;
    const ctx = out.getContext('2d');
    if (!ctx) return;
    ctx.fillStyle = this.colours().bg;
    ctx.fillRect(0, 0, out.width, out.height);
    ctx.drawImage(this.canvas, 0, 0);
    this.callbacks.exportFile('png', out.toDataURL('image/png').replace(/^data:image\/png;base64,/, ''), true);
  }

  private exportSvg(): void {
    const d = this.drawn;
    if (!d) return;
    const { fg, grid, bg, font } = this.colours();
    const svg = scatterSvg({
      title: this.baseName(),
      xLabel: axisTitle(d.x),
      yLabel: axisTitle(d.y),
      x: d.xAxis,
      y: d.yAxis,
      points: d.points.map((p) => ({ x: p.x, y: p.y, colour: runColour(p.colour), label: p.name })),
      foreground: fg,
      grid,
      background: bg,
      font,
    });
    this.callbacks.exportFile('svg', svg, false);
  }

  private exportData(format: 'csv' | 'json'): void {
    const d = this.drawn;
    if (!d?.x || !d.y) return;
    if (format === 'json') {
      const x = { id: d.x.id, title: d.x.title };
      const y = { id: d.y.id, title: d.y.title };
      this.callbacks.exportFile(
        'json',
        JSON.stringify({ x, y, points: d.points.map(({ id, name, x, y }) => ({ id, name, x, y })) }, null, 2) + '\n',
        false,
      );
      return;
    }
    this.callbacks.exportFile('csv', csvText([['id', 'name', d.x.id, d.y.id], ...d.points.map((p) => [p.id, p.name, p.x, p.y])]), false);
  }
}

function fillSelect(select: HTMLSelectElement, columns: readonly ColumnDef[], value: string | undefined): void {
  const key = columns.map((c) => c.id).join('\n');
  if (select.dataset.options !== key) {
    select.dataset.options = key;
    const groups = (['params', 'metrics'] as const).map((g) => {
      const items = columns.filter((c) => c.group === g);
      return items.length
        ? h('optgroup', { label: g === 'params' ? 'Parameters' : 'Metrics' }, ...items.map((c) => h('option', { value: c.id }, c.title)))
        : undefined;
    });
    select.replaceChildren(...groups.filter((g): g is HTMLOptGroupElement => g !== undefined));
  }
  if (value !== undefined) select.value = value;
}
