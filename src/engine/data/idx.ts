// IDX files (MNIST, Fashion-MNIST, KMNIST...): an images file (magic 0x00000803: N x H x W, or 0x00000804:
// N x H x W x C) and a labels file (magic 0x00000801), each raw or gzipped.
import { basename, dirname, join } from 'node:path';
import { InputError, type ImageDataset } from '../types';
import { listFolder, pathKind, readMaybeGzip } from './files';

const UBYTE = 0x08;

export const FASHION_MNIST_CLASSES: readonly string[] = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
];
export const DIGIT_CLASSES: readonly string[] = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];

interface IdxHeader {
  dims: number[];
  dataStart: number;
}

/** Check the IDX magic (two zero bytes, ubyte type, expected rank) and read the dimensions. */
function readHeader(bytes: Uint8Array, file: string, ranks: readonly number[], what: string): IdxHeader {
  const hex = [...bytes.subarray(0, 4)].map((b) => b.toString(16).padStart(2, '0')).join('');
  if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0 || bytes[2] !== UBYTE || !ranks.includes(bytes[3])) {
    const expected = ranks.map((r) => `000008${r.toString(16).padStart(2, '0')}`).join(' or ');
    throw new InputError(`wrong magic number 0x${hex} for an IDX ${what} file (expected 0x${expected}, unsigned bytes)`, file);
  }
  const rank = bytes[3];
  const dataStart = 4 + 4 * rank;
  if (bytes.length < dataStart) throw new InputError('truncated IDX header', file);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims: number[] = [];
  for (let d = 0; d < rank; d++) dims.push(view.getUint32(4 + 4 * d, false));
  const need = dims.reduce((a, b) => a * b, 1);
  if (bytes.length - dataStart !== need) {
    throw new InputError(
      `IDX header declares ${dims.join(' x ')} = ${need} bytes of data but the file holds ${bytes.length - dataStart}`,
      file,
    );
  }
  return { dims, dataStart };
}

/** The labels file that goes with an images file, by the standard naming (`*-images-idx3-ubyte` -> `*-labels-idx1-ubyte`). */
export function labelsPathFor(imagesPath: string): string {
  const dir = dirname(imagesPath);
  const name = basename(imagesPath);
  const guess = name.replace(/images/i, (m) => (m === 'IMAGES' ? 'LABELS' : 'labels')).replace(/idx[34]/i, 'idx1');
  if (guess === name) {
    throw new InputError("cannot find the labels file: the name does not follow the '<split>-images-idx3-ubyte' pattern", imagesPath);
  }
  const candidates = [guess, guess.replace(/\.gz$/i, ''), guess.endsWith('.gz') ? guess : `${guess}.gz`];
  for (const c of candidates) if (pathKind(join(dir, c)) === 'file') return join(dir, c);
  throw new InputError(`labels file not found (looked for ${[...new Set(candidates)].join(', ')} next to it)`, imagesPath);
}

export interface IdxOptions {
  /** Number of classes; labels must be below it. Default: the largest label + 1. */
  readonly numClasses?: number;
  /** Where it came from, for messages; default the images path. */
  readonly source?: string;
}

/** Read an IDX images file and its labels file. */
export function readIdxPair(imagesPath: string, labelsPath: string, opts: IdxOptions = {}): ImageDataset {
  const img = readMaybeGzip(imagesPath);
  const ih = readHeader(img, imagesPath, [3, 4], 'images');
  const lab = readMaybeGzip(labelsPath);
  const lh = readHeader(lab, labelsPath, [1], 'labels');
  const [count, height, width] = ih.dims;
  const channels = ih.dims.length === 4 ? ih.dims[3] : 1;
  if (height === 0 || width === 0 || channels === 0) throw new InputError(`image size ${ih.dims.join(' x ')} is empty`, imagesPath);
  if (lh.dims[0] !== count) {
    throw new InputError(`${lh.dims[0]} labels for ${count} images in ${basename(imagesPath)}; the counts must match`, labelsPath);
  }
  const labels = new Int32Array(count);
  let maxLabel = 0;
  for (let i = 0; i < count; i++) {
    labels[i] = lab[lh.dataStart + i];
    if (labels[i] > maxLabel) maxLabel = labels[i];
  }
  const numClasses = opts.numClasses ?? maxLabel + 1;
  if (maxLabel >= numClasses) {
    const at = labels.findIndex((l) => l >= numClasses);
    throw new InputError(`label ${labels[at]} at index ${at} is out of range for ${numClasses} classes`, labelsPath);
  }
  const fashion = /fashion/i.test(imagesPath);
  const classNames = numClasses === 10 ? (fashion ? FASHION_MNIST_CLASSES : DIGIT_CLASSES) : undefined;
  return {
    // A plain copy: `img` may be a Buffer, whose slice() is a view on a shared pool.
    images: new Uint8Array(img.subarray(ih.dataStart)),
    labels,
    count,
    height,
    width,
    channels,
    numClasses,
    ...(classNames ? { classNames } : {}),
    source: opts.source ?? imagesPath,
  };
}

/** The images file of a split inside a folder (MNIST naming: `train-*` and `t10k-*`), or undefined. */
export function idxImagesInFolder(folder: string, split: 'train' | 'test'): string | undefined {
  const prefix = split === 'train' ? /^train/i : /^(t10k|test)/i;
  const name = listFolder(folder).find(
    (n) => prefix.test(n) && /images[-.]idx[34]-ubyte(\.gz)?$/i.test(n) && pathKind(join(folder, n)) === 'file',
  );
  return name === undefined ? undefined : join(folder, name);
}

/** Whether a folder holds IDX images files of either split. */
export function isIdxFolder(folder: string): boolean {
  return listFolder(folder).some((n) => /images[-.]idx[34]-ubyte(\.gz)?$/i.test(n));
}

/** An images file (its labels file found by name), or a folder with train/t10k files. */
export function loadIdx(source: string, split: 'train' | 'test', opts: IdxOptions = {}): ImageDataset {
  if (pathKind(source) === 'folder') {
    const images = idxImagesInFolder(source, split);
    if (!images) throw new InputError(`no ${split === 'train' ? 'train' : 't10k'}-images-idx3-ubyte[.gz] file in the folder`, source);
    return readIdxPair(images, labelsPathFor(images), { source, ...opts });
  }
  return readIdxPair(source, labelsPathFor(source), opts);
}

/** True when the bytes (already gunzipped) start with an IDX magic of unsigned bytes. */
export function hasIdxMagic(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0 && bytes[1] === 0 && bytes[2] === UBYTE && bytes[3] >= 1 && bytes[3] <= 4;
}
