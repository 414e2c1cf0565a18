// A second thread for our SIMD kernels. tfjs's threaded wasm build keeps its heap in shared memory,
// so a worker_thread with its own instance of our module (and its own stack) can compute half of a
// kernel's work in place while the main thread computes the other half. Hand-off is one Atomics
// notify/wait pair (microseconds), not a message: XNNPACK only threads convolutions and matrix
// products, and without this our kernels (Winograd, filter gradients) would leave the second core idle.
import { Worker } from 'node:worker_threads';

type Ptr = number;

// Control block: Int32 [0] = job posted (1) / idle (0), [1] = function index, [2] = done; Float64 args from byte 64.
const CONTROL_BYTES = 64 + 8 * 24;

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { bytes, memory, stackTop, control, names } = workerData;
const k = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } }).exports;
k.__stack_pointer.value = stackTop;
const fns = names.map((n) => k[n]);
const i32 = new Int32Array(memory.buffer, control, 16);
const args = new Float64Array(memory.buffer, control + 64, 24);
parentPort.postMessage('ready');
for (;;) {
  Atomics.wait(i32, 0, 0);
  const fn = fns[i32[1]];
  const n = fn.length;
  fn(...Array.from(args.subarray(0, n)));
  Atomics.store(i32, 0, 0);
  Atomics.store(i32, 2, 1);
  Atomics.notify(i32, 2);
}
`;

export class HelperThread {
  private readonly i32: Int32Array;
  private readonly args: Float64Array;
  private busy = false;

  private constructor(
    memory: WebAssembly.Memory,
    control: Ptr,
    private readonly names: readonly string[],
    private readonly worker: Worker,
  ) {
    this.i32 = new Int32Array(memory.buffer, control, 16);
    this.args = new Float64Array(memory.buffer, control + 64, 24);
  }

  /** Starts the thread; `malloc` gives it a control block and a stack of `stackBytes` in the shared heap. */
  static async start(bytes: Uint8Array, memory: WebAssembly.Memory, malloc: (n: number) => Ptr, stackBytes: number, names: readonly string[]): Promise<HelperThread> {
    const control = (malloc(CONTROL_BYTES + 64) + 63) & ~63;
    new Int32Array(memory.buffer, control, 16).fill(0);
    const stackBase = malloc(stackBytes);
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { bytes, memory, stackTop: (stackBase + stackBytes) & ~15, control, names },
    });
    // It waits on Atomics forever: never let it keep the process alive.
    worker.unref();
    await new Promise<void>((resolve, reject) => {
      worker.once('message', () => resolve());
      worker.once('error', reject);
    });
    return new HelperThread(memory, control, names, worker);
  }

  /** Starts `fn(...args)` on the helper. Pair with wait(). */
  post(fn: string, args: readonly number[]): void {
    if (this.busy) throw new Error('helper thread already has a job');
    const index = this.names.indexOf(fn);
    if (index < 0) throw new Error(`helper thread has no function ${fn}`);
    this.busy = true;
    this.args.set(args);
    this.i32[1] = index;
    Atomics.store(this.i32, 2, 0);
    Atomics.store(this.i32, 0, 1);
    Atomics.notify(this.i32, 0);
  }

  /** Blocks until the posted job is done. */
  wait(): void {
    while (Atomics.load(this.i32, 2) === 0) Atomics.wait(this.i32, 2, 0, 1000);
    this.busy = false;
  }

  dispose(): void {
    void this.worker.terminate();
  }
}
