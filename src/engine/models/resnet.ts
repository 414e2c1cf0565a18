// BackdoorBench's two CIFAR ResNet-18s, with their state_dict key names (SCLBD/BackdoorBench; Wu et al.,
// "BackdoorBench: A Comprehensive Benchmark of Backdoor Learning", NeurIPS 2022 Datasets and Benchmarks):
//  - PreActResNet18 (models/preact_resnet.py, BackdoorBench's default model; He, Zhang, Ren, Sun: "Identity
//    Mappings in Deep Residual Networks", ECCV 2016): a 3x3 stem conv1 (no batch norm after it), four
//    stages layer1..layer4 of two PreActBlocks (bn1 -> relu -> conv1 -> bn2 -> relu -> conv2, plus the
//    identity or, where the shape changes, a 1x1 `shortcut.0` conv of the activated input), then global
//    average pooling and `linear`. No batch norm after layer4: the classifier reads the residual sum.
//  - ResNet-18 in its CIFAR form (kuangliu/pytorch-cifar models/resnet.py, which BackdoorBench's
//    PreActResNet file is derived from; He et al., CVPR 2016): 3x3 stem conv1 + bn1 + ReLU, no max pool;
//    BasicBlocks conv1 -> bn1 -> relu -> conv2 -> bn2, plus the identity or `shortcut.0` (1x1 conv) +
//    `shortcut.1` (batch norm), then ReLU; average pooling and `linear`. (BackdoorBench's `resnet18` model
//    name is torchvision's ImageNet layout, 7x7 stem and max pool, keys `fc` and `downsample`: not this.)
// Widths 64, 128, 256, 512, strides 1, 2, 2, 2. The pooling is a global mean (AdaptiveAvgPool2d((1, 1)) in
// PreActResNet18; kuangliu's avg_pool2d(4) is the same on 32x32 inputs).
//
// Attention groups: the outputs of layer2, layer3 and layer4 (16x16, 8x8, 4x4 on 32x32 images), early to
// late, so NAD's three betas (500, 1000, 1000) weigh them as the WRN's three groups. layer1 (full
// resolution, right after the stem) is left out as the WRN's stem is. BackdoorBench's nad.py, for
// preactresnet18, distils layer3, layer4 and the pooled output (a 1x1 map, constant once normalised).
import * as tf from '@tensorflow/tfjs-core';
import { conv2d } from '../ops';
import type { Rng } from '../rng';
import type { ModelSpec } from '../types';
import { ParamSet } from './params';
import type { ForwardResult, Model } from './model';

/** The spec of the fixed-width architectures (the ResNets and VGG share one spec shape). */
type ResNetSpec = Exclude<ModelSpec, { arch: 'wrn' | 'cnn' }>;

const WIDTHS = [64, 128, 256, 512] as const;
const BLOCKS_PER_STAGE = 2;

interface Block {
  readonly prefix: string;
  readonly cin: number;
  readonly cout: number;
  readonly stride: number;
  /** A 1x1 convolution on the shortcut (where the stride or the width changes). */
  readonly projection: boolean;
}

/** The blocks of layer1..layer4, in order: `layer{s}.{j}`. */
export function resnet18Blocks(): Block[][] {
  let cin = 64;
  return WIDTHS.map((cout, s) =>
    Array.from({ length: BLOCKS_PER_STAGE }, (_, j) => {
      const stride = j === 0 && s > 0 ? 2 : 1;
      const b = { prefix: `layer${s + 1}.${j}`, cin, cout, stride, projection: stride !== 1 || cin !== cout };
      cin = cout;
      return b;
    }),
  );
}

/** The linear classifier over the pooled features. */
function classify(p: ParamSet, pooled: tf.Tensor2D): tf.Tensor2D {
  return tf.add(tf.matMul(pooled, p.get('linear.weight') as tf.Tensor2D), p.get('linear.bias')) as tf.Tensor2D;
}

const filter = (p: ParamSet, name: string): tf.Tensor4D => p.get(name + '.weight') as unknown as tf.Tensor4D;

/** The last stage's output, as the classifier reads it; its pooled mean is the classifier's input. */
function head(p: ParamSet, groups: tf.Tensor4D[], last: tf.Tensor4D): ForwardResult {
  const features = tf.mean(last, [1, 2]) as tf.Tensor2D;
  return { groups, features, logits: classify(p, features) };
}

export function createPreActResNet18(spec: ResNetSpec, rng: Rng): Model {
  const p = new ParamSet();
  const stages = resnet18Blocks();
  // PyTorch's registration order: conv1, then per block bn1, conv1, bn2, conv2, shortcut; then linear.
  p.conv('conv1', 3, spec.inChannels, 64, rng);
  for (const b of stages.flat()) {
    p.batchNorm(`${b.prefix}.bn1`, b.cin);
    p.conv(`${b.prefix}.conv1`, 3, b.cin, b.cout, rng);
    p.batchNorm(`${b.prefix}.bn2`, b.cout);
    p.conv(`${b.prefix}.conv2`, 3, b.cout, b.cout, rng);
    if (b.projection) p.conv(`${b.prefix}.shortcut.0`, 1, b.cin, b.cout, rng);
  }
  p.linear('linear', 512, spec.numClasses, rng);

  // Only differentiable ops (no fused batch norm + convolution kernel), so differentiableLogits can use it.
  const forward = (x: tf.Tensor4D, training: boolean): ForwardResult => {
    let h = conv2d(x, filter(p, 'conv1'), 1, 1);
    const groups: tf.Tensor4D[] = [];
    stages.forEach((blocks, s) => {
      for (const b of blocks) {
        const a = p.applyBatchNorm(`${b.prefix}.bn1`, h, training, true);
        const shortcut = b.projection ? conv2d(a, filter(p, `${b.prefix}.shortcut.0`), b.stride, 0) : h;
        const mid = p.applyBatchNorm(`${b.prefix}.bn2`, conv2d(a, filter(p, `${b.prefix}.conv1`), b.stride, 1), training, true);
        h = tf.add(conv2d(mid, filter(p, `${b.prefix}.conv2`), 1, 1), shortcut);
      }
      if (s > 0) groups.push(h);
    });
    return head(p, groups, h);
  };
  return { spec, params: p, forward, dispose: () => p.dispose() };
}

export function createResNet18(spec: ResNetSpec, rng: Rng): Model {
  const p = new ParamSet();
  const stages = resnet18Blocks();
  // Registration order: conv1, bn1, then per block conv1, bn1, conv2, bn2, shortcut.0, shortcut.1; linear.
  p.conv('conv1', 3, spec.inChannels, 64, rng);
  p.batchNorm('bn1', 64);
  for (const b of stages.flat()) {
    p.conv(`${b.prefix}.conv1`, 3, b.cin, b.cout, rng);
    p.batchNorm(`${b.prefix}.bn1`, b.cout);
    p.conv(`${b.prefix}.conv2`, 3, b.cout, b.cout, rng);
    p.batchNorm(`${b.prefix}.bn2`, b.cout);
    if (b.projection) {
      p.conv(`${b.prefix}.shortcut.0`, 1, b.cin, b.cout, rng);
      p.batchNorm(`${b.prefix}.shortcut.1`, b.cout);
    }
  }
  p.linear('linear', 512, spec.numClasses, rng);

  const forward = (x: tf.Tensor4D, training: boolean): ForwardResult => {
    let h = p.applyBatchNorm('bn1', conv2d(x, filter(p, 'conv1'), 1, 1), training, true);
    const groups: tf.Tensor4D[] = [];
    stages.forEach((blocks, s) => {
      for (const b of blocks) {
        const mid = p.applyBatchNorm(`${b.prefix}.bn1`, conv2d(h, filter(p, `${b.prefix}.conv1`), b.stride, 1), training, true);
        const out = p.applyBatchNorm(`${b.prefix}.bn2`, conv2d(mid, filter(p, `${b.prefix}.conv2`), 1, 1), training);
        const shortcut = b.projection
          ? p.applyBatchNorm(`${b.prefix}.shortcut.1`, conv2d(h, filter(p, `${b.prefix}.shortcut.0`), b.stride, 0), training)
          : h;
        h = tf.relu(tf.add(out, shortcut)) as tf.Tensor4D;
      }
      if (s > 0) groups.push(h);
    });
    return head(p, groups, h);
  };
  return { spec, params: p, forward, dispose: () => p.dispose() };
}
