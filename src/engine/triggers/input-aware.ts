// The input-aware trigger (Nguyen & Tran, NeurIPS 2020): each image gets its own trigger, made by the
// attack's trained generators, x + threshold(M(x)) * (G(x) - x) with G and M in evaluation mode
// (src/engine/models/input-aware-generator.ts). The networks live in a safetensors file (netG.*, netM.*,
// the configuration in its metadata): trigger.safetensors of the run that trained them, named by the
// trigger's `maskFile`. The result is stored as BackdoorBench stores its bd_test images: blended in the
// normalised space the loaders give (create_bd), denormalised in float32, then ToPILImage's
// `x.mul(255).byte()` (truncation). The normalise/denormalise round trip lands just below an integer for
// many pixels the mask leaves alone, which truncation then lowers by one, in the original too.
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { parseSafetensors } from '../checkpoint/safetensors';
import { inputAwareNetsFrom, maskThreshold, normalizeImages, type InputAwareNets } from '../models/input-aware-generator';
import { InputError } from '../types';
import type { ImageShape } from './patterns';

/** Images per forward pass of the generators when stamping many. */
const STAMP_BATCH = 128;

/** Stamp `count` uint8 HWC images in place with the networks' per-image triggers. */
export function stampInputAware(nets: InputAwareNets, images: Uint8Array, count: number, shape: ImageShape): void {
  const { height: h, width: w, channels: c } = shape;
  const cfg = nets.config;
  if (h !== cfg.height || w !== cfg.width || c !== cfg.channels)
    throw new InputError(`the input-aware generator was trained on ${cfg.height}x${cfg.width}x${cfg.channels} images, not ${h}x${w}x${c}`);
  const size = h * w * c;
  const buf = new Float32Array(Math.min(count, STAMP_BATCH) * size);
  for (let start = 0; start < count; start += STAMP_BATCH) {
    const n = Math.min(STAMP_BATCH, count - start);
    const view = images.subarray(start * size, (start + n) * size);
    const xs = buf.subarray(0, n * size);
    for (let i = 0; i < xs.length; i++) xs[i] = view[i] / 255;
    const out = tf.tidy(() => {
      const x = normalizeImages(tf.tensor4d(xs, [n, h, w, c]), cfg);
      const pattern = normalizeImages(nets.pattern.forward(x, false), cfg);
      const mask = maskThreshold(nets.mask.forward(x, false));
      const bd = tf.add(x, tf.mul(tf.sub(pattern, x), mask));
      return tf.add(tf.mul(bd, tf.tensor1d(cfg.std as number[])), tf.tensor1d(cfg.mean as number[])).dataSync() as Float32Array;
    });
    for (let i = 0; i < out.length; i++) view[i] = Math.min(255, Math.max(0, Math.trunc(out[i] * 255)));
  }
}

/**
 * Stamps with the networks of a trigger generator file, read and checked once; the networks are built for
 * each call and disposed after it, so a trigger holds no tensors.
 */
export function inputAwareStamper(file: string, shape: ImageShape): (images: Uint8Array, count: number) => void {
  const { stateDict, metadata } = readGeneratorFile(file);
  inputAwareNetsFrom(stateDict, metadata, file).dispose(); // checks the file and the shape now, not at the first image
  const cfgShape = JSON.parse(metadata['inputAware']) as ImageShape;
  if (cfgShape.height !== shape.height || cfgShape.width !== shape.width || cfgShape.channels !== shape.channels)
    throw new InputError(
      `the input-aware generator was trained on ${cfgShape.height}x${cfgShape.width}x${cfgShape.channels} images, not ${shape.height}x${shape.width}x${shape.channels}`,
      file,
    );
  return (images, count) => {
    const nets = inputAwareNetsFrom(stateDict, metadata, file);
    try {
      stampInputAware(nets, images, count, shape);
    } finally {
      nets.dispose();
    }
  };
}

/** The networks of a trigger generator file; InputError naming the file when it cannot be read. */
export function loadInputAwareNets(file: string): InputAwareNets {
  const { stateDict, metadata } = readGeneratorFile(file);
  return inputAwareNetsFrom(stateDict, metadata, file);
}

function readGeneratorFile(file: string): ReturnType<typeof parseSafetensors> {
  if (!file)
    throw new InputError(
      'the inputAware trigger needs its generator file (trigger.safetensors of the run that trained the attack) as its maskFile',
    );
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    throw new InputError(`cannot read the input-aware trigger generator: ${(e as Error).message}`, file);
  }
  return parseSafetensors(bytes, file);
}
