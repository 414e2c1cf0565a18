// VGG-16 with batch norm in BackdoorBench's CIFAR form (SCLBD/BackdoorBench models/vgg.py, from
// kuangliu/pytorch-cifar; Simonyan, Zisserman: "Very Deep Convolutional Networks for Large-Scale Image
// Recognition", ICLR 2015), with its state_dict key names: `features` is one Sequential of
// conv3x3 (with bias) -> BatchNorm2d -> ReLU per layer and a 2x2 max pool after each of the five blocks
// (64, 64 | 128, 128 | 256 x 3 | 512 x 3 | 512 x 3), numbered as PyTorch numbers its children (conv at
// features.{i}, its batch norm at features.{i+1}, the ReLU i+2, a pool one index), then an identity
// AvgPool2d(1, 1), and one linear layer `classifier` over the flattened features: 512 inputs on 32x32
// images (the source fixes 512 and 10 classes; here the input is 512 x (side / 32)^2, the classes the
// data's). Not torchvision's vgg16_bn (adaptive 7x7 pooling, a three-layer classifier).
//
// Attention groups: the outputs of blocks 2, 3 and 4 before their pool (16x16, 8x8, 4x4 on 32x32 images),
// the sizes of the ResNets' layer2..layer4; block 5's 2x2 map is too coarse to compare.
import * as tf from '@tensorflow/tfjs-core';
import { conv2d } from '../ops';
import type { Rng } from '../rng';
import type { ModelSpec } from '../types';
import { ParamSet } from './params';
import type { ForwardResult, Model } from './model';

type VggSpec = Exclude<ModelSpec, { arch: 'wrn' | 'cnn' }>;

/** Output widths of the convolutions, block by block (BackdoorBench's cfg["VGG16"] without the pools). */
export const VGG16_BLOCKS: readonly (readonly number[])[] = [
  [64, 64],
  [128, 128],
  [256, 256, 256],
  [512, 512, 512],
  [512, 512, 512],
];

/** The blocks whose (pre-pool) outputs are the attention groups, 0-based. */
const GROUP_BLOCKS = [1, 2, 3];

interface ConvLayer {
  /** `features.{i}`: the convolution; `features.{i+1}`: its batch norm. */
  readonly conv: string;
  readonly bn: string;
  readonly cin: number;
  readonly cout: number;
}

/** The convolutions of each block with their state-dict names. */
export function vgg16Layers(inChannels: number): ConvLayer[][] {
  let index = 0;
  let cin = inChannels;
  return VGG16_BLOCKS.map((widths) => {
    const layers = widths.map((cout) => {
      const l = { conv: `features.${index}`, bn: `features.${index + 1}`, cin, cout };
      index += 3;
      cin = cout;
      return l;
    });
    index += 1; // the block's max pool
    return layers;
  });
}

export function createVgg16Bn(spec: VggSpec, rng: Rng): Model {
  const p = new ParamSet();
  const blocks = vgg16Layers(spec.inChannels);
  for (const l of blocks.flat()) {
    p.conv(l.conv, 3, l.cin, l.cout, rng);
    p.convBias(l.conv, l.cout);
    p.batchNorm(l.bn, l.cout);
  }
  const side = spec.imageSize / 32;
  const flat = 512 * side * side;
  p.linear('classifier', flat, spec.numClasses, rng);

  const forward = (x: tf.Tensor4D, training: boolean): ForwardResult => {
    let h = x;
    const groups: tf.Tensor4D[] = [];
    blocks.forEach((layers, b) => {
      for (const l of layers) {
        const z = tf.add(conv2d(h, p.get(`${l.conv}.weight`) as unknown as tf.Tensor4D, 1, 1), p.get(`${l.conv}.bias`)) as tf.Tensor4D;
        h = p.applyBatchNorm(l.bn, z, training, true);
      }
      if (GROUP_BLOCKS.includes(b)) groups.push(h);
      h = tf.maxPool(h, 2, 2, 'valid');
    });
    // Flatten in PyTorch's NCHW order (an identity on 32x32 inputs, where the map is 1x1).
    const features = tf.reshape(tf.transpose(h, [0, 3, 1, 2]), [h.shape[0], flat]) as tf.Tensor2D;
    const logits = tf.add(tf.matMul(features, p.get('classifier.weight') as tf.Tensor2D), p.get('classifier.bias')) as tf.Tensor2D;
    return { groups, features, logits };
  };
  return { spec, params: p, forward, dispose: () => p.dispose() };
}
