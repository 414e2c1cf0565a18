// The "attention by epoch" bar: a slider over the epochs whose maps the run stored (attention/epochs.jsonl)
// and Play/Pause, which redraw the trained model's maps as they were after that epoch. The editor opens on
// the final maps (the slider at its right end); the chosen epoch is part of the saved view state.
import type { AttentionViewState } from '../../src/shared/attention-protocol';
import { h } from '../common/vscode-api';
import { state, type EpochTimeline, type Loaded } from './state';

/** Milliseconds per epoch while playing. */
const PLAY_STEP_MS = 700;

let timer: ReturnType<typeof setInterval> | undefined;

/** Position (1..N) of the epoch shown; the final maps are the last position. */
function position(t: EpochTimeline): number {
  const i = t.snapshots.findIndex((s) => s.epoch === state.view.epoch);
  return i < 0 ? t.snapshots.length : i + 1;
}

function label(t: EpochTimeline): string {
  if (state.view.epoch === undefined) return 'Final maps';
  return `Epoch ${state.view.epoch} of ${t.snapshots[t.snapshots.length - 1].epoch}`;
}

function stop(): void {
  if (timer !== undefined) clearInterval(timer);
  timer = undefined;
  syncEpochBar();
}

/** The bar for a loaded file with a timeline; `setView` applies the chosen epoch. */
export function epochBar(t: EpochTimeline, setView: (patch: Partial<AttentionViewState>) => void): HTMLElement {
  if (timer !== undefined) clearInterval(timer);
  timer = undefined;
  const show = (pos: number): void => setView({ epoch: t.snapshots[pos - 1].epoch });
  const slider = h('input', {
    type: 'range',
    id: 'epoch',
    class: 'epoch-slider',
    min: '1',
    max: String(t.snapshots.length),
    step: '1',
    value: String(position(t)),
    'aria-valuetext': label(t),
  });
  slider.addEventListener('input', () => show(Number(slider.value)));
  const play = h(
    'vscode-button',
    { id: 'epoch-play', secondary: true, title: 'Step through the epochs', 'aria-pressed': 'false' },
    '▶ Play',
  );
  play.addEventListener('click', () => {
    if (timer !== undefined) {
      stop();
      return;
    }
    // From the start when at the end, else from where the slider is.
    if (position(t) >= t.snapshots.length) show(1);
    timer = setInterval(() => {
      const next = position(t) + 1;
      if (next > t.snapshots.length) stop();
      else {
        show(next);
        if (next === t.snapshots.length) stop();
      }
    }, PLAY_STEP_MS);
    syncEpochBar();
  });
  return h(
    'section',
    { class: 'toolbar epochs', 'aria-label': 'Attention by epoch' },
    h(
      'div',
      { class: 'field' },
      h('label', { class: 'field-label', for: 'epoch' }, 'Attention by epoch'),
      slider,
      h('span', { class: 'epoch-count', id: 'epoch-count', 'aria-live': 'polite' }, label(t)),
      play,
    ),
    h(
      'p',
      { class: 'epoch-help' },
      `The ${t.model} model’s maps after each epoch of its training; the other models keep their final maps.`,
    ),
    t.problem ? h('p', { class: 'epoch-problem', role: 'status' }, `${t.problem}. The slider shows the epochs that could be read.`) : '',
  );
}

/** The note shown instead of a bar when the epochs file exists but gave nothing to show. */
export function epochNote(data: Loaded): HTMLElement | undefined {
  if (data.epochs || !data.epochsProblem) return undefined;
  return h('p', { class: 'epoch-problem', role: 'status' }, `${data.epochsProblem}. Only the final maps are shown.`);
}

/** Bring the bar in line with the view (after a slider move, a key, a play step or a reload). */
export function syncEpochBar(): void {
  const t = state.loaded?.epochs;
  if (!t) return;
  const slider = document.getElementById('epoch') as HTMLInputElement | null;
  const text = label(t);
  if (slider) {
    slider.value = String(position(t));
    slider.setAttribute('aria-valuetext', text);
  }
  const count = document.getElementById('epoch-count');
  if (count) count.textContent = text;
  const play = document.getElementById('epoch-play');
  if (play) {
    play.textContent = timer !== undefined ? '⏸ Pause' : '▶ Play';
    play.setAttribute('aria-pressed', String(timer !== undefined));
  }
}
