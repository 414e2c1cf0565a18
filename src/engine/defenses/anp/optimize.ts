// ANP's mask optimisation loop and its pruning curve (see ./index.ts).
import * as tf from '@tensorflow/tfjs-core';
import { augmentBatch, toFloatBatch } from '../../data/augment';
import { epochEvent, evaluate, yieldToEventLoop, type EvalResult, type EvalSets } from '../../evaluate';
import { type Model } from '../../models';
import { Sgd } from '../../optim';
import { Rng } from '../../rng';
import { DivergedError, RunCancelledError, type TrainSettings } from '../../train';
import { InputError, type ImageDataset } from '../../types';
import type { EventSink } from '../../../shared/run-events';
import {
  anpIteration,
  MASK_PHASE,
  pruneNeurons,
  prunedCount,
  ROUND_ITERATIONS,
  type AnpOptions,
  type Neuron,
  type NeuronMasks,
} from './masks';

export interface CurvePoint extends EvalResult {
  readonly threshold: number;
  readonly pruned: number;
}

/**
 * ACC/ASR/RA of the model pruned at each threshold (ascending), pruning `scratch` (a fresh copy of the
 * suspect) further at each step as the authors do; one evaluation per distinct pruned count.
 */
export async function pruningCurve(
  scratch: Model,
  sorted: readonly Neuron[],
  thresholds: readonly number[],
  test: EvalSets,
  signal?: AbortSignal,
): Promise<CurvePoint[]> {
  const points: CurvePoint[] = [];
  let done = 0;
  let last: EvalResult | undefined;
  for (const threshold of thresholds) {
    await new Promise((resolve) => setImmediate(resolve));
    if (signal?.aborted) throw new RunCancelledError();
    const k = prunedCount(sorted, threshold);
    if (k < done) throw new Error('pruningCurve: thresholds must ascend');
    if (k > done || !last) {
      pruneNeurons(scratch, sorted.slice(done, k));
      done = k;
      last = evaluate(scratch, test);
    }
    points.push({ threshold, pruned: k, ...last });
  }
  return points;
}

/** Masks in a few numbers: quantiles, how many are 1 (never moved) and how many under a few values. */
export function maskSummary(masks: ReadonlyArray<ArrayLike<number>>): Record<string, number> {
  const all = Float64Array.from(masks.flatMap((m) => Array.from(m))).sort();
  const q = (p: number): number => all[Math.min(all.length - 1, Math.floor(p * all.length))];
  let sum = 0;
  for (const v of all) sum += v;
  const count = (f: (v: number) => boolean): number => all.reduce((s, v) => s + (f(v) ? 1 : 0), 0);
  return {
    neurons: all.length,
    min: all[0],
    p10: q(0.1),
    median: q(0.5),
    mean: sum / all.length,
    max: all[all.length - 1],
    atOne: count((v) => v === 1),
    below05: count((v) => v < 0.5),
    below02: count((v) => v < 0.2),
    zero: count((v) => v === 0),
  };
}

export interface MaskTraining {
  readonly model: Model;
  readonly state: NeuronMasks;
  readonly data: ImageDataset;
  readonly test: EvalSets;
  readonly settings: TrainSettings;
  readonly opts: Omit<AnpOptions, 'lr'>;
  readonly seed: number;
  readonly emit: EventSink;
  readonly signal?: AbortSignal;
}

/** The authors' mask optimisation: settings.epochs rounds of ROUND_ITERATIONS iterations, with phase/step/epoch events. */
export async function optimizeMasks(a: MaskTraining): Promise<void> {
  const { data, emit, settings, state } = a;
  if (data.count === 0) throw new InputError('ANP needs clean data to optimise its masks; the clean set is empty');
  const { height: h, width: w, channels: c } = data;
  const rounds = settings.epochs;
  const batch = settings.batchSize;
  const lr = settings.lrSchedule[0][1];
  emit({
    type: 'phase',
    phase: MASK_PHASE,
    label: `Optimising ${state.layers.reduce((s, l) => s + l.channels, 0)} neuron masks under adversarial perturbation on ${data.count} clean images (${rounds * ROUND_ITERATIONS} iterations)`,
    epochs: rounds,
  });
  const base = evaluate(a.model, a.test);
  emit({ type: 'baseline', phase: MASK_PHASE, acc: base.acc, asr: base.asr });
  const optimizer = new Sgd(
    state.masks.map((m, i) => [state.layers[i].name, m] as const),
    { momentum: settings.momentum, weightDecay: settings.weightDecay, nesterov: settings.nesterov },
  );
  const rng = new Rng((Math.imul(a.seed >>> 0, 0x9e3779b1) ^ 0x616e70) >>> 0);
  // The training-mode passes (perturbed ones too) move the running statistics, which no step uses: each
  // round's evaluation puts the suspect's back, so it shows the masked suspect.
  const statNames = [...a.model.params.torchShapes().keys()].filter((n) => n.endsWith('.running_mean') || n.endsWith('.running_var'));
  const stats = statNames.map((n) => a.model.params.get(n).dataSync().slice());
  const buf = new Float32Array(batch * h * w * c);
  try {
    for (let round = 1; round <= rounds; round++) {
      const t0 = performance.now();
      let lossSum = 0;
      let lastReport = 0;
      for (let s = 0; s < ROUND_ITERATIONS; s++) {
        if (a.signal?.aborted) throw new RunCancelledError();
        const idx = Int32Array.from({ length: batch }, () => rng.int(data.count));
        const xs = settings.augment
          ? augmentBatch(data, idx, rng, buf, { flip: settings.hflip ?? true, cutoutHoles: 0 })
          : toFloatBatch(data, idx, buf);
        const r = anpIteration(
          a.model,
          state,
          optimizer,
          { xs, ys: Int32Array.from(idx, (i) => data.labels[i]), shape: [h, w, c], numClasses: data.numClasses },
          { ...a.opts, lr },
          rng,
        );
        if (!Number.isFinite(r.loss)) throw new DivergedError(round, s + 1, lr);
        lossSum += r.loss;
        const now = performance.now();
        if (now - lastReport > 250 || s === ROUND_ITERATIONS - 1) {
          lastReport = now;
          emit({ type: 'step', phase: MASK_PHASE, epoch: round, step: s + 1, steps: ROUND_ITERATIONS, loss: r.loss });
        }
        await yieldToEventLoop();
      }
      const seconds = (performance.now() - t0) / 1000;
      state.perturbed = false;
      tf.tidy(() => statNames.forEach((n, i) => a.model.params.get(n).assign(tf.tensor1d(stats[i]))));
      const r = evaluate(a.model, a.test);
      const end = { epoch: round, epochs: rounds, loss: lossSum / ROUND_ITERATIONS, lr, seconds, images: ROUND_ITERATIONS * batch };
      emit(epochEvent(MASK_PHASE, end, r));
    }
  } finally {
    optimizer.dispose();
    state.perturbed = false;
  }
}
