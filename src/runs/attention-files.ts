// The final attention maps of a run, stored in its folder: attention/maps.json (what the heatmap editor
// and the panel read) and one PNG heatmap per model, input, image and group.
import { renderHeatmapPng } from '../engine/heatmap';
import { sampleImages, type AttentionSamples } from '../engine/attention-snapshot';
import type { AttentionSnapshot } from '../shared/run-events';
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
