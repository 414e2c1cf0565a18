// The attention-maps editor: each model's map of the chosen residual group over the chosen image, side by
// side, with clean/triggered, image navigation, a colour legend and the value under the pointer or cursor.
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-checkbox/index.js';
import '@vscode-elements/elements/dist/vscode-radio/index.js';
import '@vscode-elements/elements/dist/vscode-radio-group/index.js';
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
import '@vscode-elements/elements/dist/vscode-option/index.js';
import type {
  AttentionHostMessage,
  AttentionMapsData,
  AttentionSource,
  AttentionViewMessage,
  AttentionViewState,
  ColourScale,
} from '../../src/shared/attention-protocol';
import { connect, h, onThemeChange, themeColour } from '../common/vscode-api';
import { checkbox, radioGroup, select } from './controls';
import { decodePixels, drawColourBar, drawOverlay, formatValue, mapRange, parseColour, scaleFunction, type Rgb } from './render';

const channel = connect<AttentionViewMessage, AttentionViewState>();
const root = document.getElementById('root') as HTMLElement;

const DEFAULT_VIEW: AttentionViewState = {
  image: 0,
  group: 0,
  input: 'triggered',
  hidden: [],
  scale: 'viridis',
  opacity: 0.6,
  sharedRange: true,
};

interface Loaded {
  readonly source: AttentionSource;
  readonly maps: AttentionMapsData;
  readonly pixels: { readonly clean: Uint8Array[]; readonly triggered: Uint8Array[] };
}

let loaded: Loaded | undefined;
let view: AttentionViewState = { ...DEFAULT_VIEW, ...channel.state() };
/** Cell under the pointer or keyboard cursor, in the current group's map coordinates. */
let cursor: { x: number; y: number } | undefined;
let panelsEl: HTMLElement | undefined;
let legendEl: HTMLElement | undefined;
let readoutEl: HTMLElement | undefined;

/** Keep the view valid for the file (a reloaded file may have fewer images, groups or models). */
function clampView(v: AttentionViewState, maps: AttentionMapsData): AttentionViewState {
  const count = maps.labels.length;
  const groups = Math.min(...maps.snapshots.map((s) => s.groups.length));
  const hidden = v.hidden.filter((i) => i >= 0 && i < maps.snapshots.length);
  return {
    ...v,
    image: Math.min(Math.max(0, v.image), count - 1),
    group: Math.min(Math.max(0, v.group), groups - 1),
    hidden: hidden.length >= maps.snapshots.length ? [] : hidden,
    opacity: Math.min(1, Math.max(0, v.opacity)),
  };
}

function setView(patch: Partial<AttentionViewState>): void {
  if (!loaded) return;
  view = clampView({ ...view, ...patch }, loaded.maps);
  channel.save(view);
  syncControls(loaded.maps);
  renderPanels();
}

/** Controls are built once per file (so the focus stays put); a change only updates what they show. */
function syncControls(maps: AttentionMapsData): void {
  const count = maps.labels.length;
  const set = (id: string, on: boolean): void => {
    document.getElementById(id)?.toggleAttribute('disabled', on);
  };
  set('prev-image', view.image === 0);
  set('next-image', view.image >= count - 1);
  const counter = document.getElementById('image-count');
  if (counter) counter.textContent = `Image ${view.image + 1} of ${count}`;
  for (const r of Array.from(document.querySelectorAll<HTMLElement & { checked: boolean }>('vscode-radio[name="input"]')))
    r.checked = r.getAttribute('value') === view.input;
}

function className(maps: AttentionMapsData, label: number): string {
  if (label < 0) return 'unknown';
  const name = maps.classNames?.[label];
  return name && name !== String(label) ? `${label} (${name})` : String(label);
}

function snapshotTitle(maps: AttentionMapsData, i: number): string {
  const s = maps.snapshots[i];
  const same = maps.snapshots.filter((t) => t.model === s.model).length > 1;
  return same ? `${s.model} (${s.epoch < 0 ? 'final' : `epoch ${s.epoch}`})` : s.model;
}

function themeStops(): Rgb[] {
  const get = (name: string, fallback: Rgb): Rgb => parseColour(themeColour(name, '')) ?? fallback;
  return [
    get('--vscode-charts-blue', [55, 148, 255]),
    get('--vscode-charts-yellow', [204, 167, 0]),
    get('--vscode-charts-red', [241, 76, 76]),
  ];
}

function visibleSnapshots(maps: AttentionMapsData): number[] {
  return maps.snapshots.map((_, i) => i).filter((i) => !view.hidden.includes(i));
}

/** Controls, legend and panels for a freshly loaded (or reloaded) file. */
function build(data: Loaded): void {
  const { maps, source } = data;
  const count = maps.labels.length;
  const groups = maps.snapshots[0].groups;
  const prev = h(
    'vscode-button',
    { id: 'prev-image', secondary: true, 'aria-label': 'Previous image', title: 'Previous image (PageUp)' },
    '◀ Previous',
  );
  const next = h(
    'vscode-button',
    { id: 'next-image', secondary: true, 'aria-label': 'Next image', title: 'Next image (PageDown)' },
    'Next ▶',
  );
  prev.addEventListener('click', () => setView({ image: view.image - 1 }));
  next.addEventListener('click', () => setView({ image: view.image + 1 }));
  const models = maps.snapshots.map((_, i) =>
    checkbox(
      snapshotTitle(maps, i),
      !view.hidden.includes(i),
      (on) => setView({ hidden: on ? view.hidden.filter((k) => k !== i) : [...view.hidden, i] }),
      `model-${i}`,
    ),
  );
  const header = h(
    'header',
    { class: 'header' },
    h('h1', {}, 'Attention maps'),
    h('p', { class: 'source' }, source.run ? `Run ${source.run} · ` : '', h('code', {}, source.file)),
  );
  const toolbar = h(
    'section',
    { class: 'toolbar', 'aria-label': 'What to show' },
    h(
      'div',
      { class: 'field nav' },
      prev,
      h('span', { class: 'image-count', id: 'image-count', 'aria-live': 'polite' }, `Image ${view.image + 1} of ${count}`),
      next,
    ),
    h(
      'div',
      { class: 'field' },
      h('span', { class: 'field-label', id: 'input-label' }, 'Input'),
      radioGroup(
        'input',
        'input-label',
        [
          ['clean', 'Clean'],
          ['triggered', 'Triggered'],
        ],
        () => view.input,
        (v) => setView({ input: v === 'clean' ? 'clean' : 'triggered' }),
      ),
    ),
    h(
      'div',
      { class: 'field' },
      h('span', { class: 'field-label', id: 'group-label' }, 'Layer'),
      radioGroup(
        'group',
        'group-label',
        groups.map((g, k) => [String(k), `Group ${k + 1} (${g.height}×${g.width})`]),
        () => String(view.group),
        (v) => {
          cursor = undefined;
          setView({ group: Number(v) });
        },
      ),
    ),
  );
  const display = h(
    'section',
    { class: 'toolbar', 'aria-label': 'Models and colours' },
    h(
      'div',
      { class: 'field models', role: 'group', 'aria-labelledby': 'models-label' },
      h('span', { class: 'field-label', id: 'models-label' }, 'Models'),
      ...models,
    ),
    h(
      'div',
      { class: 'field' },
      h('span', { class: 'field-label', id: 'scale-label' }, 'Colours'),
      select(
        'scale',
        'scale-label',
        [
          ['viridis', 'Viridis'],
          ['theme', 'Theme colours'],
        ],
        view.scale,
        (v) => setView({ scale: v as ColourScale }),
      ),
    ),
    h('div', { class: 'field' }, h('label', { class: 'field-label', for: 'opacity' }, 'Opacity'), opacitySlider()),
    h(
      'div',
      { class: 'field' },
      checkbox('Same colour range for all models', view.sharedRange, (on) => setView({ sharedRange: on }), 'shared-range'),
    ),
  );
  legendEl = h('div', { class: 'legend', role: 'img', id: 'legend' });
  panelsEl = h('div', { class: 'panels', id: 'panels' });
  readoutEl = h(
    'p',
    { class: 'readout', id: 'readout', 'aria-live': 'polite' },
    'Point at a map, or focus it and use the arrow keys, to read its values.',
  );
  const note = h(
    'p',
    { class: 'note' },
    'Attention of a residual group: its activations squared, summed over channels and L2-normalised over space (the paper’s AT). ',
    'Brighter = where the group responds most. A backdoored model’s attention on a triggered image collapses onto the trigger; NAD’s erased model should look like the teacher’s.',
  );
  root.replaceChildren(header, toolbar, display, legendEl, panelsEl, readoutEl, note);
  root.setAttribute('aria-busy', 'false');
  syncControls(maps);
  renderPanels();
}

function opacitySlider(): HTMLInputElement {
  const input = h('input', {
    type: 'range',
    id: 'opacity',
    min: '0',
    max: '1',
    step: '0.05',
    value: String(view.opacity),
    'aria-valuetext': `${Math.round(view.opacity * 100)}%`,
  });
  input.addEventListener('input', () => {
    input.setAttribute('aria-valuetext', `${Math.round(Number(input.value) * 100)}%`);
    setView({ opacity: Number(input.value) });
  });
  return input;
}

/** Scale (canvas pixels per image pixel) so that a panel is about 256 px wide. */
function pixelScale(maps: AttentionMapsData): number {
  return Math.max(2, Math.floor(256 / Math.max(maps.image.height, maps.image.width)));
}

function renderPanels(): void {
  if (!loaded || !panelsEl || !legendEl) return;
  const { maps, pixels } = loaded;
  const { image: k, group: g, input } = view;
  const colour = scaleFunction(view.scale, themeStops());
  const visible = visibleSnapshots(maps);
  const ranges = visible.map((i) => {
    const s = maps.snapshots[i];
    const size = s.groups[g].height * s.groups[g].width;
    return mapRange(s[input][g], k * size, size);
  });
  const shared = { min: Math.min(...ranges.map((r) => r.min)), max: Math.max(...ranges.map((r) => r.max)) };
  renderLegend(legendEl, view.sharedRange ? shared : undefined, colour);
  const scale = pixelScale(maps);
  const label = maps.labels[k];
  const attack = maps.attackLabels[k];
  const panels = visible.map((i, n) => {
    const s = maps.snapshots[i];
    const gd = s.groups[g];
    const size = gd.height * gd.width;
    const range = view.sharedRange ? shared : ranges[n];
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
        opacity: view.opacity,
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
      { class: 'panel', 'data-model': s.model },
      h(
        'figcaption',
        {},
        h('h2', {}, snapshotTitle(maps, i)),
        h('p', { class: `prediction ${predictionClass}` }, `Predicts ${className(maps, pred)}${verdict}`),
        h(
          'p',
          { class: 'label' },
          `Label ${className(maps, label)}${input === 'triggered' && attack >= 0 && attack !== label ? ` · attack target ${className(maps, attack)}` : ''}`,
        ),
      ),
      stack,
      view.sharedRange ? '' : legendFor(range, colour),
      h('p', { class: 'value', 'data-model': s.model }, ' '),
    );
  });
  panelsEl.replaceChildren(...panels);
  updateReadout();
  channel.post({
    type: 'rendered',
    rendered: {
      state: view,
      panels: visible.map((i, n) => ({
        model: maps.snapshots[i].model,
        min: (view.sharedRange ? shared : ranges[n]).min,
        max: (view.sharedRange ? shared : ranges[n]).max,
        prediction: maps.snapshots[i].predictions[input][k],
      })),
    },
  });
}

function legendFor(range: { min: number; max: number }, colour: (t: number) => Rgb): HTMLElement {
  const el = h('div', { class: 'legend small', role: 'img' });
  renderLegend(el, range, colour);
  return el;
}

function renderLegend(el: HTMLElement, range: { min: number; max: number } | undefined, colour: (t: number) => Rgb): void {
  if (!range) {
    el.replaceChildren();
    el.hidden = true;
    return;
  }
  el.hidden = false;
  const bar = h('canvas', { class: 'bar', width: '256', height: '12', 'aria-hidden': 'true' });
  const ctx = bar.getContext('2d');
  if (ctx) drawColourBar(ctx, 256, 12, colour);
  const mid = (range.min + range.max) / 2;
  el.setAttribute('aria-label', `Colour scale from ${formatValue(range.min)} to ${formatValue(range.max)}`);
  el.replaceChildren(
    bar,
    h(
      'div',
      { class: 'ticks' },
      h('span', {}, formatValue(range.min)),
      h('span', {}, formatValue(mid)),
      h('span', {}, formatValue(range.max)),
    ),
  );
}

/** Pointer and arrow keys move one shared cursor over the map cells; every panel reads its value there. */
function attachPointer(canvas: HTMLCanvasElement, mh: number, mw: number): void {
  canvas.addEventListener('mousemove', (e) => {
    const r = canvas.getBoundingClientRect();
    const x = Math.min(mw - 1, Math.max(0, Math.floor(((e.clientX - r.left) / r.width) * mw)));
    const y = Math.min(mh - 1, Math.max(0, Math.floor(((e.clientY - r.top) / r.height) * mh)));
    if (cursor?.x !== x || cursor?.y !== y) {
      cursor = { x, y };
      updateReadout();
    }
  });
  canvas.addEventListener('keydown', (e) => {
    const moves: Record<string, [number, number]> = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
    const m = moves[e.key];
    if (!m) return;
    e.preventDefault();
    const c = cursor ?? { x: Math.floor(mw / 2), y: Math.floor(mh / 2) };
    cursor = { x: Math.min(mw - 1, Math.max(0, c.x + m[0])), y: Math.min(mh - 1, Math.max(0, c.y + m[1])) };
    updateReadout();
  });
  canvas.addEventListener('focus', () => {
    cursor ??= { x: Math.floor(mw / 2), y: Math.floor(mh / 2) };
    updateReadout();
  });
}

function updateReadout(): void {
  if (!loaded || !panelsEl || !readoutEl) return;
  const { maps } = loaded;
  const { image: k, group: g, input } = view;
  const visible = visibleSnapshots(maps);
  const figures = Array.from(panelsEl.querySelectorAll<HTMLElement>('figure.panel'));
  if (!cursor) {
    figures.forEach((f) => ((f.querySelector('.cursor') as HTMLElement).hidden = true));
    return;
  }
  const c = cursor;
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
  readoutEl.textContent = `Group ${g + 1} (${gd.height}×${gd.width}), cell x ${c.x}, y ${c.y} (image pixel ${px}, ${py}), ${input} image ${k + 1}, label ${className(maps, maps.labels[k])}: ${parts.join('; ')}`;
}

function showProblem(source: AttentionSource, problem: string): void {
  loaded = undefined;
  root.replaceChildren(
    h('header', { class: 'header' }, h('h1', {}, 'Attention maps'), h('p', { class: 'source' }, h('code', {}, source.file))),
    h(
      'div',
      { class: 'problem', role: 'alert' },
      h('h2', {}, 'This file cannot be shown'),
      h('p', {}, h('code', {}, source.file), `: ${problem}`),
      h(
        'p',
        {},
        'Nothing was changed or deleted. Fix or regenerate the file (for example with “nad attention”) and this view reloads by itself.',
      ),
    ),
  );
  root.setAttribute('aria-busy', 'false');
  channel.post({ type: 'problemShown', problem });
}

window.addEventListener('message', (event: MessageEvent<AttentionHostMessage>) => {
  const msg = event.data;
  switch (msg.type) {
    case 'show': {
      const { maps } = msg;
      loaded = {
        source: msg.source,
        maps,
        pixels: { clean: maps.images.clean.map(decodePixels), triggered: maps.images.triggered.map(decodePixels) },
      };
      view = clampView(view, maps);
      channel.save(view);
      build(loaded);
      break;
    }
    case 'problem':
      showProblem(msg.source, msg.problem);
      break;
    default: {
      const _exhaustive: never = msg;
      void _exhaustive;
    }
  }
});

// Page keys: PageUp/PageDown change the image, T toggles clean/triggered (not while typing in a control).
window.addEventListener('keydown', (e) => {
  if (!loaded || e.altKey || e.ctrlKey || e.metaKey) return;
  const count = loaded.maps.labels.length;
  if (e.key === 'PageDown' && view.image < count - 1) setView({ image: view.image + 1 });
  else if (e.key === 'PageUp' && view.image > 0) setView({ image: view.image - 1 });
  else if ((e.key === 't' || e.key === 'T') && !(e.target instanceof HTMLInputElement))
    setView({ input: view.input === 'clean' ? 'triggered' : 'clean' });
});

onThemeChange(() => {
  if (view.scale === 'theme') renderPanels();
});

channel.post({ type: 'ready' });
