// The TypeScript view of the kernels' WebAssembly module (native/*.c): the functions it exports, with
// their arguments in C order, and the parts of tfjs-backend-wasm that simd.ts reaches into to run them.
import type * as tf from '@tensorflow/tfjs-core';

export type Ptr = number;

/** A 3x3, stride 1, pad 1 convolution's first arguments: x [n, h, w, ci], filter [3, 3, ci, co], y [n, h, w, co]. */
type Conv3x3Args = [x: Ptr, n: number, h: number, w: number, ci: number, filter: Ptr, co: number, y: Ptr];

export interface KernelExports {
  readonly __stack_pointer: WebAssembly.Global;
  bn_forward(
    x: Ptr,
    m: number,
    c: number,
    gamma: Ptr,
    beta: Ptr,
    eps: number,
    relu: number,
    y: Ptr,
    mean: Ptr,
    variance: Ptr,
    invStd: Ptr,
  ): void;
  bn_eval(x: Ptr, m: number, c: number, mean: Ptr, variance: Ptr, gamma: Ptr, beta: Ptr, eps: number, relu: number, y: Ptr): void;
  bn_backward(
    dy: Ptr,
    x: Ptr,
    y: Ptr,
    m: number,
    c: number,
    relu: number,
    mean: Ptr,
    invStd: Ptr,
    gamma: Ptr,
    dMean: Ptr,
    dVar: Ptr,
    dx: Ptr,
    dGamma: Ptr,
    dBeta: Ptr,
  ): void;
  swap_batch_channels(x: Ptr, n: number, p: number, c: number, out: Ptr): void;
  batch_to_inner(x: Ptr, n: number, p: number, c: number, out: Ptr): void;
  dilate(x: Ptr, n: number, h: number, w: number, c: number, stride: number, oh: number, ow: number, out: Ptr): void;
  conv_filter_grad(
    x: Ptr,
    dy: Ptr,
    n: number,
    h: number,
    w: number,
    ci: number,
    ho: number,
    wo: number,
    co: number,
    kh: number,
    kw: number,
    stride: number,
    pad: number,
    out: Ptr,
  ): void;
  conv_filter_grad_winograd: KernelExports['conv_filter_grad'];
  /** The Winograd filter gradient where the input was relu(batch norm(x)) (training mode), recomputed from x: the 14, then its pointers. */
  conv_filter_grad_winograd_bn(
    ...args: [...Parameters<KernelExports['conv_filter_grad']>, mean: Ptr, invStd: Ptr, gamma: Ptr, beta: Ptr]
  ): void;
  /** With mean 0 no batch norm; else conv of relu(batch norm(x)) with these running statistics (evaluation mode). */
  conv3x3_winograd(...args: [...Conv3x3Args, mean: Ptr, variance: Ptr, gamma: Ptr, beta: Ptr, eps: number]): void;
  flip_filter(f: Ptr, kh: number, kw: number, ci: number, co: number, out: Ptr): void;
  interleave2(p00: Ptr, p01: Ptr, p10: Ptr, p11: Ptr, n: number, h: number, w: number, c: number, out: Ptr): void;
  phase_filters3x3(f: Ptr, co: number, ci: number, p00: Ptr, p01: Ptr, p10: Ptr, p11: Ptr): void;
  sum_parts(parts: Ptr, count: number, size: number, out: Ptr): void;
  sgd_update(
    p: Ptr,
    grad: Ptr,
    buf: Ptr,
    n: number,
    lr: number,
    momentum: number,
    wd: number,
    nesterov: number,
    pOut: Ptr,
    bufOut: Ptr,
  ): void;
  // native/training_ops.c: one kernel for several tfjs ops each, the same float32 arithmetic.
  /** out[r] = sum over c of x[r, c]^2, for rows of c channels. */
  channel_sum_squares(x: Ptr, rows: number, c: number, out: Ptr): void;
  /** out[r, c] = (x[r, c] * 2) * g[r]. */
  channel_sum_squares_grad(x: Ptr, g: Ptr, rows: number, c: number, out: Ptr): void;
  /** mean' = mean * keep + batchMean * momentum; var' = var * keep + (batchVar * unbias) * momentum. */
  bn_running_update(
    mean: Ptr,
    variance: Ptr,
    batchMean: Ptr,
    batchVar: Ptr,
    c: number,
    keep: number,
    momentum: number,
    unbias: number,
    meanOut: Ptr,
    varOut: Ptr,
  ): void;
  /**
   * dx = (dy * step(y)) * scale[c] (relu 1) or dy * scale[c]: an evaluation-mode batch norm's input gradient.
   * Missing from addons built before it.
   */
  bn_eval_input_grad?(dy: Ptr, y: Ptr, scale: Ptr, rows: number, c: number, relu: number, dx: Ptr): void;
  /**
   * bn_eval_input_grad (relu) with the ReLU's mask recomputed from x (the output was never stored): mean, variance,
   * gamma, beta, eps as the forward's batch norm, gScale the backward's scale. Missing from addons built before it.
   */
  bn_eval_relu_grad_x?(
    da: Ptr,
    x: Ptr,
    mean: Ptr,
    variance: Ptr,
    gamma: Ptr,
    beta: Ptr,
    eps: number,
    gScale: Ptr,
    rows: number,
    c: number,
    dx: Ptr,
  ): void;
  /** out = (x > 0) - (x < 0), 0 for NaN (ops/sign.ts's exactSign). Missing from addons built before it. */
  sign_exact?(x: Ptr, n: number, out: Ptr): void;
  // The fused training path (batch norm + ReLU + 3x3 convolution, ops/conv.ts's bnReluConv3x3Train); missing from
  // addons built before it.
  /** bn_forward's mean, biased variance and invStd = 1 / sqrt(var + eps), without its output. */
  bn_stats?(x: Ptr, m: number, c: number, eps: number, mean: Ptr, variance: Ptr, invStd: Ptr): void;
  /** conv3x3_winograd of relu((x - mean) * (gamma * invStd) + beta), made as the input tiles are read. */
  conv3x3_winograd_bn?(...args: [...Conv3x3Args, mean: Ptr, invStd: Ptr, gamma: Ptr, beta: Ptr]): void;
  /** bn_backward (relu) of that activation's gradient da, the ReLU mask recomputed from x. */
  bn_relu_backward_x?(
    da: Ptr,
    x: Ptr,
    m: number,
    c: number,
    mean: Ptr,
    invStd: Ptr,
    gamma: Ptr,
    beta: Ptr,
    dMean: Ptr,
    dVar: Ptr,
    dx: Ptr,
    dGamma: Ptr,
    dBeta: Ptr,
  ): void;
}

/** The parts of tfjs-backend-wasm's BackendWasm we use (its typings live in a package we load lazily). */
export interface WasmBackendView {
  wasm: { wasmMemory?: WebAssembly.Memory; asm?: { memory?: WebAssembly.Memory }; _malloc(bytes: number): Ptr; _free(ptr: Ptr): void };
  dataIdMap: { get(dataId: object): { memoryOffset: number } };
  makeOutput(shape: number[], dtype: 'float32'): tf.TensorInfo;
}

/** The kernels both the wasm module and the native addon export, with the same arguments. */
export type SharedKernelCalls = Omit<
  KernelExports,
  '__stack_pointer' | 'conv_filter_grad' | 'conv_filter_grad_winograd' | 'conv_filter_grad_winograd_bn' | 'sum_parts'
>;

/**
 * The native addon (native/addon/addon.c): the same kernels on the same heap (pointers are byte offsets
 * into the Uint8Array given to heap()), with its own threads for the convolutions.
 */
export interface NativeKernelAddon extends SharedKernelCalls {
  /** The instruction set picked at load: avx512, avx2 or portable. */
  readonly isa: string;
  /** Points the kernels at the wasm heap; call again whenever the memory's buffer changed (it grew). */
  heap(bytes: Uint8Array): void;
  /** Threads for the convolutions (including the caller); returns how many run. */
  setThreads(n: number): number;
  /** Output channels conv2d needs in multiples of (16 with AVX-512, 8 with AVX2, 4 portable), unless conv2dNarrow. */
  readonly convVectorWidth: number;
  /** conv2d also takes fewer output channels than convVectorWidth at stride 1 (absent in builds before it). */
  readonly conv2dNarrow?: boolean;
  /** Direct convolution, NHWC x [n, h, w, ci], HWIO filter [kh, kw, ci, co], explicit top/left padding, y [n, ho, wo, co]; threaded. */
  conv2d(
    x: Ptr,
    n: number,
    h: number,
    w: number,
    ci: number,
    filter: Ptr,
    kh: number,
    kw: number,
    co: number,
    stride: number,
    padTop: number,
    padLeft: number,
    ho: number,
    wo: number,
    y: Ptr,
  ): void;
  /** conv_filter_grad's arguments, then 1 to use Winograd where it applies (3x3, stride 1, pad 1); threaded, chunked sums. */
  conv_filter_grad(...args: [...Parameters<KernelExports['conv_filter_grad']>, winograd: number]): void;
  /** conv_filter_grad_winograd_bn's arguments, threaded and chunked as conv_filter_grad. Missing from addons built before it. */
  conv_filter_grad_bn?(...args: Parameters<KernelExports['conv_filter_grad_winograd_bn']>): void;
  /**
   * WaNet's warp on JS arrays (not the heap): the first `count` uint8 HWC images of `images` (offsets.length / 4 pixels
   * of `channels` values each) warped in place with a warp plan's taps, byte for byte triggers/warp-plan.ts's JS path.
   * Missing from addons built before it (NAD_NATIVE_ADDON may name one).
   */
  warp?(images: Uint8Array, count: number, channels: number, offsets: Int32Array, weights: Float64Array): void;
}
