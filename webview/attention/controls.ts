// Small wrappers over @vscode-elements controls that report the chosen value however it was chosen.
import { h } from '../common/vscode-api';

type Checkable = HTMLElement & { checked: boolean };

/** A labelled checkbox; `onChange` gets the new state. */
export function checkbox(label: string, checked: boolean, onChange: (checked: boolean) => void, id?: string): HTMLElement {
  const el = h('vscode-checkbox', { id, checked }, label) as Checkable;
  el.addEventListener('change', () => onChange(el.checked));
  return el;
}

/**
 * A radio group. The group moves the check with the arrow keys without firing `change`, so the checked
 * radio is read after clicks and key presses too; `onSelect` runs when it differs from `current()`.
 */
export function radioGroup(
  name: string,
  labelledBy: string,
  options: ReadonlyArray<readonly [string, string]>,
  current: () => string,
  onSelect: (value: string) => void,
): HTMLElement {
  const radios = options.map(([value, label]) => h('vscode-radio', { name, value, checked: value === current() }, label) as Checkable);
  const group = h('vscode-radio-group', { 'aria-labelledby': labelledBy, 'data-name': name }, ...radios);
  const read = (): void => {
    const value = radios.find((r) => r.checked)?.getAttribute('value');
    if (value !== null && value !== undefined && value !== current()) onSelect(value);
  };
  group.addEventListener('change', read);
  group.addEventListener('keyup', read);
  group.addEventListener('click', read);
  return group;
}

/** A single select; `onSelect` gets the chosen value. */
export function select(
  id: string,
  labelledBy: string,
  options: ReadonlyArray<readonly [string, string]>,
  selected: string,
  onSelect: (value: string) => void,
): HTMLElement {
  const opts = options.map(([value, label]) => h('vscode-option', { value, selected: value === selected }, label));
  const el = h('vscode-single-select', { id, 'aria-labelledby': labelledBy }, ...opts) as HTMLElement & { value: string };
  el.addEventListener('change', () => onSelect(el.value));
  return el;
}
