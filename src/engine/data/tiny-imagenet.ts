// Tiny-ImageNet (tiny-imagenet-200) in its official layout: wnids.txt (the 200 class ids), words.txt (id ->
// names), train/<wnid>/images/<wnid>_<i>.JPEG, val/images/val_<i>.JPEG with val/val_annotations.txt
// (file, wnid, box, tab-separated). 64x64 JPEGs, some grayscale (read as RGB, as PIL's convert('RGB')).
// Class indices follow wnids.txt's line order and the test split is val/, as BackdoorBench's loader
// (SCLBD/BackdoorBench, utils/dataset/Tiny.py); the official test/ folder has no labels.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { InputError, type ImageDataset } from '../types';
import { listFolder, pathKind } from './files';
import { readJpegAsPillow } from './jpeg';

export const TINY_IMAGENET_SIDE = 64;
const FOLDER = 'tiny-imagenet-200';
const JPEG = /\.jpe?g$/i;

/** The dataset root: `folder` itself or its `tiny-imagenet-200` subfolder, when it holds wnids.txt. */
export function tinyImagenetRoot(folder: string): string | undefined {
  for (const root of [folder, join(folder, FOLDER)]) {
    if (existsSync(join(root, 'wnids.txt')) && (pathKind(join(root, 'train')) === 'folder' || pathKind(join(root, 'val')) === 'folder')) {
      return root;
    }
  }
  return undefined;
}

function readLines(file: string): string[] {
  if (!existsSync(file)) throw new InputError('file not found (part of the Tiny-ImageNet layout)', file);
  return readFileSync(file, 'utf8')
    .split(/\r?\n/)
    .filter((l) => l.trim().length > 0);
}

/** First name of each class from words.txt (`<wnid>\t<name>, <synonym>...`), or the wnid when absent. */
function classNames(root: string, wnids: readonly string[]): string[] {
  const words = join(root, 'words.txt');
  if (!existsSync(words)) return [...wnids];
  const wanted = new Set(wnids);
  const names = new Map<string, string>();
  for (const line of readLines(words)) {
    const tab = line.indexOf('\t');
    const id = line.slice(0, tab).trim();
    if (tab > 0 && wanted.has(id))
      names.set(
        id,
        line
          .slice(tab + 1)
          .split(',')[0]
          .trim(),
      );
  }
  return wnids.map((id) => names.get(id) ?? id);
}

/** Natural order of `<wnid>_<i>.JPEG` names: by the number, as BackdoorBench lists them. */
const byNumber = (a: string, b: string): number => a.localeCompare(b, 'en', { numeric: true });

/** Read a Tiny-ImageNet split (train, or val as the test split) as 64x64 RGB images. */
export function loadTinyImagenet(folder: string, split: 'train' | 'test', source: string = folder): ImageDataset {
  const root = tinyImagenetRoot(folder);
  if (!root) throw new InputError('not a Tiny-ImageNet folder (no wnids.txt with train/ or val/ beside it)', folder);
  const wnidsFile = join(root, 'wnids.txt');
  const wnids = readLines(wnidsFile).map((l) => l.trim());
  if (new Set(wnids).size !== wnids.length) throw new InputError('a class id is listed twice', wnidsFile);
  const index = new Map(wnids.map((w, i) => [w, i]));
  const files: string[] = [];
  const labels: number[] = [];
  if (split === 'train') {
    for (const [i, wnid] of wnids.entries()) {
      const dir = join(root, 'train', wnid, 'images');
      if (pathKind(dir) !== 'folder') throw new InputError(`class ${wnid} of wnids.txt has no train/${wnid}/images folder`, dir);
      for (const name of listFolder(dir)
        .filter((n) => JPEG.test(n))
        .sort(byNumber)) {
        files.push(join(dir, name));
        labels.push(i);
      }
    }
  } else {
    const annotations = join(root, 'val', 'val_annotations.txt');
    for (const [n, line] of readLines(annotations).entries()) {
      const [name, wnid] = line.split('\t').map((s) => s.trim());
      const label = wnid === undefined ? undefined : index.get(wnid);
      if (!name || label === undefined) {
        throw new InputError(
          `line ${n + 1}: class '${wnid ?? ''}' of '${name}' is not in wnids.txt (expected <file>\\t<wnid>...)`,
          annotations,
        );
      }
      files.push(join(root, 'val', 'images', name));
      labels.push(label);
    }
    const listed = new Set(files.map((f) => f.slice(join(root, 'val', 'images').length + 1)));
    const unlisted = listFolder(join(root, 'val', 'images')).filter((n) => JPEG.test(n) && !listed.has(n));
    if (unlisted.length > 0) {
      throw new InputError(`${unlisted.length} image(s) have no annotation, e.g. ${unlisted[0]}`, annotations);
    }
  }
  if (files.length === 0) throw new InputError(`Tiny-ImageNet ${split === 'train' ? 'train' : 'val'} split holds no images`, root);
  const size = TINY_IMAGENET_SIDE * TINY_IMAGENET_SIDE * 3;
  const images = new Uint8Array(files.length * size);
  files.forEach((file, i) => {
    const img = readJpegAsPillow(file);
    if (img.width !== TINY_IMAGENET_SIDE || img.height !== TINY_IMAGENET_SIDE) {
      throw new InputError(`image is ${img.width}x${img.height}; Tiny-ImageNet images are 64x64`, file);
    }
    images.set(img.rgb, i * size);
  });
  return {
    images,
    labels: Int32Array.from(labels),
    count: files.length,
    height: TINY_IMAGENET_SIDE,
    width: TINY_IMAGENET_SIDE,
    channels: 3,
    numClasses: wnids.length,
    classNames: classNames(root, wnids),
    source,
  };
}
