// How the attention page names things: a class by its index and name, a model snapshot by its model
// (and its epoch when the file holds several snapshots of one model).
import type { AttentionMapsData } from '../../src/shared/attention-protocol';

export function className(maps: AttentionMapsData, label: number): string {
  if (label < 0) return 'unknown';
  const name = maps.classNames?.[label];
  return name && name !== String(label) ? `${label} (${name})` : String(label);
}

export function snapshotTitle(maps: AttentionMapsData, i: number): string {
  const s = maps.snapshots[i];
  const same = maps.snapshots.filter((t) => t.model === s.model).length > 1;
  return same ? `${s.model} (${s.epoch < 0 ? 'final' : `epoch ${s.epoch}`})` : s.model;
}
