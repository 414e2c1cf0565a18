// Models: WideResNet (NAD's WRN-16-1 and friends), a small CNN for 28x28 grayscale digits, and
// BackdoorBench's PreAct-ResNet-18, ResNet-18 and VGG-16-BN (resnet.ts, vgg.ts). Each returns the
// activations of its three groups (for attention distillation), the classifier's input and the logits.
import * as tf from '@tensorflow/tfjs-core';
import { conv2d } from '../ops';
import { Rng } from '../rng';
import { InputError, type FixedArch, type ModelSpec, type StateDict } from '../types';
import { ParamSet } from './params';
import type { ForwardResult, Model } from './model';
import { createPreActResNet18, createResNet18 } from './resnet';
import { createVgg16Bn } from './vgg';
import { FIXED_NAMES } from './size';

export type { ForwardResult, Model } from './model';
export { structureOf, type ModelStructure } from './structure';

export { FIXED_ARCHS, type FixedArch } from '../types';
export { describeSpec, modelElements } from './size';

export function validateSpec(spec: ModelSpec): void {
  if (spec.arch === 'wrn' && ((spec.depth - 4) % 6 !== 0 || spec.depth < 10 || spec.widen < 1)) {
    throw new InputError(
      `WideResNet depth must be 6n+4 (10, 16, 22, 28, 40...) and widen >= 1; got depth ${spec.depth}, widen ${spec.widen}`,
    );
  }
  if (spec.arch === 'vgg16-bn' && (spec.imageSize % 32 !== 0 || spec.imageSize < 32)) {
    throw new InputError(`VGG-16-BN halves the image five times: its side must be a multiple of 32; got ${spec.imageSize}`);
  }
  if ((spec.arch === 'preact-resnet18' || spec.arch === 'resnet18') && spec.imageSize < 8) {
    throw new InputError(`${FIXED_NAMES[spec.arch]} halves the image three times: its side must be at least 8; got ${spec.imageSize}`);
  }
  if (spec.numClasses < 2) throw new InputError(`a classifier needs at least 2 classes; got ${spec.numClasses}`);
}

/** A freshly initialised model (seeded, NAD's init). */
export function createModel(spec: ModelSpec, seed: number): Model {
  validateSpec(spec);
  const rng = new Rng(seed);
  switch (spec.arch) {
    case 'wrn':
      return createWrn(spec, rng);
    case 'cnn':
      return createCnn(spec, rng);
    case 'preact-resnet18':
      return createPreActResNet18(spec, rng);
    case 'resnet18':
      return createResNet18(spec, rng);
    case 'vgg16-bn':
      return createVgg16Bn(spec, rng);
    default: {
      const unknown: never = spec;
      throw new InputError(`unknown architecture ${JSON.stringify(unknown)}`);
    }
  }
}

/** A model with weights from a PyTorch-layout state_dict; shape mismatches name the file and the keys. */
export function modelFromStateDict(spec: ModelSpec, sd: StateDict, file: string): Model {
  const m = createModel(spec, 0);
  try {
    m.params.loadStateDict(sd, file);
  } catch (e) {
    m.dispose();
    throw e;
  }
  return m;
}

function createWrn(spec: Extract<ModelSpec, { arch: 'wrn' }>, rng: Rng): Model {
  const p = new ParamSet();
  const n = (spec.depth - 4) / 6;
  const widths = [16, 16 * spec.widen, 32 * spec.widen, 64 * spec.widen];
  p.conv('conv1', 3, spec.inChannels, widths[0], rng);
  interface Block {
    prefix: string;
    cin: number;
    cout: number;
    stride: number;
  }
  const groups: Block[][] = [];
  for (let g = 0; g < 3; g++) {
    const blocks: Block[] = [];
    for (let j = 0; j < n; j++) {
      const cin = j === 0 ? widths[g] : widths[g + 1];
      const cout = widths[g + 1];
      const prefix = `block${g + 1}.layer.${j}`;
      // Parameter order follows PyTorch's module registration order (bn1, conv1, bn2, conv2, convShortcut).
      p.batchNorm(prefix + '.bn1', cin);
      p.conv(prefix + '.conv1', 3, cin, cout, rng);
      p.batchNorm(prefix + '.bn2', cout);
      p.conv(prefix + '.conv2', 3, cout, cout, rng);
      if (cin !== cout) p.conv(prefix + '.convShortcut', 1, cin, cout, rng);
      blocks.push({ prefix, cin, cout, stride: j === 0 ? (g === 0 ? 1 : 2) : 1 });
    }
    groups.push(blocks);
  }
  p.batchNorm('bn1', widths[3]);
  p.linear('fc', widths[3], spec.numClasses, rng);

  const w = (name: string): tf.Tensor4D => p.get(name) as tf.Variable<tf.Rank.R4> as unknown as tf.Tensor4D;
  const forward = (x: tf.Tensor4D, training: boolean): ForwardResult => {
    let h = conv2d(x, w('conv1.weight'), 1, 1);
    const acts: tf.Tensor4D[] = [];
    for (const blocks of groups) {
      for (const b of blocks) {
        // NAD's BasicBlock: pre-activation; the shortcut conv sees the activated input when shapes differ.
        // bn -> relu -> 3x3 conv runs as one kernel in evaluation mode where nothing else needs the activation.
        let out: tf.Tensor4D;
        let shortcut = h;
        if (b.cin === b.cout && b.stride === 1) {
          out = p.bnReluConv3x3(b.prefix + '.bn1', h, w(b.prefix + '.conv1.weight'), training);
        } else {
          const a = p.applyBatchNorm(b.prefix + '.bn1', h, training, true);
          out = conv2d(a, w(b.prefix + '.conv1.weight'), b.stride, 1);
          shortcut = b.cin === b.cout ? h : conv2d(a, w(b.prefix + '.convShortcut.weight'), b.stride, 0);
        }
        out = p.bnReluConv3x3(b.prefix + '.bn2', out, w(b.prefix + '.conv2.weight'), training);
        h = tf.add(out, shortcut);
      }
      acts.push(h);
    }
    const top = p.applyBatchNorm('bn1', h, training, true);
    const pooled = tf.mean(top, [1, 2]) as tf.Tensor2D;
    const logits = tf.add(tf.matMul(pooled, p.get('fc.weight') as tf.Tensor2D), p.get('fc.bias')) as tf.Tensor2D;
    return { groups: acts, features: pooled, logits };
  };
  return { spec, params: p, forward, dispose: () => p.dispose() };
}

function createCnn(spec: Extract<ModelSpec, { arch: 'cnn' }>, rng: Rng): Model {
  const p = new ParamSet();
  // Three conv-BN-ReLU stages (the three "groups" whose attention is distilled), then a linear layer
  // over the flattened last stage: spatial detail helps small digits more than global pooling does.
  const widths = [spec.inChannels, 32, 64, 64];
  const strides = [1, 2, 2];
  let side = spec.imageSize;
  for (let i = 0; i < 3; i++) {
    p.conv(`conv${i + 1}`, 3, widths[i], widths[i + 1], rng);
    p.batchNorm(`bn${i + 1}`, widths[i + 1]);
    side = Math.floor((side + 2 - 3) / strides[i]) + 1;
  }
  const flat = side * side * widths[3];
  p.linear('fc', flat, spec.numClasses, rng);
  const forward = (x: tf.Tensor4D, training: boolean): ForwardResult => {
    let h = x;
    const acts: tf.Tensor4D[] = [];
    for (let i = 0; i < 3; i++) {
      h = conv2d(h, p.get(`conv${i + 1}.weight`) as unknown as tf.Tensor4D, strides[i], 1);
      h = p.applyBatchNorm(`bn${i + 1}`, h, training, true);
      acts.push(h);
    }
    // Flatten in PyTorch's NCHW order so exported fc weights mean the same thing there.
    const flatX = tf.reshape(tf.transpose(h, [0, 3, 1, 2]), [h.shape[0], flat]) as tf.Tensor2D;
    const logits = tf.add(tf.matMul(flatX, p.get('fc.weight') as tf.Tensor2D), p.get('fc.bias')) as tf.Tensor2D;
    return { groups: acts, features: flatX, logits };
  };
  return { spec, params: p, forward, dispose: () => p.dispose() };
}

/** The model the paper uses for a dataset: WRN-16-1 for 32x32 colour images, the small CNN for small grayscale ones. */
/** An architecture without the sizes, which come from the data: `auto`, `cnn`, a fixed-width one, or a WRN's depth and width. */
export type ArchChoice = 'auto' | 'cnn' | FixedArch | { readonly arch: 'wrn'; readonly depth: number; readonly widen: number };

type DataShape = { readonly height: number; readonly width: number; readonly channels: number; readonly numClasses: number };

/** The full spec of `arch` for this data: classes, channels and image size are the data's. */
export function specFor(arch: ArchChoice | ModelSpec, data: DataShape): ModelSpec {
  if (data.height !== data.width) throw new InputError(`images must be square; got ${data.height}x${data.width}`);
  const sizes = { numClasses: data.numClasses, inChannels: data.channels, imageSize: data.height };
  if (arch === 'auto')
    return data.channels === 1 && data.height <= 28 ? { arch: 'cnn', ...sizes } : { arch: 'wrn', depth: 16, widen: 1, ...sizes };
  if (arch === 'cnn') return { arch: 'cnn', ...sizes };
  if (typeof arch === 'string') return { arch, ...sizes };
  if (arch.arch !== 'wrn' && arch.arch !== 'cnn') return { arch: arch.arch, ...sizes };
  return arch.arch === 'wrn' ? { arch: 'wrn', depth: arch.depth, widen: arch.widen, ...sizes } : { arch: 'cnn', ...sizes };
}

export function defaultSpecFor(data: DataShape): ModelSpec {
  return specFor('auto', data);
}

/**
 * Logits in evaluation mode through ops that all have gradients with respect to x and to the parameters.
 * The evaluation-mode forward pass of the WideResNet fuses batch norm, ReLU and the 3x3 convolution into one
 * wasm kernel without a gradient (ParamSet.bnReluConv3x3); this runs the same arithmetic from the separate
 * differentiable ops (same logits, checked in test/unit/defense-neural-cleanse.test.ts). Input gradients
 * (Neural Cleanse, PGD, I-BAU) go through here. An architecture whose evaluation forward pass has no fused
 * kernel needs no case here.
 */
export function differentiableLogits(model: Model, x: tf.Tensor4D): tf.Tensor2D {
  if (model.spec.arch !== 'wrn') return model.forward(x, false).logits;
  const p = model.params;
  const pooled = differentiableFeatures(model, x);
  return tf.add(tf.matMul(pooled, p.get('fc.weight') as tf.Tensor2D), p.get('fc.bias')) as tf.Tensor2D;
}

/** The classifier's input (`ForwardResult.features`) through the same differentiable ops (Trojan's neuron targets). */
export function differentiableFeatures(model: Model, x: tf.Tensor4D): tf.Tensor2D {
  const spec = model.spec;
  if (spec.arch !== 'wrn') return model.forward(x, false).features;
  const p = model.params;
  const w = (name: string): tf.Tensor4D => p.get(name) as unknown as tf.Tensor4D;
  const n = (spec.depth - 4) / 6;
  const widths = [16, 16 * spec.widen, 32 * spec.widen, 64 * spec.widen];
  let h = conv2d(x, w('conv1.weight'), 1, 1);
  for (let g = 0; g < 3; g++) {
    for (let j = 0; j < n; j++) {
      const cin = j === 0 ? widths[g] : widths[g + 1];
      const cout = widths[g + 1];
      const stride = j === 0 ? (g === 0 ? 1 : 2) : 1;
      const prefix = `block${g + 1}.layer.${j}`;
      let out: tf.Tensor4D, shortcut: tf.Tensor4D;
      if (cin === cout && stride === 1) {
        // bn1's activation feeds conv1 alone: fused (never stored), as bn2's always is.
        out = p.bnReluConv3x3Grad(`${prefix}.bn1`, h, w(`${prefix}.conv1.weight`));
        shortcut = h;
      } else {
        const a = p.applyBatchNorm(`${prefix}.bn1`, h, false, true);
        out = conv2d(a, w(`${prefix}.conv1.weight`), stride, 1);
        shortcut = cin === cout ? h : conv2d(a, w(`${prefix}.convShortcut.weight`), stride, 0);
      }
      out = p.bnReluConv3x3Grad(`${prefix}.bn2`, out, w(`${prefix}.conv2.weight`));
      h = tf.add(out, shortcut);
    }
  }
  return tf.mean(p.applyBatchNorm('bn1', h, false, true), [1, 2]) as tf.Tensor2D;
}
