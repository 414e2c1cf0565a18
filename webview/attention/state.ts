// The attention page's state, shared by its parts: the channel to the extension, the loaded file, the
// view chosen on the page (saved with the webview, so it survives a reload) and the map cursor, and the
// elements that renders fill in. Module variables cannot be assigned from other modules, hence one object.
import type { AttentionMapsData, AttentionSource, AttentionViewMessage, AttentionViewState } from '../../src/shared/attention-protocol';
import { connect } from '../common/vscode-api';

export const channel = connect<AttentionViewMessage, AttentionViewState>();
export const root = document.getElementById('root') as HTMLElement;

const DEFAULT_VIEW: AttentionViewState = {
  image: 0,
  group: 0,
  input: 'triggered',
  hidden: [],
  scale: 'viridis',
  opacity: 0.6,
  sharedRange: true,
};

export interface Loaded {
  readonly source: AttentionSource;
  readonly maps: AttentionMapsData;
  readonly pixels: { readonly clean: Uint8Array[]; readonly triggered: Uint8Array[] };
}

interface PageState {
  loaded: Loaded | undefined;
  view: AttentionViewState;
  /** Cell under the pointer or keyboard cursor, in the current group's map coordinates. */
  cursor: { x: number; y: number } | undefined;
  panelsEl: HTMLElement | undefined;
  legendEl: HTMLElement | undefined;
  readoutEl: HTMLElement | undefined;
}

export const state: PageState = {
  loaded: undefined,
  view: { ...DEFAULT_VIEW, ...channel.state() },
  cursor: undefined,
  panelsEl: undefined,
  legendEl: undefined,
  readoutEl: undefined,
};

/** Keep the view valid for the file (a reloaded file may have fewer images, groups or models). */
export function clampView(v: AttentionViewState, maps: AttentionMapsData): AttentionViewState {
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

export function visibleSnapshots(maps: AttentionMapsData): number[] {
  return maps.snapshots.map((_, i) => i).filter((i) => !state.view.hidden.includes(i));
}
