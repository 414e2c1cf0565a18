// Colour legends of the attention maps: a colour bar with its minimum, middle and maximum values, shared
// above the panels or one per panel when each model has its own range.
import { h } from '../common/vscode-api';
import { drawColourBar, formatValue, type Rgb } from './render';

export function legendFor(range: { min: number; max: number }, colour: (t: number) => Rgb): HTMLElement {
  const el = h('div', { class: 'legend small', role: 'img' });
  renderLegend(el, range, colour);
  return el;
}

export function renderLegend(el: HTMLElement, range: { min: number; max: number } | undefined, colour: (t: number) => Rgb): void {
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
