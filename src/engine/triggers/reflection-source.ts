// Where Refool's reflections come from: a seeded pick of candidate images (the paper's R_adv; BackdoorBench
// reads a folder of them) out of another data set, a plain folder of PNG/JPEG images, or the other classes
// of the training data itself. Candidates are converted once to float32 at the image size (reflection.ts).
import { basename, join } from 'node:path';
import { loadDatasetSync } from '../data';
import { listFolder, pathKind } from '../data/files';
import { classFolders, decodeImageFile } from '../data/image-folder';
import { Rng } from '../rng';
import { InputError, type ImageDataset } from '../types';
import type { ImageShape } from './patterns';
import { reflectionImage } from './reflection';

const IMAGE_EXT = /\.(png|jpe?g)$/i;

/** Images of any sizes, with labels when the source has classes. */
export interface ReflectionPool {
  readonly count: number;
  /** Class of image i, or -1 (a plain folder of images). */
  label(i: number): number;
  /** Pixels (uint8 HWC) and shape of image i. */
  image(i: number): { pixels: Uint8Array; shape: ImageShape };
  readonly source: string;
}

/** A data set's images as a pool. */
export function datasetPool(ds: ImageDataset): ReflectionPool {
  const size = ds.height * ds.width * ds.channels;
  return {
    count: ds.count,
    label: (i) => ds.labels[i],
    image: (i) => ({ pixels: ds.images.subarray(i * size, (i + 1) * size), shape: ds }),
    source: ds.source,
  };
}

/**
 * Open a reflection source: a folder of PNG/JPEG images of any sizes (as BackdoorBench's r_adv folder), or
 * anything `loadDataset` reads (its training split). InputError when missing, empty or unreadable.
 */
export function openReflectionSource(path: string): ReflectionPool {
  if (path === '') throw new InputError('the reflection source is empty: give a data set, or a folder of images');
  const kind = pathKind(path);
  if (kind === 'missing' && path !== 'mnist')
    throw new InputError('reflection source not found (expected a data set or a folder of images)', path);
  if (kind === 'folder' && classFolders(path).length === 0) {
    const files = listFolder(path).filter((n) => IMAGE_EXT.test(n));
    if (files.length > 0) {
      const images = files.map((f) => decodeImageFile(join(path, f)));
      return {
        count: images.length,
        label: () => -1,
        image: (i) => ({ pixels: images[i].rgb, shape: { height: images[i].height, width: images[i].width, channels: 3 } }),
        source: path,
      };
    }
    if (listFolder(path).every((n) => pathKind(join(path, n)) !== 'folder'))
      throw new InputError(`folder '${basename(path)}' holds no .png/.jpg images to use as reflections`, path);
  }
  const ds = loadDatasetSync(path, { split: 'train' });
  if (ds.count === 0) throw new InputError('the reflection source holds no images', path);
  return datasetPool(ds);
}

export interface CandidateOptions {
  /** How many candidates (the size of R_adv); fewer when the source has fewer. */
  readonly count: number;
  /** Seeds which images are picked. */
  readonly seed: number;
  /** Leave this class out (the target class, when the reflections come from the training data itself). */
  readonly excludeLabel?: number;
}

/** A seeded pick of `count` pool images (never of `excludeLabel`), as float32 [0, 1] reflections at `shape`. */
export function reflectionCandidates(pool: ReflectionPool, shape: ImageShape, opts: CandidateOptions): Float32Array[] {
  if (!Number.isInteger(opts.count) || opts.count < 1)
    throw new InputError(`reflection count must be a whole number >= 1, got ${opts.count}`);
  const eligible: number[] = [];
  for (let i = 0; i < pool.count; i++) if (opts.excludeLabel === undefined || pool.label(i) !== opts.excludeLabel) eligible.push(i);
  if (eligible.length === 0)
    throw new InputError(
      opts.excludeLabel === undefined
        ? 'the reflection source holds no images'
        : `the reflection source has no images outside class ${opts.excludeLabel}`,
      pool.source,
    );
  const order = new Rng(opts.seed).permutation(eligible.length).subarray(0, Math.min(opts.count, eligible.length));
  return Array.from(order, (k) => {
    const { pixels, shape: from } = pool.image(eligible[k]);
    return reflectionImage(pixels, from, shape);
  });
}

const cache = new Map<string, Float32Array[]>();

/** `reflectionCandidates` of a source path, kept for the process's later triggers (a test set, previews). */
export function loadReflectionCandidates(path: string, shape: ImageShape, opts: CandidateOptions): Float32Array[] {
  const key = JSON.stringify([path, shape.height, shape.width, shape.channels, opts.count, opts.seed, opts.excludeLabel ?? null]);
  let found = cache.get(key);
  if (!found) {
    found = reflectionCandidates(openReflectionSource(path), shape, opts);
    if (cache.size >= 4) cache.delete(cache.keys().next().value as string);
    cache.set(key, found);
  }
  return found;
}
