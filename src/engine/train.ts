// One training loop serves the paper's three procedures: training a backdoored model (CE on poisoned
// data), finetuning a teacher (CE on clean data with augmentation = NAD with all betas 0), and NAD
// erasure (CE + sum_i beta_i * MSE(AT_student_i, AT_teacher_i)).
import * as tf from '@tensorflow/tfjs-core';
import type { Model } from './models';
import type { ImageDataset } from './types';
import type { EventSink, Phase } from '../shared/run-events';
import { Rng } from './rng';
import { Sgd, learningRateAt } from './optim';
import { attentionLoss, attentionMap } from './attention';
import { augmentBatch, toFloatBatch } from './data/augment';
import { epochEvalSubset, epochEvent, evaluate, yieldToEventLoop, type EvalSets, type EvalResult } from './evaluate';
import type { PredictionMemo } from './prediction-memo';

export interface TrainSettings {
  readonly epochs: number;
  readonly batchSize: number;
  /** Step schedule: [[fromEpoch (0-based), lr], ...]. */
  readonly lrSchedule: ReadonlyArray<readonly [number, number]>;
  readonly momentum: number;
  readonly weightDecay: number;
  readonly nesterov: boolean;
  /** Random crop (pad 4), horizontal flip, cutout as in the paper's finetuning/NAD. */
  readonly augment: boolean;
  /** Include the horizontal flip in the augmentation (default true; off for digits, which a flip changes). */
  readonly hflip?: boolean;
  /** Largest random rotation in degrees, applied with p 0.5 inside the augmentation (default 0: none; WaNet trains with 10). */
  readonly rotation?: number;
  /** Attention-distillation weights per group; all zero (or no teacher) = plain cross-entropy. */
  readonly betas: readonly number[];
  /** Power p of the attention map. */
  readonly attentionPower: number;
  readonly seed: number;
  /**
   * ACC/ASR of the baseline and of every epoch but the last on this many test images (a fixed seeded subset
   * of the clean and of the triggered set, the same in every run: epochEvalSubset) instead of all of them,
   * for a cheaper progress curve. The last epoch, hence the phase's result, is always on the whole test set.
   */
  readonly epochEvalImages?: number;
}

export interface EpochRecord extends EvalResult {
  readonly epoch: number;
  readonly loss: number;
  readonly lr: number;
  readonly seconds: number;
  readonly imagesPerSecond: number;
}

/**
 * An attack that trains along with the model instead of poisoning the data first (the input-aware attack's
 * trigger generator): the loop hands it each batch inside the gradient tape, trains its variables on the
 * same loss, and asks it for the sets to evaluate (its backdoor test set changes as it trains).
 */
export interface TrainingHook {
  /** Variables trained with the model on the same loss (the hook's own optimiser applies their gradients). */
  readonly variables: readonly tf.Variable[];
  /**
   * Called inside the gradient tape with the batch (NHWC in [0, 1]) and its labels: the images and labels the
   * model trains on instead, and a term added to the loss.
   */
  batch(x: tf.Tensor4D, labels: Int32Array, at: { readonly epoch: number; readonly step: number }): HookedBatch;
  /** Apply the gradients of `variables` (keyed by tfjs name) after the model's step. */
  step(grads: tf.NamedTensorMap, epoch: number): void;
  /** The sets the model is evaluated on after an epoch (and before the first). */
  evalSets(sets: EvalSets): EvalSets;
  /** After each epoch's evaluation, before the loop's onEpochEnd (e.g. to save what it trains). */
  onEpochEnd?(epoch: number): void | Promise<void>;
}

export interface HookedBatch {
  readonly x: tf.Tensor4D;
  readonly labels: Int32Array;
  readonly loss?: tf.Scalar;
}

export interface TrainArgs {
  readonly student: Model;
  readonly teacher?: Model;
  readonly data: ImageDataset;
  readonly evalSets: EvalSets;
  readonly settings: TrainSettings;
  /** First epoch to run (0-based), when resuming. */
  readonly startEpoch?: number;
  /** The phase the events are tagged with (train, teacher, nad, finetune...). */
  readonly phase: Phase;
  /** Receives baseline, step and epoch events. */
  readonly emit?: EventSink;
  /** Called after every optimiser step, before the next batch (e.g. to hold pruned weights at 0). */
  readonly afterStep?: () => void;
  /** Called after each epoch's evaluation (e.g. to save a resumable checkpoint). */
  readonly onEpochEnd?: (epoch: number, record: EpochRecord) => void | Promise<void>;
  readonly signal?: AbortSignal;
  /** An attack trained along with the model (see TrainingHook). */
  readonly hook?: TrainingHook;
  /**
   * The training set of epoch e (0-based), when an attack poisons anew every epoch (WaNet's on-the-fly warp)
   * instead of once: same count, shape and classes as `data`, which it replaces for that epoch.
   */
  readonly epochData?: (epoch: number) => ImageDataset;
  /** Predictions already made (see PredictionMemo): the baseline of a model already evaluated is read from it. */
  readonly memo?: PredictionMemo;
}

export class RunCancelledError extends Error {
  constructor() {
    super('run cancelled');
    this.name = 'RunCancelledError';
  }
}

export class DivergedError extends Error {
  constructor(
    readonly epoch: number,
    readonly step: number,
    readonly lr: number,
  ) {
    super(
      `training diverged: the loss became NaN/infinite at epoch ${epoch}, step ${step} (lr ${lr}); lower the learning rate or the betas`,
    );
    this.name = 'DivergedError';
  }
}

export interface StepArgs {
  readonly student: Model;
  /** With a teacher, the loss adds beta_i * MSE of attention maps (NAD); without, plain cross-entropy. */
  readonly teacher?: Model;
  readonly optimizer: Sgd;
  /** NHWC float32 batch in [0, 1]. */
  readonly xs: Float32Array;
  readonly ys: Int32Array;
  readonly imageShape: readonly [number, number, number];
  readonly numClasses: number;
  readonly betas: readonly number[];
  readonly attentionPower: number;
  readonly lr: number;
  /** With a hook, the batch the model sees and the loss come from it too (see TrainingHook). */
  readonly hook?: TrainingHook;
  /** 0-based epoch and step, for the hook. */
  readonly at?: { readonly epoch: number; readonly step: number };
}

/** One SGD step of the paper's objective on one batch; returns the batch loss. */
export function trainingStep(a: StepArgs): number {
  const n = a.ys.length;
  const [h, w, c] = a.imageShape;
  const vars = [...a.student.params.trainable().map(([, v]) => v), ...(a.hook?.variables ?? [])];
  return tf.tidy(() => {
    const x = tf.tensor4d(a.xs, [n, h, w, c]);
    const y = tf.oneHot(tf.tensor1d(a.ys, 'int32'), a.numClasses);
    // The teacher is fixed: its maps are constants, computed outside the gradient tape.
    const teacherMaps = a.teacher
      ? tf.tidy(() => (a.teacher as Model).forward(x, false).groups.map((g) => attentionMap(g, a.attentionPower)))
      : [];
    const { value, grads } = tf.variableGrads(() => {
      const hooked = a.hook?.batch(x, a.ys, a.at ?? { epoch: 0, step: 0 });
      const out = a.student.forward(hooked ? hooked.x : x, true);
      const target = hooked ? tf.oneHot(tf.tensor1d(hooked.labels, 'int32'), a.numClasses) : y;
      let loss = tf.neg(tf.mean(tf.sum(tf.mul(target, tf.logSoftmax(out.logits)), 1))) as tf.Scalar;
      if (hooked?.loss) loss = tf.add(loss, hooked.loss);
      teacherMaps.forEach((tm, i) => {
        const beta = a.betas[i] ?? 0;
        if (beta !== 0) loss = tf.add(loss, tf.mul(attentionLoss(out.groups[i], tm, a.attentionPower), beta));
      });
      return loss;
    }, vars);
    a.optimizer.step(grads, a.lr);
    a.hook?.step(grads, a.at?.epoch ?? 0);
    return value.dataSync()[0];
  });
}

export async function train(args: TrainArgs): Promise<EpochRecord[]> {
  const { student, teacher, data, settings, phase, emit, signal, hook } = args;
  const evalSets = (): EvalSets => (hook ? hook.evalSets(args.evalSets) : args.evalSets);
  const { epochEvalImages } = settings;
  const progressSets = (): EvalSets => (epochEvalImages === undefined ? evalSets() : epochEvalSubset(evalSets(), epochEvalImages));
  const useAttention = teacher !== undefined && settings.betas.some((b) => b !== 0);
  const vars = student.params.trainable();
  const optimizer = new Sgd(vars, settings);
  const { height: h, width: w, channels: c } = data;
  const buf = new Float32Array(settings.batchSize * h * w * c);
  const steps = Math.ceil(data.count / settings.batchSize);
  const records: EpochRecord[] = [];
  const startEpoch = args.startEpoch ?? 0;

  try {
    if (epochEvalImages !== undefined && settings.epochs - startEpoch > 1) {
      const [all, some] = [evalSets(), progressSets()];
      const triggered = all.backdoor ? ` and ${some.backdoor?.count} of ${all.backdoor.count} triggered ones` : '';
      emit?.({
        type: 'log',
        message: `ACC/ASR before epoch ${settings.epochs} on ${some.clean.count} of ${all.clean.count} test images${triggered} (epochEvalImages); epoch ${settings.epochs} on all`,
      });
    }
    if (startEpoch === 0) {
      const base = evaluate(student, progressSets(), args.memo);
      emit?.({ type: 'baseline', phase, acc: base.acc, asr: base.asr });
    }
    for (let epoch = startEpoch; epoch < settings.epochs; epoch++) {
      const lr = learningRateAt(settings.lrSchedule, epoch);
      // Per-epoch streams: a run resumed at epoch k draws exactly what an uninterrupted one would.
      const orderRng = new Rng(mixSeed(settings.seed, epoch, 1));
      const augRng = new Rng(mixSeed(settings.seed, epoch, 2));
      const order = orderRng.permutation(data.count);
      const epochSet = args.epochData ? epochDataOf(args.epochData, epoch, data) : data;
      const t0 = performance.now();
      let lossSum = 0;
      let lastReport = 0;
      for (let s = 0; s < steps; s++) {
        if (signal?.aborted) throw new RunCancelledError();
        const idx = order.subarray(s * settings.batchSize, Math.min((s + 1) * settings.batchSize, data.count));
        const n = idx.length;
        const view = buf.subarray(0, n * h * w * c);
        const xs = settings.augment
          ? augmentBatch(epochSet, idx, augRng, view, { flip: settings.hflip ?? true, rotation: settings.rotation })
          : toFloatBatch(epochSet, idx, view);
        const ys = Int32Array.from(idx, (i) => epochSet.labels[i]);
        const lossValue = trainingStep({
          student,
          teacher: useAttention ? teacher : undefined,
          optimizer,
          xs,
          ys,
          imageShape: [h, w, c],
          numClasses: data.numClasses,
          betas: settings.betas,
          attentionPower: settings.attentionPower,
          lr,
          hook,
          at: { epoch, step: s },
        });
        args.afterStep?.();
        if (!Number.isFinite(lossValue)) throw new DivergedError(epoch + 1, s + 1, lr);
        lossSum += lossValue * n;
        const now = performance.now();
        if (emit && (now - lastReport > 250 || s === steps - 1)) {
          lastReport = now;
          emit({ type: 'step', phase, epoch: epoch + 1, step: s + 1, steps, loss: lossValue });
        }
        await yieldToEventLoop();
      }
      const seconds = (performance.now() - t0) / 1000;
      const result = evaluate(student, epoch === settings.epochs - 1 ? evalSets() : progressSets(), args.memo);
      const record: EpochRecord = {
        epoch: epoch + 1,
        loss: lossSum / data.count,
        lr,
        seconds,
        imagesPerSecond: data.count / seconds,
        ...result,
      };
      records.push(record);
      emit?.(epochEvent(phase, { ...record, epochs: settings.epochs, images: data.count }, result));
      await hook?.onEpochEnd?.(epoch + 1);
      await args.onEpochEnd?.(epoch + 1, record);
    }
  } finally {
    optimizer.dispose();
  }
  return records;
}

/** An epoch's training set, checked against the set it stands in for. */
function epochDataOf(of: (epoch: number) => ImageDataset, epoch: number, data: ImageDataset): ImageDataset {
  const d = of(epoch);
  const shape = (x: ImageDataset): string => `${x.count} ${x.height}x${x.width}x${x.channels}, ${x.numClasses} classes`;
  if (shape(d) !== shape(data)) throw new Error(`the training set of epoch ${epoch + 1} is ${shape(d)}, not ${shape(data)}`);
  return d;
}

/**
 * The seed of one per-epoch stream of a run: a resumed run draws at epoch e what an uninterrupted one does.
 * Streams: 1 data order, 2 augmentation, 3 an attack's per-epoch poisoning (TrainArgs.epochData).
 */
export function mixSeed(seed: number, epoch: number, stream: number): number {
  return (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(epoch + 1, 0x85ebca6b) ^ Math.imul(stream, 0xc2b2ae35)) >>> 0;
}
