// The history table's column chooser: every column the runs offer, grouped (run, parameters, metrics, provenance),
// each with a checkbox to show or hide it and buttons to move a shown column left or right.
import type { ColumnDef, ColumnGroup } from '../../src/shared/history-columns';
import { h } from '../common/vscode-api';

const GROUP_TITLES: Readonly<Record<ColumnGroup, string>> = {
  run: 'Run',
  params: 'Parameters',
  metrics: 'Metrics',
  provenance: 'Provenance (what made the run)',
};

export interface PickerModel {
  readonly all: readonly ColumnDef[];
  readonly isVisible: (c: ColumnDef) => boolean;
  /** Columns currently drawn (a shown column may be left out by "only what differs"). */
  readonly drawn: ReadonlySet<string>;
  readonly differing: ReadonlySet<string>;
}

export interface PickerActions {
  readonly setVisible: (id: string, visible: boolean) => void;
  readonly move: (id: string, step: -1 | 1) => void;
  readonly reset: () => void;
}

export function columnPicker(model: PickerModel, actions: PickerActions): HTMLElement {
  const groups = (['run', 'params', 'metrics', 'provenance'] as const).map((g) => {
    const cols = model.all.filter((c) => c.group === g);
    if (cols.length === 0) return '';
    const items = cols.map((c) => {
      const visible = model.isVisible(c);
      const box = h('input', { type: 'checkbox', id: `pick-${c.id}`, checked: visible, disabled: c.id === 'name' }) as HTMLInputElement;
      box.addEventListener('change', () => actions.setVisible(c.id, box.checked));
      const move = (step: -1 | 1, glyph: string, where: string): HTMLElement => {
        const b = h(
          'button',
          { type: 'button', class: 'move', 'aria-label': `Move ${c.title} ${where}`, title: `Move ${where}`, disabled: !visible },
          glyph,
        );
        b.addEventListener('click', () => actions.move(c.id, step));
        return b;
      };
      const note = visible && !model.drawn.has(c.id) ? h('span', { class: 'hint' }, ' (same in every shown run)') : '';
      return h(
        'li',
        { 'data-column': c.id, class: model.differing.has(c.id) && c.group !== 'run' ? 'differs' : '' },
        box,
        h('label', { for: `pick-${c.id}`, title: c.id }, c.title),
        note,
        move(-1, '◀', 'left'),
        move(1, '▶', 'right'),
      );
    });
    return h('fieldset', { 'data-group': g }, h('legend', {}, `${GROUP_TITLES[g]} (${cols.length})`), h('ul', {}, ...items));
  });
  const reset = h('vscode-button', { secondary: true, id: 'columns-reset' }, 'Default columns');
  reset.addEventListener('click', () => actions.reset());
  return h(
    'div',
    { class: 'column-picker', id: 'column-picker', role: 'group', 'aria-label': 'Columns' },
    h(
      'p',
      { class: 'source' },
      'Choose the columns to show; ◀ ▶ move a shown column. Parameters that differ between runs are shown by default and marked ≠.',
    ),
    ...groups,
    reset,
  );
}
