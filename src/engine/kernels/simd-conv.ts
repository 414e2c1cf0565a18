// The convolution kernels (native/winograd.c, conv_grad.c; in the addon its threaded entries), registered by
// simd.ts for both kernel backends: the 3x3 Winograd convolution and the filter gradient, each also with a
// training-mode batch norm + ReLU applied to its input as it is read (bnReluConv3x3Train in ops/conv.ts).
import type { HelperPool } from './helper';
import type { BodyArgs, DefineKernel } from './simd-training-ops';
import type { KernelExports, NativeKernelAddon, Ptr, SharedKernelCalls, WasmBackendView } from './simd-interfaces';

export interface Loaded {
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

/** A kernel body given the loaded kernels and the backend too. */
export type Body = (l: Loaded, ...args: [...BodyArgs, b: WasmBackendView]) => void;

/** The kernels the wasm helper threads run (chunks of images). */
export const SPLIT_FUNCTIONS = [
  'conv3x3_winograd',
  'conv3x3_winograd_bn',
  'conv_filter_grad',
  'conv_filter_grad_winograd',
  'conv_filter_grad_winograd_bn',
] as const;

// Split only work big enough to be worth a hand-off (~10 us): here ~1 M multiply-adds.
const SPLIT_MIN_MACS = 1 << 20;
/** For measurements: NAD_DIRECT_FILTER_GRAD=1 keeps the direct filter gradient for 3x3 convolutions. */
export const DIRECT_FILTER_GRAD = process.env.NAD_DIRECT_FILTER_GRAD === '1';
// Images per filter-gradient chunk: fixed (not derived from the thread count) for reproducible sums.
const FILTER_GRAD_CHUNK = 8;

/** Images per claimed chunk: about 8 chunks per thread, so that a slowed thread costs little. */
function chunkFor(images: number): number {
  return Math.max(1, Math.ceil(images / 16));
}

function wasmKernels(l: Loaded): KernelExports {
  if (!l.wasm) throw new Error('NAD kernels: the wasm module is not loaded');
  return l.wasm;
}

type FilterGradArgs = Parameters<KernelExports['conv_filter_grad']>;
type FilterGradFn = 'conv_filter_grad' | 'conv_filter_grad_winograd' | 'conv_filter_grad_winograd_bn';

/**
 * A filter gradient on wasm: `args` are conv_filter_grad's 14 (the output last), `extra` what follows them (the
 * batch norm's pointers). Fixed chunks of images, each summed into its own zeroed part, the parts then added in
 * order: the result does not depend on which thread took which chunk, nor on the thread count.
 */
function filterGradWasm(l: Loaded, b: WasmBackendView, fn: FilterGradFn, args: FilterGradArgs, extra: Ptr[]): void {
  const k = wasmKernels(l);
  const [, , n, h, w, ci, ho, wo, co, kh, kw] = args;
  const size = kh * kw * ci * co;
  const count = Math.ceil(n / FILTER_GRAD_CHUNK);
  const parts = b.wasm._malloc(count * size * 4);
  new Float32Array(l.memory.buffer, parts, count * size).fill(0);
  const all = [...args.slice(0, 13), parts, ...extra];
  const call = (c: number[]) => (k[fn] as (...a: number[]) => void)(...c);
  const perImage = [
    [0, h * w * ci * 4],
    [1, ho * wo * co * 4],
  ] as const;
  if (l.helper && count > 1 && n * ho * wo * ci * co * kh * kw >= SPLIT_MIN_MACS) {
    l.helper.runBatch({ fn, args: all, countArg: 2, perImage, perChunk: [[13, size * 4]], images: n, chunk: FILTER_GRAD_CHUNK }, (...c) =>
      call(c),
    );
  } else {
    for (let c = 0; c < count; c++) {
      const start = c * FILTER_GRAD_CHUNK;
      const chunkArgs = [...all];
      chunkArgs[0] += start * perImage[0][1];
      chunkArgs[1] += start * perImage[1][1];
      chunkArgs[2] = Math.min(FILTER_GRAD_CHUNK, n - start);
      chunkArgs[13] = parts + c * size * 4;
      call(chunkArgs);
    }
  }
  k.sum_parts(parts, count, size, args[13]);
  b.wasm._free(parts);
}

/** A Winograd convolution's 12 or 13 arguments (x, n, h, w, ci, filter, co, y, ...): the images shared between threads. */
function winogradSplit(l: Loaded, fn: 'conv3x3_winograd' | 'conv3x3_winograd_bn', args: number[]): void {
  const [, n, h, w, ci, , co] = args;
  const call = (c: number[]) => (l.k[fn] as ((...a: number[]) => void) | undefined)?.(...c);
  if (!l.helper || n < 2 || n * h * w * ci * co * 4 < SPLIT_MIN_MACS) return void call(args);
  const perImage = [
    [0, h * w * ci * 4],
    [7, h * w * co * 4],
  ] as const;
  l.helper.runBatch({ fn, args, countArg: 1, perImage, images: n, chunk: chunkFor(n) }, (...c) => call(c));
}

export function registerConvKernels(define: DefineKernel<Body>): void {
  // inputs x, dy; attrs kh, kw, stride, pad -> dW [kh, kw, ci, co]
  define(
    'NadConvFilterGrad',
    ([x, dy], a) => [[a.kh, a.kw, x.shape[3], dy.shape[3]]],
    (l, p, [x, dy], [out], a, b) => {
      const [n, h, w, ci] = x.shape;
      const [, ho, wo, co] = dy.shape;
      const args: FilterGradArgs = [p(x), p(dy), n, h, w, ci, ho, wo, co, a.kh, a.kw, a.stride, a.pad, p(out)];
      // The addon chunks, threads and sums in order itself (the same chunks as filterGradWasm).
      if (l.native) return l.native.conv_filter_grad(...args, DIRECT_FILTER_GRAD ? 0 : 1);
      // 3x3/stride 1/pad 1 (most of a ResNet) by Winograd, the rest directly; callers check co % 8.
      const wino = a.kh === 3 && a.kw === 3 && a.stride === 1 && a.pad === 1 && ci % 4 === 0 && !DIRECT_FILTER_GRAD;
      filterGradWasm(l, b, wino ? 'conv_filter_grad_winograd' : 'conv_filter_grad', args, []);
    },
  );
  // inputs x, dy, mean, invStd, gamma, beta -> dW [3, 3, ci, co] of a 3x3/stride 1/pad 1 convolution whose input was
  // relu((x - mean) * (gamma * invStd) + beta), recomputed from x (Winograd; ci % 4 == 0, co % 8 == 0)
  define(
    'NadConvFilterGradBn',
    ([x, dy]) => [[3, 3, x.shape[3], dy.shape[3]]],
    (l, p, [x, dy, mean, is, g, be], [out], _a, b) => {
      const [n, h, w, ci] = x.shape;
      const co = dy.shape[3];
      const args: FilterGradArgs = [p(x), p(dy), n, h, w, ci, h, w, co, 3, 3, 1, 1, p(out)];
      const bn = [p(mean), p(is), p(g), p(be)] as const;
      if (!l.native) return filterGradWasm(l, b, 'conv_filter_grad_winograd_bn', args, [...bn]);
      if (!l.native.conv_filter_grad_bn) throw new Error('NAD kernels: this native addon predates conv_filter_grad_bn');
      l.native.conv_filter_grad_bn(...args, ...bn);
    },
  );
  // inputs x [n, h, w, ci], filter [3, 3, ci, co] -> y [n, h, w, co] (stride 1, pad 1); images shared between threads
  // ... or inputs x, filter, mean, variance, gamma, beta; attr eps: conv of relu(batch norm(x)), evaluation mode
  define(
    'NadConv3x3Winograd',
    ([x, f]) => [[x.shape[0], x.shape[1], x.shape[2], f.shape[3]]],
    (l, p, [x, f, mean, v, g, be], [y], a) => {
      const bn = mean ? [p(mean), p(v), p(g), p(be), a.eps] : [0, 0, 0, 0, 0];
      const args = [p(x), ...x.shape, p(f), f.shape[3], p(y), ...bn] as Parameters<KernelExports['conv3x3_winograd']>;
      // The addon shares the images between its own threads.
      if (l.native) return l.native.conv3x3_winograd(...args);
      winogradSplit(l, 'conv3x3_winograd', args);
    },
  );
  // inputs x, filter, mean, invStd, gamma, beta -> conv of relu((x - mean) * (gamma * invStd) + beta), training mode
  // (the batch's statistics from NadBatchNormStats)
  define(
    'NadConv3x3WinogradBn',
    ([x, f]) => [[x.shape[0], x.shape[1], x.shape[2], f.shape[3]]],
    (l, p, [x, f, mean, is, g, be], [y]) => {
      const args = [p(x), ...x.shape, p(f), f.shape[3], p(y), p(mean), p(is), p(g), p(be)];
      if (!l.k.conv3x3_winograd_bn) throw new Error('NAD kernels: this native addon predates conv3x3_winograd_bn');
      if (l.native) return l.k.conv3x3_winograd_bn(...(args as Parameters<NonNullable<SharedKernelCalls['conv3x3_winograd_bn']>>));
      winogradSplit(l, 'conv3x3_winograd_bn', args);
    },
  );
}
