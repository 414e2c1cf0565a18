// The attention maps of a run, stored in its folder: attention/maps.json (the final maps, what the heatmap
// editor and the panel read), one PNG heatmap per model, input, image and group, and attention/epochs.jsonl
// (the snapshot after every training epoch, one JSON line each, for the editor's epoch slider).
import { appendFileSync, closeSync, existsSync, mkdirSync, openSync, readSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { renderHeatmapPng } from '../engine/heatmap';
import { sampleImages, type AttentionSamples } from '../engine/attention-snapshot';
import { EPOCH_MAPS_FILE } from '../shared/attention-protocol';
import type { AttentionSnapshot } from '../shared/run-events';
import { DiskFullError, isDiskFull } from '../engine/disk';
import type { RunHandle } from './run-store';

/** Writes maps.json and the PNG heatmaps; returns the number of files. */
export function saveAttentionFiles(run: RunHandle, snaps: readonly AttentionSnapshot[], samples: AttentionSamples): number {
  let files = 0;
  const dims = { height: samples.clean.height, width: samples.clean.width, channels: samples.clean.channels };
  const size = dims.height * dims.width * dims.channels;
  for (const s of snaps) {
    for (const input of ['clean', 'triggered'] as const) {
      const ds = samples[input];
      s.groups.forEach((g, gi) => {
        const per = g.height * g.width;
        const all = s[input][gi];
        for (let k = 0; k < s.count; k++) {
          const map = Float32Array.from(all.slice(k * per, (k + 1) * per));
          const png = renderHeatmapPng(ds.images.subarray(k * size, (k + 1) * size), dims, map, g);
          run.writeFile(`attention/${s.model}/${input}-${k}-group${gi + 1}.png`, png);
          files++;
        }
      });
    }
  }
  const images = sampleImages(samples);
  run.writeFile(
    'attention/maps.json',
    JSON.stringify({
      version: 1,
      image: dims,
      labels: images.labels,
      attackLabels: images.attackLabels,
      classNames: images.classNames ?? null,
      images: { clean: images.clean, triggered: images.triggered },
      snapshots: snaps,
    }) + '\n',
  );
  return files + 1;
}

/**
 * Append one epoch's snapshot to attention/epochs.jsonl. A line torn by a crash mid-write is closed first,
 * so a resumed run's next line stays readable (the reader reports the torn one by its line number).
 */
export function appendEpochAttention(run: RunHandle, snap: AttentionSnapshot): void {
  const file = run.path(EPOCH_MAPS_FILE);
  mkdirSync(dirname(file), { recursive: true });
  try {
    appendFileSync(file, (endsOpen(file) ? '\n' : '') + JSON.stringify(snap) + '\n');
  } catch (e) {
    throw isDiskFull(e) ? new DiskFullError(file) : e;
  }
}

/** True when the file exists and does not end with a newline. */
function endsOpen(file: string): boolean {
  if (!existsSync(file)) return false;
  const size = statSync(file).size;
  if (size === 0) return false;
  const fd = openSync(file, 'r');
  try {
    const last = Buffer.alloc(1);
    readSync(fd, last, 0, 1, size - 1);
    return last[0] !== 0x0a;
  } finally {
    closeSync(fd);
  }
}
