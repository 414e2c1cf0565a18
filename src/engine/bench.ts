// `nad bench`: images per second of the NAD training step (WRN-16-1, batch 64: student forward +
// backward, teacher forward, attention loss, SGD) and of inference (batch 256) on every tfjs backend
// that loads here, and of the same step in PyTorch when a Python with torch is found, in one run.
// Then each defense's unit of work (bench-defenses.ts) and each attack's (bench-attacks.ts) on the fastest
// backend, each call followed by one of its PyTorch twin (pytorch-run.ts), so that both run under the same load.
import * as tf from '@tensorflow/tfjs-core';
import { switchBackend, type BackendName } from './backend';
import { createModel, type Model } from './models';
import { Sgd } from './optim';
import { trainingStep } from './train';
import {
  availableCores,
  benchPytorch,
  pythonCandidates,
  startInterleavedTwins,
  withTwins,
  type InterleavedTwins,
  type PytorchBenchResult,
  type PytorchTwinResult,
} from './pytorch-run';
import {
  BENCH_SPEC,
  benchDefenses,
  DEFENSE_SIZES,
  DEFENSE_UNIT_NAMES,
  DEFENSE_UNITS,
  type DefenseEngineResult,
  type DefenseSizes,
  type DefenseUnitName,
} from './bench-defenses';
import { ATTACK_SIZES, ATTACK_UNIT_NAMES, benchAttacks, type AttackEngineResult, type AttackUnitName } from './bench-attacks';
import { InputError } from './types';
import { nativeAddonInfo } from './kernels/native-addon-info';
import { cpuFacts } from './machine';
import type { NativeAddonProvenance } from '../shared/provenance';

export { BENCH_SPEC };
export { pytorchBenchArgs, type PytorchBenchResult, type PytorchRunOptions, type PytorchTwinResult } from './pytorch-run';

/** What a run measures: the NAD step and inference per backend, the defense units, the attack units, or all. */
export type BenchParts = 'nad' | 'defenses' | 'attacks' | 'all';
export const BENCH_PARTS: readonly BenchParts[] = ['nad', 'defenses', 'attacks', 'all'];
/** Defense and attack units: timed calls after warm-up ones (each call is a whole batch or pass; see DEFENSE_SIZES). */
export const DEFENSE_STEPS = 3;
export const DEFENSE_WARMUP = 1;

export interface BenchOptions {
  /** Backends to try, in order; default tensorflow, native, wasm, cpu (cpu only for a short sample). */
  readonly backends?: readonly BackendName[];
  /** Timed NAD steps per backend (default 10) after `warmup` untimed ones (default 3). */
  readonly steps?: number;
  readonly warmup?: number;
  /** wasm threads (default: all cores). */
  readonly wasmThreads?: number;
  /** Measure PyTorch too (default true); `python` overrides the interpreter search. */
  readonly pytorch?: boolean;
  readonly python?: string;
  /** Default 'nad' (the per-backend table only); the CLI's default is 'all'. */
  readonly parts?: BenchParts;
  /** Defense units to run (default all) and their timed / warm-up calls (DEFENSE_STEPS / DEFENSE_WARMUP). */
  readonly defenses?: readonly DefenseUnitName[];
  /** Attack units to run (default all); they take defenseSteps and defenseWarmup too. */
  readonly attacks?: readonly AttackUnitName[];
  readonly defenseSteps?: number;
  readonly defenseWarmup?: number;
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
  /** On `native`: the addon that ran (file, SHA-256, instruction set, its threads). */
  readonly addon?: NativeAddonProvenance;
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

/** One row of the defense table: a unit on the fastest tfjs backend and its PyTorch twin. */
export interface DefenseBenchRow {
  readonly defense: string;
  readonly unit: string;
  /** `rate`: work per second, higher is better; `seconds`: seconds per call, lower is better. */
  readonly measure: 'rate' | 'seconds';
  readonly engine: number | null;
  readonly pytorch: number | null;
  /** This engine's speed / PyTorch's (rates: engine / pytorch; seconds: pytorch / engine): > 1 is faster. */
  readonly ratio: number | null;
  readonly engineError?: string;
  /** Why the PyTorch figure is missing. */
  readonly pytorchError?: string;
  readonly numTensorsFlat: boolean | null;
}

/** One row of the attack table: the same figures as a defense row, named by `attack`. */
export type AttackBenchRow = Omit<DefenseBenchRow, 'defense'> & { readonly attack: string };

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
  /** Which parts ran, and the defense table (empty when only 'nad' ran). */
  readonly parts: BenchParts;
  readonly defenses: readonly DefenseBenchRow[];
  /** The attack table (empty unless 'attacks' or 'all' ran). */
  readonly attacks: readonly AttackBenchRow[];
  /** Cores, Node and tfjs versions, and the CPU with its vector extensions (figures depend on them). */
  readonly machine: {
    readonly cpus: number;
    readonly node: string;
    readonly tfjs: string;
    readonly cpuModel?: string;
    readonly vectorFlags?: readonly string[];
  };
}

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
  const addon = name === 'native' ? nativeAddonInfo() : undefined;
  const base = { ...empty, available: true, description: info.description, threads: info.threads, ...(addon ? { addon } : {}) };
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

/** The defense table: each engine unit beside its twin; a missing twin says why. */
export function defenseRows(
  engine: readonly (Omit<DefenseEngineResult, 'defense'> & { readonly defense: string })[],
  pytorch: PytorchBenchResult | { readonly error: string } | null,
): DefenseBenchRow[] {
  return engine.map((e) => {
    let twin: PytorchTwinResult;
    if (pytorch === null) twin = { error: 'PyTorch not requested' };
    else if ('error' in pytorch) twin = { error: pytorch.error };
    else twin = pytorch.defenses[e.defense] ?? { error: 'the Python run did not report it' };
    const pt = 'error' in twin ? null : e.measure === 'rate' ? twin.rate : twin.seconds;
    const ratio = e.value === null || pt === null || e.value <= 0 || pt <= 0 ? null : e.measure === 'rate' ? e.value / pt : pt / e.value;
    return {
      defense: e.defense,
      unit: e.unit,
      measure: e.measure,
      engine: e.value,
      pytorch: pt,
      ratio,
      ...(e.error === undefined ? {} : { engineError: e.error }),
      ...('error' in twin ? { pytorchError: twin.error } : {}),
      numTensorsFlat: e.numTensorsFlat,
    };
  });
}

/** The attack table: each engine unit beside its twin, as defenseRows. */
export function attackRows(
  engine: readonly AttackEngineResult[],
  pytorch: PytorchBenchResult | { readonly error: string } | null,
): AttackBenchRow[] {
  return engine.map(({ attack, ...e }) => {
    const { defense, ...row } = defenseRows([{ ...e, defense: attack }], pytorch)[0];
    return { attack: defense, ...row };
  });
}

function checkCount(v: number, name: string, min: number): number {
  if (!Number.isInteger(v) || v < min) throw new InputError(`bench: ${name} must be a whole number >= ${min}, got ${v}`);
  return v;
}

/** Runs the benchmark; leaves the fastest measured backend active (with parts 'defenses': the first that loads). */
export async function runBenchmark(opts: BenchOptions = {}): Promise<BenchResult> {
  const parts = opts.parts ?? 'nad';
  if (!BENCH_PARTS.includes(parts))
    throw new InputError(`bench: --only (parts) must be one of ${BENCH_PARTS.join(', ')}, got '${String(parts)}'`);
  const unknown = (opts.defenses ?? []).filter((d) => !DEFENSE_UNIT_NAMES.includes(d));
  if (unknown.length) throw new InputError(`bench: unknown defense unit ${unknown.join(', ')} (known: ${DEFENSE_UNIT_NAMES.join(', ')})`);
  const unknownAttacks = (opts.attacks ?? []).filter((a) => !ATTACK_UNIT_NAMES.includes(a));
  if (unknownAttacks.length)
    throw new InputError(`bench: unknown attack unit ${unknownAttacks.join(', ')} (known: ${ATTACK_UNIT_NAMES.join(', ')})`);
  const o = { ...opts, steps: checkCount(opts.steps ?? 10, 'steps', 1), warmup: checkCount(opts.warmup ?? 3, 'warmup', 0) };
  const defenseSteps = checkCount(opts.defenseSteps ?? DEFENSE_STEPS, 'defense steps', 1);
  const defenseWarmup = checkCount(opts.defenseWarmup ?? DEFENSE_WARMUP, 'defense warm-up', 0);
  const nad = parts === 'nad' || parts === 'all';
  const defenseUnits =
    parts === 'defenses' || parts === 'all'
      ? DEFENSE_UNITS.map((u) => u.defense).filter((d) => !opts.defenses || opts.defenses.includes(d))
      : [];
  const attackUnits =
    parts === 'attacks' || parts === 'all' ? ATTACK_UNIT_NAMES.filter((a) => !opts.attacks || opts.attacks.includes(a)) : [];
  const names = opts.backends ?? (['tensorflow', 'native', 'wasm', 'cpu'] as const);
  const backends: BackendBenchResult[] = [];
  let active: BackendName | undefined;
  if (nad) {
    for (const name of names) backends.push(await benchBackend(name, o));
    const ran = backends.filter((b) => b.nadImgPerSec !== null);
    const best = ran.length ? ran.reduce((a, b) => ((b.nadImgPerSec ?? 0) > (a.nadImgPerSec ?? 0) ? b : a)) : undefined;
    if (best && best.backend !== names[names.length - 1]) await switchBackend(best.backend, { wasmThreads: opts.wasmThreads });
    active = best?.backend;
  } else {
    for (const name of names) {
      try {
        await switchBackend(name, { wasmThreads: opts.wasmThreads });
        active = name;
        break;
      } catch {
        // the next one
      }
    }
  }
  let engineDefenses: DefenseEngineResult[] = [];
  let engineAttacks: AttackEngineResult[] = [];
  // Each engine call is followed by its PyTorch twin's in a Python process kept open (pytorch-run.ts), so
  // that a ratio compares the two under the same load; the NAD step keeps its one-shot Python run.
  let twins: InterleavedTwins | { error: string } | undefined;
  if ((defenseUnits.length || attackUnits.length) && active) {
    if (opts.pytorch !== false) {
      o.onProgress?.('PyTorch: starting the twins');
      // One sizes object for both twin families (ATTACK_SIZES' names do not overlap DEFENSE_SIZES').
      const sizes: DefenseSizes & typeof ATTACK_SIZES = { ...DEFENSE_SIZES, ...ATTACK_SIZES };
      twins = await startInterleavedTwins(pythonCandidates(o), o.wasmThreads ?? availableCores(), sizes);
    }
    const serving = twins && 'afterCall' in twins ? twins : undefined;
    const paired = serving ? `, each call followed by its PyTorch twin's (${serving.python})` : '';
    // Defense and attack units are timed alike: the same calls, progress, cancel and twin after each call.
    const timing = {
      steps: defenseSteps,
      warmup: defenseWarmup,
      onProgress: o.onProgress,
      signal: o.signal,
      afterCall: serving?.afterCall,
    };
    try {
      if (defenseUnits.length) {
        o.onProgress?.(`defense units on ${active}${paired}`);
        engineDefenses = await benchDefenses({ ...timing, only: defenseUnits });
      }
      if (attackUnits.length) {
        o.onProgress?.(`attack units on ${active}${paired}`);
        engineAttacks = await benchAttacks({ ...timing, only: attackUnits });
      }
    } finally {
      serving?.close();
    }
  }
  const pytorch =
    opts.pytorch === false
      ? null
      : withTwins(nad ? await benchPytorch({ ...o, nad, defenseUnits: [], defenseSteps, defenseWarmup }) : null, twins, [
          ...defenseUnits,
          ...attackUnits,
        ]);
  const pt = pytorch && 'torch' in pytorch ? pytorch : undefined;
  const best = backends.find((b) => b.backend === active);
  const bestNad = best?.nadImgPerSec ?? null;
  const ratioToPytorch = bestNad && pt?.nadImgPerSec ? bestNad / pt.nadImgPerSec : null;
  // The NAD step heads the defense table, so that every ratio sits beside the one the issue aims for.
  const nadRow: DefenseBenchRow[] =
    nad && engineDefenses.length
      ? [
          {
            defense: 'nad',
            unit: 'training step (trainingStep with teacher), batch 64, img/s',
            measure: 'rate',
            engine: bestNad,
            pytorch: pt?.nadImgPerSec ?? null,
            ratio: ratioToPytorch,
            ...(bestNad === null ? { engineError: best?.error ?? 'no backend ran' } : {}),
            ...(pt?.nadImgPerSec ? {} : { pytorchError: pytorch && 'error' in pytorch ? pytorch.error : 'PyTorch not requested' }),
            numTensorsFlat: best?.numTensorsFlat ?? null,
          },
        ]
      : [];
  return {
    backend: active ?? null,
    nadImgPerSec: bestNad,
    inferenceImgPerSec: best?.inferenceImgPerSec ?? null,
    pytorchImgPerSec: pt?.nadImgPerSec ?? null,
    pytorchInferenceImgPerSec: pt?.inferenceImgPerSec ?? null,
    ratioToPytorch,
    pytorch,
    backends,
    parts,
    defenses: [...nadRow, ...defenseRows(engineDefenses, pytorch)],
    attacks: attackRows(engineAttacks, pytorch),
    machine: { cpus: availableCores(), node: process.version, tfjs: tf.version_core, ...cpuFacts() },
  };
}
