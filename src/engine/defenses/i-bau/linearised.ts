// The network linearised at its ReLU pattern, for I-BAU's exact second-order terms (index.ts's header says why
// forward mode). A network of convolutions, evaluation-mode batch norms, ReLUs, max and mean pooling and a linear
// classifier is piecewise linear in its input; at a point x its derivative along t, J t, is the same network run on
// t with every bias and batch-norm shift dropped, each batch norm reduced to its scale gamma / sqrt(var + eps), and
// each nonlinearity fixed to what the forward pass on x chose: a ReLU to its 0/1 mask (1 where its input is
// positive; autograd's ReLU derivative is 0 at 0), a max pool to the position each window's maximum came from.
// `reluMasks` runs the forward pass and records those choices, `tangentLogits` the linearised pass; one walk of each
// architecture (`network`) serves both, so they cannot drift apart. Each walk follows its model's own forward pass
// (src/engine/models/index.ts, resnet.ts, vgg.ts):
//  - WRN (NAD's pre-activation blocks; the shortcut convolution reads the activated input) and the digits CNN;
//  - PreAct-ResNet-18: bn1 -> ReLU -> conv1 (and the 1x1 shortcut.0, which reads that activated input too) ->
//    bn2 -> ReLU -> conv2, plus the shortcut; no batch norm or ReLU after layer4: the pooled residual sum;
//  - ResNet-18: stem conv1 -> bn1 -> ReLU; blocks conv1 -> bn1 -> ReLU -> conv2 -> bn2, plus the identity or
//    shortcut.0 -> shortcut.1 (a batch norm, its scale only in the tangent), then a ReLU of the sum: its mask is
//    where the sum is positive;
//  - VGG-16-BN: conv (its bias dropped in the tangent) -> batch norm -> ReLU, and after each block a 2x2 max pool,
//    whose mask is 1 at one position per window. On a tie the first maximum in row-major order, where PyTorch's
//    max_pool2d and tfjs's maxPool send the gradient; ties only between values the ReLU before it zeroed (whose
//    tangent is 0 whichever is taken) occur in practice.
// Masks: WRN-d-k 2 (d - 4) / 6 * 3 + 1, CNN 3, PreAct-ResNet-18 16, ResNet-18 17, VGG-16-BN 13 ReLUs + 5 pools.
import * as tf from '@tensorflow/tfjs-core';
import { structureOf, type Model } from '../../models';
import { BN_EPS } from '../../models/params';
import { resnet18Blocks } from '../../models/resnet';
import { vgg16Layers } from '../../models/vgg';
import { conv2d } from '../../ops';
import { InputError } from '../../types';

/** The steps where the forward pass and its linearisation differ, called by `network` in forward order. */
interface Steps {
  /** Batch norm `name` in evaluation mode, then a ReLU when `relu`. */
  batchNorm(name: string, h: tf.Tensor4D, relu: boolean): tf.Tensor4D;
  /** A ReLU on its own (ResNet-18's, after the residual sum). */
  relu(h: tf.Tensor4D): tf.Tensor4D;
  /** 2x2 max pooling, stride 2. */
  maxPool(h: tf.Tensor4D): tf.Tensor4D;
  /** h plus the parameter `name` (a convolution's or the classifier's bias); the tangent pass leaves it out. */
  bias<T extends tf.Tensor>(h: T, name: string): T;
}

/** [n, h, w, c] flattened in PyTorch's NCHW order, as the CNN's and VGG's forward passes do. */
function flattenNchw(h: tf.Tensor4D): tf.Tensor2D {
  const [n, hh, ww, c] = h.shape;
  return tf.reshape(tf.transpose(h, [0, 3, 1, 2]), [n, hh * ww * c]) as tf.Tensor2D;
}

const globalMean = (h: tf.Tensor4D): tf.Tensor2D => tf.mean(h, [1, 2]) as tf.Tensor2D;

/** The evaluation-mode network of `model` (the ops of differentiableLogits and its forward pass), through `s`. */
function network(model: Model, x: tf.Tensor4D, s: Steps): tf.Tensor2D {
  const spec = model.spec;
  const p = model.params;
  const w = (name: string): tf.Tensor4D => p.get(`${name}.weight`) as unknown as tf.Tensor4D;
  const classifier = structureOf(spec).classifier;
  const classify = (features: tf.Tensor2D): tf.Tensor2D =>
    s.bias(tf.matMul(features, p.get(`${classifier}.weight`) as tf.Tensor2D) as tf.Tensor2D, `${classifier}.bias`);
  switch (spec.arch) {
    case 'wrn': {
      const n = (spec.depth - 4) / 6;
      const widths = [16, 16 * spec.widen, 32 * spec.widen, 64 * spec.widen];
      let h = conv2d(x, w('conv1'), 1, 1);
      for (let g = 0; g < 3; g++) {
        for (let j = 0; j < n; j++) {
          const [cin, cout] = [j === 0 ? widths[g] : widths[g + 1], widths[g + 1]];
          const stride = j === 0 && g > 0 ? 2 : 1;
          const prefix = `block${g + 1}.layer.${j}`;
          const a = s.batchNorm(`${prefix}.bn1`, h, true);
          const out = conv2d(a, w(`${prefix}.conv1`), stride, 1);
          const shortcut = cin === cout ? h : conv2d(a, w(`${prefix}.convShortcut`), stride, 0);
          h = tf.add(conv2d(s.batchNorm(`${prefix}.bn2`, out, true), w(`${prefix}.conv2`), 1, 1), shortcut);
        }
      }
      return classify(globalMean(s.batchNorm('bn1', h, true)));
    }
    case 'cnn': {
      let h = x;
      [1, 2, 2].forEach((stride, i) => {
        h = s.batchNorm(`bn${i + 1}`, conv2d(h, w(`conv${i + 1}`), stride, 1), true);
      });
      return classify(flattenNchw(h));
    }
    case 'preact-resnet18': {
      let h = conv2d(x, w('conv1'), 1, 1);
      for (const b of resnet18Blocks().flat()) {
        const a = s.batchNorm(`${b.prefix}.bn1`, h, true);
        const shortcut = b.projection ? conv2d(a, w(`${b.prefix}.shortcut.0`), b.stride, 0) : h;
        const mid = s.batchNorm(`${b.prefix}.bn2`, conv2d(a, w(`${b.prefix}.conv1`), b.stride, 1), true);
        h = tf.add(conv2d(mid, w(`${b.prefix}.conv2`), 1, 1), shortcut);
      }
      return classify(globalMean(h));
    }
    case 'resnet18': {
      let h = s.batchNorm('bn1', conv2d(x, w('conv1'), 1, 1), true);
      for (const b of resnet18Blocks().flat()) {
        const mid = s.batchNorm(`${b.prefix}.bn1`, conv2d(h, w(`${b.prefix}.conv1`), b.stride, 1), true);
        const out = s.batchNorm(`${b.prefix}.bn2`, conv2d(mid, w(`${b.prefix}.conv2`), 1, 1), false);
        const shortcut = b.projection
          ? s.batchNorm(`${b.prefix}.shortcut.1`, conv2d(h, w(`${b.prefix}.shortcut.0`), b.stride, 0), false)
          : h;
        h = s.relu(tf.add(out, shortcut));
      }
      return classify(globalMean(h));
    }
    case 'vgg16-bn': {
      let h = x;
      for (const layers of vgg16Layers(spec.inChannels)) {
        for (const l of layers) h = s.batchNorm(l.bn, s.bias(conv2d(h, w(l.conv), 1, 1), `${l.conv}.bias`), true);
        h = s.maxPool(h);
      }
      return classify(flattenNchw(h));
    }
    default: {
      const unknown: never = spec;
      throw new InputError(`I-BAU has no linearised pass for the architecture ${JSON.stringify(unknown)}`);
    }
  }
}

/** [n, h, w, c] as its 2x2 windows: [n, h / 2, 2, w / 2, 2, c]. */
function windows(h: tf.Tensor4D): tf.Tensor {
  const [n, hh, ww, c] = h.shape;
  return tf.reshape(h, [n, hh / 2, 2, ww / 2, 2, c]);
}

/**
 * 1 at the position of each 2x2 window of h that tf.maxPool(h, 2, 2, 'valid') (= `pooled`) took its value from, the
 * first in row-major order on a tie (where both PyTorch and tfjs send the gradient), 0 elsewhere; h's shape.
 */
function maxPoolMask(h: tf.Tensor4D, pooled: tf.Tensor4D): tf.Tensor4D {
  const [n, hh, ww, c] = pooled.shape;
  const isMax = tf.cast(tf.equal(windows(h), tf.reshape(pooled, [n, hh, 1, ww, 1, c])), 'float32');
  // Rank the window's positions 8, 4, 2, 1 in row-major order: the largest ranked maximum is the first one.
  const ranked = tf.mul(isMax, tf.reshape(tf.tensor1d([8, 4, 2, 1]), [1, 1, 2, 1, 2, 1]));
  return tf.reshape(tf.cast(tf.equal(ranked, tf.max(ranked, [2, 4], true)), 'float32'), h.shape);
}

/**
 * The logits of the evaluation-mode forward pass on x and the masks of its nonlinearities, in forward order: each
 * ReLU's (1 where its input is positive) and each max pool's (1 where each window's maximum came from).
 */
export function reluMasks(model: Model, x: tf.Tensor4D): { logits: tf.Tensor2D; masks: tf.Tensor4D[] } {
  return tf.tidy(() => {
    const p = model.params;
    const masks: tf.Tensor4D[] = [];
    const steps: Steps = {
      batchNorm: (name, h, relu) => {
        const a = p.applyBatchNorm(name, h, false, relu);
        if (relu) masks.push(tf.step(a));
        return a;
      },
      relu: (h) => {
        const a = tf.relu(h);
        masks.push(tf.step(a));
        return a;
      },
      maxPool: (h) => {
        const pooled = tf.maxPool(h, 2, 2, 'valid');
        masks.push(maxPoolMask(h, pooled));
        return pooled;
      },
      bias: (h, name) => tf.add(h, p.get(name)),
    };
    return { logits: network(model, x, steps), masks };
  });
}

/**
 * J t: the derivative of the logits along the input direction t ([1 or n, H, W, C]) at the point whose masks
 * (reluMasks) are given: the network linearised there (convolutions, batch norms' scales gamma / sqrt(var + eps),
 * the masks, the classifier's weight). Differentiable in the parameters, and linear in t. The masks carry no
 * gradient, as autograd treats ReLU and max pooling (their second derivatives are 0).
 */
export function tangentLogits(model: Model, t: tf.Tensor4D, masks: readonly tf.Tensor4D[]): tf.Tensor2D {
  const p = model.params;
  let i = 0;
  const next = (): tf.Tensor4D => {
    if (i >= masks.length) throw new InputError(`tangentLogits: ${masks.length} masks are too few for ${model.spec.arch}`);
    return masks[i++];
  };
  const z = network(model, t, {
    batchNorm: (name, h, relu) => {
      const scale = tf.mul(p.get(`${name}.weight`), tf.rsqrt(tf.add(p.get(`${name}.running_var`), BN_EPS)));
      const y = tf.mul(h, scale) as tf.Tensor4D;
      return relu ? tf.mul(y, next()) : y;
    },
    relu: (h) => tf.mul(h, next()),
    maxPool: (h) => tf.sum(windows(tf.mul(h, next())), [2, 4]) as tf.Tensor4D,
    bias: (h) => h,
  });
  if (i !== masks.length) {
    z.dispose();
    throw new InputError(`tangentLogits: ${masks.length} masks, but ${model.spec.arch} has ${i}`);
  }
  return z;
}
