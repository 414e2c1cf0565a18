// conv2d with hand-written gradients. The wasm backend has no Conv2DBackpropFilter kernel at all and
// its Conv2DBackpropInput is a plain loop. Here the input gradient is a forward convolution (rotated
// filter; stride 2 by phases), the filter gradient a SIMD kernel (or a forward convolution with batch
// and channels swapped), and 3x3/stride-1 convolutions run as Winograd F(4x4, 3x3) on wasm. On cpu
// and tensorflow the same rewrites run with stock kernels; tests check all against tfjs's gradients.
import * as tf from '@tensorflow/tfjs-core';
import { runDifferentiable } from './differentiable';
import { batchNormReluEval, batchNormReluTrain, evalBatchNormParamGrads, type BatchNormParams } from './batchnorm';
import {
  batchNormEvalReluGradFromX,
  batchNormEvalReluGradFromXApplies,
  batchNormInference,
  batchNormStats,
  bnReluBackwardX,
  conv3x3Winograd,
  conv3x3WinogradApplies,
  type EvalBatchNorm,
  conv3x3WinogradBnTrain,
  convFilterGradBnTrain,
  fusedBnConvTrainApplies,
  type TrainBatchNorm,
  convFilterGrad,
  simdKernelsActive,
  dilate,
  flipFilter,
  interleave2,
  moveBatchInside,
  phaseFilters3x3,
  swapBatchAndChannels,
} from '../kernels';

type Pad4 = [[number, number], [number, number], [number, number], [number, number]];

function explicitPad(top: number, bottom: number, left: number, right: number): Pad4 {
  return [
    [0, 0],
    [top, bottom],
    [left, right],
    [0, 0],
  ];
}

/** A forward convolution by the fastest kernel that applies: Winograd for 3x3/stride 1/pad 1, else tfjs's. */
function forwardConv(x: tf.Tensor4D, filter: tf.Tensor4D, stride: number, pad: number): tf.Tensor4D {
  if (stride === 1 && pad === 1) {
    const y = conv3x3Winograd(x, filter) ?? winogradWithChannelPadding(x, filter);
    if (y) return y;
  }
  return tf.conv2d(x, filter, stride, explicitPad(pad, pad, pad, pad));
}

/**
 * conv2d(relu(batch norm(x)), filter, 1, 1) in evaluation mode (running statistics): on wasm one
 * Winograd kernel applies the batch norm and ReLU as it reads x (the same float operations as the
 * separate kernels, without writing the normalised map out and reading it back). Not differentiable:
 * for inference only (evaluation, the teacher's forward pass).
 */
export function bnReluConv3x3Eval(
  x: tf.Tensor4D,
  p: BatchNormParams,
  runningMean: tf.Tensor1D,
  runningVar: tf.Tensor1D,
  filter: tf.Tensor4D,
): tf.Tensor4D {
  const fused = conv3x3Winograd(x, filter, { mean: runningMean, variance: runningVar, gamma: p.gamma, beta: p.beta, eps: p.eps });
  return fused ?? tf.tidy(() => conv2d(batchNormReluEval(x, p, runningMean, runningVar), filter, 1, 1));
}

/**
 * bnReluConv3x3Eval with gradients, for input gradients through frozen models (CL's PGD, Neural Cleanse's trigger,
 * Trojan's and I-BAU's perturbations: models' differentiableFeatures): forward the same fused kernel, so relu(batch
 * norm(x)) is never stored; backward the convolution's input gradient, then the batch norm's with the ReLU mask
 * recomputed from x (NadBnEvalReluGradX). Gradients to gamma, beta, the running statistics and the filter recompute
 * the activation with plain ops, only when asked for. Where the kernels do not apply (or NAD_FUSED_EVAL_GRAD=0):
 * batchNormReluEval, then conv2d.
 */
export function bnReluConv3x3EvalGrad(
  x: tf.Tensor4D,
  p: BatchNormParams,
  runningMean: tf.Tensor1D,
  runningVar: tf.Tensor1D,
  filter: tf.Tensor4D,
): tf.Tensor4D {
  const fused = process.env.NAD_FUSED_EVAL_GRAD !== '0'; // 0: the separate ops, to measure
  if (!fused || !conv3x3WinogradApplies(filter, true) || !batchNormEvalReluGradFromXApplies() || x.dtype !== 'float32')
    return conv2d(batchNormReluEval(x, p, runningMean, runningVar), filter, 1, 1);
  const { gamma, beta, eps } = p;
  const [y] = runDifferentiable({
    inputs: { x, gamma, beta, runningMean, runningVar, filter },
    forward: (save) => {
      save([x, filter, gamma, beta, runningMean, runningVar]);
      return [conv3x3Winograd(x, filter, { mean: runningMean, variance: runningVar, gamma, beta, eps }) as tf.Tensor4D];
    },
    backward: ([dy], [xs, fs, g, b, mean, variance]) => {
      const [x4, dy4] = [xs as tf.Tensor4D, dy as tf.Tensor4D];
      const bn = { mean, variance, gamma: g, beta: b, eps } as EvalBatchNorm;
      // As ops/batchnorm.ts's evaluation-mode backward, with da (the gradient reaching the activation) for dy.
      const da = conv2dInputGrad(dy4, fs as tf.Tensor4D, x4.shape, 1, 1);
      const invStd = tf.rsqrt(tf.add(variance, eps));
      const scale = tf.mul(g, invStd) as tf.Tensor1D;
      const act = () => batchNormInference(x4, bn.mean, bn.variance, bn.gamma, bn.beta, eps, true);
      return {
        // The kernel applies here (checked above, float32), so it returns the gradient.
        x: () => batchNormEvalReluGradFromX(da, x4, bn, scale) as tf.Tensor4D,
        ...evalBatchNormParamGrads(() => tf.mul(da, tf.step(act())), x4, mean, g, invStd, scale),
        filter: () => conv2dFilterGrad(act(), dy4, 3, 3, 1, 1),
      };
    },
  });
  return y as tf.Tensor4D;
}

/** bnReluConv3x3Train's outputs: the convolution, and the batch's statistics (for the running ones). */
export interface BnReluConvTrainResult {
  readonly y: tf.Tensor4D;
  readonly mean: tf.Tensor1D;
  /** Biased, as batchNormTrain's. */
  readonly variance: tf.Tensor1D;
}

/**
 * conv2d(relu(batch norm(x)), filter, 1, 1) in training mode (the batch's statistics), with gradients to x, gamma,
 * beta and the filter (and through the returned statistics), and the activation never stored: on wasm and native the
 * convolution applies the batch norm and ReLU as it reads x (bn_stats, then conv3x3_winograd_bn); backward, the
 * filter gradient recomputes the activation from x (conv_filter_grad_winograd_bn) and the batch norm's backward
 * recomputes its ReLU mask (bn_relu_backward_x) from the gradient reaching it, the unfused path's input gradient.
 * The same float operations in the same order as batchNormReluTrain then conv2d, which it runs where the kernels do not
 * apply (other backends, other shapes) or with NAD_FUSED_TRAIN=0 (to measure).
 */
export function bnReluConv3x3Train(x: tf.Tensor4D, p: BatchNormParams, filter: tf.Tensor4D): BnReluConvTrainResult {
  if (process.env.NAD_FUSED_TRAIN === '0' || !fusedBnConvTrainApplies(x, filter)) {
    const bn = batchNormReluTrain(x, p);
    return { y: conv2d(bn.y, filter, 1, 1), mean: bn.mean, variance: bn.variance };
  }
  const { gamma, beta, eps } = p;
  const [y, mean, variance] = runDifferentiable({
    inputs: { x, gamma, beta, filter },
    forward: (save) => {
      const s = batchNormStats(x, eps);
      save([x, filter, s.mean, s.invStd, gamma, beta]);
      return [conv3x3WinogradBnTrain(x, filter, { mean: s.mean, invStd: s.invStd, gamma, beta }), s.mean, s.variance];
    },
    backward: ([dy, dMean, dVar], [xs, fs, m, invStd, g, b]) => {
      const bn = { mean: m, invStd, gamma: g, beta: b } as TrainBatchNorm;
      const [x4, dy4, f4] = [xs as tf.Tensor4D, dy as tf.Tensor4D, fs as tf.Tensor4D];
      // The gradient reaching the activation, as conv2d's backward makes it; tensors made here live until the backward ends.
      const da = conv2dInputGrad(dy4, f4, x4.shape, 1, 1);
      const grads = bnReluBackwardX(da, x4, bn, { dMean: dMean as tf.Tensor1D, dVar: dVar as tf.Tensor1D });
      da.dispose();
      return {
        x: () => grads.dx,
        gamma: () => grads.dGamma,
        beta: () => grads.dBeta,
        filter: () => convFilterGradBnTrain(x4, dy4, bn),
      };
    },
  });
  return { y: y as tf.Tensor4D, mean: mean as tf.Tensor1D, variance: variance as tf.Tensor1D };
}

/**
 * An RGB input (3 channels) padded with a zero channel, and its filter with a zero row, make a
 * Winograd-shaped convolution with the same result: a network's first layer, which tfjs's kernel
 * runs at a fraction of its usual speed when the input has 3 channels.
 */
function winogradWithChannelPadding(x: tf.Tensor4D, filter: tf.Tensor4D): tf.Tensor4D | undefined {
  const [kh, kw, ci, co] = filter.shape;
  if (kh !== 3 || kw !== 3 || ci % 4 === 0 || co % 8 !== 0 || !simdKernelsActive()) return undefined;
  const extra = 4 - (ci % 4);
  return tf.tidy(() => {
    const y = conv3x3Winograd(
      tf.pad(x, [
        [0, 0],
        [0, 0],
        [0, 0],
        [0, extra],
      ]),
      tf.pad(filter, [
        [0, 0],
        [0, 0],
        [0, extra],
        [0, 0],
      ]),
    );
    return y ?? tf.conv2d(x, filter, 1, explicitPad(1, 1, 1, 1));
  });
}

/** 2-D convolution, NHWC input, HWIO filter, symmetric zero padding `pad` (PyTorch's `padding`). */
export function conv2d(x: tf.Tensor4D, filter: tf.Tensor4D, stride: number, pad: number): tf.Tensor4D {
  const [kh, kw] = filter.shape;
  // Padding of at least the kernel size has no forward-conv form of the input gradient: pad explicitly.
  if (pad >= kh || pad >= kw) return conv2d(tf.pad(x, explicitPad(pad, pad, pad, pad)), filter, stride, 0);
  const [y] = runDifferentiable({
    inputs: { x, filter },
    forward: (save) => {
      save([x, filter]);
      return [forwardConv(x, filter, stride, pad)];
    },
    backward: ([dy], [xs, fs]) => ({
      x: () => conv2dInputGrad(dy as tf.Tensor4D, fs as tf.Tensor4D, xs.shape as [number, number, number, number], stride, pad),
      filter: () => conv2dFilterGrad(xs as tf.Tensor4D, dy as tf.Tensor4D, kh, kw, stride, pad),
    }),
  });
  return y as tf.Tensor4D;
}

/**
 * dL/dx: a stride-1 convolution of dy (zero-dilated by the stride) with the filter rotated by 180° and
 * its in/out channels swapped. A 1x1 filter is applied before dilating, which is 4x cheaper at stride 2.
 */
export function conv2dInputGrad(
  dy: tf.Tensor4D,
  filter: tf.Tensor4D,
  xShape: [number, number, number, number],
  stride: number,
  pad: number,
): tf.Tensor4D {
  return tf.tidy(() => {
    const [, h, w] = xShape;
    const [kh, kw] = filter.shape;
    const flipped = flipFilter(filter);
    if (stride === 1) {
      if (kh === kw) return forwardConv(dy, flipped, 1, kh - 1 - pad);
      return tf.conv2d(dy, flipped, 1, explicitPad(kh - 1 - pad, kh - 1 - pad, kw - 1 - pad, kw - 1 - pad));
    }
    if (kh === 1 && kw === 1) {
      // (pad < kernel size, so pad is 0.) x's rows/columns i*stride received dy[i]; the others nothing.
      return dilate(tf.conv2d(dy, flipped, 1, 'valid'), stride, h, w);
    }
    if (stride === 2 && kh === 3 && kw === 3 && pad === 1 && h % 2 === 0 && w % 2 === 0) return inputGradStride2(dy, flipped);
    const dilated = dilate(dy, stride);
    const [, dh, dw] = dilated.shape;
    // Pads so that the stride-1 "full" correlation returns exactly h x w; bottom/right >= k - 1 - pad >= 0.
    const bottom = h - 1 + pad - (dh - 1);
    const right = w - 1 + pad - (dw - 1);
    return tf.conv2d(dilated, flipped, 1, explicitPad(kh - 1 - pad, bottom, kw - 1 - pad, right));
  });
}

/**
 * The input gradient of a 3x3, stride-2, pad-1 convolution of an even-sized map, by phases: the even
 * and odd rows/columns of dx each see only 1 or 2 of the filter's rows/columns, so dx is four small
 * stride-1 convolutions of dy (exactly the multiply-adds needed, not the 4x of a zero-dilated dy),
 * interleaved. `flipped` is the rotated, channel-swapped filter [3, 3, co, ci].
 */
function inputGradStride2(dy: tf.Tensor4D, flipped: tf.Tensor4D): tf.Tensor4D {
  // Phase u (0 even, 1 odd) of dx rows uses flipped rows {1} or {0, 2}; likewise for columns.
  const subs = phaseFilters3x3(flipped);
  const phase = (u: number, v: number) => tf.conv2d(dy, subs[2 * u + v], 1, explicitPad(0, u, 0, v));
  return interleave2([phase(0, 0), phase(0, 1), phase(1, 0), phase(1, 1)]);
}

/**
 * dL/dW[i, j, ci, co] = sum x[n, s*a+i-p, s*b+j-p, ci] dy[n, a, b, co]: the SIMD kernel where it applies,
 * else a forward convolution of x, with batch and channels swapped, by dy used as the filter (batch as
 * its input channels), dilated by the forward stride.
 */
export function conv2dFilterGrad(x: tf.Tensor4D, dy: tf.Tensor4D, kh: number, kw: number, stride: number, pad: number): tf.Tensor4D {
  const direct = convFilterGrad(x, dy, kh, kw, stride, pad);
  if (direct) return direct;
  return tf.tidy(() => {
    const [, h, w, ci] = x.shape;
    const [, ho, wo, co] = dy.shape;
    const xt = swapBatchAndChannels(x); // [ci, h, w, n]
    const dyt = moveBatchInside(dy); // [ho, wo, n, co]
    // Output rows = h + 2p - (ho-1)*s; rows past kh (when (h+2p-k) % s > 0) are trimmed from the padding.
    const extraH = h + 2 * pad - (ho - 1) * stride - kh;
    const extraW = w + 2 * pad - (wo - 1) * stride - kw;
    const padB = pad - Math.min(pad, extraH);
    const padR = pad - Math.min(pad, extraW);
    let g = tf.conv2d(xt, dyt, 1, explicitPad(pad, padB, pad, padR), 'NHWC', stride) as tf.Tensor4D; // [ci, kh', kw', co]
    if (g.shape[1] !== kh || g.shape[2] !== kw) g = tf.slice(g, [0, 0, 0, 0], [ci, kh, kw, co]);
    return tf.transpose(g, [1, 2, 0, 3]);
  });
}
