// Neural Cleanse, step 3: the unlearning set (recovered triggers stamped on a share of the clean data, true
// labels kept) and the figures of the recovered triggers (see ./index.ts).
import { Rng } from '../../rng';
import { InputError, type ImageDataset } from '../../types';
import type { FigureImage } from '../../../shared/run-events';

import { mixSeed, type RecoveredTrigger } from './reverse';

/**
 * `ds` with the images at `indices` (all when absent) stamped with a trigger: round((1 - m) x + 255 m p),
 * per pixel and channel; mask H*W, pattern H*W*C in [0, 1]. Labels are kept. Returns a new dataset.
 */
export function stampTrigger(
  ds: ImageDataset,
  trigger: { readonly mask: ArrayLike<number>; readonly pattern: ArrayLike<number> },
  indices?: ArrayLike<number>,
): ImageDataset {
  const { height: h, width: w, channels: c } = ds;
  if (trigger.mask.length !== h * w || trigger.pattern.length !== h * w * c) {
    throw new InputError(`a ${h}x${w}x${c} image needs a ${h}x${w} mask and a ${h}x${w}x${c} pattern`);
  }
  const images = ds.images.slice(0, ds.count * h * w * c);
  const size = h * w * c;
  const stamp = (i: number): void => {
    const base = i * size;
    for (let px = 0; px < h * w; px++) {
      const m = trigger.mask[px];
      for (let ch = 0; ch < c; ch++) {
        const j = base + px * c + ch;
        const v = Math.round((1 - m) * images[j] + 255 * m * trigger.pattern[px * c + ch]);
        images[j] = v < 0 ? 0 : v > 255 ? 255 : v;
      }
    }
  };
  if (indices) for (let k = 0; k < indices.length; k++) stamp(indices[k]);
  else for (let i = 0; i < ds.count; i++) stamp(i);
  return { ...ds, images, labels: ds.labels.slice(0, ds.count) };
}

/** nc.py's unlearning set: a seeded 1 - ratio of the clean data as is, the rest stamped once per trigger. */
export function unlearningSet(
  clean: ImageDataset,
  triggers: ReadonlyArray<{ readonly mask: ArrayLike<number>; readonly pattern: ArrayLike<number> }>,
  ratio: number,
  seed: number,
): { data: ImageDataset; stamped: number } {
  const order = new Rng(mixSeed(seed, -1, 0x756e)).permutation(clean.count);
  const keep = Math.floor(clean.count * (1 - ratio));
  const size = clean.height * clean.width * clean.channels;
  const share = order.subarray(keep);
  const parts: ImageDataset[] = [selectPart(clean, order.subarray(0, keep))];
  for (const t of triggers) parts.push(stampTrigger(selectPart(clean, share), t));
  const count = parts.reduce((n, p) => n + p.count, 0);
  const images = new Uint8Array(count * size);
  const labels = new Int32Array(count);
  let at = 0;
  for (const p of parts) {
    images.set(p.images.subarray(0, p.count * size), at * size);
    labels.set(p.labels.subarray(0, p.count), at);
    at += p.count;
  }
  return { data: { ...clean, images, labels, count }, stamped: share.length * triggers.length };
}

function selectPart(ds: ImageDataset, idx: ArrayLike<number>): ImageDataset {
  const size = ds.height * ds.width * ds.channels;
  const images = new Uint8Array(idx.length * size);
  const labels = new Int32Array(idx.length);
  for (let k = 0; k < idx.length; k++) {
    images.set(ds.images.subarray(idx[k] * size, (idx[k] + 1) * size), k * size);
    labels[k] = ds.labels[idx[k]];
  }
  return { ...ds, images, labels, count: idx.length };
}

const toBase64 = (v: Uint8Array): string => Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
const toByte = (v: number): number => Math.max(0, Math.min(255, Math.round(255 * v)));

/** Each class's mask (grey) and mask x pattern (the image's channels), flagged classes marked. */
export function triggerImages(
  triggers: readonly RecoveredTrigger[],
  shape: { height: number; width: number; channels: number },
  flagged: ReadonlySet<number>,
  className: (k: number) => string,
): FigureImage[] {
  const { height, width, channels } = shape;
  return triggers.flatMap((t) => {
    const marked = flagged.has(t.target);
    const fused = Uint8Array.from(t.pattern, (p, j) => toByte(p * t.mask[Math.floor(j / channels)]));
    return [
      {
        caption: `${className(t.target)}: mask (L1 ${t.l1.toFixed(1)})`,
        height,
        width,
        channels: 1,
        pixels: toBase64(Uint8Array.from(t.mask, toByte)),
        marked,
      },
      { caption: `${className(t.target)}: pattern x mask`, height, width, channels, pixels: toBase64(fused), marked },
    ];
  });
}
