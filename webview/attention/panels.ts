// The attention page's panels: each visible model's map over the chosen image, with its prediction and
// legend, and the readout of the values under the one cursor that the pointer and the arrow keys move.
// Rendering also reports what is shown to the extension (its tests read it).
import type { AttentionMapsData } from '../../src/shared/attention-protocol';
import { h, themeColour } from '../common/vscode-api';
import { className, snapshotTitle } from './display-names';
import { legendFor, renderLegend } from './legend';
import { drawOverlay, formatValue, mapRange, parseColour, scaleFunction, type Rgb } from './render';
import { channel, state, viewedMaps, visibleSnapshots } from './state';

function themeStops(): Rgb[] {
  const get = (name: string, fallback: Rgb): Rgb => parseColour(themeColour(name, '')) ?? fallback;
  return [
    get('--vscode-charts-blue', [55, 148, 255]),
    get('--vscode-charts-yellow', [204, 167, 0]),
    get('--vscode-charts-red', [241, 76, 76]),
  ];
}

/** Scale (canvas pixels per image pixel) so that a panel is about 256 px wide. */
function pixelScale(maps: AttentionMapsData): number {
  return Math.max(2, Math.floor(256 / Math.max(maps.image.height, maps.image.width)));
}

export function renderPanels(): void {
  const maps = viewedMaps();
  if (!state.loaded || !maps || !state.panelsEl || !state.legendEl) return;
  const { pixels, epochs } = state.loaded;
  const { image: k, group: g, input } = state.view;
  const colour = scaleFunction(state.view.scale, themeStops());
  const visible = visibleSnapshots(maps);
  const ranges = visible.map((i) => {
    const s = maps.snapshots[i];
    const size = s.groups[g].height * s.groups[g].width;
    return mapRange(s[input][g], k * size, size);
  });
  const shared = { min: Math.min(...ranges.map((r) => r.min)), max: Math.max(...ranges.map((r) => r.max)) };
  renderLegend(state.legendEl, state.view.sharedRange ? shared : undefined, colour);
  const scale = pixelScale(maps);
  const label = maps.labels[k];
  const attack = maps.attackLabels[k];
  const panels = visible.map((i, n) => {
    const s = maps.snapshots[i];
    const gd = s.groups[g];
    const size = gd.height * gd.width;
    const range = state.view.sharedRange ? shared : ranges[n];
    const canvas = h('canvas', {
      class: 'map',
      tabindex: '0',
      width: String(maps.image.width * scale),
      height: String(maps.image.height * scale),
      'aria-label': `${snapshotTitle(maps, i)}: attention of group ${g + 1} on the ${input} image ${k + 1}. Arrow keys move the cursor.`,
      'data-model': s.model,
    });
    const ctx = canvas.getContext('2d');
    if (ctx)
      drawOverlay(ctx, scale, {
        pixels: pixels[input][k],
        height: maps.image.height,
        width: maps.image.width,
        channels: maps.image.channels,
        map: s[input][g],
        offset: k * size,
        mapHeight: gd.height,
        mapWidth: gd.width,
        min: range.min,
        max: range.max,
        opacity: state.view.opacity,
        colour,
      });
    const cursorEl = h('div', { class: 'cursor', hidden: true, 'aria-hidden': 'true' });
    const stack = h('div', { class: 'stack' }, canvas, cursorEl);
    attachPointer(canvas, gd.height, gd.width);
    const pred = s.predictions[input][k];
    const predictionClass =
      input === 'triggered' && attack >= 0 && pred === attack && attack !== label
        ? 'backdoor'
        : label >= 0 && pred === label
          ? 'correct'
          : label >= 0
            ? 'wrong'
            : '';
    const verdict =
      predictionClass === 'backdoor'
        ? ' — the backdoor’s target'
        : predictionClass === 'correct'
          ? ' ✓'
          : predictionClass === 'wrong'
            ? ' ✗'
            : '';
    return h(
      'figure',
      { class: 'panel', 'data-model': s.model, 'data-epoch': String(s.epoch) },
      h(
        'figcaption',
        {},
        h('h2', {}, snapshotTitle(maps, i), s.epoch > 0 && epochs?.final === i ? ` · epoch ${s.epoch}` : ''),
        h('p', { class: `prediction ${predictionClass}` }, `Predicts ${className(maps, pred)}${verdict}`),
        h(
          'p',
          { class: 'label' },
          `Label ${className(maps, label)}${input === 'triggered' && attack >= 0 && attack !== label ? ` · attack target ${className(maps, attack)}` : ''}`,
        ),
      ),
      stack,
      state.view.sharedRange ? '' : legendFor(range, colour),
      h('p', { class: 'value', 'data-model': s.model }, ' '),
    );
  });
  state.panelsEl.replaceChildren(...panels);
  updateReadout();
  channel.post({
    type: 'rendered',
    rendered: {
      state: state.view,
      panels: visible.map((i, n) => ({
        model: maps.snapshots[i].model,
        epoch: maps.snapshots[i].epoch,
        min: (state.view.sharedRange ? shared : ranges[n]).min,
        max: (state.view.sharedRange ? shared : ranges[n]).max,
        prediction: maps.snapshots[i].predictions[input][k],
      })),
    },
  });
}

/** Pointer and arrow keys move one shared cursor over the map cells; every panel reads its value there. */
function attachPointer(canvas: HTMLCanvasElement, mh: number, mw: number): void {
  canvas.addEventListener('mousemove', (e) => {
    const r = canvas.getBoundingClientRect();
    const x = Math.min(mw - 1, Math.max(0, Math.floor(((e.clientX - r.left) / r.width) * mw)));
    const y = Math.min(mh - 1, Math.max(0, Math.floor(((e.clientY - r.top) / r.height) * mh)));
    if (state.cursor?.x !== x || state.cursor?.y !== y) {
      state.cursor = { x, y };
      updateReadout();
    }
  });
  canvas.addEventListener('keydown', (e) => {
    const moves: Record<string, [number, number]> = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
    const m = moves[e.key];
    if (!m) return;
    e.preventDefault();
    const c = state.cursor ?? { x: Math.floor(mw / 2), y: Math.floor(mh / 2) };
    state.cursor = { x: Math.min(mw - 1, Math.max(0, c.x + m[0])), y: Math.min(mh - 1, Math.max(0, c.y + m[1])) };
    updateReadout();
  });
  canvas.addEventListener('focus', () => {
    state.cursor ??= { x: Math.floor(mw / 2), y: Math.floor(mh / 2) };
    updateReadout();
  });
}

function updateReadout(): void {
  const maps = viewedMaps();
  if (!maps || !state.panelsEl || !state.readoutEl) return;
  const { image: k, group: g, input } = state.view;
  const visible = visibleSnapshots(maps);
  const figures = Array.from(state.panelsEl.querySelectorAll<HTMLElement>('figure.panel'));
  if (!state.cursor) {
    figures.forEach((f) => ((f.querySelector('.cursor') as HTMLElement).hidden = true));
    return;
  }
  const c = state.cursor;
  const parts: string[] = [];
  visible.forEach((i, n) => {
    const s = maps.snapshots[i];
    const gd = s.groups[g];
    const value = s[input][g][k * gd.height * gd.width + c.y * gd.width + c.x];
    const fig = figures[n];
    if (!fig) return;
    const box = fig.querySelector('.cursor') as HTMLElement;
    box.hidden = false;
    // Percentages keep the box on its cell whatever size CSS gives the canvas.
    box.style.left = `${(c.x / gd.width) * 100}%`;
    box.style.top = `${(c.y / gd.height) * 100}%`;
    box.style.width = `${100 / gd.width}%`;
    box.style.height = `${100 / gd.height}%`;
    (fig.querySelector('.value') as HTMLElement).textContent = `${formatValue(value)} at x ${c.x}, y ${c.y}`;
    parts.push(`${snapshotTitle(maps, i)} ${formatValue(value)} (predicts ${className(maps, s.predictions[input][k])})`);
  });
  const gd = maps.snapshots[visible[0]].groups[g];
  const px = Math.floor(((c.x + 0.5) / gd.width) * maps.image.width);
  const py = Math.floor(((c.y + 0.5) / gd.height) * maps.image.height);
  state.readoutEl.textContent = `Group ${g + 1} (${gd.height}×${gd.width}), cell x ${c.x}, y ${c.y} (image pixel ${px}, ${py}), ${input} image ${k + 1}, label ${className(maps, maps.labels[k])}: ${parts.join('; ')}`;
}
