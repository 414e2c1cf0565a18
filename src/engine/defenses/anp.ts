// Adversarial Neuron Pruning, ANP (Wu & Wang: "Adversarial Neuron Pruning Purifies Backdoored Deep Models",
// NeurIPS 2021; the authors' csdongxian/ANP_backdoor optimize_mask_cifar.py, prune_neuron_cifar.py and
// models/anp_batchnorm.py, which BackdoorBench's defense/anp/anp.py repeats). Backdoor neurons are the ones
// whose small perturbation most easily breaks the model; ANP finds them with a mask per neuron learned
// under adversarial neuron perturbations, then prunes the neurons whose mask stays small.
//
// Neurons are the channels of every batch norm (found generically: the state-dict names ending in
// `.running_mean`). Each gets a mask m in [0, 1] (init 1) and perturbations d, d_b of its weight and bias;
// the batch norm computes with weight * (m + d) and bias * (1 + d_b) when perturbed, weight * m and bias
// when not (NoisyBatchNorm2d), through ParamSet's batch-norm modulation, so the gradients reach m, d, d_b.
// One iteration (mask_train's body, the model in training mode: batch statistics):
//  1. d, d_b ~ U(-eps, eps), then `anpSteps` ascent steps d += (eps / steps) * sign(dCE/dd) (the authors'
//     SGD with lr eps / steps on the sign of the gradient of -CE; no projection back to [-eps, eps], as the code);
//  2. loss = alpha * CE(clean) + (1 - alpha) * CE(perturbed), one SGD step on the masks (lr `--lr`,
//     default 0.2, momentum 0.9, no weight decay), masks clamped to [0, 1].
// Batches of `--batch-size` (128) drawn with replacement from the defender's clean data (RandomSampler with
// replacement), augmented as the authors' transform_train (random crop with padding 4, horizontal flip; no
// cutout). The authors use 1% of CIFAR-10's training set (500 images); here all of the run's clean data.
// Defaults: eps 0.4, 1 step, alpha 0.2, lr 0.2, 2000 iterations, batch 128 (the authors' arguments and
// recipe.md; BackdoorBench's config the same). The run layer's `--epochs` counts rounds of 100 iterations
// (20 = the authors' 2000): after each round the masked model's ACC/ASR are reported, as the authors print
// every `print_every` iterations, for display. Theirs keeps the running statistics that the training-mode
// passes (the perturbed ones too) moved; here the suspect's are put back first, so the figure is the masked
// suspect's (with the moved ones the WRN-16-1 showed ACC 15% after 100 iterations).
//
// Pruning (prune_neuron_cifar.py): neurons with mask <= threshold get their batch norm weight set to 0 (the
// bias is kept: the neuron outputs a constant). The threshold is 0.2, the paper's (Section 4.1); the authors'
// script evaluates the thresholds 0, 0.05, ..., 0.9 (pruning_max 0.9, pruning_step 0.05), which the run
// shows as a curve of ACC/ASR on the test sets, for display only (BackdoorBench picks the threshold with the
// lowest test ASR; choosing from the test sets is not done here). The authors' mask file rounds masks to 4
// decimals before pruning; the masks themselves are compared here.
//
// Measured on the NAD authors' WRN-16-1 (464 neurons; 2,500 clean CIFAR images, 2026-11-30): at the default
// eps 0.4 the perturbed model is destroyed (CE ~14 on the first batches, as in PyTorch) and the masks collapse:
// after 200 iterations 187 neurons are <= 0.2 and the pruned model is at chance (ACC 10%). eps 0.1 (100
// iterations) pruned 35 and gave ACC 77.9 / ASR 2.7. The authors' eps is for ResNet-18, with ten times as
// many neurons; a small network may need a smaller one.
import * as tf from '@tensorflow/tfjs-core';
import { augmentBatch, toFloatBatch } from '../data/augment';
import { evaluate, type EvalResult, type EvalSets } from '../evaluate';
import { describeSpec, type Model } from '../models';
import { exactSign } from '../ops';
import { Sgd } from '../optim';
import { Rng } from '../rng';
import { FINETUNE_TRAINING } from '../schedules';
import { DivergedError, RunCancelledError, type TrainSettings } from '../train';
import { InputError, type ImageDataset } from '../types';
import type { EventSink, Fact } from '../../shared/run-events';
import type { Defense } from './types';

/** Iterations per reported round (the run's "epoch"): 20 rounds = the authors' 2000 iterations. */
export const ROUND_ITERATIONS = 100;
export const MASK_PHASE = 'mask';
/** The thresholds of the curve: the authors' np.arange(0, 0.9 + 0.05, 0.05). */
export const CURVE_THRESHOLDS: readonly number[] = Array.from({ length: 19 }, (_, i) => i * 0.05);

/** The mask optimisation's schedule: the authors' mask optimizer (SGD, lr 0.2, momentum 0.9) and batch 128. */
export const ANP_TRAINING: TrainSettings = {
  ...FINETUNE_TRAINING,
  epochs: 2000 / ROUND_ITERATIONS,
  batchSize: 128,
  lrSchedule: [[0, 0.2]],
  momentum: 0.9,
  weightDecay: 0,
  nesterov: false,
};

/** A batch norm whose channels are neurons (its state-dict prefix). */
export interface NeuronLayer {
  readonly name: string;
  readonly channels: number;
}

/** Every batch norm of the model, in state-dict order (the authors' mask file order). */
export function neuronLayers(model: Model): NeuronLayer[] {
  const layers: NeuronLayer[] = [];
  for (const [key, shape] of model.params.torchShapes())
    if (key.endsWith('.running_mean')) layers.push({ name: key.slice(0, -'.running_mean'.length), channels: shape[0] });
  if (layers.length === 0)
    throw new InputError(`${describeSpec(model.spec)} has no batch norm: ANP masks and perturbs the neurons of batch norm layers`);
  return layers;
}

/** ANP's per-neuron variables of one model: masks and the perturbations of weight and bias, per layer. */
export class NeuronMasks {
  readonly masks: tf.Variable[];
  readonly noise: tf.Variable[];
  readonly noiseBias: tf.Variable[];
  /** Whether the forward pass uses the perturbations (include_noise / exclude_noise). */
  perturbed = false;
  private readonly index: Map<string, number>;

  constructor(
    private readonly model: Model,
    readonly layers: readonly NeuronLayer[],
  ) {
    const make = (value: number): tf.Variable[] =>
      layers.map((l) => {
        const init = tf.fill([l.channels], value);
        const v = tf.variable(init, true);
        init.dispose();
        return v;
      });
    this.masks = make(1);
    this.noise = make(0);
    this.noiseBias = make(0);
    this.index = new Map(layers.map((l, i) => [l.name, i]));
    model.params.setBatchNormModulation((name, gamma, beta) => {
      const i = this.index.get(name);
      if (i === undefined) return undefined;
      if (!this.perturbed) return { gamma: tf.mul(gamma, this.masks[i]), beta };
      return {
        gamma: tf.mul(gamma, tf.add(this.masks[i], this.noise[i])),
        beta: tf.mul(beta, tf.add(this.noiseBias[i], 1)),
      };
    });
  }

  /** The masks, one array per layer. */
  values(): Float32Array[] {
    return this.masks.map((m) => m.dataSync() as Float32Array);
  }

  setNoise(noise: ReadonlyArray<ArrayLike<number>>, noiseBias: ReadonlyArray<ArrayLike<number>>): void {
    tf.tidy(() =>
      this.layers.forEach((l, i) => {
        this.noise[i].assign(tf.tensor1d(Float32Array.from(noise[i])));
        this.noiseBias[i].assign(tf.tensor1d(Float32Array.from(noiseBias[i])));
      }),
    );
  }

  /** reset(rand_init=True): d, d_b ~ U(-eps, eps), per layer the weight's then the bias's. */
  randomNoise(eps: number, rng: Rng): void {
    const draw = (n: number): Float32Array => Float32Array.from({ length: n }, () => (rng.next() * 2 - 1) * eps);
    const noise: Float32Array[] = [];
    const bias: Float32Array[] = [];
    for (const l of this.layers) {
      noise.push(draw(l.channels));
      bias.push(draw(l.channels));
    }
    this.setNoise(noise, bias);
  }

  /** Detach from the model (its batch norms are plain again) and free the variables. */
  dispose(): void {
    this.model.params.setBatchNormModulation(undefined);
    for (const v of [...this.masks, ...this.noise, ...this.noiseBias]) v.dispose();
  }
}

function crossEntropy(model: Model, x: tf.Tensor4D, y: tf.Tensor2D): tf.Scalar {
  return tf.neg(tf.mean(tf.sum(tf.mul(y, tf.logSoftmax(model.forward(x, true).logits)), 1))) as tf.Scalar;
}

export interface AnpOptions {
  readonly eps: number;
  readonly steps: number;
  readonly alpha: number;
  readonly lr: number;
}

export interface MaskStepLosses {
  /** CE of the unperturbed (masked) model and of the perturbed one, before the mask step. */
  readonly nat: number;
  readonly rob: number;
  readonly loss: number;
}

/** A batch of clean images for the mask optimisation: xs NHWC in [0, 1]. */
export interface MaskBatch {
  readonly xs: Float32Array;
  readonly ys: Int32Array;
  readonly shape: readonly [number, number, number];
  readonly numClasses: number;
}

function batchTensors(batch: MaskBatch): { x: tf.Tensor4D; y: tf.Tensor2D } {
  const x = tf.tensor4d(batch.xs, [batch.ys.length, ...batch.shape]);
  const y = tf.cast(tf.oneHot(tf.tensor1d(batch.ys, 'int32'), batch.numClasses), 'float32') as tf.Tensor2D;
  return { x, y };
}

/** Step 1 after the noise is drawn: `steps` ascent steps d += (eps / steps) * sign(dCE/dd) on d and d_b. */
export function perturbNeurons(model: Model, state: NeuronMasks, batch: MaskBatch, opts: Pick<AnpOptions, 'eps' | 'steps'>): void {
  if (opts.eps <= 0) return;
  const noiseVars = [...state.noise, ...state.noiseBias];
  tf.tidy(() => {
    const { x, y } = batchTensors(batch);
    state.perturbed = true;
    for (let s = 0; s < opts.steps; s++) {
      const { grads } = tf.variableGrads(() => crossEntropy(model, x, y), noiseVars);
      for (const v of noiseVars) if (grads[v.name]) v.assign(tf.add(v, tf.mul(exactSign(grads[v.name]), opts.eps / opts.steps)));
    }
  });
}

/**
 * Step 2: alpha * CE(masked) + (1 - alpha) * CE(masked and perturbed) (no perturbed term when eps is 0),
 * one step of `optimizer` (SGD over `state.masks`), masks clamped to [0, 1]. Losses from before the step.
 */
export function maskStep(model: Model, state: NeuronMasks, optimizer: Sgd, batch: MaskBatch, opts: AnpOptions): MaskStepLosses {
  return tf.tidy(() => {
    const { x, y } = batchTensors(batch);
    let nat = 0;
    let rob = 0;
    const { value, grads } = tf.variableGrads(() => {
      state.perturbed = true;
      const lossRob = opts.eps > 0 ? crossEntropy(model, x, y) : tf.scalar(0);
      state.perturbed = false;
      const lossNat = crossEntropy(model, x, y);
      rob = lossRob.dataSync()[0];
      nat = lossNat.dataSync()[0];
      return tf.add(tf.mul(lossNat, opts.alpha), tf.mul(lossRob, 1 - opts.alpha)) as tf.Scalar;
    }, state.masks);
    optimizer.step(grads, opts.lr);
    for (const m of state.masks) m.assign(tf.clipByValue(m, 0, 1));
    return { nat, rob, loss: value.dataSync()[0] };
  });
}

/** One iteration of mask_train: random noise, the ascent steps, the mask step. */
export function anpIteration(
  model: Model,
  state: NeuronMasks,
  optimizer: Sgd,
  batch: MaskBatch,
  opts: AnpOptions,
  rng: Rng,
): MaskStepLosses {
  if (opts.eps > 0) state.randomNoise(opts.eps, rng);
  perturbNeurons(model, state, batch, opts);
  return maskStep(model, state, optimizer, batch, opts);
}

/** A neuron: its batch norm, its channel, its mask. */
export interface Neuron {
  readonly layer: string;
  readonly channel: number;
  readonly mask: number;
}

/** All neurons sorted by mask, smallest first; ties keep layer then channel order (Python's stable sort). */
export function neuronsByMask(layers: readonly NeuronLayer[], masks: ReadonlyArray<ArrayLike<number>>): Neuron[] {
  const all: Neuron[] = [];
  layers.forEach((l, i) => {
    for (let c = 0; c < l.channels; c++) all.push({ layer: l.name, channel: c, mask: masks[i][c] });
  });
  return all.sort((a, b) => a.mask - b.mask);
}

/** How many of `sorted` have mask <= threshold (prune_neuron_cifar.py's test). */
export const prunedCount = (sorted: readonly Neuron[], threshold: number): number => {
  let k = 0;
  while (k < sorted.length && sorted[k].mask <= threshold) k++;
  return k;
};

/** Prune in place as the authors' `pruning`: the batch norm weight of each neuron set to 0, its bias kept. */
export function pruneNeurons(model: Model, neurons: readonly Neuron[]): void {
  const byLayer = new Map<string, number[]>();
  for (const n of neurons) byLayer.set(n.layer, [...(byLayer.get(n.layer) ?? []), n.channel]);
  tf.tidy(() => {
    for (const [layer, channels] of byLayer) {
      const v = model.params.get(`${layer}.weight`);
      const keep = new Float32Array(v.size).fill(1);
      for (const c of channels) keep[c] = 0;
      // where(), not a multiply: exact +0 whatever the sign.
      v.assign(tf.where(tf.cast(tf.tensor1d(keep), 'bool'), v, tf.zerosLike(v)));
    }
  });
}

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

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

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
      emit({
        type: 'epoch',
        phase: MASK_PHASE,
        epochs: rounds,
        epoch: round,
        loss: lossSum / ROUND_ITERATIONS,
        acc: r.acc,
        asr: r.asr,
        ...(r.ra !== undefined ? { ra: r.ra } : {}),
        lr,
        seconds,
        imagesPerSecond: (ROUND_ITERATIONS * batch) / seconds,
      });
    }
  } finally {
    optimizer.dispose();
    state.perturbed = false;
  }
}

const fmt = (v: number, digits = 3): string => (Number.isFinite(v) ? v.toFixed(digits) : String(v));

function emitFindings(
  emit: EventSink,
  masks: readonly Float32Array[],
  curve: readonly CurvePoint[],
  pruned: readonly Neuron[],
  threshold: number,
): void {
  const xy = (pick: (p: CurvePoint) => number | undefined) =>
    curve.filter((p) => pick(p) !== undefined).map((p) => ({ x: p.threshold, y: pick(p) as number }));
  if (curve.length)
    emit({
      type: 'chart',
      id: 'anp-pruning',
      title: 'ACC/ASR of the model pruned at each mask threshold',
      xLabel: 'mask threshold',
      yLabel: '%',
      chart: {
        kind: 'xy',
        series: [
          { name: 'ACC', points: xy((p) => p.acc) },
          { name: 'ASR', points: xy((p) => (Number.isFinite(p.asr) ? p.asr : undefined)) },
          { name: 'RA', points: xy((p) => p.ra) },
        ].filter((s) => s.points.length),
      },
      threshold: { value: threshold, label: `pruned at mask <= ${threshold}`, axis: 'x' },
    });
  const bins = new Array<number>(10).fill(0);
  for (const m of masks) for (const v of m) bins[Math.min(9, Math.floor(v * 10))]++;
  emit({
    type: 'chart',
    id: 'anp-masks',
    title: 'Neuron masks after optimisation',
    xLabel: 'mask',
    yLabel: 'neurons',
    chart: {
      kind: 'bar',
      labels: bins.map((_, i) => `${(i / 10).toFixed(1)}-${((i + 1) / 10).toFixed(1)}`),
      series: [{ name: 'neurons', values: bins }],
    },
    threshold: { value: threshold * 10 - 0.5, label: `threshold ${threshold}`, axis: 'x' },
  });
  const perLayer = new Map<string, Neuron[]>();
  for (const n of pruned) perLayer.set(n.layer, [...(perLayer.get(n.layer) ?? []), n]);
  const total = masks.reduce((s, m) => s + m.length, 0);
  const facts: Fact[] = [
    { label: 'Threshold', value: `mask <= ${threshold}` },
    { label: 'Pruned', value: `${pruned.length} of ${total} neurons in ${perLayer.size} of ${masks.length} batch norms` },
  ];
  for (const [layer, ns] of perLayer) facts.push({ label: layer, value: ns.map((n) => `${n.channel} (${fmt(n.mask)})`).join(', ') });
  emit({ type: 'facts', title: 'ANP', facts });
}

export const anp: Defense = {
  name: 'anp',
  title: 'Adversarial Neuron Pruning (ANP)',
  description:
    'Learn a mask per batch-norm neuron on clean data under adversarial neuron perturbations, then prune the neurons whose mask stays small. --epochs counts rounds of 100 mask iterations, --lr is the mask learning rate.',
  needs: 'clean data (the authors: 1% of the training set)',
  citation:
    'Wu, Wang: Adversarial Neuron Pruning Purifies Backdoored Deep Models, NeurIPS 2021 (csdongxian/ANP_backdoor); BackdoorBench defense/anp (Wu et al., NeurIPS 2022 Datasets and Benchmarks)',
  modes: ['repair'],
  params: [
    {
      key: 'anpEps',
      type: 'number',
      min: 0,
      default: 0.4,
      label: 'Perturbation budget',
      description:
        "largest relative perturbation of a neuron's weight and bias, eps (the authors: 0.4; 0 trains the masks without perturbation)",
    },
    {
      key: 'anpSteps',
      type: 'number',
      integer: true,
      min: 1,
      default: 1,
      label: 'Perturbation steps',
      description: 'signed-gradient ascent steps on the perturbation per iteration (the authors: 1)',
    },
    {
      key: 'anpAlpha',
      type: 'number',
      min: 0,
      max: 1,
      default: 0.2,
      label: 'Clean-loss weight',
      description: 'alpha in alpha * natural loss + (1 - alpha) * perturbed loss (the authors: 0.2)',
    },
    {
      key: 'threshold',
      type: 'number',
      min: 0,
      max: 1,
      default: 0.2,
      label: 'Pruning threshold',
      description: 'prune the neurons whose mask is <= this (the paper: 0.2)',
    },
    {
      key: 'sweep',
      type: 'boolean',
      default: true,
      label: 'Show ACC/ASR against the threshold',
      description: "for display only: evaluate the test sets pruned at 0, 0.05, ..., 0.9 (the authors' grid)",
    },
  ],
  training: ANP_TRAINING,
  phases: (_params, training) => [{ phase: MASK_PHASE, epochs: training.epochs }],
  async run(input) {
    const { test, emit, params, signal } = input;
    const threshold = params['threshold'] as number;
    const backdoored = input.suspect();
    const layers = neuronLayers(backdoored);
    const rows = [{ model: 'backdoored', ...evaluate(backdoored, test) }];
    emit({ type: 'table', rows: [...rows] });

    // Masks are learned on a copy: its running statistics move in training mode (the pruned model's do not).
    const scratch = input.suspect();
    const state = new NeuronMasks(scratch, layers);
    const t0 = performance.now();
    let masks: Float32Array[];
    try {
      await optimizeMasks({
        model: scratch,
        state,
        data: input.clean,
        test,
        settings: input.training,
        opts: { eps: params['anpEps'] as number, steps: params['anpSteps'] as number, alpha: params['anpAlpha'] as number },
        seed: input.seed,
        emit,
        signal,
      });
      masks = state.values().map((m) => Float32Array.from(m));
    } finally {
      state.dispose();
    }
    const maskSeconds = (performance.now() - t0) / 1000;

    const sorted = neuronsByMask(layers, masks);
    const pruned = sorted.slice(0, prunedCount(sorted, threshold));
    const curve = params['sweep'] ? await pruningCurve(input.suspect(), sorted, CURVE_THRESHOLDS, test, signal) : [];
    const model = input.suspect();
    pruneNeurons(model, pruned);
    rows.push({ model: `anp (mask <= ${threshold})`, ...evaluate(model, test) });
    emit({ type: 'table', rows: [...rows] });
    emitFindings(emit, masks, curve, pruned, threshold);
    const summary = maskSummary(masks);
    emit({
      type: 'log',
      message: `ANP: pruned ${pruned.length} of ${summary.neurons} neurons at mask <= ${threshold}; masks min ${fmt(summary.min)}, median ${fmt(summary.median)}, ${summary.atOne} at 1 (masks optimised in ${maskSeconds.toFixed(1)} s)`,
    });
    return {
      model,
      rows,
      report: {
        threshold,
        prunedNeurons: pruned.length,
        totalNeurons: summary.neurons,
        pruned: pruned.map((n) => ({ layer: n.layer, channel: n.channel, mask: n.mask })),
        masks: summary,
        iterations: input.training.epochs * ROUND_ITERATIONS,
        maskSeconds,
        curve,
      },
      attention: [
        ['backdoored', backdoored],
        ['anp', model],
      ],
    };
  },
};
