// The attention page's state, shared by its parts: the channel to the extension, the loaded file, the
// view chosen on the page (saved with the webview, so it survives a reload) and the map cursor, and the
// elements that renders fill in. Module variables cannot be assigned from other modules, hence one object.
import type {
  AttentionMapsData,
  AttentionSnapshotData,
  AttentionSource,
  AttentionViewMessage,
  AttentionViewState,
  EpochMapsData,
} from '../../src/shared/attention-protocol';
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

/** The maps of the run's trained model after each epoch, which the epoch slider steps through. */
export interface EpochTimeline {
  readonly model: string;
  /** Index of that model's final maps in maps.snapshots (what an epoch's maps replace). */
  readonly final: number;
  /** One snapshot per epoch, in epoch order. */
  readonly snapshots: readonly AttentionSnapshotData[];
  /** What was wrong with the epochs file, shown under the slider. */
  readonly problem?: string;
}

export interface Loaded {
  readonly source: AttentionSource;
  readonly maps: AttentionMapsData;
  readonly pixels: { readonly clean: Uint8Array[]; readonly triggered: Uint8Array[] };
  readonly epochs?: EpochTimeline;
  /** A problem of the epochs file when no timeline could be made of it. */
  readonly epochsProblem?: string;
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

const sameShapes = (a: AttentionSnapshotData, b: AttentionSnapshotData): boolean =>
  a.groups.length === b.groups.length && a.groups.every((g, i) => g.height === b.groups[i].height && g.width === b.groups[i].width);

/**
 * The slider's timeline: the epochs of the model trained last (an erase's `erased`, after its teacher's
 * finetuning), when maps.json holds that model's final maps; a resumed epoch's later line wins.
 */
export function epochTimeline(maps: AttentionMapsData, epochs: EpochMapsData | undefined): EpochTimeline | undefined {
  const shown = (epochs?.snapshots ?? []).filter((s) => maps.snapshots.some((f) => f.model === s.model && sameShapes(f, s)));
  const last = shown[shown.length - 1];
  if (!last) return undefined;
  const final = maps.snapshots.findIndex((f) => f.model === last.model);
  const byEpoch = new Map<number, AttentionSnapshotData>();
  for (const s of shown) if (s.model === last.model) byEpoch.set(s.epoch, s);
  const snapshots = [...byEpoch.values()].sort((a, b) => a.epoch - b.epoch);
  return { model: last.model, final, snapshots, ...(epochs?.problem ? { problem: epochs.problem } : {}) };
}

/** The maps the panels draw: the file's, with the trained model's maps of the chosen epoch in place of its final ones. */
export function viewedMaps(): AttentionMapsData | undefined {
  const loaded = state.loaded;
  if (!loaded) return undefined;
  const t = loaded.epochs;
  const at = t && state.view.epoch !== undefined ? t.snapshots.find((s) => s.epoch === state.view.epoch) : undefined;
  if (!t || !at) return loaded.maps;
  return { ...loaded.maps, snapshots: loaded.maps.snapshots.map((s, i) => (i === t.final ? at : s)) };
}

/** Keep the view valid for the file (a reloaded file may have fewer images, groups or models). */
export function clampView(v: AttentionViewState, maps: AttentionMapsData, epochs?: EpochTimeline): AttentionViewState {
  const count = maps.labels.length;
  const { epoch: _epoch, ...rest } = v;
  const epoch = epochs?.snapshots.some((s) => s.epoch === v.epoch) ? v.epoch : undefined;
  const groups = Math.min(...maps.snapshots.map((s) => s.groups.length));
  const hidden = v.hidden.filter((i) => i >= 0 && i < maps.snapshots.length);
  return {
    ...rest,
    ...(epoch !== undefined ? { epoch } : {}),
    image: Math.min(Math.max(0, v.image), count - 1),
    group: Math.min(Math.max(0, v.group), groups - 1),
    hidden: hidden.length >= maps.snapshots.length ? [] : hidden,
    opacity: Math.min(1, Math.max(0, v.opacity)),
  };
}

export function visibleSnapshots(maps: AttentionMapsData): number[] {
  return maps.snapshots.map((_, i) => i).filter((i) => !state.view.hidden.includes(i));
}
