// Loads native/kernels.c's WebAssembly into tfjs's wasm backend and registers its functions as tfjs
// kernels of that backend. Our module imports the backend's own memory, so kernels read and write
// tensors where they are, and the engine tracks their outputs like any other kernel's.
import * as tf from '@tensorflow/tfjs-core';
import { KERNELS_WASM_PLAIN, KERNELS_WASM_SHARED } from './simd-binary';

type Ptr = number;

interface KernelExports {
  readonly __stack_pointer: WebAssembly.Global;
  bn_forward(x: Ptr, m: number, c: number, gamma: Ptr, beta: Ptr, eps: number, relu: number, y: Ptr, mean: Ptr, variance: Ptr, invStd: Ptr): void;
  bn_eval(x: Ptr, m: number, c: number, mean: Ptr, variance: Ptr, gamma: Ptr, beta: Ptr, eps: number, relu: number, y: Ptr): void;
  bn_backward(
    dy: Ptr, x: Ptr, y: Ptr, m: number, c: number, relu: number, mean: Ptr, invStd: Ptr,
    gamma: Ptr, dMean: Ptr, dVar: Ptr, dx: Ptr, dGamma: Ptr, dBeta: Ptr,
  ): void;
  swap_batch_channels(x: Ptr, n: number, p: number, c: number, out: Ptr): void;
  batch_to_inner(x: Ptr, n: number, p: number, c: number, out: Ptr): void;
  dilate(x: Ptr, n: number, h: number, w: number, c: number, stride: number, out: Ptr): void;
  conv_filter_grad(
    x: Ptr, dy: Ptr, n: number, h: number, w: number, ci: number, ho: number, wo: number, co: number,
    kh: number, kw: number, stride: number, pad: number, out: Ptr,
  ): void;
}

/** The parts of tfjs-backend-wasm's BackendWasm we use (its typings live in a package we load lazily). */
interface WasmBackendView {
  wasm: { wasmMemory?: WebAssembly.Memory; asm?: { memory?: WebAssembly.Memory }; _malloc(bytes: number): Ptr };
  dataIdMap: { get(dataId: object): { memoryOffset: number } };
  makeOutput(shape: number[], dtype: 'float32'): tf.TensorInfo;
}

// Kernels keep per-channel double accumulators on the stack: 64 KiB covers up to ~2000 channels.
const STACK_BYTES = 64 * 1024;
const loaded = new WeakMap<object, KernelExports>();

function exportsFor(b: WasmBackendView): KernelExports {
  let k = loaded.get(b);
  if (k) return k;
  const memory = b.wasm.wasmMemory ?? b.wasm.asm?.memory;
  if (!memory) throw new Error('tfjs wasm backend exposes no memory');
  const shared = typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
  const module = new WebAssembly.Module(Buffer.from(shared ? KERNELS_WASM_SHARED : KERNELS_WASM_PLAIN, 'base64'));
  k = new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as KernelExports;
  // Our stack lives in a block the backend's allocator gave us (never freed: one per backend).
  const base = b.wasm._malloc(STACK_BYTES);
  k.__stack_pointer.value = (base + STACK_BYTES) & ~15;
  loaded.set(b, k);
  return k;
}

type Attrs = Record<string, number>;
type Body = (k: KernelExports, ptr: (t: tf.TensorInfo) => Ptr, inputs: tf.TensorInfo[], outputs: tf.TensorInfo[], attrs: Attrs) => void;

function define(name: string, outputShapes: (inputs: tf.TensorInfo[], attrs: Attrs) => number[][], body: Body): void {
  tf.registerKernel({
    kernelName: name,
    backendName: 'wasm',
    kernelFunc: ({ inputs, attrs, backend }) => {
      const b = backend as unknown as WasmBackendView;
      const ins = Object.values(inputs) as tf.TensorInfo[];
      const a = attrs as unknown as Attrs;
      const outs = outputShapes(ins, a).map((s) => b.makeOutput(s, 'float32'));
      body(exportsFor(b), (t) => b.dataIdMap.get(t.dataId).memoryOffset, ins, outs, a);
      return outs;
    },
  });
}

function channels(t: tf.TensorInfo): number {
  return t.shape[t.shape.length - 1];
}

function rows(t: tf.TensorInfo): number {
  return t.shape.slice(0, -1).reduce((p, d) => p * d, 1);
}

let registered = false;

/**
 * Registers the kernels (idempotent). Names: Nad*; inputs are passed in the documented order. Also
 * makes wasm's Identity (tf.clone, and every tensor the engine saves for a backward pass) share the
 * input's memory, as the cpu backend's does, instead of copying it.
 */
export function registerSimdKernels(): void {
  if (registered) return;
  registered = true;
  tf.unregisterKernel('Identity', 'wasm');
  tf.registerKernel({
    kernelName: 'Identity',
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend }) => {
      const x = inputs.x as tf.TensorInfo;
      (backend as unknown as { incRef(dataId: object): void }).incRef(x.dataId);
      return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
    },
  });
  const vec = (t: tf.TensorInfo) => [channels(t)];
  // inputs x, gamma, beta; attrs eps, relu -> y, mean, variance, invStd
  define('NadBatchNormForward', ([x]) => [x.shape, vec(x), vec(x), vec(x)], (k, p, [x, g, be], [y, mean, v, is], a) =>
    k.bn_forward(p(x), rows(x), channels(x), p(g), p(be), a.eps, a.relu, p(y), p(mean), p(v), p(is)),
  );
  // inputs x, mean, variance, gamma, beta; attrs eps, relu -> y
  define('NadBatchNormEval', ([x]) => [x.shape], (k, p, [x, mean, v, g, be], [y], a) =>
    k.bn_eval(p(x), rows(x), channels(x), p(mean), p(v), p(g), p(be), a.eps, a.relu, p(y)),
  );
  // inputs dy, x, y, mean, invStd, gamma, dMean, dVar; attrs relu -> dx, dGamma, dBeta
  define('NadBatchNormBackward', ([dy]) => [dy.shape, vec(dy), vec(dy)], (k, p, [dy, x, y, mean, is, g, dm, dv], [dx, dg, db], a) =>
    k.bn_backward(p(dy), p(x), p(y), rows(dy), channels(dy), a.relu, p(mean), p(is), p(g), p(dm), p(dv), p(dx), p(dg), p(db)),
  );
  define('NadSwapBatchChannels', ([x]) => [[x.shape[3], x.shape[1], x.shape[2], x.shape[0]]], (k, p, [x], [out]) =>
    k.swap_batch_channels(p(x), x.shape[0], x.shape[1] * x.shape[2], x.shape[3], p(out)),
  );
  define('NadBatchToInner', ([x]) => [[x.shape[1], x.shape[2], x.shape[0], x.shape[3]]], (k, p, [x], [out]) =>
    k.batch_to_inner(p(x), x.shape[0], x.shape[1] * x.shape[2], x.shape[3], p(out)),
  );
  define('NadDilate', ([x], a) => [[x.shape[0], (x.shape[1] - 1) * a.stride + 1, (x.shape[2] - 1) * a.stride + 1, x.shape[3]]], (k, p, [x], [out], a) =>
    k.dilate(p(x), x.shape[0], x.shape[1], x.shape[2], x.shape[3], a.stride, p(out)),
  );
  // inputs x, dy; attrs kh, kw, stride, pad -> dW [kh, kw, ci, co]
  define('NadConvFilterGrad', ([x, dy], a) => [[a.kh, a.kw, x.shape[3], dy.shape[3]]], (k, p, [x, dy], [out], a) =>
    k.conv_filter_grad(p(x), p(dy), x.shape[0], x.shape[1], x.shape[2], x.shape[3], dy.shape[1], dy.shape[2], dy.shape[3], a.kh, a.kw, a.stride, a.pad, p(out)),
  );
}
