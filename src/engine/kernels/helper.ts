// More threads for our SIMD kernels. tfjs's threaded wasm build keeps its heap in shared memory, so
// worker_threads with their own instance of our module (and their own stacks) can work on the same
// tensors in place. XNNPACK only threads convolutions and matrix products; without these our kernels
// (Winograd, filter gradients) would leave the other cores idle.
// Work is shared by chunks of images claimed from an atomic counter, not split evenly: when a core is
// busy (a shared machine), the other threads simply take more chunks instead of waiting.
import { Worker } from 'node:worker_threads';

type Ptr = number;

/** A kernel call over a batch: `fn(...args)` where some args advance with the image index. */
export interface BatchJob {
  readonly fn: string;
  readonly args: readonly number[];
  /** Index of the image-count argument. */
  readonly countArg: number;
  /** Pointer arguments and their bytes per image. */
  readonly perImage: ReadonlyArray<readonly [argIndex: number, bytes: number]>;
  /** Pointer arguments and their bytes per chunk (e.g. one partial sum per chunk). */
  readonly perChunk?: ReadonlyArray<readonly [argIndex: number, bytes: number]>;
  readonly images: number;
  readonly chunk: number;
}

// Control block (Int32 slots): 0 job sequence number, 1 function, 2 helpers done, 3 next image (claimed
// atomically), 4 images, 5 chunk, 6 count arg, 7 number of offset args, 8.. (argIndex, bytes per
// image, bytes per chunk) triples. Float64 args from byte 128.
const MAX_ARGS = 24;
const CONTROL_BYTES = 128 + 8 * MAX_ARGS;

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { bytes, memory, stackTop, control, names } = workerData;
const k = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } }).exports;
k.__stack_pointer.value = stackTop;
const fns = names.map((n) => k[n]);
const i32 = new Int32Array(memory.buffer, control, 32);
const f64 = new Float64Array(memory.buffer, control + 128, ${MAX_ARGS});
parentPort.postMessage('ready');
let seen = 0;
for (;;) {
  Atomics.wait(i32, 0, seen);
  seen = Atomics.load(i32, 0);
  const fn = fns[i32[1]];
  const base = Array.from(f64.subarray(0, fn.length));
  const args = base.slice();
  for (;;) {
    const start = Atomics.add(i32, 3, i32[5]);
    if (start >= i32[4]) break;
    for (let p = 0; p < i32[7]; p++) {
      const a = i32[8 + 3 * p];
      args[a] = base[a] + start * i32[9 + 3 * p] + (start / i32[5]) * i32[10 + 3 * p];
    }
    args[i32[6]] = Math.min(i32[5], i32[4] - start);
    fn(...args);
  }
  Atomics.add(i32, 2, 1);
  Atomics.notify(i32, 2);
}
`;

/** Worker threads that take chunks of our kernels' batches alongside the main thread. */
export class HelperPool {
  private readonly i32: Int32Array;
  private readonly f64: Float64Array;

  private constructor(
    memory: WebAssembly.Memory,
    control: Ptr,
    private readonly names: readonly string[],
    private readonly workers: readonly Worker[],
  ) {
    this.i32 = new Int32Array(memory.buffer, control, 32);
    this.f64 = new Float64Array(memory.buffer, control + 128, MAX_ARGS);
  }

  /** Starts `count` threads; `malloc` gives them a control block and a stack of `stackBytes` each in the shared heap. */
  static async start(
    count: number,
    bytes: Uint8Array,
    memory: WebAssembly.Memory,
    malloc: (n: number) => Ptr,
    stackBytes: number,
    names: readonly string[],
  ): Promise<HelperPool> {
    const control = (malloc(CONTROL_BYTES + 64) + 63) & ~63;
    new Int32Array(memory.buffer, control, 32).fill(0);
    const workers = await Promise.all(
      Array.from({ length: count }, async () => {
        const stackBase = malloc(stackBytes);
        const worker = new Worker(WORKER_SOURCE, {
          eval: true,
          workerData: { bytes, memory, stackTop: (stackBase + stackBytes) & ~15, control, names },
        });
        // They wait on Atomics forever: never let them keep the process alive.
        worker.unref();
        await new Promise<void>((resolve, reject) => {
          worker.once('message', () => resolve());
          worker.once('error', reject);
        });
        return worker;
      }),
    );
    return new HelperPool(memory, control, names, workers);
  }

  get size(): number {
    return this.workers.length;
  }

  /**
   * Runs `job` on the main thread and every helper, each claiming chunks of images until none is left;
   * returns when all are done. `run` is the main thread's kernel entry.
   */
  runBatch(job: BatchJob, run: (...args: number[]) => void): void {
    const index = this.names.indexOf(job.fn);
    if (index < 0) throw new Error(`helper threads have no function ${job.fn}`);
    const i32 = this.i32;
    const offsets = [...job.perImage.map(([a, b]) => [a, b, 0]), ...(job.perChunk ?? []).map(([a, b]) => [a, 0, b])];
    this.f64.set(job.args);
    i32[1] = index;
    i32[2] = 0;
    i32[3] = 0;
    i32[4] = job.images;
    i32[5] = job.chunk;
    i32[6] = job.countArg;
    i32[7] = offsets.length;
    offsets.forEach(([arg, perImage, perChunk], p) => {
      i32[8 + 3 * p] = arg;
      i32[9 + 3 * p] = perImage;
      i32[10 + 3 * p] = perChunk;
    });
    // The sequence number is written last (atomically): helpers read the job only after seeing it.
    Atomics.add(i32, 0, 1);
    Atomics.notify(i32, 0);
    const args = [...job.args];
    for (;;) {
      const start = Atomics.add(i32, 3, job.chunk);
      if (start >= job.images) break;
      for (const [arg, perImage, perChunk] of offsets) args[arg] = job.args[arg] + start * perImage + (start / job.chunk) * perChunk;
      args[job.countArg] = Math.min(job.chunk, job.images - start);
      run(...args);
    }
    for (let done = Atomics.load(i32, 2); done < this.workers.length; done = Atomics.load(i32, 2)) Atomics.wait(i32, 2, done, 1000);
  }

  dispose(): void {
    for (const w of this.workers) void w.terminate();
  }
}
