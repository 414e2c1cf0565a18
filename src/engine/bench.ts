// `nad bench`: images per second of the NAD training step (WRN-16-1, batch 64: student forward +
// backward, teacher forward, attention loss, SGD) and of inference (batch 256) on every tfjs backend
// that loads here, and of the same step in PyTorch when a Python with torch is found, in one run.
import * as tf from '@tensorflow/tfjs-core';
import { execFile } from 'node:child_process';
import os from 'node:os';
import { switchBackend, type BackendName } from './backend';
import { createModel, type Model } from './models';
import { Sgd } from './optim';
import { trainingStep } from './train';
import { PYTORCH_BENCH_SOURCE } from './pytorch-bench';
import type { ModelSpec } from './types';

export interface BenchOptions {
  /** Backends to try, in order; default tensorflow, wasm, cpu (cpu only for a short sample). */
  readonly backends?: readonly BackendName[];
  /** Timed NAD steps per backend (default 10) after `warmup` untimed ones (default 3). */
  readonly steps?: number;
  readonly warmup?: number;
  /** wasm threads (default: all cores). */
  readonly wasmThreads?: number;
  /** Measure PyTorch too (default true); `python` overrides the interpreter search. */
  readonly pytorch?: boolean;
  readonly python?: string;
  readonly onProgress?: (message: string) => void;
  readonly signal?: AbortSignal;
}

export interface BackendBenchResult {
  readonly backend: BackendName;
  readonly available: boolean;
  /** Why it did not run or failed. */
  readonly error?: string;
  readonly description?: string;
  readonly threads?: number;
  readonly batchSize: number;
  /** Median over the timed steps, and the best step. */
  readonly nadImgPerSec: number | null;
  readonly nadImgPerSecBest: number | null;
  readonly stepMs: readonly number[];
  readonly inferenceBatchSize: number;
  readonly inferenceImgPerSec: number | null;
  /** tf.memory().numTensors was the same before and after the timed steps. */
  readonly numTensorsFlat: boolean | null;
}

export interface PytorchBenchResult {
  readonly python: string;
  readonly torch: string;
  readonly threads: number;
  readonly nadImgPerSec: number;
  readonly nadImgPerSecBest: number;
  readonly inferenceImgPerSec: number;
}

export interface BenchResult {
  /** The fastest backend's name and figures (null if none ran). */
  readonly backend: BackendName | null;
  readonly nadImgPerSec: number | null;
  readonly inferenceImgPerSec: number | null;
  readonly pytorchImgPerSec: number | null;
  readonly pytorchInferenceImgPerSec: number | null;
  /** nadImgPerSec / pytorchImgPerSec. */
  readonly ratioToPytorch: number | null;
  readonly pytorch: PytorchBenchResult | { readonly error: string } | null;
  readonly backends: readonly BackendBenchResult[];
  readonly machine: { readonly cpus: number; readonly node: string; readonly tfjs: string };
}

export const BENCH_SPEC: ModelSpec = { arch: 'wrn', depth: 16, widen: 1, numClasses: 10, inChannels: 3, imageSize: 32 };
const BETAS = [500, 1000, 1000];
const SIZE = 32;

/** One NAD step exactly as training runs it (train.ts's trainingStep). */
export function nadStep(student: Model, teacher: Model, sgd: Sgd, xs: Float32Array, labels: Int32Array, lr: number): number {
  return trainingStep({
    student,
    teacher,
    optimizer: sgd,
    xs,
    ys: labels,
    imageShape: [SIZE, SIZE, 3],
    numClasses: BENCH_SPEC.numClasses,
    betas: BETAS,
    attentionPower: 2,
    lr,
  });
}

function randomInputs(n: number, seed: number): { xs: Float32Array; labels: Int32Array } {
  let s = seed >>> 0 || 1;
  const next = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  return { xs: Float32Array.from({ length: n * SIZE * SIZE * 3 }, next), labels: Int32Array.from({ length: n }, (_, i) => i % 10) };
}

function median(v: readonly number[]): number {
  const s = [...v].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function benchBackend(
  name: BackendName,
  o: Required<Pick<BenchOptions, 'steps' | 'warmup'>> & BenchOptions,
): Promise<BackendBenchResult> {
  // Pure JS is ~100x slower: a short sample at a smaller batch says enough.
  const sample = name === 'cpu';
  const batchSize = sample ? 8 : 64;
  const inferenceBatchSize = sample ? 32 : 256;
  const steps = sample ? 2 : o.steps;
  const warmup = sample ? 1 : o.warmup;
  const empty = {
    backend: name,
    batchSize,
    inferenceBatchSize,
    nadImgPerSec: null,
    nadImgPerSecBest: null,
    stepMs: [],
    inferenceImgPerSec: null,
    numTensorsFlat: null,
  };
  let info;
  try {
    info = await switchBackend(name, { wasmThreads: o.wasmThreads });
  } catch (e) {
    return { ...empty, available: false, error: e instanceof Error ? e.message : String(e) };
  }
  const base = { ...empty, available: true, description: info.description, threads: info.threads };
  const student = createModel(BENCH_SPEC, 1);
  const teacher = createModel(BENCH_SPEC, 2);
  const sgd = new Sgd(student.params.trainable(), { momentum: 0.9, weightDecay: 1e-4, nesterov: true });
  try {
    const { xs, labels } = randomInputs(batchSize, 7);
    o.onProgress?.(`${info.description}: NAD step, batch ${batchSize}, ${warmup} warm-up + ${steps} timed steps`);
    for (let i = 0; i < warmup; i++) nadStep(student, teacher, sgd, xs, labels, 0.01);
    const before = tf.memory().numTensors;
    const stepMs: number[] = [];
    for (let i = 0; i < steps; i++) {
      if (o.signal?.aborted) throw new Error('benchmark cancelled');
      const t = performance.now();
      nadStep(student, teacher, sgd, xs, labels, 0.01);
      stepMs.push(performance.now() - t);
      await new Promise((r) => setImmediate(r));
    }
    const numTensorsFlat = tf.memory().numTensors === before;
    o.onProgress?.(`${info.description}: inference, batch ${inferenceBatchSize}`);
    const { xs: xi } = randomInputs(inferenceBatchSize, 9);
    const infer = () => tf.tidy(() => student.forward(tf.tensor4d(xi, [inferenceBatchSize, SIZE, SIZE, 3]), false).logits.dataSync());
    infer();
    const inferMs: number[] = [];
    for (let i = 0; i < (sample ? 1 : Math.max(3, Math.ceil(steps / 2))); i++) {
      const t = performance.now();
      infer();
      inferMs.push(performance.now() - t);
    }
    return {
      ...base,
      nadImgPerSec: (batchSize * 1000) / median(stepMs),
      nadImgPerSecBest: (batchSize * 1000) / Math.min(...stepMs),
      stepMs,
      inferenceImgPerSec: (inferenceBatchSize * 1000) / median(inferMs),
      numTensorsFlat,
    };
  } catch (e) {
    return { ...base, error: e instanceof Error ? e.message : String(e) };
  } finally {
    sgd.dispose();
    student.dispose();
    teacher.dispose();
  }
}

// Debian's python3-torch lives in the system interpreter, which a pyenv/venv python3 on PATH can shadow.
const PYTHON_CANDIDATES = ['python3', '/usr/bin/python3'];

function runPython(python: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(python, ['-c', PYTORCH_BENCH_SOURCE, ...args], { timeout: timeoutMs, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${python}: ${(stderr || err.message).trim().split('\n').pop()}`));
      else resolve(stdout);
    });
  });
}

async function benchPytorch(o: BenchOptions & { steps: number; warmup: number }): Promise<PytorchBenchResult | { error: string }> {
  const env = process.env.NAD_PYTHON;
  const candidates = o.python ? [o.python] : env ? [env] : PYTHON_CANDIDATES;
  const errors: string[] = [];
  for (const python of candidates) {
    try {
      o.onProgress?.(`PyTorch (${python}): NAD step, batch 64`);
      const out = await runPython(python, [String(o.steps), String(o.warmup), String(o.wasmThreads ?? availableCores())], 300_000);
      const r = JSON.parse(out.trim().split('\n').pop() ?? '{}') as Omit<PytorchBenchResult, 'python'>;
      return {
        python,
        torch: r.torch,
        threads: r.threads,
        nadImgPerSec: r.nadImgPerSec,
        nadImgPerSecBest: r.nadImgPerSecBest,
        inferenceImgPerSec: r.inferenceImgPerSec,
      };
    } catch (e) {
      errors.push(e instanceof Error ? e.message : String(e));
    }
  }
  return { error: `no Python with torch found (${errors.join('; ')})` };
}

function availableCores(): number {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

/** Runs the benchmark; leaves the fastest measured backend active. */
export async function runBenchmark(opts: BenchOptions = {}): Promise<BenchResult> {
  const o = { ...opts, steps: opts.steps ?? 10, warmup: opts.warmup ?? 3 };
  const names = opts.backends ?? (['tensorflow', 'wasm', 'cpu'] as const);
  const backends: BackendBenchResult[] = [];
  for (const name of names) backends.push(await benchBackend(name, o));
  const ran = backends.filter((b) => b.nadImgPerSec !== null);
  const best = ran.length ? ran.reduce((a, b) => ((b.nadImgPerSec ?? 0) > (a.nadImgPerSec ?? 0) ? b : a)) : undefined;
  if (best && best.backend !== names[names.length - 1]) await switchBackend(best.backend, { wasmThreads: opts.wasmThreads });
  const pytorch = opts.pytorch === false ? null : await benchPytorch(o);
  const pt = pytorch && 'nadImgPerSec' in pytorch ? pytorch : undefined;
  return {
    backend: best?.backend ?? null,
    nadImgPerSec: best?.nadImgPerSec ?? null,
    inferenceImgPerSec: best?.inferenceImgPerSec ?? null,
    pytorchImgPerSec: pt?.nadImgPerSec ?? null,
    pytorchInferenceImgPerSec: pt?.inferenceImgPerSec ?? null,
    ratioToPytorch: best?.nadImgPerSec && pt ? best.nadImgPerSec / pt.nadImgPerSec : null,
    pytorch,
    backends,
    machine: { cpus: availableCores(), node: process.version, tfjs: tf.version_core },
  };
}
