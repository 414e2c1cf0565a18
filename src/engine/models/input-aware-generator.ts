// The input-aware attack's two encoder-decoder networks (Nguyen & Tran, "Input-Aware Dynamic Backdoor
// Attack", NeurIPS 2020): the pattern generator G (as many output channels as the image) and the mask
// generator M (one). Both are the authors' `Generator` (VinAIResearch/input-aware-backdoor-attack-release,
// networks/models.py), which BackdoorBench's attack/inputaware.py copies as `InputAwareGenerator`:
//   `steps` times: Conv2dBlock(c, c'), Conv2dBlock(c', c'), MaxPool 2x2 (channels 16, 32 for MNIST; 32, 64, 128 else),
//   Conv2dBlock(c, c) in the middle, then `steps` times: bilinear x2 upsampling (align_corners=False),
//   Conv2dBlock(c, c), Conv2dBlock(c, c / 2) (the last one to the output channels, without ReLU),
//   and out = tanh(x) / (2 + 1e-7) + 0.5, in (0, 1).
// Conv2dBlock is a 3x3 convolution with bias (padding 1), BatchNorm2d(eps 1e-5, momentum 0.05) and a ReLU.
// The networks see normalised images (the data loader's Normalize: CIFAR-10's mean and std for colour
// images, 0.5 / 0.5 for grey ones, BackdoorBench's get_dataset_normalization); the mask goes through
// threshold(m) = tanh(20 m - 10) / (2 + 1e-7) + 0.5. Parameters are named as PyTorch's state_dict
// (`convblock_down_0.conv2d.weight`, ...), initialised as PyTorch's defaults (uniform +-1/sqrt(fan_in) for
// conv weights and biases, BN weight 1 and bias 0) from a seeded Rng.
import * as tf from '@tensorflow/tfjs-core';
import { batchNormEval, batchNormReluEval, batchNormReluTrain, batchNormTrain, conv2d } from '../ops';
import { Rng } from '../rng';
import { InputError, type NamedTensor, type StateDict } from '../types';
import { ParamSet } from './params';

/** BatchNorm2d(out_c, eps=1e-5, momentum=0.05) of the generators' Conv2dBlock. */
export const GENERATOR_BN = { eps: 1e-5, momentum: 0.05 } as const;
/** The generators' _EPSILON in tanh(x) / (2 + eps) + 0.5. */
export const GENERATOR_EPSILON = 1e-7;

/** BackdoorBench's get_dataset_normalization: CIFAR-10's for colour images, 0.5 / 0.5 for grey (MNIST). */
const CIFAR10_NORMALIZATION = { mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.243, 0.261] };
const GREY_NORMALIZATION = { mean: [0.5], std: [0.5] };

export interface GeneratorConfig {
  /** Channels of the first block (16 for MNIST, 32 else) and the number of down/up steps (2, 3). */
  readonly channelInit: number;
  readonly steps: number;
  readonly channels: number;
  readonly height: number;
  readonly width: number;
  /** The data loader's normalisation the networks were trained with, per channel. */
  readonly mean: readonly number[];
  readonly std: readonly number[];
}

/** The authors' choice for this image shape: the MNIST generator for grey images, the CIFAR one else. */
export function generatorConfigFor(shape: { height: number; width: number; channels: number }): GeneratorConfig {
  const grey = shape.channels === 1;
  const steps = grey ? 2 : 3;
  const side = 2 ** steps;
  if (shape.channels !== 1 && shape.channels !== 3)
    throw new InputError(`the input-aware generator takes 1- or 3-channel images, got ${shape.channels} channels`);
  if (shape.height % side !== 0 || shape.width % side !== 0)
    throw new InputError(
      `the input-aware generator halves the image ${steps} times: its sides must be multiples of ${side}, got ${shape.height}x${shape.width}`,
    );
  const norm = grey ? GREY_NORMALIZATION : CIFAR10_NORMALIZATION;
  return { channelInit: grey ? 16 : 32, steps, channels: shape.channels, height: shape.height, width: shape.width, ...norm };
}

interface Block {
  readonly name: string;
  readonly relu: boolean;
}
type Layer = Block | 'down' | 'up';

/** One generator: G (outChannels = the image's channels) or M (1). */
export interface Generator {
  readonly params: ParamSet;
  readonly outChannels: number;
  /** x: normalised NHWC images; the output is in (0, 1). `training` uses batch statistics and updates the running ones. */
  forward(x: tf.Tensor4D, training: boolean): tf.Tensor4D;
  dispose(): void;
}

/** The authors' module list for this configuration (the order of PyTorch's state_dict). */
function layersOf(cfg: GeneratorConfig, outChannels: number, p: ParamSet, rng: Rng): Layer[] {
  const layers: Layer[] = [];
  const block = (name: string, cin: number, cout: number, relu = true): void => {
    p.conv(`${name}.conv2d`, 3, cin, cout, rng);
    p.convBias(`${name}.conv2d`, cout);
    // PyTorch's default Conv2d init: weight and bias uniform in +-1/sqrt(fan_in).
    const bound = 1 / Math.sqrt(cin * 9);
    for (const suffix of ['weight', 'bias']) {
      const v = p.get(`${name}.conv2d.${suffix}`);
      const values = new Float32Array(v.size);
      for (let i = 0; i < values.length; i++) values[i] = (rng.next() * 2 - 1) * bound;
      tf.tidy(() => v.assign(tf.tensor(values, v.shape)));
    }
    p.batchNorm(`${name}.batch_norm`, cout);
    layers.push({ name, relu });
  };
  let current = cfg.channels;
  let next = cfg.channelInit;
  for (let step = 0; step < cfg.steps; step++) {
    block(`convblock_down_${2 * step}`, current, next);
    block(`convblock_down_${2 * step + 1}`, next, next);
    layers.push('down');
    if (step < cfg.steps - 1) {
      current = next;
      next *= 2;
    }
  }
  block('convblock_middle', next, next);
  current = next;
  next = current / 2;
  for (let step = 0; step < cfg.steps; step++) {
    layers.push('up');
    block(`convblock_up_${2 * step}`, current, current);
    block(`convblock_up_${2 * step + 1}`, current, next, step !== cfg.steps - 1);
    current = next;
    next = next / 2;
    if (step === cfg.steps - 2) next = outChannels;
  }
  return layers;
}

/**
 * nn.Upsample(scale_factor=2, mode='bilinear', align_corners=False) along H and W: output row 2i is
 * 0.75 x[i] + 0.25 x[i-1] and 2i+1 is 0.75 x[i] + 0.25 x[i+1], the edges clamped (the same along W).
 * Written as two loops over plain arrays with its adjoint as the gradient: tfjs's resizeBilinear gradient
 * on wasm ignores halfPixelCenters, and the same arithmetic from slices and concatenations is ~10x slower.
 */
export function upsampleBilinear2x(x: tf.Tensor4D): tf.Tensor4D {
  const [b, h, w, c] = x.shape;
  const up = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const input = args[0] as tf.Tensor;
    const out = new Float32Array(b * 4 * h * w * c);
    resample2x(input.dataSync() as Float32Array, out, b, h, w, c, false);
    return {
      value: tf.tensor4d(out, [b, 2 * h, 2 * w, c]),
      gradFunc: (dy: tf.Tensor) => {
        const dx = new Float32Array(b * h * w * c);
        resample2x(dx, dy.dataSync() as Float32Array, b, h, w, c, true);
        return tf.tensor4d(dx, [b, h, w, c]);
      },
    };
  });
  return up(x) as tf.Tensor4D;
}

/** The x2 resampling (adjoint: accumulate `big` into `small`); small is [b, h, w, c], big [b, 2h, 2w, c]. */
function resample2x(small: Float32Array, big: Float32Array, b: number, h: number, w: number, c: number, adjoint: boolean): void {
  const W2 = 2 * w;
  const taps = (i: number, n: number, odd: number): [number, number] => [i, odd ? Math.min(i + 1, n - 1) : Math.max(i - 1, 0)];
  for (let n = 0; n < b; n++) {
    const s0 = n * h * w * c;
    const b0 = n * 4 * h * w * c;
    for (let oy = 0; oy < 2 * h; oy++) {
      const [y0, y1] = taps(oy >> 1, h, oy & 1);
      for (let ox = 0; ox < W2; ox++) {
        const [x0, x1] = taps(ox >> 1, w, ox & 1);
        const o = b0 + (oy * W2 + ox) * c;
        const a = s0 + (y0 * w + x0) * c; // 0.75 * 0.75
        const bb = s0 + (y0 * w + x1) * c; // 0.75 * 0.25
        const cc = s0 + (y1 * w + x0) * c; // 0.25 * 0.75
        const d = s0 + (y1 * w + x1) * c; // 0.25 * 0.25
        if (adjoint) {
          for (let k = 0; k < c; k++) {
            const g = big[o + k];
            small[a + k] += 0.5625 * g;
            small[bb + k] += 0.1875 * g;
            small[cc + k] += 0.1875 * g;
            small[d + k] += 0.0625 * g;
          }
        } else {
          // PyTorch's order: along W first within each source row (0.75 a + 0.25 b), then along H.
          for (let k = 0; k < c; k++) {
            const top = Math.fround(Math.fround(0.75 * small[a + k]) + Math.fround(0.25 * small[bb + k]));
            const bottom = Math.fround(Math.fround(0.75 * small[cc + k]) + Math.fround(0.25 * small[d + k]));
            big[o + k] = Math.fround(0.75 * top) + Math.fround(0.25 * bottom);
          }
        }
      }
    }
  }
}

/** A freshly initialised generator (seeded, PyTorch's default init). */
export function createGenerator(cfg: GeneratorConfig, outChannels: number, rng: Rng): Generator {
  const p = new ParamSet();
  const layers = layersOf(cfg, outChannels, p, rng);
  const batchNorm = (name: string, x: tf.Tensor4D, training: boolean, relu: boolean): tf.Tensor4D => {
    const gamma = p.get(`${name}.weight`) as tf.Tensor1D;
    const beta = p.get(`${name}.bias`) as tf.Tensor1D;
    const rm = p.get(`${name}.running_mean`) as tf.Variable<tf.Rank.R1>;
    const rv = p.get(`${name}.running_var`) as tf.Variable<tf.Rank.R1>;
    const bn = { gamma, beta, eps: GENERATOR_BN.eps };
    if (!training) return (relu ? batchNormReluEval : batchNormEval)(x, bn, rm, rv);
    const { y, mean, variance } = (relu ? batchNormReluTrain : batchNormTrain)(x, bn);
    const n = x.shape[0] * x.shape[1] * x.shape[2];
    const m = GENERATOR_BN.momentum;
    tf.tidy(() => {
      const unbiased = tf.mul(variance, n / Math.max(n - 1, 1));
      rm.assign(tf.add(tf.mul(rm, 1 - m), tf.mul(mean, m)));
      rv.assign(tf.add(tf.mul(rv, 1 - m), tf.mul(unbiased, m)));
    });
    return y;
  };
  const forward = (x: tf.Tensor4D, training: boolean): tf.Tensor4D =>
    tf.tidy(() => {
      let h = x;
      for (const layer of layers) {
        if (layer === 'down') h = tf.maxPool(h, 2, 2, 'valid');
        else if (layer === 'up') h = upsampleBilinear2x(h);
        else {
          const w = p.get(`${layer.name}.conv2d.weight`) as unknown as tf.Tensor4D;
          h = tf.add(conv2d(h, w, 1, 1), p.get(`${layer.name}.conv2d.bias`));
          h = batchNorm(`${layer.name}.batch_norm`, h, training, layer.relu);
        }
      }
      return tf.add(tf.div(tf.tanh(h), 2 + GENERATOR_EPSILON), 0.5);
    });
  return { params: p, outChannels, forward, dispose: () => p.dispose() };
}

/** The generators' threshold on M's output: tanh(20 m - 10) / (2 + 1e-7) + 0.5. */
export function maskThreshold(m: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => tf.add(tf.div(tf.tanh(tf.sub(tf.mul(m, 20), 10)), 2 + GENERATOR_EPSILON), 0.5));
}

/** The data loader's Normalize: (x - mean) / std per channel, x NHWC in [0, 1]. */
export function normalizeImages(x: tf.Tensor4D, cfg: GeneratorConfig): tf.Tensor4D {
  return tf.tidy(() => tf.div(tf.sub(x, tf.tensor1d(cfg.mean as number[])), tf.tensor1d(cfg.std as number[])));
}

/** The attack's two networks: G makes the pattern, M the mask. */
export interface InputAwareNets {
  readonly config: GeneratorConfig;
  readonly pattern: Generator;
  readonly mask: Generator;
  dispose(): void;
}

export function createInputAwareNets(cfg: GeneratorConfig, rng: Rng): InputAwareNets {
  const pattern = createGenerator(cfg, cfg.channels, rng);
  const mask = createGenerator(cfg, 1, rng);
  return { config: cfg, pattern, mask, dispose: () => (pattern.dispose(), mask.dispose()) };
}

export interface TriggeredBatch {
  /** x + m(source) * (G(source) - x), NHWC in [0, 1]. */
  readonly images: tf.Tensor4D;
  /** G(source) and threshold(M(source)), both in (0, 1). */
  readonly patterns: tf.Tensor4D;
  readonly masks: tf.Tensor4D;
}

/**
 * The trigger of `source` (its own images: create_bd; other images: create_cross) blended into `x`, both
 * NHWC in [0, 1]. The original blends the normalised images with the normalised pattern; normalising is
 * affine per channel, so blending in [0, 1] and normalising after gives the same. G runs in training mode
 * when `trainPattern`; M always in evaluation mode (it is frozen once trained).
 */
export function triggerBatch(nets: InputAwareNets, x: tf.Tensor4D, source: tf.Tensor4D, trainPattern: boolean): TriggeredBatch {
  return tf.tidy(() => {
    const src = normalizeImages(source, nets.config);
    const patterns = nets.pattern.forward(src, trainPattern);
    const masks = maskThreshold(nets.mask.forward(src, false));
    const images = tf.add(x, tf.mul(tf.sub(patterns, x), masks)) as tf.Tensor4D;
    return { images, patterns, masks };
  });
}

const PREFIX = { pattern: 'netG.', mask: 'netM.' } as const;

/** Both networks as one PyTorch-style state_dict (netG.*, netM.*), plus the configuration for the file's metadata. */
export function inputAwareStateDict(nets: InputAwareNets): { stateDict: StateDict; metadata: Record<string, string> } {
  const sd: StateDict = new Map();
  for (const which of ['pattern', 'mask'] as const) for (const [k, v] of nets[which].params.toStateDict()) sd.set(PREFIX[which] + k, v);
  return { stateDict: sd, metadata: { inputAware: JSON.stringify(nets.config) } };
}

/** The networks of a state_dict written by inputAwareStateDict; InputError naming `file` when it is not one. */
export function inputAwareNetsFrom(sd: StateDict, metadata: Record<string, string>, file: string): InputAwareNets {
  const raw = metadata['inputAware'];
  if (!raw) throw new InputError('not an input-aware trigger generator (no inputAware metadata)', file);
  let cfg: GeneratorConfig;
  try {
    const parsed = JSON.parse(raw) as GeneratorConfig;
    cfg = generatorConfigFor(parsed);
    if (parsed.channelInit !== cfg.channelInit || parsed.steps !== cfg.steps) throw new Error('unexpected channelInit/steps');
    cfg = { ...cfg, mean: parsed.mean, std: parsed.std };
    if (cfg.mean.length !== cfg.channels || cfg.std.length !== cfg.channels) throw new Error('mean/std do not match the channels');
  } catch (e) {
    throw new InputError(`bad input-aware generator metadata: ${(e as Error).message}`, file);
  }
  const nets = createInputAwareNets(cfg, new Rng(0)); // weights replaced just below
  try {
    for (const which of ['pattern', 'mask'] as const) {
      const part: StateDict = new Map<string, NamedTensor>();
      for (const [k, v] of sd) if (k.startsWith(PREFIX[which])) part.set(k.slice(PREFIX[which].length), v);
      nets[which].params.loadStateDict(part, file);
    }
  } catch (e) {
    nets.dispose();
    throw e;
  }
  return nets;
}
