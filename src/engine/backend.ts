// Chooses and initialises the TensorFlow.js backend: tfjs-node (native libtensorflow) when it loads,
// else `native` (tfjs-wasm with our kernels compiled for this CPU: native/addon/, where its prebuilt loads),
// else WebAssembly (SIMD, our kernels in wasm), else pure JS. Every run records which one ran.
import * as tf from '@tensorflow/tfjs-core';
// A namespace import that is used: bundlers drop a bare import of this package (its sideEffects list).
import { version_cpu } from '@tensorflow/tfjs-backend-cpu';
// tfjs-core alone registers no gradients; training needs them on every backend.
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { KERNEL_BACKENDS, prepareSimdKernels, registerSimdKernels, relaxedSimdActive, simdKernelThreads } from './kernels/simd';
import { loadNativeAddon, nativeIsa } from './kernels/native-addon';
import { registerNativeConv2D } from './kernels/native-conv';
import { dirname, join } from 'node:path';
import os from 'node:os';

export type BackendName = 'tensorflow' | 'native' | 'wasm' | 'cpu';
export type BackendPreference = 'auto' | BackendName;
export const BACKEND_PREFERENCES: readonly BackendPreference[] = ['auto', 'tensorflow', 'native', 'wasm', 'cpu'];

export interface BackendInfo {
  /** tfjs's backend name: `tensorflow` (tfjs-node), `native` (tfjs-wasm + native kernels), `wasm` or `cpu`. */
  readonly name: BackendName;
  /** Human-readable detail, e.g. `wasm (SIMD, 1 thread)`. */
  readonly description: string;
  /** Why a preferred backend was skipped, if one was. */
  readonly fallbackReasons: readonly string[];
  /** Threads the backend computes with (wasm: XNNPACK's pool incl. the main thread; native: that or the addon's; else the core count). */
  readonly threads: number;
}

export interface BackendOptions {
  /**
   * wasm only: threads for convolutions and matrix products; default all cores (env NAD_WASM_THREADS).
   * 1 selects the single-threaded SIMD build.
   */
  readonly wasmThreads?: number;
}

let current: BackendInfo | undefined;

/** Directory holding the tfjs wasm binaries: next to the bundle (dist/), else in node_modules. */
function wasmDirectory(): string {
  const candidates = [__dirname, join(__dirname, '..'), join(__dirname, '..', '..')];
  for (const dir of candidates) if (existsSync(join(dir, 'tfjs-backend-wasm-simd.wasm'))) return dir + '/';
  const pkg = require.resolve('@tensorflow/tfjs-backend-wasm/package.json');
  return join(dirname(pkg), 'dist') + '/';
}

// tfjs-node-gpu (CUDA) first where it is installed, else tfjs-node; both register `tensorflow`.
const TENSORFLOW_PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'] as const;
let tensorflowPackage: string | undefined;

async function tryTensorflow(): Promise<string | undefined> {
  const reasons: string[] = [];
  for (const pkg of TENSORFLOW_PACKAGES) {
    try {
      // Optional native dependencies; absent when their install could not download libtensorflow.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      require(pkg);
    } catch (e) {
      reasons.push(`${pkg} not available (${firstLine(e)})`);
      continue;
    }
    if (!(await tf.setBackend('tensorflow'))) return `${pkg} loaded but its backend failed to initialise`;
    tensorflowPackage = pkg;
    return undefined;
  }
  // The CPU package is the one users install; the GPU one is only worth naming when it was the problem.
  return reasons[reasons.length - 1];
}

async function tryWasm(threads: number): Promise<string | undefined> {
  try {
    const threadsProblem = await registerWasmBackend(threads);
    const ok = await withNodeThreadShims(threads, () => tf.setBackend('wasm'));
    if (!ok) return 'wasm backend failed to initialise';
    unrefPthreadWorkers();
    await prepareSimdKernels(threads);
    if (threadsProblem) console.warn(`wasm: running on 1 thread (${threadsProblem})`);
    return undefined;
  } catch (e) {
    return `wasm backend not available (${firstLine(e)})`;
  }
}

async function tryNative(threads: number): Promise<string | undefined> {
  try {
    loadNativeAddon();
  } catch (e) {
    return firstLine(e);
  }
  try {
    const threadsProblem = await registerWasmBackend(threads);
    registerNativeBackend();
    // With AVX2/AVX-512 the addon runs every convolution, so XNNPACK's pool would only take the small matrix
    // products, and its workers spin after each one on a core our kernels' threads need (~10% of a NAD step's
    // CPU on 2 cores, docs/performance.md): one XNNPACK thread there (NAD_XNNPACK_THREADS still overrides).
    const oneXnnpackThread = threads > 1 && nativeIsa() !== 'portable' && !process.env.NAD_XNNPACK_THREADS;
    const init = () => withNodeThreadShims(threads, () => tf.setBackend('native'));
    const ok = await (oneXnnpackThread ? withXnnpackThreads(1, threads, init) : init());
    if (!ok) return 'native backend (tfjs-wasm + native kernels) failed to initialise';
    unrefPthreadWorkers();
    await prepareSimdKernels(threads);
    if (threadsProblem) console.warn(`native: tfjs-wasm running on 1 thread (${threadsProblem})`);
    return undefined;
  } catch (e) {
    return `native backend not available (${firstLine(e)})`;
  }
}

/** Runs a tfjs-wasm backend's initialisation with `threads` XNNPACK threads, then sets back `registered` (registerWasmBackend's). */
async function withXnnpackThreads<T>(threads: number, registered: number, init: () => Promise<T>): Promise<T> {
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  wasm.setThreadsCount(threads);
  try {
    return await init();
  } finally {
    wasm.setThreadsCount(registered);
  }
}

let nativeRegistered = false;

/**
 * The `native` tfjs backend: a second tfjs-wasm instance (its own heap and pool) whose kernels are
 * wasm's, except ours (kernels/simd.ts), which call the native addon on that heap instead of our
 * wasm module, and Conv2D (kernels/native-conv.ts). tfjs binds a kernel's setup to the active backend's module on every setBackend, so
 * native and wasm can take turns in one process (the benchmark does).
 */
function registerNativeBackend(): void {
  if (nativeRegistered) return;
  nativeRegistered = true;
  registerSimdKernels();
  tf.registerBackend('native', tf.findBackendFactory('wasm'), 0);
  for (const k of tf.getKernelsForBackend('wasm'))
    if (!tf.getKernel(k.kernelName, 'native')) tf.registerKernel({ ...k, backendName: 'native' });
  registerNativeConv2D();
}

let wasmRegistered: Promise<string | undefined> | undefined;

/**
 * Registers the wasm backend (binaries located, threads prepared) without selecting it, so that tests
 * can switch between it and cpu. Returns why multi-threading is off when it was asked for and is.
 */
export function registerWasmBackend(threads = 1): Promise<string | undefined> {
  wasmRegistered ??= (async () => {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    wasm.setWasmPaths(wasmDirectory());
    if (threads <= 1) return undefined;
    try {
      prepareNodeThreads();
    } catch (e) {
      return firstLine(e);
    }
    // XNNPACK's own pool may be smaller than the thread budget (NAD_XNNPACK_THREADS, for measurements).
    wasm.setThreadsCount(Number(process.env.NAD_XNNPACK_THREADS) || threads);
    return undefined;
  })();
  return wasmRegistered;
}

// tfjs's multi-threaded wasm build does not start under Node as shipped (tfjs issue #3830): its
// feature check says no threads under Node, its pthread workers are created from blob: URLs that
// Node's Worker refuses, and the worker loads the emscripten glue from a blob too. We write both
// scripts to real files (the glue from the package's pristine emscripten output, which only needs
// Node's require) and point the workers at them.
let workerScriptPath: string | undefined;

function prepareNodeThreads(): void {
  if (workerScriptPath) return;
  /* eslint-disable @typescript-eslint/no-require-imports */
  const glue = require('@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.js') as (...a: unknown[]) => unknown;
  const { wasmWorkerContents } = require('@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.worker.js') as {
    wasmWorkerContents: string;
  };
  /* eslint-enable @typescript-eslint/no-require-imports */
  const blobLoad =
    'if(typeof e.data.urlOrBlob=="string"){importScripts(e.data.urlOrBlob)}else{var objectUrl=URL.createObjectURL(e.data.urlOrBlob);importScripts(objectUrl);URL.revokeObjectURL(objectUrl)}';
  if (!wasmWorkerContents.includes(blobLoad)) throw new Error('unexpected tfjs wasm worker script (tfjs version changed?)');
  const dir = join(os.tmpdir(), `nad-tfjs-wasm-${tf.version_core}-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  // Workers read the scripts at start-up only; remove them when the process ends.
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const gluePath = join(dir, 'tfjs-backend-wasm-threaded-simd.js');
  writeFileSync(gluePath, `var WasmBackendModuleThreadedSimd = ${glue.toString()};\n`);
  const workerPath = join(dir, 'tfjs-backend-wasm-threaded-simd.worker.js');
  // The script holds a "\n" that its template literal turned into a real newline; tfjs escapes it too.
  writeFileSync(workerPath, wasmWorkerContents.replace(/\n/g, '\\n').replace(blobLoad, `importScripts(${JSON.stringify(gluePath)});`));
  workerScriptPath = workerPath;
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
}

interface PthreadWorkers {
  PThread?: { runningWorkers: Array<{ unref(): void }>; unusedWorkers: Array<{ unref(): void }> };
}

/** Emscripten keeps its pthread pool's workers referenced: a script would never exit. Unref them. */
function unrefPthreadWorkers(): void {
  if (!(KERNEL_BACKENDS as readonly string[]).includes(tf.getBackend())) return;
  const pthread = (tf.backend() as unknown as { wasm: PthreadWorkers }).wasm.PThread;
  if (!pthread) return;
  for (const w of [...pthread.runningWorkers, ...pthread.unusedWorkers]) w.unref();
}

/**
 * Runs the backend's initialisation with the two shims it needs under Node: the worker blob URL
 * replaced by the real file, and the core count reported as twice max(cores, threads) because the
 * native side uses at most half the logical cores (it assumes hyper-threads) while `threads` was chosen
 * from the cores we really have (or asked for explicitly).
 */
async function withNodeThreadShims<T>(threads: number, init: () => Promise<T>): Promise<T> {
  if (threads <= 1 || !workerScriptPath) return init();
  const path = workerScriptPath;
  const createObjectURL = URL.createObjectURL;
  const cpus = os.cpus;
  URL.createObjectURL = () => path;
  const doubled = () => {
    const list = cpus();
    return Array.from({ length: 2 * Math.max(list.length, threads) }, (_, i) => list[i % list.length]);
  };
  (os as { cpus: typeof os.cpus }).cpus = doubled;
  try {
    return await init();
  } finally {
    URL.createObjectURL = createObjectURL;
    (os as { cpus: typeof os.cpus }).cpus = cpus;
  }
}

function firstLine(e: unknown): string {
  return String(e instanceof Error ? e.message : e).split('\n')[0];
}

/**
 * Initialise the backend once per process. `auto` tries tensorflow, native, wasm, cpu in that order; a forced
 * backend that cannot load is an error rather than a silent fallback. The env var NAD_BACKEND overrides `auto`.
 */
export async function initBackend(preference: BackendPreference = 'auto', opts: BackendOptions = {}): Promise<BackendInfo> {
  if (current) return current;
  const pref = preference === 'auto' ? ((process.env.NAD_BACKEND as BackendPreference | undefined) ?? 'auto') : preference;
  if (!BACKEND_PREFERENCES.includes(pref)) throw new Error(`unknown backend "${pref}" (use one of ${BACKEND_PREFERENCES.join(', ')})`);
  const order: BackendName[] = pref === 'auto' ? ['tensorflow', 'native', 'wasm', 'cpu'] : [pref];
  const reasons: string[] = [];
  for (const name of order) {
    const failure = await activate(name, opts);
    if (failure === undefined) {
      current = info(name, reasons);
      return current;
    }
    reasons.push(failure);
  }
  throw new Error(`no TensorFlow.js backend could start: ${reasons.join('; ')}`);
}

/**
 * Makes `name` the active backend even if another was initialised (the benchmark measures each in
 * turn). Throws if it cannot start. Tensors made on another backend are moved over when used.
 */
export async function switchBackend(name: BackendName, opts: BackendOptions = {}): Promise<BackendInfo> {
  const failure = await activate(name, opts);
  if (failure !== undefined) throw new Error(failure);
  current = info(name, []);
  return current;
}

async function activate(name: BackendName, opts: BackendOptions): Promise<string | undefined> {
  const wasmThreads = opts.wasmThreads ?? (Number(process.env.NAD_WASM_THREADS) || availableCores());
  const failure =
    name === 'tensorflow'
      ? await tryTensorflow()
      : name === 'native'
        ? await tryNative(wasmThreads)
        : name === 'wasm'
          ? await tryWasm(wasmThreads)
          : await tryCpu();
  if (failure === undefined) await tf.ready();
  return failure;
}

async function tryCpu(): Promise<string | undefined> {
  if (!(await tf.setBackend('cpu'))) return 'cpu backend failed';
  // tfjs-backend-cpu prints a "install tfjs-node" banner on its first tensor in Node; we already say
  // which backend runs and why the others did not, so that banner is noise in the CLI and logs.
  (tf.backend() as unknown as { firstUse?: boolean }).firstUse = false;
  return undefined;
}

function info(name: BackendName, reasons: string[]): BackendInfo {
  const threads =
    name === 'wasm' ? wasmThreadsCount() : name === 'native' ? Math.max(wasmThreadsCount(), simdKernelThreads()) : availableCores();
  return { name, description: describe(name, threads), fallbackReasons: reasons, threads };
}

function describe(name: BackendName, threads: number): string {
  if (name === 'tensorflow')
    return `tensorflow (${(tensorflowPackage ?? '@tensorflow/tfjs-node').replace('@tensorflow/', '')}, native libtensorflow)`;
  if (name === 'cpu') return `cpu (pure JavaScript, tfjs-backend-cpu ${version_cpu})`;
  const simd = tf.env().getBool('WASM_HAS_SIMD_SUPPORT');
  const k = simdKernelThreads();
  if (name === 'native') {
    const rest = wasmThreadsCount();
    return `native (NAD kernels ${ISA_NAMES[nativeIsa() ?? ''] ?? nativeIsa()} on ${k} thread${k === 1 ? '' : 's'}; the rest tfjs-wasm ${simd ? 'SIMD' : 'no SIMD'}, ${rest} thread${rest === 1 ? '' : 's'})`;
  }
  const kernels = k > 1 ? `, NAD kernels on ${k} threads` : '';
  const fma = simd && relaxedSimdActive() ? ' + FMA' : '';
  return `wasm (${simd ? 'SIMD' : 'no SIMD'}${fma}, ${threads} thread${threads === 1 ? '' : 's'}${kernels})`;
}

const ISA_NAMES: Record<string, string> = { avx512: 'AVX-512', avx2: 'AVX2+FMA', portable: 'portable C' };

function availableCores(): number {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

function wasmThreadsCount(): number {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const wasm = require('@tensorflow/tfjs-backend-wasm') as { getThreadsCount(): number };
    return wasm.getThreadsCount();
  } catch {
    return 1;
  }
}

/** The backend chosen by initBackend, if it ran. */
export function currentBackend(): BackendInfo | undefined {
  return current;
}
