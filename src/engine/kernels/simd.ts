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
import type { KernelExports, NativeKernelAddon, Ptr, SharedKernelCalls, WasmBackendView } from './simd-interfaces';

// Kernels keep their scratch on the stack: per-channel accumulators, and Winograd's transformed
// filter and tile blocks (see winogradStackBytes).
export const STACK_BYTES = 4 * 1024 * 1024;

interface Loaded {
  /** The kernels both builds have; `wasm` or `native` is set, by backend. */
  readonly k: SharedKernelCalls;
  readonly wasm?: KernelExports;
  readonly native?: NativeKernelAddon;
  readonly memory: WebAssembly.Memory;
  helper?: HelperPool;
  /** native: the buffer the addon was last pointed at, and its threads. */
  heapBuffer?: ArrayBufferLike;
  nativeThreads?: number;
}

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

function wasmKernels(l: Loaded): KernelExports {
  if (!l.wasm) throw new Error('NAD kernels: the wasm module is not loaded');
  return l.wasm;
}

const SPLIT_FUNCTIONS = ['conv3x3_winograd', 'conv_filter_grad', 'conv_filter_grad_winograd'] as const;

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

// Split only work big enough to be worth a hand-off (~10 us): here ~1 M multiply-adds.
const SPLIT_MIN_MACS = 1 << 20;
// For measurements: NAD_DIRECT_FILTER_GRAD=1 keeps the direct filter gradient for 3x3 convolutions.
const DIRECT_FILTER_GRAD = process.env.NAD_DIRECT_FILTER_GRAD === '1';

type Body = (
  l: Loaded,
  ptr: (t: tf.TensorInfo) => Ptr,
  inputs: tf.TensorInfo[],
  outputs: tf.TensorInfo[],
  attrs: Attrs,
  b: WasmBackendView,
) => void;

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
  // inputs x, dy; attrs kh, kw, stride, pad -> dW [kh, kw, ci, co]
  define(
    'NadConvFilterGrad',
    ([x, dy], a) => [[a.kh, a.kw, x.shape[3], dy.shape[3]]],
    (l, p, [x, dy], [out], a, b) => {
      const [n, h, w, ci] = x.shape;
      const [, ho, wo, co] = dy.shape;
      if (l.native) {
        // The addon chunks, threads and sums in order itself (the same chunks as below).
        l.native.conv_filter_grad(p(x), p(dy), n, h, w, ci, ho, wo, co, a.kh, a.kw, a.stride, a.pad, p(out), DIRECT_FILTER_GRAD ? 0 : 1);
        return;
      }
      const k = wasmKernels(l);
      // 3x3/stride 1/pad 1 (most of a ResNet) by Winograd, the rest directly; callers check co % 8.
      const wino = a.kh === 3 && a.kw === 3 && a.stride === 1 && a.pad === 1 && ci % 4 === 0 && !DIRECT_FILTER_GRAD;
      const name = wino ? 'conv_filter_grad_winograd' : 'conv_filter_grad';
      const size = a.kh * a.kw * ci * co;
      // Fixed chunks of images, each summed into its own zeroed part, the parts then added in order:
      // the result does not depend on which thread took which chunk, nor on the thread count.
      const chunk = FILTER_GRAD_CHUNK;
      const count = Math.ceil(n / chunk);
      const parts = b.wasm._malloc(count * size * 4);
      new Float32Array(l.memory.buffer, parts, count * size).fill(0);
      type Args = Parameters<KernelExports['conv_filter_grad']>;
      const args: Args = [p(x), p(dy), n, h, w, ci, ho, wo, co, a.kh, a.kw, a.stride, a.pad, parts];
      const perImage = [
        [0, h * w * ci * 4],
        [1, ho * wo * co * 4],
      ] as const;
      if (l.helper && count > 1 && n * ho * wo * ci * co * a.kh * a.kw >= SPLIT_MIN_MACS) {
        l.helper.runBatch({ fn: name, args, countArg: 2, perImage, perChunk: [[13, size * 4]], images: n, chunk }, (...c) =>
          k[name](...(c as Args)),
        );
      } else {
        for (let c = 0; c < count; c++) {
          const start = c * chunk;
          k[name](
            args[0] + start * perImage[0][1],
            args[1] + start * perImage[1][1],
            Math.min(chunk, n - start),
            h,
            w,
            ci,
            ho,
            wo,
            co,
            a.kh,
            a.kw,
            a.stride,
            a.pad,
            parts + c * size * 4,
          );
        }
      }
      k.sum_parts(parts, count, size, p(out));
      b.wasm._free(parts);
    },
  );
  // inputs x [n, h, w, ci], filter [3, 3, ci, co] -> y [n, h, w, co] (stride 1, pad 1); images shared between threads
  // ... or inputs x, filter, mean, variance, gamma, beta; attr eps: conv of relu(batch norm(x)), evaluation mode
  define(
    'NadConv3x3Winograd',
    ([x, f]) => [[x.shape[0], x.shape[1], x.shape[2], f.shape[3]]],
    (l, p, [x, f, mean, v, g, be], [y], a) => {
      const [n, h, w, ci] = x.shape;
      const co = f.shape[3];
      const bn = mean ? [p(mean), p(v), p(g), p(be), a.eps] : [0, 0, 0, 0, 0];
      const args = [p(x), n, h, w, ci, p(f), co, p(y), ...bn] as Parameters<KernelExports['conv3x3_winograd']>;
      const fn = 'conv3x3_winograd';
      // The addon shares the images between its own threads.
      if (l.native) return l.native[fn](...args);
      if (!l.helper || n < 2 || n * h * w * ci * co * 4 < SPLIT_MIN_MACS) {
        l.k[fn](...args);
        return;
      }
      l.helper.runBatch(
        {
          fn,
          args,
          countArg: 1,
          perImage: [
            [0, h * w * ci * 4],
            [7, h * w * co * 4],
          ],
          images: n,
          chunk: chunkFor(n),
        },
        (...c) => l.k[fn](...(c as typeof args)),
      );
    },
  );
}

// Images per filter-gradient chunk: fixed (not derived from the thread count) for reproducible sums.
const FILTER_GRAD_CHUNK = 8;

/** Images per claimed chunk: about 8 chunks per thread, so that a slowed thread costs little. */
function chunkFor(images: number): number {
  return Math.max(1, Math.ceil(images / 16));
}
