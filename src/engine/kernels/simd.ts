// Loads native/*.c's WebAssembly into tfjs's wasm backend and registers its functions as tfjs
// kernels of that backend. Our module imports the backend's own memory, so kernels read and write
// tensors where they are, and the engine tracks their outputs like any other kernel's. The same kernels
// are registered for the `native` backend (native.ts: tfjs-wasm with these kernels in the native addon,
// which works on the same heap in place).
import * as tf from '@tensorflow/tfjs-core';
import v8 from 'node:v8';
import { KERNELS_WASM_PLAIN, KERNELS_WASM_PLAIN_RELAXED, KERNELS_WASM_SHARED, KERNELS_WASM_SHARED_RELAXED } from './simd-binary';
import { HelperPool } from './helper';
import { loadNativeAddon } from './native-addon';
import { type Attrs, channels, registerTrainingOps, rows } from './simd-training-ops';
import { type Body, type Loaded, registerConvKernels, SPLIT_FUNCTIONS } from './simd-conv';
import type { KernelExports, NativeKernelAddon, WasmBackendView } from './simd-interfaces';

// Kernels keep their scratch on the stack: per-channel accumulators, and Winograd's transformed
// filter and tile blocks (see winogradStackBytes).
export const STACK_BYTES = 4 * 1024 * 1024;

const loaded = new WeakMap<object, Loaded>();

function memoryOf(b: WasmBackendView): { memory: WebAssembly.Memory; shared: boolean } {
  const memory = b.wasm.wasmMemory ?? b.wasm.asm?.memory;
  if (!memory) throw new Error('tfjs wasm backend exposes no memory');
  return { memory, shared: typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer };
}

const decode = (b64: string): Uint8Array<ArrayBuffer> => new Uint8Array(Buffer.from(b64, 'base64'));

let relaxed: boolean | undefined;

/**
 * Whether the relaxed-SIMD builds (fused multiply-add in the GEMM loops) run here. Node 20's V8 has
 * relaxed SIMD behind a flag, which can be set before the first module using it is compiled; newer
 * runtimes (Node 22, VS Code's Electron) have it on. NAD_RELAXED_SIMD=0 keeps the plain build.
 */
export function relaxedSimdActive(): boolean {
  if (relaxed !== undefined) return relaxed;
  const probe = decode(KERNELS_WASM_PLAIN_RELAXED);
  relaxed = false;
  if (process.env.NAD_RELAXED_SIMD === '0') return relaxed;
  if (!WebAssembly.validate(probe)) {
    try {
      v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
    } catch {
      return relaxed;
    }
  }
  relaxed = WebAssembly.validate(probe);
  return relaxed;
}

function binary(shared: boolean): Uint8Array<ArrayBuffer> {
  if (relaxedSimdActive()) return decode(shared ? KERNELS_WASM_SHARED_RELAXED : KERNELS_WASM_PLAIN_RELAXED);
  return decode(shared ? KERNELS_WASM_SHARED : KERNELS_WASM_PLAIN);
}

function load(b: WasmBackendView): Loaded {
  let l = loaded.get(b);
  if (l) return l;
  const { memory, shared } = memoryOf(b);
  const k = new WebAssembly.Instance(new WebAssembly.Module(binary(shared)), { env: { memory } }).exports as unknown as KernelExports;
  // Our stack lives in a block the backend's allocator gave us (never freed: one per backend).
  const base = b.wasm._malloc(STACK_BYTES);
  k.__stack_pointer.value = (base + STACK_BYTES) & ~15;
  l = { k, wasm: k, memory };
  loaded.set(b, l);
  return l;
}

/** The native addon over the backend's heap (re-pointed whenever the heap grew and its buffer changed). */
function loadNative(b: WasmBackendView): Loaded {
  let l = loaded.get(b);
  if (!l) {
    const addon = loadNativeAddon();
    l = { k: addon, native: addon, memory: memoryOf(b).memory };
    loaded.set(b, l);
  }
  if (l.native && l.heapBuffer !== l.memory.buffer) {
    l.heapBuffer = l.memory.buffer;
    l.native.heap(new Uint8Array(l.heapBuffer));
  }
  return l;
}

/** The native addon, pointed at this (native) backend's heap. */
export function nativeKernelsOn(b: WasmBackendView): NativeKernelAddon {
  const native = loadNative(b).native;
  if (!native) throw new Error('NAD kernels: this backend runs the wasm module, not the native addon');
  return native;
}

/**
 * Loads the kernels into the current wasm backend and, when its heap is shared (the threaded build),
 * starts threads - 1 helpers that share the big kernels with the main thread. Without this call kernels
 * still load on first use, single-threaded.
 */
export async function prepareSimdKernels(threads: number): Promise<void> {
  registerSimdKernels();
  if (tf.getBackend() === 'native') {
    const l = loadNative(tf.backend() as unknown as WasmBackendView);
    l.nativeThreads ??= l.native?.setThreads(Number(process.env.NAD_NATIVE_THREADS) || threads);
    return;
  }
  if (tf.getBackend() !== 'wasm') return;
  const b = tf.backend() as unknown as WasmBackendView;
  const l = load(b);
  const { memory, shared } = memoryOf(b);
  if (!shared || l.helper || threads < 2 || process.env.NAD_KERNEL_HELPER === '0') return;
  l.helper = await HelperPool.start(threads - 1, binary(true), memory, (n) => b.wasm._malloc(n), STACK_BYTES, SPLIT_FUNCTIONS);
}

/** Threads our kernels run on (1 without helpers), for descriptions. */
export function simdKernelThreads(): number {
  if (tf.getBackend() === 'native') return loaded.get(tf.backend())?.nativeThreads ?? 1;
  return tf.getBackend() === 'wasm' ? 1 + (loaded.get(tf.backend())?.helper?.size ?? 0) : 1;
}

/** The backends our kernels are registered for: tfjs-wasm with the wasm module, and with the native addon. */
export const KERNEL_BACKENDS = ['wasm', 'native'] as const;

function define(name: string, outputShapes: (inputs: tf.TensorInfo[], attrs: Attrs) => number[][], body: Body): void {
  for (const backendName of KERNEL_BACKENDS) {
    const loader = backendName === 'native' ? loadNative : load;
    tf.registerKernel({
      kernelName: name,
      backendName,
      kernelFunc: ({ inputs, attrs, backend }) => {
        const b = backend as unknown as WasmBackendView;
        const ins = Object.values(inputs) as tf.TensorInfo[];
        const a = attrs as unknown as Attrs;
        const outs = outputShapes(ins, a).map((s) => b.makeOutput(s, 'float32'));
        body(loader(b), (t) => b.dataIdMap.get(t.dataId).memoryOffset, ins, outs, a, b);
        return outs;
      },
    });
  }
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
  for (const backendName of KERNEL_BACKENDS) {
    if (tf.getKernel('Identity', backendName)) tf.unregisterKernel('Identity', backendName);
    tf.registerKernel({
      kernelName: 'Identity',
      backendName,
      kernelFunc: ({ inputs, backend }) => {
        const x = inputs.x as tf.TensorInfo;
        (backend as unknown as { incRef(dataId: object): void }).incRef(x.dataId);
        return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
      },
    });
  }
  const vec = (t: tf.TensorInfo) => [channels(t)];
  // inputs x, gamma, beta; attrs eps, relu -> y, mean, variance, invStd
  define(
    'NadBatchNormForward',
    ([x]) => [x.shape, vec(x), vec(x), vec(x)],
    ({ k }, p, [x, g, be], [y, mean, v, is], a) =>
      k.bn_forward(p(x), rows(x), channels(x), p(g), p(be), a.eps, a.relu, p(y), p(mean), p(v), p(is)),
  );
  // inputs x, mean, variance, gamma, beta; attrs eps, relu -> y
  define(
    'NadBatchNormEval',
    ([x]) => [x.shape],
    ({ k }, p, [x, mean, v, g, be], [y], a) => k.bn_eval(p(x), rows(x), channels(x), p(mean), p(v), p(g), p(be), a.eps, a.relu, p(y)),
  );
  // inputs dy, x, y, mean, invStd, gamma, dMean, dVar; attrs relu -> dx, dGamma, dBeta
  define(
    'NadBatchNormBackward',
    ([dy]) => [dy.shape, vec(dy), vec(dy)],
    ({ k }, p, [dy, x, y, mean, is, g, dm, dv], [dx, dg, db], a) =>
      k.bn_backward(p(dy), p(x), p(y), rows(dy), channels(dy), a.relu, p(mean), p(is), p(g), p(dm), p(dv), p(dx), p(dg), p(db)),
  );
  // The fused training path (bnReluConv3x3Train): input x; attr eps -> mean, variance, invStd (bn_forward's, without y)
  define(
    'NadBatchNormStats',
    ([x]) => [vec(x), vec(x), vec(x)],
    ({ k }, p, [x], [mean, v, is], a) => {
      if (!k.bn_stats) throw new Error('NAD kernels: this native addon predates bn_stats');
      k.bn_stats(p(x), rows(x), channels(x), a.eps, p(mean), p(v), p(is));
    },
  );
  // inputs da (the gradient reaching relu(batch norm(x))), x, mean, invStd, gamma, beta, dMean, dVar -> dx, dGamma, dBeta:
  // NadBatchNormBackward (relu) with the mask recomputed from x
  define(
    'NadBnReluBackwardX',
    ([da]) => [da.shape, vec(da), vec(da)],
    ({ k }, p, [da, x, mean, is, g, be, dm, dv], [dx, dg, db]) => {
      if (!k.bn_relu_backward_x) throw new Error('NAD kernels: this native addon predates bn_relu_backward_x');
      k.bn_relu_backward_x(p(da), p(x), rows(x), channels(x), p(mean), p(is), p(g), p(be), p(dm), p(dv), p(dx), p(dg), p(db));
    },
  );
  define(
    'NadSwapBatchChannels',
    ([x]) => [[x.shape[3], x.shape[1], x.shape[2], x.shape[0]]],
    ({ k }, p, [x], [out]) => k.swap_batch_channels(p(x), x.shape[0], x.shape[1] * x.shape[2], x.shape[3], p(out)),
  );
  define(
    'NadBatchToInner',
    ([x]) => [[x.shape[1], x.shape[2], x.shape[0], x.shape[3]]],
    ({ k }, p, [x], [out]) => k.batch_to_inner(p(x), x.shape[0], x.shape[1] * x.shape[2], x.shape[3], p(out)),
  );
  // input x [n, h, w, c]; attrs stride, oh, ow -> [n, oh, ow, c]
  define(
    'NadDilate',
    ([x], a) => [[x.shape[0], a.oh, a.ow, x.shape[3]]],
    ({ k }, p, [x], [out], a) => k.dilate(p(x), x.shape[0], x.shape[1], x.shape[2], x.shape[3], a.stride, a.oh, a.ow, p(out)),
  );
  // input filter [kh, kw, ci, co] -> [kh, kw, co, ci] rotated 180 degrees
  define(
    'NadFlipFilter',
    ([f]) => [[f.shape[0], f.shape[1], f.shape[3], f.shape[2]]],
    ({ k }, p, [f], [out]) => k.flip_filter(p(f), f.shape[0], f.shape[1], f.shape[2], f.shape[3], p(out)),
  );
  // inputs the four phases [n, h, w, c] (even/even, even/odd, odd/even, odd/odd) -> [n, 2h, 2w, c]
  define(
    'NadInterleave2',
    ([q]) => [[q.shape[0], 2 * q.shape[1], 2 * q.shape[2], q.shape[3]]],
    ({ k }, p, [a, b, c, d], [out]) => k.interleave2(p(a), p(b), p(c), p(d), a.shape[0], a.shape[1], a.shape[2], a.shape[3], p(out)),
  );
  // input flipped filter [3, 3, co, ci] -> the stride-2 phase filters [1,1|1,2|2,1|2,2, co, ci]
  define(
    'NadPhaseFilters3x3',
    ([f]) => [1, 2].flatMap((r) => [1, 2].map((c) => [r, c, f.shape[2], f.shape[3]])),
    ({ k }, p, [f], [a, b, c, d]) => k.phase_filters3x3(p(f), f.shape[2], f.shape[3], p(a), p(b), p(c), p(d)),
  );
  // inputs param, grad, momentum buffer; attrs lr, momentum, weightDecay, nesterov -> new param, new buffer
  define(
    'NadSgdUpdate',
    ([v]) => [v.shape, v.shape],
    ({ k }, p, [v, g, buf], [vOut, bufOut], a) =>
      k.sgd_update(
        p(v),
        p(g),
        p(buf),
        v.shape.reduce((x, d) => x * d, 1),
        a.lr,
        a.momentum,
        a.weightDecay,
        a.nesterov,
        p(vOut),
        p(bufOut),
      ),
  );
  registerTrainingOps((name, shapes, body) => define(name, shapes, ({ k }, p, ins, outs, a) => body(k, p, ins, outs, a)));
  registerConvKernels(define);
}
