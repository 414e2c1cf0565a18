// `nad bench`, defense part: each defense's unit of work (the engine's own exported step, on random seeded
// data and the WRN-16-1 of BENCH_SPEC), timed like the NAD step: `warmup` untimed calls, then the median of
// `steps` timed ones. The same units, with the same sizes, run in PyTorch in pytorch-bench.ts (DEFENSE_SIZES
// is passed to it), so each row is a ratio to the reference implementation's computation.
import * as tf from '@tensorflow/tfjs-core';
import { meanActivations } from './defenses/fine-pruning';
import { triggerStep, TriggerVariables, NC_DEFAULTS } from './defenses/neural-cleanse/reverse';
import { CURVE_BATCH, CURVE_SGD, curveStep, setMidpoint, type CurvePoints } from './defenses/mcr';
import { stripEntropies, STRIP_DEFAULTS } from './defenses/strip';
import { anpIteration, neuronLayers, NeuronMasks } from './defenses/anp/masks';
import { channelLipschitz } from './defenses/clp';
import { hypergradient, IBAU_TRAINING } from './defenses/i-bau/hypergradient';
import { EVAL_BATCH } from './evaluate';
import { createModel } from './models';
import { Sgd } from './optim';
import { Rng } from './rng';
import { FINETUNE_TRAINING } from './schedules';
import { trainingStep } from './train';
import { InputError, type ImageDataset, type ModelSpec } from './types';

/** The model every bench unit runs: NAD's WRN-16-1 on CIFAR-sized images. */
export const BENCH_SPEC: ModelSpec = { arch: 'wrn', depth: 16, widen: 1, numClasses: 10, inChannels: 3, imageSize: 32 };

/** Work per call of each unit; the PyTorch twins read the same object (pytorchBenchArgs passes it). */
export interface DefenseSizes {
  readonly finetuneBatch: number;
  readonly rankingImages: number;
  readonly evalBatch: number;
  readonly ncBatch: number;
  readonly ncLr: number;
  readonly ncCost: number;
  readonly curveBatch: number;
  readonly stripInputs: number;
  readonly stripOverlays: number;
  readonly stripAlpha: number;
  readonly stripPool: number;
  readonly anpBatch: number;
  readonly anp: { readonly eps: number; readonly steps: number; readonly alpha: number; readonly lr: number };
  readonly ibauBatch: number;
  readonly ibau: {
    readonly fixedPointSteps: number;
    readonly fixedPointLr: number;
    readonly regularisation: number;
    readonly patchedShare: number;
  };
}

/**
 * The defaults of each defense where a call costs at most a few seconds; I-BAU's outer and inner batches are
 * 64 instead of its 256 (one hypergradient at 256 takes ~10 s here and ~40 s in PyTorch on a loaded 2-core machine).
 */
export const DEFENSE_SIZES: DefenseSizes = {
  finetuneBatch: FINETUNE_TRAINING.batchSize,
  rankingImages: 2 * EVAL_BATCH,
  evalBatch: EVAL_BATCH,
  ncBatch: NC_DEFAULTS.batchSize,
  ncLr: NC_DEFAULTS.lr,
  ncCost: NC_DEFAULTS.initCost,
  curveBatch: CURVE_BATCH,
  stripInputs: 8,
  stripOverlays: STRIP_DEFAULTS.overlays,
  stripAlpha: STRIP_DEFAULTS.alpha,
  stripPool: 128,
  anpBatch: 128,
  // anp.ts's defaults (the authors'): eps 0.4, 1 ascent step, alpha 0.2, mask lr 0.2.
  anp: { eps: 0.4, steps: 1, alpha: 0.2, lr: 0.2 },
  ibauBatch: IBAU_TRAINING.batchSize / 4,
  // The defaults of i-bau.ts's parameters (BackdoorBench's K 5, step 0.1, penalty 0.001, portion 0.01).
  ibau: { fixedPointSteps: 5, fixedPointLr: 0.1, regularisation: 0.001, patchedShare: 0.01 },
};

export type DefenseUnitName = 'finetune' | 'fine-pruning' | 'neural-cleanse' | 'mcr' | 'strip' | 'anp' | 'clp' | 'i-bau';

/** A unit ready to run: `run` is one call of the engine function; `work` what one call counts (images, or 1 model). */
export interface PreparedUnit {
  readonly work: number;
  run(): void | Promise<void>;
  dispose(): void;
}

export interface DefenseUnit {
  readonly defense: DefenseUnitName;
  /** What one call does with these sizes, and what the figure counts. */
  unit(sizes: DefenseSizes): string;
  /** `rate`: work per second (higher is better); `seconds`: seconds per call (lower is better). */
  readonly measure: 'rate' | 'seconds';
  prepare(seed: number, sizes: DefenseSizes): PreparedUnit;
}

const SIZE = BENCH_SPEC.imageSize;
const SHAPE = [SIZE, SIZE, 3] as const;

function floats(n: number, rng: Rng): Float32Array {
  return Float32Array.from({ length: n * SIZE * SIZE * 3 }, () => rng.next());
}

function labels(n: number): Int32Array {
  return Int32Array.from({ length: n }, (_, i) => i % BENCH_SPEC.numClasses);
}

function dataset(n: number, rng: Rng): ImageDataset {
  return {
    images: Uint8Array.from({ length: n * SIZE * SIZE * 3 }, () => rng.int(256)),
    labels: labels(n),
    count: n,
    height: SIZE,
    width: SIZE,
    channels: 3,
    numClasses: BENCH_SPEC.numClasses,
    source: 'random',
  };
}

function disposeAll(...items: Array<{ dispose(): void }>): void {
  for (const x of items) x.dispose();
}

export const DEFENSE_UNITS: readonly DefenseUnit[] = [
  {
    defense: 'finetune',
    unit: (s) => `training step (trainingStep, no teacher), batch ${s.finetuneBatch}, img/s`,
    measure: 'rate',
    prepare(seed, s) {
      const model = createModel(BENCH_SPEC, seed);
      const sgd = new Sgd(model.params.trainable(), FINETUNE_TRAINING);
      const rng = new Rng(seed);
      const xs = floats(s.finetuneBatch, rng);
      const ys = labels(s.finetuneBatch);
      return {
        work: s.finetuneBatch,
        run: () => {
          trainingStep({
            student: model,
            optimizer: sgd,
            xs,
            ys,
            imageShape: SHAPE,
            numClasses: BENCH_SPEC.numClasses,
            betas: [],
            attentionPower: 2,
            lr: 0.01,
          });
        },
        dispose: () => disposeAll(sgd, model),
      };
    },
  },
  {
    defense: 'fine-pruning',
    unit: (s) => `ranking pass (meanActivations), ${s.rankingImages} images, img/s`,
    measure: 'rate',
    prepare(seed, s) {
      const model = createModel(BENCH_SPEC, seed);
      const ds = dataset(s.rankingImages, new Rng(seed));
      return { work: s.rankingImages, run: () => void meanActivations(model, ds), dispose: () => model.dispose() };
    },
  },
  {
    defense: 'neural-cleanse',
    unit: (s) => `trigger step (triggerStep: Adam on mask + pattern), batch ${s.ncBatch}, img/s`,
    measure: 'rate',
    prepare(seed, s) {
      const model = createModel(BENCH_SPEC, seed);
      const trigger = new TriggerVariables(SIZE, SIZE, 3);
      const xs = floats(s.ncBatch, new Rng(seed));
      return {
        work: s.ncBatch,
        run: () =>
          void triggerStep({
            model,
            trigger,
            xs,
            count: s.ncBatch,
            imageShape: SHAPE,
            target: 0,
            numClasses: BENCH_SPEC.numClasses,
            cost: s.ncCost,
            lr: s.ncLr,
          }),
        dispose: () => disposeAll(trigger, model),
      };
    },
  },
  {
    defense: 'mcr',
    unit: (s) => `Bezier curve step (curveStep), batch ${s.curveBatch}, img/s`,
    measure: 'rate',
    prepare(seed, s) {
      const points: CurvePoints = [createModel(BENCH_SPEC, seed), createModel(BENCH_SPEC, seed + 1), createModel(BENCH_SPEC, seed + 2)];
      setMidpoint(points[1], points[0], points[2]);
      const curve = createModel(BENCH_SPEC, seed + 3);
      const sgd = new Sgd(points[1].params.trainable(), CURVE_SGD);
      const rng = new Rng(seed);
      const xs = floats(s.curveBatch, rng);
      const ys = labels(s.curveBatch);
      return {
        work: s.curveBatch,
        run: () =>
          void curveStep({
            curve,
            points,
            optimizer: sgd,
            t: rng.next(),
            xs,
            ys,
            imageShape: SHAPE,
            numClasses: BENCH_SPEC.numClasses,
            lr: 0.01,
          }),
        dispose: () => disposeAll(sgd, curve, ...points),
      };
    },
  },
  {
    defense: 'strip',
    unit: (s) => `entropies (stripEntropies), ${s.stripInputs} inputs x ${s.stripOverlays} overlays, overlaid img/s`,
    measure: 'rate',
    prepare(seed, s) {
      const model = createModel(BENCH_SPEC, seed);
      const rng = new Rng(seed);
      const inputs = dataset(s.stripInputs, rng);
      const pool = dataset(s.stripPool, rng);
      return {
        work: s.stripInputs * s.stripOverlays,
        run: async () => {
          await stripEntropies(model, inputs, pool, { overlays: s.stripOverlays, alpha: s.stripAlpha, seed, batchSize: s.evalBatch });
        },
        dispose: () => model.dispose(),
      };
    },
  },
  {
    defense: 'anp',
    unit: (s) => `mask iteration (anpIteration: perturbation ascent + mask step), batch ${s.anpBatch}, img/s`,
    measure: 'rate',
    prepare(seed, s) {
      const model = createModel(BENCH_SPEC, seed);
      const state = new NeuronMasks(model, neuronLayers(model));
      const sgd = new Sgd(
        state.masks.map((m, i) => [`mask${i}`, m] as const),
        { momentum: 0.9, weightDecay: 0, nesterov: false },
      );
      const rng = new Rng(seed);
      const batch = { xs: floats(s.anpBatch, rng), ys: labels(s.anpBatch), shape: SHAPE, numClasses: BENCH_SPEC.numClasses };
      return {
        work: s.anpBatch,
        run: () => void anpIteration(model, state, sgd, batch, s.anp, rng),
        dispose: () => disposeAll(sgd, state, model),
      };
    },
  },
  {
    defense: 'clp',
    unit: () => 'channel Lipschitz bounds (channelLipschitz), data-free, s per model (lower is better)',
    measure: 'seconds',
    prepare(seed) {
      const model = createModel(BENCH_SPEC, seed);
      return { work: 1, run: () => void channelLipschitz(model), dispose: () => model.dispose() };
    },
  },
  {
    defense: 'i-bau',
    unit: (s) => `hypergradient (K ${s.ibau.fixedPointSteps}), outer + inner batch ${s.ibauBatch}, outer img/s`,
    measure: 'rate',
    prepare(seed, s) {
      const model = createModel(BENCH_SPEC, seed);
      const rng = new Rng(seed);
      const n = s.ibauBatch;
      const init = tf.randomUniform([1, SIZE, SIZE, 3], -0.05, 0.05, 'float32', seed);
      const delta = tf.variable(init, true);
      init.dispose();
      const oneHot = (ys: Int32Array): tf.Tensor2D =>
        tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d(ys, 'int32'), BENCH_SPEC.numClasses), 'float32') as tf.Tensor2D);
      const inner = { x: tf.tensor4d(floats(n, rng), [n, ...SHAPE]), y: oneHot(labels(n)) };
      // At least one patched image (0.01 x 64 rounds down to none), as the twin.
      const patchIdx = rng.permutation(n).subarray(0, Math.max(1, Math.floor(n * s.ibau.patchedShare)));
      const patch = new Float32Array(n);
      for (const i of patchIdx) patch[i] = 1;
      const outer = {
        x: tf.tensor4d(floats(n, rng), [n, ...SHAPE]),
        y: oneHot(labels(n).reverse()),
        patch: tf.tensor4d(patch, [n, 1, 1, 1]),
      };
      return {
        work: n,
        run: () => {
          const h = hypergradient(model, delta, inner, outer, s.ibau);
          tf.dispose([h.v, ...Object.values(h.grads)]);
        },
        dispose: () => disposeAll(inner.x, inner.y, outer.x, outer.y, outer.patch, delta, model),
      };
    },
  },
];

export const DEFENSE_UNIT_NAMES: readonly DefenseUnitName[] = DEFENSE_UNITS.map((u) => u.defense);

export interface DefenseBenchOptions {
  readonly steps: number;
  readonly warmup: number;
  /** Which units (default all). */
  readonly only?: readonly DefenseUnitName[];
  readonly seed?: number;
  /** Default DEFENSE_SIZES (tests pass smaller ones). */
  readonly sizes?: DefenseSizes;
  readonly onProgress?: (message: string) => void;
  readonly signal?: AbortSignal;
  /** Run after each call (warm-up: timed false), outside its timing: `nad bench` times the PyTorch twin there. */
  readonly afterCall?: (defense: DefenseUnitName, timed: boolean) => Promise<void>;
}

export interface DefenseEngineResult {
  readonly defense: DefenseUnitName;
  readonly unit: string;
  readonly measure: 'rate' | 'seconds';
  /** Median over the timed calls: work per second, or seconds per call. */
  readonly value: number | null;
  readonly stepMs: readonly number[];
  /** tf.memory().numTensors was the same before and after the timed calls. */
  readonly numTensorsFlat: boolean | null;
  readonly error?: string;
}

function median(v: readonly number[]): number {
  const s = [...v].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Times one unit on the active backend. */
export async function benchDefenseUnit(u: DefenseUnit, o: DefenseBenchOptions): Promise<DefenseEngineResult> {
  const sizes = o.sizes ?? DEFENSE_SIZES;
  const base = { defense: u.defense, unit: u.unit(sizes), measure: u.measure };
  const afterCall = o.afterCall;
  return { ...base, ...(await timeUnit(() => u.prepare(o.seed ?? 1, sizes), u.measure, o, afterCall && ((t) => afterCall(u.defense, t)))) };
}

/**
 * `warmup` untimed calls of the prepared unit, then the median of `steps` timed ones (bench-attacks.ts's
 * units too); `afterCall` runs after each call, outside its timing. A failing unit is reported, not thrown.
 */
export async function timeUnit(
  prepare: () => PreparedUnit,
  measure: 'rate' | 'seconds',
  o: { readonly steps: number; readonly warmup: number; readonly signal?: AbortSignal },
  afterCall?: (timed: boolean) => Promise<void>,
): Promise<Omit<DefenseEngineResult, 'defense' | 'unit' | 'measure'>> {
  if (!Number.isInteger(o.steps) || o.steps < 1) throw new InputError(`bench: steps must be a whole number >= 1, got ${o.steps}`);
  if (!Number.isInteger(o.warmup) || o.warmup < 0) throw new InputError(`bench: warmup must be a whole number >= 0, got ${o.warmup}`);
  let prepared: PreparedUnit | undefined;
  try {
    prepared = prepare();
    for (let i = 0; i < o.warmup; i++) {
      await prepared.run();
      await afterCall?.(false);
    }
    const before = tf.memory().numTensors;
    const stepMs: number[] = [];
    for (let i = 0; i < o.steps; i++) {
      if (o.signal?.aborted) throw new Error('benchmark cancelled');
      const t = performance.now();
      await prepared.run();
      stepMs.push(performance.now() - t);
      await afterCall?.(true);
      await new Promise((r) => setImmediate(r));
    }
    const numTensorsFlat = tf.memory().numTensors === before;
    const ms = median(stepMs);
    return { value: measure === 'rate' ? (prepared.work * 1000) / ms : ms / 1000, stepMs, numTensorsFlat };
  } catch (e) {
    return { value: null, stepMs: [], numTensorsFlat: null, error: e instanceof Error ? e.message : String(e) };
  } finally {
    prepared?.dispose();
  }
}

/** Times the chosen units, in DEFENSE_UNITS order, on the active backend. */
export async function benchDefenses(o: DefenseBenchOptions): Promise<DefenseEngineResult[]> {
  const out: DefenseEngineResult[] = [];
  for (const u of DEFENSE_UNITS) {
    if (o.only && !o.only.includes(u.defense)) continue;
    if (o.signal?.aborted) throw new Error('benchmark cancelled');
    o.onProgress?.(`${u.defense}: ${u.unit(o.sizes ?? DEFENSE_SIZES)}, ${o.warmup} warm-up + ${o.steps} timed calls`);
    out.push(await benchDefenseUnit(u, o));
  }
  return out;
}
