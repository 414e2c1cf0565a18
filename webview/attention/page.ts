// The attention page for a loaded file: header, the toolbars whose controls change the view, legend,
// panels, readout and note; or the problem shown instead when the file cannot be read. Controls are
// built once per file, and setView applies a change from a control or a key to state and panels.
import type { AttentionMapsData, AttentionSource, AttentionViewState, ColourScale } from '../../src/shared/attention-protocol';
import { h } from '../common/vscode-api';
import { checkbox, radioGroup, select } from './controls';
import { epochBar, epochNote, syncEpochBar } from './epochs';
import { snapshotTitle } from './display-names';
import { renderPanels } from './panels';
import { channel, clampView, root, state, type Loaded } from './state';

export function setView(patch: Partial<AttentionViewState>): void {
  if (!state.loaded) return;
  state.view = clampView({ ...state.view, ...patch }, state.loaded.maps, state.loaded.epochs);
  channel.save(state.view);
  syncControls(state.loaded.maps);
  renderPanels();
}

/** Controls are built once per file (so the focus stays put); a change only updates what they show. */
function syncControls(maps: AttentionMapsData): void {
  const count = maps.labels.length;
  const set = (id: string, on: boolean): void => {
    document.getElementById(id)?.toggleAttribute('disabled', on);
  };
  set('prev-image', state.view.image === 0);
  set('next-image', state.view.image >= count - 1);
  const counter = document.getElementById('image-count');
  if (counter) counter.textContent = `Image ${state.view.image + 1} of ${count}`;
  for (const r of Array.from(document.querySelectorAll<HTMLElement & { checked: boolean }>('vscode-radio[name="input"]')))
    r.checked = r.getAttribute('value') === state.view.input;
  syncEpochBar();
}

/** Controls, legend and panels for a freshly loaded (or reloaded) file. */
export function build(data: Loaded): void {
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
  prev.addEventListener('click', () => setView({ image: state.view.image - 1 }));
  next.addEventListener('click', () => setView({ image: state.view.image + 1 }));
  const models = maps.snapshots.map((_, i) =>
    checkbox(
      snapshotTitle(maps, i),
      !state.view.hidden.includes(i),
      (on) => setView({ hidden: on ? state.view.hidden.filter((k) => k !== i) : [...state.view.hidden, i] }),
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
      h('span', { class: 'image-count', id: 'image-count', 'aria-live': 'polite' }, `Image ${state.view.image + 1} of ${count}`),
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
        () => state.view.input,
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
        () => String(state.view.group),
        (v) => {
          state.cursor = undefined;
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
        state.view.scale,
        (v) => setView({ scale: v as ColourScale }),
      ),
    ),
    h('div', { class: 'field' }, h('label', { class: 'field-label', for: 'opacity' }, 'Opacity'), opacitySlider()),
    h(
      'div',
      { class: 'field' },
      checkbox('Same colour range for all models', state.view.sharedRange, (on) => setView({ sharedRange: on }), 'shared-range'),
    ),
  );
  state.legendEl = h('div', { class: 'legend', role: 'img', id: 'legend' });
  state.panelsEl = h('div', { class: 'panels', id: 'panels' });
  state.readoutEl = h(
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
  const epochs = data.epochs ? epochBar(data.epochs, setView) : undefined;
  const epochsProblem = epochNote(data);
  root.replaceChildren(
    ...[header, toolbar, display, epochs, epochsProblem, state.legendEl, state.panelsEl, state.readoutEl, note].filter(
      (e): e is HTMLElement => e !== undefined,
    ),
  );
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
    value: String(state.view.opacity),
    'aria-valuetext': `${Math.round(state.view.opacity * 100)}%`,
  });
  input.addEventListener('input', () => {
    input.setAttribute('aria-valuetext', `${Math.round(Number(input.value) * 100)}%`);
    setView({ opacity: Number(input.value) });
  });
  return input;
}

export function showProblem(source: AttentionSource, problem: string): void {
  state.loaded = undefined;
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
