// The TypeScript view of the kernels' WebAssembly module (native/*.c): the functions it exports, with
// their arguments in C order, and the parts of tfjs-backend-wasm that simd.ts reaches into to run them.
import type * as tf from '@tensorflow/tfjs-core';

export type Ptr = number;

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
  conv3x3_winograd(
    x: Ptr,
    n: number,
    h: number,
    w: number,
    ci: number,
    filter: Ptr,
    co: number,
    y: Ptr,
    mean: Ptr,
    variance: Ptr,
    gamma: Ptr,
    beta: Ptr,
    eps: number,
  ): void;
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
}

/** The parts of tfjs-backend-wasm's BackendWasm we use (its typings live in a package we load lazily). */
export interface WasmBackendView {
  wasm: { wasmMemory?: WebAssembly.Memory; asm?: { memory?: WebAssembly.Memory }; _malloc(bytes: number): Ptr; _free(ptr: Ptr): void };
  dataIdMap: { get(dataId: object): { memoryOffset: number } };
  makeOutput(shape: number[], dtype: 'float32'): tf.TensorInfo;
}
