// Attention maps of the fixed sample images, clean and triggered, for each residual group: one row per
// model (after NAD, teacher, backdoored...), drawn on canvas in viridis over the image when the run
// folder has the images. Each map is scaled to its own range, as in the paper's figures.
import type { AttentionSnapshot, SampleImages } from '../../src/shared/run-events';
import { modelLabel } from '../../src/shared/panel-protocol';
import { viridis, viridisGradient } from '../../src/shared/colormap';
import { clear, h } from './dom';

const ORDER = ['erased', 'teacher', 'backdoored', 'trained', 'finetuned', 'evaluated'];
const CELL = 72;
const INPUTS = ['clean', 'triggered'] as const;

function epochLabel(epoch: number): string {
  return epoch < 0 ? 'final' : epoch === 0 ? 'before training' : `epoch ${epoch}`;
}

function decode(b64: string): Uint8Array {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function drawImage(ctx: CanvasRenderingContext2D, pixels: Uint8Array, s: SampleImages, size: number): void {
  const img = new ImageData(s.width, s.height);
  for (let i = 0; i < s.width * s.height; i++) {
    const c = s.channels;
    img.data[i * 4] = pixels[i * c];
    img.data[i * 4 + 1] = pixels[i * c + (c > 1 ? 1 : 0)];
    img.data[i * 4 + 2] = pixels[i * c + (c > 2 ? 2 : 0)];
    img.data[i * 4 + 3] = 255;
  }
  const tmp = new OffscreenCanvas(s.width, s.height);
  tmp.getContext('2d')?.putImageData(img, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(tmp, 0, 0, size, size);
}

function drawMap(
  canvas: HTMLCanvasElement,
  map: ArrayLike<number>,
  mh: number,
  mw: number,
  under?: { pixels: Uint8Array; samples: SampleImages },
): void {
  const dpr = window.devicePixelRatio || 1;
  const size = Math.round(CELL * dpr);
  canvas.width = size;
  canvas.height = size;
  const ctx = canvas.getContext('2d');
  if (!ctx) return;
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < mh * mw; i++) {
    lo = Math.min(lo, map[i]);
    hi = Math.max(hi, map[i]);
  }
  const img = new ImageData(mw, mh);
  for (let i = 0; i < mh * mw; i++) {
    const [r, g, b] = viridis(hi > lo ? (map[i] - lo) / (hi - lo) : 0);
    img.data.set([r, g, b, 255], i * 4);
  }
  const tmp = new OffscreenCanvas(mw, mh);
  tmp.getContext('2d')?.putImageData(img, 0, 0);
  if (under) drawImage(ctx, under.pixels, under.samples, size);
  ctx.globalAlpha = under ? 0.6 : 1;
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(tmp, 0, 0, size, size);
  ctx.globalAlpha = 1;
}

export class AttentionView {
  readonly element: HTMLElement;
  private readonly picker: HTMLElement;
  private readonly grid: HTMLElement;
  private legend: HTMLElement | undefined;
  private sample = 0;
  private drawn = 0;
  private last: { snaps: readonly AttentionSnapshot[]; samples?: SampleImages } = { snaps: [] };

  constructor(
    private readonly onSample: (index: number) => void,
    initialSample = 0,
  ) {
    this.sample = initialSample;
    this.picker = h('vscode-radio-group', { 'aria-label': 'Sample image' });
    this.picker.addEventListener('change', (e) => {
      const value = Number((e.target as HTMLElement & { value?: string }).value);
      if (Number.isInteger(value) && value !== this.sample) {
        this.sample = value;
        this.onSample(value);
        this.render();
      }
    });
    const legend = (this.legend = h(
      'div',
      { class: 'legend' },
      h('span', {}, 'low'),
      h('span', { class: 'scale', 'aria-hidden': 'true' }),
      h('span', {}, 'high attention (each map scaled to its own range)'),
    ));
    (legend.querySelector('.scale') as HTMLElement).style.background = viridisGradient();
    this.grid = h('div', { class: 'attention-grid' });
    this.element = h('div', {}, h('div', { class: 'attention-controls' }, this.picker, legend), this.grid);
  }

  update(snaps: readonly AttentionSnapshot[], samples?: SampleImages): void {
    this.last = { snaps, samples };
    this.render();
  }

  /** Maps drawn (for the host's probe). */
  count(): number {
    return this.drawn;
  }

  private render(): void {
    const { snaps, samples } = this.last;
    clear(this.grid);
    this.drawn = 0;
    if (this.legend) this.legend.hidden = snaps.length === 0;
    if (snaps.length === 0) {
      this.picker.hidden = true;
      this.grid.append(
        h(
          'p',
          { class: 'muted' },
          'Attention maps appear after the first epoch of finetuning or NAD, and for every model when the run ends.',
        ),
      );
      return;
    }
    const ordered = [...snaps].sort((a, b) => (ORDER.indexOf(a.model) + 1 || 99) - (ORDER.indexOf(b.model) + 1 || 99));
    const count = Math.max(...ordered.map((s) => s.count));
    this.sample = Math.min(this.sample, count - 1);
    this.renderPicker(count);
    const groups = ordered[0].groups.length;
    const table = h('table', { class: 'attention' });
    const head1 = h('tr', {}, h('th', { scope: 'col' }, 'Model'));
    const head2 = h('tr', {}, h('td'));
    for (let g = 0; g < groups; g++) {
      const shape = ordered[0].groups[g];
      head1.append(h('th', { scope: 'colgroup', colspan: 2 }, `Group ${g + 1} (${shape.height}×${shape.width})`));
      for (const input of INPUTS) head2.append(h('th', { scope: 'col', class: 'sub' }, input));
    }
    table.append(h('thead', {}, head1, head2));
    const body = h('tbody');
    if (samples && this.sample < samples.clean.length) {
      const row = h(
        'tr',
        {},
        h(
          'th',
          { scope: 'row' },
          'Input',
          h('div', { class: 'muted small' }, `label ${samples.labels[this.sample]}, target ${samples.attackLabels[this.sample]}`),
        ),
      );
      for (let g = 0; g < groups; g++) {
        for (const input of INPUTS) {
          const canvas = h('canvas', { role: 'img', 'aria-label': `${input} input image ${this.sample + 1}` });
          const dpr = window.devicePixelRatio || 1;
          canvas.width = canvas.height = Math.round(CELL * dpr);
          const ctx = canvas.getContext('2d');
          if (ctx) drawImage(ctx, decode(samples[input][this.sample]), samples, canvas.width);
          row.append(h('td', {}, canvas));
        }
      }
      body.append(row);
    }
    for (const s of ordered) {
      const row = h('tr', {}, h('th', { scope: 'row' }, modelLabel(s.model), h('div', { class: 'muted small' }, epochLabel(s.epoch))));
      for (let g = 0; g < groups; g++) {
        const shape = s.groups[g];
        for (const input of INPUTS) {
          const cell = h('td');
          const per = shape ? shape.height * shape.width : 0;
          if (shape && this.sample < s.count) {
            const pred = s.predictions[input][this.sample];
            const attacked = input === 'triggered' && samples !== undefined && pred === samples.attackLabels[this.sample];
            const canvas = h('canvas', {
              role: 'img',
              'aria-label': `${modelLabel(s.model)}, group ${g + 1}, ${input} image ${this.sample + 1}: predicted ${pred}`,
            });
            const pixels = samples ? decode(samples[input][this.sample]) : undefined;
            drawMap(
              canvas,
              s[input][g].slice(this.sample * per, (this.sample + 1) * per),
              shape.height,
              shape.width,
              pixels && samples ? { pixels, samples } : undefined,
            );
            cell.append(canvas, h('div', { class: `pred${attacked ? ' attacked' : ''}` }, `pred ${pred}${attacked ? ' (target)' : ''}`));
            this.drawn++;
          }
          row.append(cell);
        }
      }
      body.append(row);
    }
    table.append(body);
    this.grid.append(table);
  }

  private renderPicker(count: number): void {
    this.picker.hidden = count <= 1;
    if (this.picker.childElementCount === count) {
      this.picker
        .querySelectorAll('vscode-radio')
        .forEach((r, i) => ((r as HTMLElement & { checked: boolean }).checked = i === this.sample));
      return;
    }
    clear(this.picker);
    for (let i = 0; i < count; i++)
      this.picker.append(
        h('vscode-radio', { name: 'sample', value: String(i), label: `Image ${i + 1}`, checked: i === this.sample }, `Image ${i + 1}`),
      );
  }
}
