// The trigger gallery: what an attack does to images, for a person to look at. For a few poisoned training
// images: the clean image, the poisoned one, and their difference amplified (|poisoned - clean| scaled so
// that its largest value is white, the factor in the caption, so that a faint trigger such as WaNet's warp
// or a blend is visible). For a few test images: the clean image and the image with the test-time trigger,
// which is what ASR is measured on. Pure: images in, figures out (the run panel's "Attack" section, the
// "NAD: Preview Attack" page and `nad preview` draw them).
import type { FigureImage, ImagesFigure } from '../../shared/run-events';
import type { ImageDataset } from '../types';

export const GALLERY_IDS = { train: 'gallery-train', test: 'gallery-test' } as const;

/** The images of a dataset the gallery needs: the source set plus the positions (same layout as the source). */
interface Picked {
  readonly data: ImageDataset;
  readonly index: number;
}

function pixelsOf({ data, index }: Picked): Uint8Array {
  const size = data.height * data.width * data.channels;
  return data.images.subarray(index * size, (index + 1) * size);
}

const toBase64 = (v: Uint8Array): string => Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');

function className(data: ImageDataset, label: number): string {
  return data.classNames?.[label] ?? String(label);
}

function figureImage(data: ImageDataset, pixels: Uint8Array, caption: string, marked = false): FigureImage {
  return { caption, height: data.height, width: data.width, channels: data.channels, pixels: toBase64(pixels), marked };
}

/** |a - b| per channel, scaled so that the largest difference is 255; the factor used (1 when nothing differs). */
export function amplifiedDifference(a: Uint8Array, b: Uint8Array): { pixels: Uint8Array; factor: number; changed: number } {
  if (a.length !== b.length) throw new Error(`images of different sizes (${a.length} and ${b.length} values)`);
  let max = 0;
  let changed = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (d > max) max = d;
    if (d !== 0) changed++;
  }
  const factor = max === 0 ? 1 : 255 / max;
  const out = new Uint8Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = Math.min(255, Math.round(Math.abs(a[i] - b[i]) * factor));
  return { pixels: out, factor, changed };
}

/** `count` positions spread evenly over `n` (the first, then every n/count-th), so the gallery is not one class's. */
export function spread(n: number, count: number): number[] {
  const k = Math.min(n, Math.max(0, count));
  return Array.from({ length: k }, (_, i) => Math.floor((i * n) / k));
}

export interface TrainGalleryInput {
  /** The training set before poisoning. */
  readonly clean: ImageDataset;
  /** The same set after poisoning (same positions), with the indices that were changed and their original labels. */
  readonly poisoned: ImageDataset & { readonly poisonedIndices: Int32Array };
  readonly count: number;
  readonly title?: string;
}

/** Clean, poisoned and amplified difference for `count` poisoned training images; the label change in the captions. */
export function trainGallery(g: TrainGalleryInput): ImagesFigure {
  const { clean, poisoned } = g;
  if (clean.count !== poisoned.count || clean.height !== poisoned.height || clean.channels !== poisoned.channels)
    throw new Error('the poisoned training set does not match the clean one');
  const images: FigureImage[] = [];
  for (const at of spread(poisoned.poisonedIndices.length, g.count)) {
    const index = poisoned.poisonedIndices[at];
    const before = pixelsOf({ data: clean, index });
    const after = pixelsOf({ data: poisoned, index });
    const was = clean.labels[index];
    const now = poisoned.labels[index];
    const diff = amplifiedDifference(before, after);
    images.push(
      figureImage(clean, before, `#${index} clean: ${className(clean, was)}`),
      figureImage(
        poisoned,
        after,
        was === now ? `poisoned, label kept: ${className(poisoned, now)}` : `poisoned, label ${className(poisoned, now)}`,
        true,
      ),
      figureImage(clean, diff.pixels, diff.changed === 0 ? 'no change' : `difference x${diff.factor.toFixed(1)}`),
    );
  }
  return {
    id: GALLERY_IDS.train,
    title:
      g.title ??
      `Training images the attack poisoned (${poisoned.poisonedIndices.length} of ${poisoned.count}): clean, poisoned, difference`,
    images,
    group: 'attack',
    columns: 3,
  };
}

export interface TestGalleryInput {
  /** The clean test set. */
  readonly clean: ImageDataset;
  /** Triggered non-target test images, each with its position in `clean`. */
  readonly triggered: ImageDataset & { readonly sourceIndices: Int32Array };
  readonly count: number;
}

/** Clean and triggered for `count` test images: what ASR is measured on. */
export function testGallery(g: TestGalleryInput): ImagesFigure {
  const { clean, triggered } = g;
  const images: FigureImage[] = [];
  for (const at of spread(triggered.count, g.count)) {
    const index = triggered.sourceIndices[at];
    const before = pixelsOf({ data: clean, index });
    const after = pixelsOf({ data: triggered, index: at });
    const diff = amplifiedDifference(before, after);
    images.push(
      figureImage(clean, before, `test #${index}: ${className(clean, clean.labels[index])}`),
      figureImage(triggered, after, `with the trigger (target ${className(triggered, triggered.labels[at])})`, true),
      figureImage(clean, diff.pixels, diff.changed === 0 ? 'no change' : `difference x${diff.factor.toFixed(1)}`),
    );
  }
  return {
    id: GALLERY_IDS.test,
    title: `Test images with the trigger (${triggered.count} non-target images): clean, triggered, difference`,
    images,
    group: 'attack',
    columns: 3,
  };
}
