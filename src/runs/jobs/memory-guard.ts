// The memory limit inside a run (see ../memory-limit.ts): the wasm heap checked after every batch, and a
// failed allocation said as what it is.
import * as tf from '@tensorflow/tfjs-core';
import { OutOfMemoryError, outOfMemoryMessage } from '../memory-limit';

const MB = 1024 * 1024;

/** Bytes of the wasm backend's heap (0 on other backends). It grows and never shrinks: a high-water mark. */
export function wasmHeapBytes(): number {
  if (tf.getBackend() !== 'wasm' && tf.getBackend() !== 'native') return 0;
  const wasm = (tf.backend() as unknown as { wasm?: { wasmMemory?: WebAssembly.Memory; asm?: { memory?: WebAssembly.Memory } } }).wasm;
  const memory = wasm?.wasmMemory ?? wasm?.asm?.memory;
  return memory ? memory.buffer.byteLength : 0;
}

/** A check to call after each batch: throws OutOfMemoryError once the wasm heap is over `limitMb`. */
export function wasmHeapGuard(limitMb: number | undefined): () => void {
  if (limitMb === undefined) return () => undefined;
  return () => {
    const bytes = wasmHeapBytes();
    if (bytes > limitMb * MB)
      throw new OutOfMemoryError(
        outOfMemoryMessage(limitMb, `the WebAssembly heap of the ${tf.getBackend()} backend has grown to ${Math.round(bytes / MB)} MB`),
        limitMb,
      );
  };
}

/** The error a failed allocation raised, as an OutOfMemoryError; undefined for any other error. */
export function asOutOfMemory(e: unknown, limitMb: number | undefined): OutOfMemoryError | undefined {
  if (e instanceof OutOfMemoryError) return e;
  if (!(e instanceof Error)) return undefined;
  const heap = wasmHeapBytes();
  const at = heap ? ` at ${Math.round(heap / MB)} MB` : '';
  // tfjs-wasm's allocator aborts when the heap cannot grow (Emscripten's bare "Aborted()", measured at 4 GB
  // with Node 20); typed arrays and buffers too large for what is left fail in V8. ("memory access out of
  // bounds" is left alone: that is what a kernel's bug looks like too.)
  if (e instanceof WebAssembly.RuntimeError && /^Aborted\(\)|Cannot enlarge memory|out of memory/i.test(e.message))
    return new OutOfMemoryError(
      outOfMemoryMessage(limitMb, `the WebAssembly heap could not grow${at} (${e.message.split('.')[0]})`),
      limitMb,
    );
  if (e instanceof RangeError && /Array buffer allocation failed|Invalid typed array length/i.test(e.message))
    return new OutOfMemoryError(outOfMemoryMessage(limitMb, `a buffer could not be allocated (${e.message})`), limitMb);
  return undefined;
}
