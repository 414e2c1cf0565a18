// STRIP on single images (the method: see index.ts): the verdict for one image against the threshold, and
// the figure of the images the user asked about.
import type { Model } from '../../models';
import { InputError, type ImageDataset } from '../../types';
import type { ImagesFigure } from '../../../shared/run-events';
import type { DefenseInput } from '../types';
import { streamSeed, stripEntropies, stripThreshold, type ThresholdOptions } from './entropy';

export interface StripVerdict {
  readonly entropy: number;
  readonly threshold: number;
  /** entropy < threshold. */
  readonly triggered: boolean;
}

/** Is one image (HWC uint8 of the clean data's shape, or a dataset's first image) triggered? */
export async function stripImage(
  model: Model,
  image: Uint8Array | ImageDataset,
  clean: ImageDataset,
  opts: ThresholdOptions & { readonly threshold?: number },
): Promise<StripVerdict> {
  const one: ImageDataset =
    image instanceof Uint8Array
      ? { ...clean, images: image, labels: new Int32Array(1), count: 1 }
      : { ...image, count: Math.min(1, image.count) };
  if (one.count !== 1 || one.images.length < one.height * one.width * one.channels) throw new InputError('STRIP: no image to score');
  const threshold = opts.threshold ?? (await stripThreshold(model, clean, opts)).threshold;
  const [entropy] = await stripEntropies(model, one, clean, { ...opts, seed: streamSeed(opts.seed, 7) });
  return { entropy, threshold, triggered: entropy < threshold };
}

/** The given images with their verdicts: flagged ones outlined. */
export function inspectedFigure(
  inspect: NonNullable<DefenseInput['inspect']>,
  verdicts: ReadonlyArray<{ readonly file: string; readonly entropy: number; readonly triggered: boolean }>,
  threshold: number,
): ImagesFigure {
  const { images } = inspect;
  const size = images.height * images.width * images.channels;
  return {
    id: 'strip-inspected',
    title: `The given images: entropy over the overlays against the threshold ${threshold.toPrecision(3)} (outlined: likely triggered)`,
    images: verdicts.map((v, i) => ({
      caption: `${v.file}: ${v.triggered ? 'likely triggered' : 'looks clean'} (H ${v.entropy.toPrecision(3)})`,
      height: images.height,
      width: images.width,
      channels: images.channels,
      pixels: Buffer.from(images.images.buffer, images.images.byteOffset + i * size, size).toString('base64'),
      marked: v.triggered,
    })),
  };
}
