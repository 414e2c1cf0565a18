// Trigger masks: the paper's two mask files (embedded), users' own .npy/.npz (or image) files, and blend's
// seeded noise pattern, all arranged as HxWxC values in pixel units (0..255) for the image functions.
import { InputError } from '../types';
import { Rng } from '../rng';
import { parseNpy, parseNpz, readArrayFile, type NpyArray } from '../data/npy';
import { decodeImageFile } from '../data/image-folder';
import { SIGNAL_CIFAR10_MASK_NPY, TROJAN_CIFAR10_MASK_NPZ } from './embedded-masks';
import type { ImageShape } from './patterns';

const BUILT_IN_SIGNAL = 'built-in signal_cifar10_mask.npy';
const BUILT_IN_TROJAN = 'built-in best_square_trigger_cifar10.npz';

/** The paper's signalTrigger mask: uint8 (32, 32). */
export function builtInSignalMask(): NpyArray {
  return parseNpy(Buffer.from(SIGNAL_CIFAR10_MASK_NPY, 'base64'), BUILT_IN_SIGNAL);
}

/** The paper's trojanTrigger mask: array `x` of the .npz, float32 (3, 32, 32). */
export function builtInTrojanMask(): NpyArray {
  const x = parseNpz(Buffer.from(TROJAN_CIFAR10_MASK_NPZ, 'base64'), BUILT_IN_TROJAN).get('x');
  if (!x) throw new Error('embedded trojan mask lacks array x');
  return x;
}

const shapeText = (s: ImageShape): string => `${s.height}x${s.width}x${s.channels}`;

/**
 * A mask array as HxWxC values. Accepts (H, W) and (H, W, 1) (the same value in every channel, as the paper's
 * reshape to (w, h, 1)), (H, W, C), and (C, H, W) (the paper's trojan file, transposed as its code does).
 */
export function arrangeMask(arr: NpyArray, shape: ImageShape, file: string, preferCHW = false): Float64Array {
  const { height: H, width: W, channels: C } = shape;
  const d = arr.shape;
  const out = new Float64Array(H * W * C);
  const fits2D = d.length === 2 && d[0] === H && d[1] === W;
  const hw1 = d.length === 3 && d[0] === H && d[1] === W && d[2] === 1;
  const hwc = d.length === 3 && d[0] === H && d[1] === W && d[2] === C;
  const chw = d.length === 3 && d[0] === C && d[1] === H && d[2] === W;
  if (fits2D || hw1) {
    for (let p = 0; p < H * W; p++) for (let c = 0; c < C; c++) out[p * C + c] = arr.data[p];
  } else if (chw && (preferCHW || !hwc)) {
    for (let c = 0; c < C; c++) for (let p = 0; p < H * W; p++) out[p * C + c] = arr.data[c * H * W + p];
  } else if (hwc) {
    for (let i = 0; i < out.length; i++) out[i] = arr.data[i];
  } else {
    throw new InputError(
      `mask shape (${d.join(', ')}) does not fit ${shapeText(shape)} images; expected (${H}, ${W}), (${H}, ${W}, ${C}) or (${C}, ${H}, ${W})`,
      file,
    );
  }
  return out;
}

/** A user's mask file: .npy, .npz, or (for blend) a PNG/JPEG of the image size. */
function readMaskFile(file: string, key: string | undefined, shape: ImageShape, preferCHW: boolean, allowImage: boolean): Float64Array {
  if (allowImage && /\.(png|jpe?g)$/i.test(file)) {
    const img = decodeImageFile(file);
    if (img.width !== shape.width || img.height !== shape.height) {
      throw new InputError(`pattern image is ${img.width}x${img.height}, the data ${shape.width}x${shape.height}`, file);
    }
    if (shape.channels === 1 && img.colour) throw new InputError('colour pattern image for grayscale data; give a grayscale image', file);
    const out = new Float64Array(shape.height * shape.width * shape.channels);
    for (let p = 0; p < shape.height * shape.width; p++) {
      for (let c = 0; c < shape.channels; c++) out[p * shape.channels + c] = img.rgb[3 * p + (shape.channels === 3 ? c : 0)];
    }
    return out;
  }
  return arrangeMask(readArrayFile(file, key), shape, file, preferCHW);
}

/** A built-in mask made for 32x32 CIFAR-10 images; other data needs the user's own file. */
function builtInFor(name: string, arr: NpyArray, label: string, shape: ImageShape, preferCHW: boolean): Float64Array {
  try {
    return arrangeMask(arr, shape, label, preferCHW);
  } catch {
    throw new InputError(
      `${name}'s built-in mask is (${arr.shape.join(', ')}) for 32x32 CIFAR-10 images; for ${shapeText(shape)} data give a mask file (.npy or .npz)`,
    );
  }
}

export function signalMask(shape: ImageShape, maskFile?: string, maskKey?: string): Float64Array {
  if (maskFile) return readMaskFile(maskFile, maskKey, shape, false, false);
  return builtInFor('signalTrigger', builtInSignalMask(), BUILT_IN_SIGNAL, shape, false);
}

/** float32 HxWxC, as the paper adds it (uint8 + float32). */
export function trojanMask(shape: ImageShape, maskFile?: string, maskKey?: string): Float32Array {
  const m = maskFile
    ? readMaskFile(maskFile, maskKey, shape, true, false)
    : builtInFor('trojanTrigger', builtInTrojanMask(), BUILT_IN_TROJAN, shape, true);
  return Float32Array.from(m);
}

/** blend's pattern: the user's file, else uniform 0..255 noise (HxWxC) from `patternSeed`. */
export function blendPattern(
  shape: ImageShape,
  maskFile: string | undefined,
  maskKey: string | undefined,
  patternSeed: number,
): Float64Array {
  if (maskFile) return readMaskFile(maskFile, maskKey, shape, false, true);
  const rng = new Rng(patternSeed);
  const out = new Float64Array(shape.height * shape.width * shape.channels);
  for (let i = 0; i < out.length; i++) out[i] = rng.int(256);
  return out;
}
