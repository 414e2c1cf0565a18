// CIFAR-100 in its official binary format (cifar-100-binary/train.bin, test.bin): records of 1 coarse
// label byte (0..19), 1 fine label byte (0..99) and 3072 pixel bytes (1024 red, 1024 green, 1024 blue,
// each 32x32 row-major), converted to HWC. Fine labels (100 classes) by default, coarse (20 superclasses)
// on request; class names from fine_label_names.txt / coarse_label_names.txt beside the file.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { InputError, type ImageDataset } from '../types';
import { CIFAR_RECORD_BYTES, CIFAR_SIDE } from './cifar';
import { listFolder, pathKind, readBytes } from './files';

export const CIFAR100_RECORD_BYTES = 2 + 3 * CIFAR_SIDE * CIFAR_SIDE;
export type Cifar100Labels = 'fine' | 'coarse';
const CLASS_COUNT: Record<Cifar100Labels, number> = { coarse: 20, fine: 100 };
const META: Record<Cifar100Labels, string> = { coarse: 'coarse_label_names.txt', fine: 'fine_label_names.txt' };
const FOLDER = 'cifar-100-binary';

/** Decode one CIFAR-100 binary file's bytes with the chosen labels; `file` names it in errors. */
export function decodeCifar100Binary(bytes: Uint8Array, file: string, which: Cifar100Labels): { images: Uint8Array; labels: Int32Array } {
  if (bytes.length === 0) throw new InputError('empty file; expected CIFAR-100 binary records', file);
  if (bytes.length % CIFAR100_RECORD_BYTES !== 0) {
    throw new InputError(
      `${bytes.length} bytes is not a whole number of ${CIFAR100_RECORD_BYTES}-byte CIFAR-100 records ` +
        '(coarse label, fine label, 3072 pixels); truncated or not a CIFAR-100 binary file',
      file,
    );
  }
  const n = bytes.length / CIFAR100_RECORD_BYTES;
  const plane = CIFAR_SIDE * CIFAR_SIDE;
  const images = new Uint8Array(n * 3 * plane);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const rec = i * CIFAR100_RECORD_BYTES;
    // Both labels are checked whichever is used: a wrong byte in either means the file is not CIFAR-100.
    if (bytes[rec] >= CLASS_COUNT.coarse || bytes[rec + 1] >= CLASS_COUNT.fine) {
      throw new InputError(
        `record ${i} (byte ${rec}) has coarse label ${bytes[rec]} and fine label ${bytes[rec + 1]}; CIFAR-100 labels are 0..19 and 0..99`,
        file,
      );
    }
    labels[i] = which === 'coarse' ? bytes[rec] : bytes[rec + 1];
    const out = i * 3 * plane;
    for (let p = 0; p < plane; p++) {
      images[out + 3 * p] = bytes[rec + 2 + p];
      images[out + 3 * p + 1] = bytes[rec + 2 + plane + p];
      images[out + 3 * p + 2] = bytes[rec + 2 + 2 * plane + p];
    }
  }
  return { images, labels };
}

/** Whether the CIFAR-100 meta files or folder name are beside `file`: it is then CIFAR-100 whatever its size. */
export function hasCifar100Meta(file: string): boolean {
  const dir = dirname(file);
  return basename(dir) === FOLDER || Object.values(META).some((m) => existsSync(join(dir, m)));
}

/**
 * Which CIFAR binary a headerless file is, from its size (3,073-byte CIFAR-10 or 3,074-byte CIFAR-100
 * records) and, when both fit or the file is truncated, the CIFAR-100 meta files beside it.
 */
export function cifarBinaryKind(file: string, size: number): 'cifar10' | 'cifar100' {
  const fits10 = size > 0 && size % CIFAR_RECORD_BYTES === 0;
  const fits100 = size > 0 && size % CIFAR100_RECORD_BYTES === 0;
  if (hasCifar100Meta(file)) return 'cifar100';
  if (fits100 && !fits10) return 'cifar100';
  if (fits10) return 'cifar10';
  throw new InputError(
    `${size} bytes is not a whole number of ${CIFAR_RECORD_BYTES}-byte CIFAR-10 records; truncated or not a CIFAR-10 binary file ` +
      `(nor of ${CIFAR100_RECORD_BYTES}-byte CIFAR-100 records)`,
    file,
  );
}

/** Class names from the meta file beside `file`, if present; their count must match. */
function classNamesNear(file: string, which: Cifar100Labels): readonly string[] | undefined {
  const meta = join(dirname(file), META[which]);
  if (!existsSync(meta)) return undefined;
  const names = readFileSync(meta, 'utf8')
    .split(/\r?\n/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (names.length !== CLASS_COUNT[which]) throw new InputError(`expected ${CLASS_COUNT[which]} class names, found ${names.length}`, meta);
  return names;
}

/** Read a CIFAR-100 binary file. */
export function readCifar100File(file: string, which: Cifar100Labels, source: string = file): ImageDataset {
  const { images, labels } = decodeCifar100Binary(readBytes(file), file, which);
  const classNames = classNamesNear(file, which);
  return {
    images,
    labels,
    count: labels.length,
    height: CIFAR_SIDE,
    width: CIFAR_SIDE,
    channels: 3,
    numClasses: CLASS_COUNT[which],
    ...(classNames ? { classNames } : {}),
    source,
  };
}

/** The split's file of a CIFAR-100 folder (`cifar-100-binary` or its parent), or undefined when it is not one. */
export function cifar100FolderFile(folder: string, split: 'train' | 'test'): string | undefined {
  const names = new Set(listFolder(folder));
  if (names.has(FOLDER) && pathKind(join(folder, FOLDER)) === 'folder') return cifar100FolderFile(join(folder, FOLDER), split);
  const present = ['train.bin', 'test.bin'].filter((n) => names.has(n));
  if (present.length === 0) return undefined;
  const kind = (n: string): string => cifarBinaryKindOrUnknown(join(folder, n));
  if (!present.some((n) => kind(n) === 'cifar100')) return undefined;
  const own = `${split}.bin`;
  if (!names.has(own)) throw new InputError(`CIFAR-100 folder has no ${own} for the ${split} split`, folder);
  return join(folder, own);
}

function cifarBinaryKindOrUnknown(file: string): string {
  try {
    // The size is enough to tell CIFAR-10 from CIFAR-100; no need to read the file here.
    return pathKind(file) === 'file' ? cifarBinaryKind(file, statSync(file).size) : 'unknown';
  } catch {
    return 'unknown';
  }
}
