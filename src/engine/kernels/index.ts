// Typed entry points to the SIMD kernels, each with a stock-tfjs fallback used on the cpu and
// tensorflow backends (and on wasm when NAD_STOCK_KERNELS=1, to measure or to compare).
// None of these records gradients: they are meant for custom ops' forward and backward passes.
import * as tf from '@tensorflow/tfjs-core';
import { loadNativeAddon, nativeIsa } from './native-addon';
import { KERNEL_BACKENDS, registerSimdKernels, STACK_BYTES } from './simd';
import { DIRECT_FILTER_GRAD } from './simd-conv';

tf.env().registerFlag('NAD_STOCK_KERNELS', () => process.env.NAD_STOCK_KERNELS === '1');
// For measurements: NAD_WIDE_KERNELS=0 keeps the stack limit on the native addon's AVX2/AVX-512 kernels too.
tf.env().registerFlag('NAD_WIDE_KERNELS', () => process.env.NAD_WIDE_KERNELS !== '0');

/** Bytes of a 3x3 Winograd kernel's scratch: the transformed filter and one block of transformed tiles in and out. */
export const winogradScratchBytes = (ci: number, co: number): number => 4 * (36 * ci * co + 36 * 16 * (ci + co));

/**
 * The most scratch a Winograd kernel may take on a backend (the addon's instruction set on `native`): the
 * wasm module and the portable addon keep it on a STACK_BYTES stack (the portable filter gradient in
 * winograd.c's arrays), of which half. The AVX2/AVX-512 addon keeps it on the heap (winograd_wide.c,
 * conv3x3_winograd_pre and the filter gradient for channels in multiples of the vector width), so any layer
 * fits; `vectorWidth` of the addon: other channel counts take winograd.c's stack-bound path.
 */
export function winogradScratchLimit(backend: string, isa: string | undefined, ci: number, co: number, vectorWidth: number): number {
  const wide = backend === 'native' && (isa === 'avx2' || isa === 'avx512') && ci % vectorWidth === 0 && co % vectorWidth === 0;
  return wide && tf.env().getBool('NAD_WIDE_KERNELS') ? Infinity : STACK_BYTES / 2;
}

const scratchFits = (ci: number, co: number): boolean =>
  winogradScratchBytes(ci, co) <= winogradScratchLimit(tf.getBackend(), nativeIsa(), ci, co, nativeIsa() === 'avx512' ? 16 : 8);

/** Whether our kernels run on the current backend (wasm: the wasm module; native: the addon). */
export function simdKernelsActive(): boolean {
  return (KERNEL_BACKENDS as readonly string[]).includes(tf.getBackend()) && !tf.env().getBool('NAD_STOCK_KERNELS');
}

function run(name: string, inputs: tf.Tensor[], attrs: Record<string, number> = {}): tf.Tensor[] {
  registerSimdKernels();
  const named: tf.NamedTensorMap = {};
  inputs.forEach((t, i) => (named[`in${i}`] = t));
  const out = tf.engine().runKernel(name, named, attrs);
  return Array.isArray(out) ? out : [out];
}

export interface BatchNormForward {
  readonly y: tf.Tensor4D;
  readonly mean: tf.Tensor1D;
  readonly variance: tf.Tensor1D;
  readonly invStd: tf.Tensor1D;
}

/** Batch statistics over all but the last axis, normalised output, optionally ReLU'd. */
export function batchNormForward(x: tf.Tensor4D, gamma: tf.Tensor1D, beta: tf.Tensor1D, eps: number, relu: boolean): BatchNormForward {
  if (simdKernelsActive()) {
    const [y, mean, variance, invStd] = run('NadBatchNormForward', [x, gamma, beta], { eps, relu: relu ? 1 : 0 });
    return { y: y as tf.Tensor4D, mean: mean as tf.Tensor1D, variance: variance as tf.Tensor1D, invStd: invStd as tf.Tensor1D };
  }
  return tf.tidy(() => {
    const m = tf.moments(x, [0, 1, 2]);
    const mean = m.mean as tf.Tensor1D;
    const variance = m.variance as tf.Tensor1D;
    const bn = tf.batchNorm4d(x, mean, variance, beta, gamma, eps);
    return { y: relu ? tf.relu(bn) : bn, mean, variance, invStd: tf.rsqrt(tf.add(variance, eps)) as tf.Tensor1D };
  });
}

/** Batch norm with given statistics, optionally ReLU'd. */
export function batchNormInference(
  x: tf.Tensor4D,
  mean: tf.Tensor1D,
  variance: tf.Tensor1D,
  gamma: tf.Tensor1D,
  beta: tf.Tensor1D,
  eps: number,
  relu: boolean,
): tf.Tensor4D {
  if (simdKernelsActive()) return run('NadBatchNormEval', [x, mean, variance, gamma, beta], { eps, relu: relu ? 1 : 0 })[0] as tf.Tensor4D;
  return tf.tidy(() => {
    const bn = tf.batchNorm4d(x, mean, variance, beta, gamma, eps);
    return relu ? tf.relu(bn) : bn;
  });
}

export interface BatchNormGradients {
  readonly dx: tf.Tensor4D;
  readonly dGamma: tf.Tensor1D;
  readonly dBeta: tf.Tensor1D;
}

/**
 * Backward pass of batchNormForward. `y` is its output (only read when `relu`, for the mask); dMean and
 * dVar are the gradients that reached the returned statistics.
 */
export function batchNormBackward(
  dy: tf.Tensor4D,
  x: tf.Tensor4D,
  y: tf.Tensor4D,
  relu: boolean,
  s: { mean: tf.Tensor1D; invStd: tf.Tensor1D; gamma: tf.Tensor1D; dMean: tf.Tensor1D; dVar: tf.Tensor1D },
): BatchNormGradients {
  if (simdKernelsActive()) {
    const [dx, dGamma, dBeta] = run('NadBatchNormBackward', [dy, x, y, s.mean, s.invStd, s.gamma, s.dMean, s.dVar], { relu: relu ? 1 : 0 });
    return { dx: dx as tf.Tensor4D, dGamma: dGamma as tf.Tensor1D, dBeta: dBeta as tf.Tensor1D };
  }
  return tf.tidy(() => {
    const axes = [0, 1, 2];
    const g = relu ? tf.mul(dy, tf.step(y)) : dy;
    const xc = tf.sub(x, s.mean);
    const sumG = tf.sum(g, axes);
    const sumGXc = tf.sum(tf.mul(g, xc), axes);
    const count = x.size / x.shape[3];
    // dx = a*g + b*xc + k per channel (see native/batchnorm.c, bn_backward).
    const a = tf.mul(s.gamma, s.invStd);
    const b = tf.add(tf.mul(tf.mul(a, tf.square(s.invStd)), tf.div(sumGXc, -count)), tf.mul(s.dVar, 2 / count));
    const k = tf.add(tf.mul(a, tf.div(sumG, -count)), tf.div(s.dMean, count));
    return {
      dx: tf.add(tf.add(tf.mul(g, a), tf.mul(xc, b)), k) as tf.Tensor4D,
      dGamma: tf.mul(sumGXc, s.invStd) as tf.Tensor1D,
      dBeta: sumG as tf.Tensor1D,
    };
  });
}

/** [N, H, W, C] -> [C, H, W, N]. */
export function swapBatchAndChannels(x: tf.Tensor4D): tf.Tensor4D {
  return (simdKernelsActive() ? run('NadSwapBatchChannels', [x])[0] : tf.transpose(x, [3, 1, 2, 0])) as tf.Tensor4D;
}

/** [N, H, W, C] -> [H, W, N, C]. */
export function moveBatchInside(x: tf.Tensor4D): tf.Tensor4D {
  return (simdKernelsActive() ? run('NadBatchToInner', [x])[0] : tf.transpose(x, [1, 2, 0, 3])) as tf.Tensor4D;
}

/**
 * Zero-insertion between rows and columns: [N, H, W, C] -> [N, (H-1)s+1, (W-1)s+1, C], or, given an
 * output size at least that, [N, outH, outW, C] with the extra rows and columns (bottom, right) zero.
 */
export function dilate(x: tf.Tensor4D, stride: number, outH?: number, outW?: number): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  const oh = outH ?? (h - 1) * stride + 1;
  const ow = outW ?? (w - 1) * stride + 1;
  if (oh < (h - 1) * stride + 1 || ow < (w - 1) * stride + 1)
    throw new Error(`dilate: output ${oh}x${ow} too small for ${h}x${w} at stride ${stride}`);
  if (stride === 1 && oh === h && ow === w) return x;
  if (simdKernelsActive()) return run('NadDilate', [x], { stride, oh, ow })[0] as tf.Tensor4D;
  return tf.tidy(() => {
    const spread = tf.pad(tf.reshape(x, [n, h, 1, w, 1, c]), [
      [0, 0],
      [0, 0],
      [0, stride - 1],
      [0, 0],
      [0, stride - 1],
      [0, 0],
    ]);
    const full = tf.reshape(spread, [n, h * stride, w * stride, c]) as tf.Tensor4D;
    const cut = tf.slice(full, [0, 0, 0, 0], [n, Math.min(oh, h * stride), Math.min(ow, w * stride), c]);
    return tf.pad(cut, [
      [0, 0],
      [0, oh - cut.shape[1]],
      [0, ow - cut.shape[2]],
      [0, 0],
    ]);
  });
}

/**
 * The filter gradient of conv2d(x, W[kh, kw, ci, co], stride, pad) by the SIMD kernel, or undefined
 * where it does not apply (other backends; co not a multiple of 8) and callers use
 * another formulation.
 */
export function convFilterGrad(
  x: tf.Tensor4D,
  dy: tf.Tensor4D,
  kh: number,
  kw: number,
  stride: number,
  pad: number,
): tf.Tensor4D | undefined {
  const [ci, co] = [x.shape[3], dy.shape[3]];
  if (!simdKernelsActive() || co % 8 !== 0 || !scratchFits(ci, co)) return undefined;
  return run('NadConvFilterGrad', [x, dy], { kh, kw, stride, pad })[0] as tf.Tensor4D;
}

/**
 * conv2d(x, filter [3, 3, ci, co], stride 1, pad 1) by Winograd F(4x4, 3x3) (4x fewer multiplies
 * than direct methods), or undefined where it does not apply and callers use tf.conv2d.
 */
export function conv3x3Winograd(x: tf.Tensor4D, filter: tf.Tensor4D, bn?: EvalBatchNorm): tf.Tensor4D | undefined {
  if (!conv3x3WinogradApplies(filter, !!bn)) return undefined;
  if (!bn) return run('NadConv3x3Winograd', [x, filter])[0] as tf.Tensor4D;
  return run('NadConv3x3Winograd', [x, filter, bn.mean, bn.variance, bn.gamma, bn.beta], { eps: bn.eps })[0] as tf.Tensor4D;
}

/** Whether conv3x3Winograd takes this filter [3, 3, ci, co] (withBn: with an evaluation-mode batch norm in front). */
export function conv3x3WinogradApplies(filter: tf.Tensor4D, withBn: boolean): boolean {
  const [kh, kw, ci, co] = filter.shape;
  // The native addon also takes other input channel counts (an RGB input layer) without a batch norm in front.
  const anyChannels = tf.getBackend() === 'native' && !withBn;
  return simdKernelsActive() && kh === 3 && kw === 3 && (ci % 4 === 0 || anyChannels) && co % 8 === 0 && scratchFits(ci, co);
}

/** An evaluation-mode batch norm (running statistics) followed by ReLU, fused into a convolution's input. */
export interface EvalBatchNorm {
  readonly mean: tf.Tensor1D;
  readonly variance: tf.Tensor1D;
  readonly gamma: tf.Tensor1D;
  readonly beta: tf.Tensor1D;
  readonly eps: number;
}

/** The input gradient's filter: [kh, kw, ci, co] rotated by 180 degrees, in/out channels swapped. */
export function flipFilter(f: tf.Tensor4D): tf.Tensor4D {
  if (simdKernelsActive()) return run('NadFlipFilter', [f])[0] as tf.Tensor4D;
  return tf.tidy(() => tf.transpose(tf.reverse(f, [0, 1]), [0, 1, 3, 2]));
}

/** out[n, 2a+u, 2b+v, c] = phases[2u+v][n, a, b, c]. */
export function interleave2(phases: readonly [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D, tf.Tensor4D]): tf.Tensor4D {
  if (simdKernelsActive()) return run('NadInterleave2', [...phases])[0] as tf.Tensor4D;
  return tf.tidy(() => {
    const [n, h, w, c] = phases[0].shape;
    const row = (a: tf.Tensor4D, b: tf.Tensor4D) => tf.reshape(tf.stack([a, b], 3), [n, h, 2 * w, c]);
    return tf.reshape(tf.stack([row(phases[0], phases[1]), row(phases[2], phases[3])], 2), [n, 2 * h, 2 * w, c]) as tf.Tensor4D;
  });
}

export interface SgdUpdateOptions {
  readonly lr: number;
  readonly momentum: number;
  readonly weightDecay: number;
  readonly nesterov: boolean;
}

/**
 * torch.optim.SGD's update of one parameter in one kernel: returns the new parameter and momentum
 * buffer (the caller assigns both). g = grad + wd*p; buf' = m*buf + g; step = nesterov ? g + m*buf' : buf'.
 */
export function sgdUpdate(
  param: tf.Tensor,
  grad: tf.Tensor,
  buffer: tf.Tensor,
  o: SgdUpdateOptions,
): { param: tf.Tensor; buffer: tf.Tensor } {
  if (simdKernelsActive() && param.dtype === 'float32') {
    const [p, b] = run('NadSgdUpdate', [param, grad, buffer], {
      lr: o.lr,
      momentum: o.momentum,
      weightDecay: o.weightDecay,
      nesterov: o.nesterov ? 1 : 0,
    });
    return { param: p, buffer: b };
  }
  return tf.tidy(() => {
    const g = o.weightDecay ? tf.add(grad, tf.mul(param, o.weightDecay)) : grad;
    const b = tf.add(tf.mul(buffer, o.momentum), g);
    const step = o.nesterov ? tf.add(g, tf.mul(b, o.momentum)) : b;
    return { param: tf.sub(param, tf.mul(step, o.lr)), buffer: b };
  });
}

/** The stride-2 input gradient's four phase filters from a flipped 3x3 filter (see ops/conv.ts). */
export function phaseFilters3x3(flipped: tf.Tensor4D): [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D, tf.Tensor4D] {
  const out = simdKernelsActive()
    ? run('NadPhaseFilters3x3', [flipped])
    : [0, 1].flatMap((u) =>
        [0, 1].map((v) => tf.stridedSlice(flipped, [1 - u, 1 - v, 0, 0], [3, 3, ...flipped.shape.slice(2)], [2, 2, 1, 1])),
      );
  return out as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D, tf.Tensor4D];
}

/** tf.sum(tf.square(x), -1): one kernel on wasm and native (float32 squares summed in double, as the cpu backend sums). */
export function channelSumSquares(x: tf.Tensor): tf.Tensor {
  if (simdKernelsActive() && x.dtype === 'float32') return run('NadChannelSumSquares', [x])[0];
  return tf.tidy(() => tf.sum(tf.square(x), -1));
}

/** (x * 2) * g[..., None], the input gradient of channelSumSquares for an upstream gradient g. */
export function channelSumSquaresGrad(x: tf.Tensor, g: tf.Tensor): tf.Tensor {
  if (simdKernelsActive() && x.dtype === 'float32') return run('NadChannelSumSquaresGrad', [x, g])[0];
  return tf.tidy(() => tf.mul(tf.mul(x, 2), tf.expandDims(g, -1)));
}

/**
 * PyTorch's running statistics after a training-mode batch norm: mean * (1 - momentum) + batchMean * momentum,
 * and the same for the variance with batchVar * unbias (n / (n - 1)). One kernel on wasm and native.
 */
export function batchNormRunningUpdate(
  mean: tf.Tensor1D,
  variance: tf.Tensor1D,
  batch: { mean: tf.Tensor1D; variance: tf.Tensor1D },
  momentum: number,
  unbias: number,
): { mean: tf.Tensor1D; variance: tf.Tensor1D } {
  if (simdKernelsActive()) {
    const [m, v] = run('NadBnRunningUpdate', [mean, variance, batch.mean, batch.variance], { momentum, unbias });
    return { mean: m as tf.Tensor1D, variance: v as tf.Tensor1D };
  }
  return tf.tidy(() => {
    const unbiased = tf.mul(batch.variance, unbias);
    return {
      mean: tf.add(tf.mul(mean, 1 - momentum), tf.mul(batch.mean, momentum)) as tf.Tensor1D,
      variance: tf.add(tf.mul(variance, 1 - momentum), tf.mul(unbiased, momentum)) as tf.Tensor1D,
    };
  });
}

/**
 * The input gradient of an evaluation-mode batch norm (+ ReLU) with output y and per-channel scale gamma / sqrt(var + eps):
 * (dy * step(y)) * scale, or dy * scale. One kernel on wasm and native (the same float32 operations), three tfjs
 * kernels elsewhere. Input gradients through frozen models (CL's PGD, Neural Cleanse's trigger) take this path.
 */
export function batchNormEvalInputGrad(dy: tf.Tensor4D, y: tf.Tensor4D, scale: tf.Tensor1D, relu: boolean): tf.Tensor4D {
  if (simdKernelsActive() && dy.dtype === 'float32' && (tf.getBackend() !== 'native' || loadNativeAddon().bn_eval_input_grad))
    return run('NadBnEvalInputGrad', [dy, y, scale], { relu: relu ? 1 : 0 })[0] as tf.Tensor4D;
  return tf.tidy(() => tf.mul(relu ? tf.mul(dy, tf.step(y)) : dy, scale));
}

/**
 * batchNormEvalInputGrad (relu) for a batch norm + ReLU whose output y was never stored: the mask recomputed from x with
 * the forward's arithmetic (bn's mean, variance, gamma, beta, eps), `scale` the backward's. One kernel where ours run
 * (undefined elsewhere: the caller recomputes y).
 */
export function batchNormEvalReluGradFromX(
  da: tf.Tensor4D,
  x: tf.Tensor4D,
  bn: EvalBatchNorm,
  scale: tf.Tensor1D,
): tf.Tensor4D | undefined {
  if (!batchNormEvalReluGradFromXApplies() || da.dtype !== 'float32') return undefined;
  return run('NadBnEvalReluGradX', [da, x, bn.mean, bn.variance, bn.gamma, bn.beta, scale], { eps: bn.eps })[0] as tf.Tensor4D;
}

/** Whether batchNormEvalReluGradFromX's kernel runs here (ours active; on native, an addon that has it). */
export const batchNormEvalReluGradFromXApplies = (): boolean =>
  simdKernelsActive() && (tf.getBackend() !== 'native' || !!loadNativeAddon().bn_eval_relu_grad_x);

/** (x > 0) - (x < 0) of a float32 tensor in one kernel where ours run (undefined elsewhere: the caller compares). */
export function signExact(x: tf.Tensor): tf.Tensor | undefined {
  if (simdKernelsActive() && x.dtype === 'float32' && (tf.getBackend() !== 'native' || loadNativeAddon().sign_exact))
    return run('NadSignExact', [x])[0];
  return undefined;
}

/** A training-mode batch norm + ReLU fused into a 3x3 convolution's input: the batch's statistics, the parameters. */
export interface TrainBatchNorm {
  readonly mean: tf.Tensor1D;
  readonly invStd: tf.Tensor1D;
  readonly gamma: tf.Tensor1D;
  readonly beta: tf.Tensor1D;
}

const fusedTrainKernels = (): boolean => simdKernelsActive() && (tf.getBackend() !== 'native' || !!loadNativeAddon().conv_filter_grad_bn);

/**
 * Whether the fused training kernels take relu(batch norm(x [n, h, w, ci])) into a filter [3, 3, ci, co] (stride 1,
 * pad 1) here: wasm, or native with an addon that has them, on the shapes where the separate ops' convolution and
 * filter gradient are Winograd's too (so that both paths sum the same products in the same order).
 */
export function fusedBnConvTrainApplies(x: tf.Tensor4D, filter: tf.Tensor4D): boolean {
  const [kh, kw, ci, co] = filter.shape;
  const shapes = kh === 3 && kw === 3 && x.shape[3] === ci && ci % 4 === 0 && co % 8 === 0 && x.dtype === 'float32';
  return shapes && !DIRECT_FILTER_GRAD && fusedTrainKernels() && scratchFits(ci, co);
}

// The four below are the fused training kernels alone: their one caller (ops/conv.ts's bnReluConv3x3Train) runs
// them only where fusedBnConvTrainApplies, and the separate ops elsewhere.

/** batchNormForward's statistics (mean, biased variance, 1 / sqrt(var + eps)) without its output. */
export function batchNormStats(x: tf.Tensor4D, eps: number): { mean: tf.Tensor1D; variance: tf.Tensor1D; invStd: tf.Tensor1D } {
  const [mean, variance, invStd] = run('NadBatchNormStats', [x], { eps }) as tf.Tensor1D[];
  return { mean, variance, invStd };
}

/** conv2d(relu((x - mean) * (gamma * invStd) + beta), filter, 1, 1), the activation made as the kernel reads x. */
export function conv3x3WinogradBnTrain(x: tf.Tensor4D, filter: tf.Tensor4D, bn: TrainBatchNorm): tf.Tensor4D {
  return run('NadConv3x3WinogradBn', [x, filter, bn.mean, bn.invStd, bn.gamma, bn.beta])[0] as tf.Tensor4D;
}

/** The filter gradient of conv3x3WinogradBnTrain for the output gradient dy, the activation recomputed from x. */
export function convFilterGradBnTrain(x: tf.Tensor4D, dy: tf.Tensor4D, bn: TrainBatchNorm): tf.Tensor4D {
  return run('NadConvFilterGradBn', [x, dy, bn.mean, bn.invStd, bn.gamma, bn.beta])[0] as tf.Tensor4D;
}

/**
 * batchNormBackward (relu) for a batch norm + ReLU whose output was never stored: da is the gradient reaching the
 * activation, whose ReLU mask is recomputed from x with the forward's arithmetic. dMean, dVar as there.
 */
export function bnReluBackwardX(
  da: tf.Tensor4D,
  x: tf.Tensor4D,
  bn: TrainBatchNorm,
  d: { dMean: tf.Tensor1D; dVar: tf.Tensor1D },
): BatchNormGradients {
  const [dx, dGamma, dBeta] = run('NadBnReluBackwardX', [da, x, bn.mean, bn.invStd, bn.gamma, bn.beta, d.dMean, d.dVar]);
  return { dx: dx as tf.Tensor4D, dGamma: dGamma as tf.Tensor1D, dBeta: dBeta as tf.Tensor1D };
}
