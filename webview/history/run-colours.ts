// One colour and point shape per run, by its colour slot (the host numbers the workspace's runs in the
// order they were made): a run looks the same on the history plot and on Compare Runs. Colours come
// from the theme's chart palette, so they read in light, dark and high-contrast themes.
import { themeColour } from '../common/vscode-api';

const PALETTE: ReadonlyArray<readonly [string, string]> = [
  ['--vscode-charts-blue', '#3794ff'],
  ['--vscode-charts-red', '#f14c4c'],
  ['--vscode-charts-green', '#89d185'],
  ['--vscode-charts-yellow', '#cca700'],
  ['--vscode-charts-purple', '#b180d7'],
  ['--vscode-charts-orange', '#d18616'],
];

export const POINT_STYLES = ['circle', 'rect', 'triangle', 'rectRot', 'star', 'crossRot'] as const;
export type RunPointStyle = (typeof POINT_STYLES)[number];

export function runColour(slot: number): string {
  const [name, fallback] = PALETTE[((slot % PALETTE.length) + PALETTE.length) % PALETTE.length];
  return themeColour(name, fallback);
}

/** Shapes cycle more slowly than colours, so runs six slots apart still differ. */
export function runPointStyle(slot: number): RunPointStyle {
  return POINT_STYLES[Math.floor(Math.abs(slot) / PALETTE.length) % POINT_STYLES.length];
}
