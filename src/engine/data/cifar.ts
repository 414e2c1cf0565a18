// CIFAR-10 in its official binary format: records of 1 label byte + 3072 pixel bytes (1024 red, then
// 1024 green, then 1024 blue, each 32x32 row-major). Converted to HWC, the layout NAD's numpy code uses.
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { InputError, type ImageDataset } from '../types';
import { listFolder, pathKind, readBytes } from './files';

export const CIFAR_SIDE = 32;
export const CIFAR_RECORD_BYTES = 1 + 3 * CIFAR_SIDE * CIFAR_SIDE;
export const CIFAR10_CLASSES: readonly string[] = [
  'airplane',
  'automobile',
  'bird',
  'cat',
  'deer',
  'dog',
  'frog',
  'horse',
  'ship',
  'truck',
];
const TRAIN_BATCHES = [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`);
const TEST_BATCH = 'test_batch.bin';

interface Decoded {
  images: Uint8Array;
  labels: Int32Array;
}

/** Decode one CIFAR-10 binary file's bytes; `file` names it in errors. */
export function decodeCifarBinary(bytes: Uint8Array, file: string): Decoded {
  if (bytes.length === 0) throw new InputError('empty file; expected CIFAR-10 binary records', file);
  if (bytes.length % CIFAR_RECORD_BYTES !== 0) {
    throw new InputError(
      `${bytes.length} bytes is not a whole number of ${CIFAR_RECORD_BYTES}-byte CIFAR-10 records; ` +
        'truncated or not a CIFAR-10 binary file',
      file,
    );
  }
  const n = bytes.length / CIFAR_RECORD_BYTES;
  const plane = CIFAR_SIDE * CIFAR_SIDE;
  const images = new Uint8Array(n * 3 * plane);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const rec = i * CIFAR_RECORD_BYTES;
    const label = bytes[rec];
    if (label > 9) {
      throw new InputError(
        `record ${i} (byte ${rec}) has label ${label}; CIFAR-10 labels are 0..9 (a CIFAR-100 file has 2 label bytes per record)`,
        file,
      );
    }
    labels[i] = label;
    const out = i * 3 * plane;
    for (let p = 0; p < plane; p++) {
      images[out + 3 * p] = bytes[rec + 1 + p];
      images[out + 3 * p + 1] = bytes[rec + 1 + plane + p];
      images[out + 3 * p + 2] = bytes[rec + 1 + 2 * plane + p];
    }
  }
  return { images, labels };
}

/** Class names from `batches.meta.txt` next to the data (one per line), else the standard CIFAR-10 names. */
function classNamesNear(folder: string): readonly string[] {
  const meta = join(folder, 'batches.meta.txt');
  if (!existsSync(meta)) return CIFAR10_CLASSES;
  const names = readFileSync(meta, 'utf8')
    .split(/\r?\n/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (names.length !== 10) throw new InputError(`expected 10 class names, found ${names.length}`, meta);
  return names;
}

/** Read one or more CIFAR-10 binary files as one dataset. */
export function readCifarFiles(files: readonly string[], source: string): ImageDataset {
  const parts = files.map((f) => decodeCifarBinary(readBytes(f), f));
  const count = parts.reduce((a, p) => a + p.labels.length, 0);
  const images = new Uint8Array(count * 3 * CIFAR_SIDE * CIFAR_SIDE);
  const labels = new Int32Array(count);
  let at = 0;
  for (const p of parts) {
    images.set(p.images, at * 3 * CIFAR_SIDE * CIFAR_SIDE);
    labels.set(p.labels, at);
    at += p.labels.length;
  }
  return {
    images,
    labels,
    count,
    height: CIFAR_SIDE,
    width: CIFAR_SIDE,
    channels: 3,
    numClasses: 10,
    classNames: classNamesNear(dirname(files[0])),
    source,
  };
}

/** The folder's files for a split, or undefined when it is not a CIFAR-10 folder. */
export function cifarFolderFiles(folder: string, split: 'train' | 'test'): string[] | undefined {
  const names = new Set(listFolder(folder));
  if (names.has('cifar-10-batches-bin') && pathKind(join(folder, 'cifar-10-batches-bin')) === 'folder') {
    return cifarFolderFiles(join(folder, 'cifar-10-batches-bin'), split);
  }
  // The official layout: data_batch_1..5.bin + test_batch.bin.
  if (names.has(TEST_BATCH) || TRAIN_BATCHES.some((b) => names.has(b))) {
    const wanted = split === 'train' ? TRAIN_BATCHES : [TEST_BATCH];
    const missing = wanted.filter((b) => !names.has(b));
    if (missing.length > 0) {
      throw new InputError(`CIFAR-10 folder lacks ${missing.join(', ')} for the ${split} split`, folder);
    }
    return wanted.map((b) => join(folder, b));
  }
  // A subset in the same format, one file per split (e.g. train.bin / test.bin).
  const own = `${split}.bin`;
  if (names.has('train.bin') || names.has('test.bin')) {
    if (!names.has(own)) throw new InputError(`folder has no ${own} for the ${split} split`, folder);
    return [join(folder, own)];
  }
  return undefined;
}

/** A `.bin` file, or a CIFAR-10 folder (`cifar-10-batches-bin` or its parent). */
export function loadCifar(source: string, split: 'train' | 'test'): ImageDataset {
  if (pathKind(source) === 'folder') {
    const files = cifarFolderFiles(source, split);
    if (!files) throw new InputError(`no CIFAR-10 files (${TRAIN_BATCHES[0]}…, ${TEST_BATCH}, or train.bin/test.bin)`, source);
    return readCifarFiles(files, source);
  }
  return readCifarFiles([source], source);
}

/** True for names the official archive uses, so detection can prefer CIFAR for them. */
export function looksLikeCifarName(file: string): boolean {
  return /\.bin$/i.test(basename(file));
}
