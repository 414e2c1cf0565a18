// Chooses and initialises the TensorFlow.js backend: tfjs-node (native libtensorflow) when it loads,
// else WebAssembly (SIMD), else pure JS. Every run records which one ran.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

export type BackendPreference = 'auto' | 'tensorflow' | 'wasm' | 'cpu';
export const BACKEND_PREFERENCES: readonly BackendPreference[] = ['auto', 'tensorflow', 'wasm', 'cpu'];

export interface BackendInfo {
  /** tfjs's backend name: `tensorflow` (tfjs-node), `wasm` or `cpu`. */
  readonly name: 'tensorflow' | 'wasm' | 'cpu';
  /** Human-readable detail, e.g. `wasm (SIMD, 1 thread)`. */
  readonly description: string;
  /** Why a preferred backend was skipped, if one was. */
  readonly fallbackReasons: readonly string[];
}

let current: BackendInfo | undefined;

/** Directory holding the tfjs wasm binaries: next to the bundle (dist/), else in node_modules. */
function wasmDirectory(): string {
  const candidates = [__dirname, join(__dirname, '..'), join(__dirname, '..', '..')];
  for (const dir of candidates) if (existsSync(join(dir, 'tfjs-backend-wasm-simd.wasm'))) return dir + '/';
  const pkg = require.resolve('@tensorflow/tfjs-backend-wasm/package.json');
  return join(dirname(pkg), 'dist') + '/';
}

async function tryTensorflow(): Promise<string | undefined> {
  try {
    // Optional native dependency; absent when its install could not download libtensorflow.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    require('@tensorflow/tfjs-node');
    if (!(await tf.setBackend('tensorflow'))) return 'tfjs-node loaded but its backend failed to initialise';
    return undefined;
  } catch (e) {
    return `@tensorflow/tfjs-node not available (${firstLine(e)})`;
  }
}

async function tryWasm(): Promise<string | undefined> {
  try {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    wasm.setWasmPaths(wasmDirectory());
    if (!(await tf.setBackend('wasm'))) return 'wasm backend failed to initialise';
    return undefined;
  } catch (e) {
    return `wasm backend not available (${firstLine(e)})`;
  }
}

function firstLine(e: unknown): string {
  return String(e instanceof Error ? e.message : e).split('\n')[0];
}

/**
 * Initialise the backend once per process. `auto` tries tensorflow, wasm, cpu in that order; a forced
 * backend that cannot load is an error rather than a silent fallback. The env var NAD_BACKEND overrides `auto`.
 */
export async function initBackend(preference: BackendPreference = 'auto'): Promise<BackendInfo> {
  if (current) return current;
  const pref = preference === 'auto' ? ((process.env.NAD_BACKEND as BackendPreference | undefined) ?? 'auto') : preference;
  if (!BACKEND_PREFERENCES.includes(pref)) throw new Error(`unknown backend "${pref}" (use one of ${BACKEND_PREFERENCES.join(', ')})`);
  const order: Array<'tensorflow' | 'wasm' | 'cpu'> = pref === 'auto' ? ['tensorflow', 'wasm', 'cpu'] : [pref];
  const reasons: string[] = [];
  for (const name of order) {
    const failure = name === 'tensorflow' ? await tryTensorflow() : name === 'wasm' ? await tryWasm() : (await tf.setBackend('cpu')) ? undefined : 'cpu backend failed';
    if (failure === undefined) {
      await tf.ready();
      current = { name, description: describe(name), fallbackReasons: reasons };
      return current;
    }
    reasons.push(failure);
  }
  throw new Error(`no TensorFlow.js backend could start: ${reasons.join('; ')}`);
}

function describe(name: 'tensorflow' | 'wasm' | 'cpu'): string {
  if (name === 'tensorflow') return 'tensorflow (tfjs-node, native libtensorflow)';
  if (name === 'cpu') return 'cpu (pure JavaScript)';
  const simd = tf.env().getBool('WASM_HAS_SIMD_SUPPORT');
  const threads = tf.env().getBool('WASM_HAS_MULTITHREAD_SUPPORT');
  return `wasm (${simd ? 'SIMD' : 'no SIMD'}, ${threads ? 'multi-threaded' : '1 thread'})`;
}

/** The backend chosen by initBackend, if it ran. */
export function currentBackend(): BackendInfo | undefined {
  return current;
}
