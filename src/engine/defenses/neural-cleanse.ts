// Neural Cleanse (Wang, Yao, Shan, Li, Viswanath, Zheng, Zhao: "Neural Cleanse: Identifying and Mitigating
// Backdoor Attacks in Neural Networks", IEEE S&P 2019; the authors' bolunwang/backdoor, visualizer.py and
// mad_outlier_detection.py), with the defaults of BackdoorBench's defense/nc.py (SCLBD/BackdoorBench,
// config/defense/nc/cifar10.yaml) where the paper is silent. Two modes: `detect` and `repair` (unlearning).
//
// 1. Reverse engineering, for every class y: a mask m (H x W, one channel) and a pattern p (H x W x C), both
//    tanh-parameterised, m = tanh(m')/(2 + 1e-7) + 0.5 and p likewise, so both stay in (0, 1). The
//    triggered image is (1 - m) x + m p in the [0, 1] pixel domain (BackdoorBench mixes normalised images
//    and the normalised pattern, which is the same image: the normalisation is affine per channel). Loss:
//    CE(f((1 - m) x + m p), y) + cost * |m|_1 over mini-batches of the defender's clean data, the model in
//    evaluation mode (frozen batch-norm statistics), only m' and p' optimised. Adam with nc.py's and
//    visualizer.py's lr 0.1 and betas (0.5, 0.9) (torch's eps 1e-8), a fresh optimiser per class; m' and p'
//    start at 1 (nc.py's np.ones, i.e. m = p = 0.881; the authors start from random values).
//    Batches: nc.py's loader over the clean data (batch_size 256, shuffled each epoch, its train
//    transform: random crop with padding 4 and horizontal flip; we use the run schedule's augmentation
//    without cutout, so digits are not flipped), for nc_epoch 80 epochs. After each epoch, nc.py's
//    schedule of the cost (the authors' visualizer.py, counted in epochs instead of 'steps' of mini-batches):
//     - the epoch's attack success = mean over its batches of the share classified as y (percent);
//       reg = mean over its batches of |m|_1;
//     - best mask: when success >= atk_succ_threshold (98%) and reg < the best reg so far, keep m and p;
//     - early stop (early_stop_threshold 0.99, early_stop_patience 25): after a best exists, count epochs
//       whose best reg is not below 0.99 x the best before; stop when the count reaches 25 and the cost
//       has gone both up and down;
//     - cost (init_cost 1e-3, nc.py starts there; visualizer.py starts at 0 and sets init_cost after
//       `patience` successful steps): `patience` (5) successful epochs in a row multiply it by
//       cost_multiplier (2), 5 unsuccessful ones divide it by cost_multiplier^1.5.
//    A class that never reaches the threshold keeps its last mask (visualizer.py; nc.py keeps the first
//    epoch's) and is reported as not reached. Its L1 is |m_best|_1.
// 2. Detection (mad_outlier_detection.py, nc.py's outlier_detection): anomaly index of class y =
//    |L1_y - median| / (1.4826 * MAD), MAD = median |L1 - median|; y is flagged when its index > 2 and
//    L1_y <= median (a small trigger). The median is numpy's (mean of the two middle values for an even
//    count, as the authors' code); nc.py takes torch.median, the lower middle value: with 10 classes the
//    two can differ. Flagged classes are listed by L1, smallest first.
// 3. Repair (unlearning; the paper's Section VI-C, nc.py step d): if nothing is flagged, the suspect is
//    returned unchanged (nc.py: "This is not a backdoor model"). Else a seeded random 80% of the clean
//    data stays as it is and the other 20% (unlearning_ratio 0.2, the paper's 20%) are stamped, for every
//    flagged class (nc.py loops over its flag list; usually one), with that class's recovered trigger,
//    keeping their true labels; the model is finetuned on it (phase `unlearn`, trainPhase, output
//    `model`) on the run's schedule, by default NAD's finetuning (FINETUNE_TRAINING: 10 epochs, lr 0.1 then
//    0.01, batch 64, augmentation). nc.py finetunes 100 epochs at lr 0.01 (cosine, wd 5e-4) with its
//    generic schedule; the paper a single epoch. Stamping rounds to uint8 (nc.py truncates after reading the
//    trigger back from min-max-normalised PNGs; we stamp the recovered mask and pattern themselves).
//
// Progress: the reverse engineering is one phase, `reverse`, of classes x ncEpochs epochs (its own phase
// event: the class count comes from the data, so `phases()` declares ncEpochs, per class); each batch sends a
// step event with the epoch counted over all classes, and a class that stops early skips to the next class's
// first epoch, so the ETA's pace is the time per class. No epoch events: those carry ACC/ASR curves. A log
// line per class gives its L1, success, epochs and time. Cost: an input-gradient step costs ~3.6 forward
// passes; WRN-16-1 on 2,500 images runs ~8.5 s an epoch on 2 cores, so the default 80 epochs x 10 classes
// is up to ~2 h (less with early stops); the report's l1ByEpoch shows what fewer epochs would have found.
//
// Input gradients: the models' evaluation-mode forward pass fuses batch norm, ReLU and the 3x3 convolution
// of the WideResNet into one wasm kernel (ParamSet.bnReluConv3x3 -> ops.bnReluConv3x3Eval ->
// NadConv3x3Winograd) that has no gradient: tf.grad through model.forward(x, false) fails with "gradient
// function not found for NadConv3x3Winograd". `differentiableLogits` (models/index.ts) therefore runs the WideResNet's
// evaluation-mode forward pass from the separate differentiable ops (applyBatchNorm in evaluation mode,
// whose backward gives dx, and conv2d, whose input gradient is a forward convolution); the CNN's forward
// pass is already made of those. Same logits (checked in the tests).
import * as tf from '@tensorflow/tfjs-core';
import { augmentBatch, toFloatBatch } from '../data/augment';
import { evaluate } from '../evaluate';
import { differentiableLogits, type Model } from '../models';
import { Rng } from '../rng';
import { FINETUNE_TRAINING } from '../schedules';
import { RunCancelledError, type TrainSettings } from '../train';
import { Adam } from '../optim';
import { InputError, type ImageDataset } from '../types';
import type { EventSink, Fact, FigureImage, ResultRow } from '../../shared/run-events';
import type { Defense, ParamValues } from './types';

/** nc.py's and visualizer.py's Adam: betas (0.5, 0.9); torch's default eps. */
export const NC_ADAM = { beta1: 0.5, beta2: 0.9, eps: 1e-8 } as const;

/** The tanh parameterisation's epsilon (nc.py EPSILON). */
export const TANH_EPSILON = 1e-7;
/** Both codes' consistency constant of the MAD for normally distributed values. */
export const MAD_CONSTANT = 1.4826;
/** nc.py (and visualizer.py): early_stop_threshold. */
export const EARLY_STOP_THRESHOLD = 0.99;
/** Phase names of the run: the reverse engineering (steps only) and the unlearning (trainPhase). */
export const DETECT_PHASE = 'reverse';
export const UNLEARN_PHASE = 'unlearn';

/** (tanh(v) / (2 + eps) + 0.5): a mask or pattern in (0, 1) from its unconstrained form. */
export function fromTanhSpace(v: tf.Tensor): tf.Tensor {
  return tf.add(tf.div(tf.tanh(v), 2 + TANH_EPSILON), 0.5);
}

/** A variable holding `init`'s values; `init` is disposed. */
function variableOf(init: tf.Tensor, trainable: boolean): tf.Variable {
  const v = tf.variable(init, trainable);
  init.dispose();
  return v;
}

/** The trigger being optimised for one class: m' [H, W, 1] and p' [H, W, C] (tanh space), and their Adam. */
export class TriggerVariables {
  readonly maskTanh: tf.Variable;
  readonly patternTanh: tf.Variable;
  readonly adam: Adam;

  /** Starts at `mask` / `pattern` in tanh space (nc.py: ones), or the given arrays (HWC order). */
  constructor(height: number, width: number, channels: number, init?: { maskTanh: Float32Array; patternTanh: Float32Array }) {
    this.maskTanh = variableOf(init ? tf.tensor3d(init.maskTanh, [height, width, 1]) : tf.ones([height, width, 1]), true);
    this.patternTanh = variableOf(
      init ? tf.tensor3d(init.patternTanh, [height, width, channels]) : tf.ones([height, width, channels]),
      true,
    );
    this.adam = new Adam([this.maskTanh, this.patternTanh], NC_ADAM);
  }

  /** The mask (H*W) and pattern (H*W*C, HWC) in (0, 1). */
  read(): { mask: Float32Array; pattern: Float32Array } {
    const [m, p] = tf.tidy(() => [fromTanhSpace(this.maskTanh), fromTanhSpace(this.patternTanh)]);
    const out = { mask: m.dataSync() as Float32Array, pattern: p.dataSync() as Float32Array };
    m.dispose();
    p.dispose();
    return out;
  }

  dispose(): void {
    this.maskTanh.dispose();
    this.patternTanh.dispose();
    this.adam.dispose();
  }
}

export interface TriggerStepArgs {
  readonly model: Model;
  readonly trigger: TriggerVariables;
  /** NHWC float32 batch in [0, 1]. */
  readonly xs: Float32Array;
  readonly count: number;
  readonly imageShape: readonly [number, number, number];
  readonly target: number;
  readonly numClasses: number;
  readonly cost: number;
  readonly lr: number;
}

export interface TriggerStepResult {
  /** Mean cross-entropy towards the target, |m|_1 and their weighted sum, before the step. */
  readonly ce: number;
  readonly reg: number;
  readonly loss: number;
  /** Images of the batch classified as the target (before the step). */
  readonly hits: number;
}

export interface TriggerObjective {
  /** ce + cost * reg: what is minimised. */
  readonly loss: tf.Scalar;
  /** Mean cross-entropy towards the target. */
  readonly ce: tf.Scalar;
  /** |m|_1. */
  readonly reg: tf.Scalar;
  /** Images classified as the target. */
  readonly hits: tf.Scalar;
}

/** nc.py's objective on a batch x (NHWC in [0, 1]): CE(f((1 - m) x + m p), target) + cost * |m|_1, f in evaluation mode. */
export function triggerObjective(
  model: Model,
  trigger: { readonly maskTanh: tf.Tensor; readonly patternTanh: tf.Tensor },
  x: tf.Tensor4D,
  target: number,
  numClasses: number,
  cost: number,
): TriggerObjective {
  const n = x.shape[0];
  const mask = fromTanhSpace(trigger.maskTanh);
  const pattern = fromTanhSpace(trigger.patternTanh);
  const stamped = tf.add(tf.mul(tf.sub(1, mask), x), tf.mul(mask, pattern)) as tf.Tensor4D;
  const logits = differentiableLogits(model, stamped);
  const y = tf.oneHot(tf.fill([n], target, 'int32') as tf.Tensor1D, numClasses);
  const ce = tf.neg(tf.mean(tf.sum(tf.mul(y, tf.logSoftmax(logits)), 1))) as tf.Scalar;
  const reg = tf.sum(mask) as tf.Scalar; // |m|_1: the mask is positive
  const hits = tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), target), 'float32')) as tf.Scalar;
  return { loss: tf.add(ce, tf.mul(reg, cost)) as tf.Scalar, ce, reg, hits };
}

/** One Adam step of the reverse engineering on one batch (nc.py's train_step body); values from before the step. */
export function triggerStep(a: TriggerStepArgs): TriggerStepResult {
  const [h, w, c] = a.imageShape;
  const { maskTanh, patternTanh } = a.trigger;
  const stats = tf.tidy(() => {
    const x = tf.tensor4d(a.xs, [a.count, h, w, c]);
    let kept: tf.Scalar[] = [];
    const { value, grads } = tf.variableGrads(() => {
      const o = triggerObjective(a.model, a.trigger, x, a.target, a.numClasses, a.cost);
      // Kept past the gradient function's own scope; disposed below.
      kept = [tf.keep(o.ce), tf.keep(o.reg), tf.keep(o.hits)];
      return o.loss;
    }, [maskTanh, patternTanh]);
    a.trigger.adam.step(grads, a.lr);
    const out = tf.stack([kept[0], kept[1], value, kept[2]]);
    tf.dispose(kept);
    return out;
  });
  const [ce, reg, loss, hits] = stats.dataSync();
  stats.dispose();
  return { ce, reg, loss, hits };
}

export interface ReverseSettings {
  readonly epochs: number;
  readonly batchSize: number;
  readonly initCost: number;
  readonly lr: number;
  readonly costMultiplier: number;
  readonly patience: number;
  /** Percent (nc.py atk_succ_threshold 98). */
  readonly attackSuccThreshold: number;
  readonly earlyStopPatience: number;
  /** Random crop (pad 4), and horizontal flip when `flip`; none when absent. */
  readonly augment?: { readonly flip: boolean };
}

/** BackdoorBench's defaults (config/defense/nc/cifar10.yaml). */
export const NC_DEFAULTS: ReverseSettings = {
  epochs: 80,
  batchSize: 256,
  initCost: 1e-3,
  lr: 0.1,
  costMultiplier: 2,
  patience: 5,
  attackSuccThreshold: 98,
  earlyStopPatience: 25,
  augment: { flip: true },
};

export interface RecoveredTrigger {
  readonly target: number;
  /** The best mask, H*W in (0, 1), and its pattern, H*W*C (HWC) in (0, 1). */
  readonly mask: Float32Array;
  readonly pattern: Float32Array;
  /** |mask|_1. */
  readonly l1: number;
  /** Whether some epoch reached the success threshold (else the mask is the last one). */
  readonly reached: boolean;
  /** Attack success (percent) of the epoch whose mask was kept. */
  readonly success: number;
  readonly epochsRun: number;
  readonly earlyStopped: boolean;
  readonly finalCost: number;
  readonly seconds: number;
  /** |m_best|_1 after each epoch (Infinity until an epoch reached the threshold): the result of shorter runs. */
  readonly l1ByEpoch: number[];
}

export interface EpochTrace {
  readonly epoch: number;
  readonly success: number;
  readonly reg: number;
  readonly cost: number;
  /** |m_best|_1 after this epoch (Infinity before any epoch reached the threshold). */
  readonly bestL1: number;
}

export interface ReverseArgs {
  readonly model: Model;
  readonly data: ImageDataset;
  readonly target: number;
  readonly settings: ReverseSettings;
  readonly seed: number;
  readonly signal?: AbortSignal;
  /** Called after each batch: epoch (0-based), batch (0-based), batches per epoch, the batch's loss. */
  readonly onStep?: (epoch: number, batch: number, batches: number, loss: number) => void;
  /** Called after each epoch with its success (percent), mean |m|_1, the cost it ran at and the best L1 so far. */
  readonly onEpoch?: (e: EpochTrace) => void;
  /** Initial m' and p' (tanh space); nc.py's ones when absent. */
  readonly init?: { maskTanh: Float32Array; patternTanh: Float32Array };
}

function sum(v: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i];
  return s;
}

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function mixSeed(seed: number, a: number, b: number): number {
  return (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(a + 1, 0x85ebca6b) ^ Math.imul(b + 1, 0xc2b2ae35) ^ 0x6e63) >>> 0;
}

/** Recover the smallest trigger that sends the clean data to `target` (nc.py's train_mask for one label). */
export async function reverseEngineer(a: ReverseArgs): Promise<RecoveredTrigger> {
  const { data, settings: s } = a;
  const { height: h, width: w, channels: c } = data;
  const t0 = performance.now();
  const trigger = new TriggerVariables(h, w, c, a.init);
  const buf = new Float32Array(Math.min(s.batchSize, data.count) * h * w * c);
  const batches = Math.ceil(data.count / s.batchSize);
  let cost = s.initCost;
  let best: { mask: Float32Array; pattern: Float32Array; success: number } | undefined;
  let regBest = Infinity;
  let earlyStopRegBest = Infinity;
  let earlyStopCounter = 0;
  let upCounter = 0;
  let downCounter = 0;
  let upFlag = false;
  let downFlag = false;
  let last = { success: 0 };
  let epochsRun = 0;
  let earlyStopped = false;
  const l1ByEpoch: number[] = [];
  try {
    for (let epoch = 0; epoch < s.epochs; epoch++) {
      const rng = new Rng(mixSeed(a.seed, a.target, epoch));
      const order = rng.permutation(data.count);
      let successSum = 0;
      let regSum = 0;
      for (let b = 0; b < batches; b++) {
        if (a.signal?.aborted) throw new RunCancelledError();
        const idx = order.subarray(b * s.batchSize, Math.min((b + 1) * s.batchSize, data.count));
        const view = buf.subarray(0, idx.length * h * w * c);
        const xs = s.augment ? augmentBatch(data, idx, rng, view, { flip: s.augment.flip, cutoutHoles: 0 }) : toFloatBatch(data, idx, view);
        const r = triggerStep({
          model: a.model,
          trigger,
          xs,
          count: idx.length,
          imageShape: [h, w, c],
          target: a.target,
          numClasses: data.numClasses,
          cost,
          lr: s.lr,
        });
        // nc.py averages the batches' accuracies (percent) and regularisations, unweighted.
        successSum += (100 * r.hits) / idx.length;
        regSum += r.reg;
        a.onStep?.(epoch, b, batches, r.loss);
        await yieldToEventLoop();
      }
      epochsRun = epoch + 1;
      const success = successSum / batches;
      const reg = regSum / batches;
      last = { success };
      if (success >= s.attackSuccThreshold && reg < regBest) {
        best = { ...trigger.read(), success };
        regBest = reg;
      }
      l1ByEpoch.push(best ? sum(best.mask) : Infinity);
      a.onEpoch?.({ epoch, success, reg, cost, bestL1: l1ByEpoch[epoch] });
      // Early stop: only once a trigger reaching the threshold exists.
      if (regBest < Infinity) {
        if (regBest >= EARLY_STOP_THRESHOLD * earlyStopRegBest) earlyStopCounter++;
        else earlyStopCounter = 0;
      }
      earlyStopRegBest = Math.min(earlyStopRegBest, regBest);
      if (downFlag && upFlag && earlyStopCounter >= s.earlyStopPatience) {
        earlyStopped = true;
        break;
      }
      // The cost never reaches 0 here (nc.py starts at init_cost), so its cost_set_counter never acts.
      if (success >= s.attackSuccThreshold) {
        upCounter++;
        downCounter = 0;
      } else {
        upCounter = 0;
        downCounter++;
      }
      if (upCounter >= s.patience) {
        upCounter = 0;
        cost *= s.costMultiplier;
        upFlag = true;
      } else if (downCounter >= s.patience) {
        downCounter = 0;
        cost /= s.costMultiplier ** 1.5;
        downFlag = true;
      }
    }
    const kept = best ?? { ...trigger.read(), success: last.success };
    const l1 = sum(kept.mask);
    return {
      target: a.target,
      mask: kept.mask,
      pattern: kept.pattern,
      l1,
      reached: best !== undefined,
      success: kept.success,
      epochsRun,
      earlyStopped,
      finalCost: cost,
      seconds: (performance.now() - t0) / 1000,
      l1ByEpoch,
    };
  } finally {
    trigger.dispose();
  }
}

/** numpy's median: the mean of the two middle values for an even count. */
export function median(values: readonly number[]): number {
  const s = [...values].sort((x, y) => x - y);
  const k = s.length >> 1;
  return s.length % 2 === 1 ? s[k] : (s[k - 1] + s[k]) / 2;
}

export interface L1Statistics {
  readonly median: number;
  /** 1.4826 * median |L1 - median|. */
  readonly mad: number;
}

export function l1Statistics(l1s: readonly number[]): L1Statistics {
  const med = median(l1s);
  return { median: med, mad: MAD_CONSTANT * median(l1s.map((v) => Math.abs(v - med))) };
}

/**
 * Anomaly index of every class: |L1 - median| / (1.4826 * MAD) (mad_outlier_detection.py). With a MAD of 0
 * (half the classes or more share one L1) a class off the median gets Infinity, one on it 0.
 */
export function anomalyIndices(l1s: readonly number[]): number[] {
  const { median: med, mad } = l1Statistics(l1s);
  return l1s.map((v) => {
    const d = Math.abs(v - med);
    return mad > 0 ? d / mad : d > 0 ? Infinity : 0;
  });
}

export interface FlaggedClass {
  readonly class: number;
  readonly anomalyIndex: number;
  readonly l1: number;
}

/** Classes whose trigger is small (L1 <= median) and anomalous (index > threshold), smallest L1 first. */
export function flaggedClasses(l1s: readonly number[], threshold = 2): FlaggedClass[] {
  const med = median(l1s);
  const idx = anomalyIndices(l1s);
  return l1s
    .map((l1, k) => ({ class: k, anomalyIndex: idx[k], l1 }))
    .filter((f) => f.l1 <= med && f.anomalyIndex > threshold)
    .sort((x, y) => x.l1 - y.l1 || x.class - y.class);
}

/**
 * `ds` with the images at `indices` (all when absent) stamped with a trigger: round((1 - m) x + 255 m p),
 * per pixel and channel; mask H*W, pattern H*W*C in [0, 1]. Labels are kept. Returns a new dataset.
 */
export function stampTrigger(
  ds: ImageDataset,
  trigger: { readonly mask: ArrayLike<number>; readonly pattern: ArrayLike<number> },
  indices?: ArrayLike<number>,
): ImageDataset {
  const { height: h, width: w, channels: c } = ds;
  if (trigger.mask.length !== h * w || trigger.pattern.length !== h * w * c) {
    throw new InputError(`a ${h}x${w}x${c} image needs a ${h}x${w} mask and a ${h}x${w}x${c} pattern`);
  }
  const images = ds.images.slice(0, ds.count * h * w * c);
  const size = h * w * c;
  const stamp = (i: number): void => {
    const base = i * size;
    for (let px = 0; px < h * w; px++) {
      const m = trigger.mask[px];
      for (let ch = 0; ch < c; ch++) {
        const j = base + px * c + ch;
        const v = Math.round((1 - m) * images[j] + 255 * m * trigger.pattern[px * c + ch]);
        images[j] = v < 0 ? 0 : v > 255 ? 255 : v;
      }
    }
  };
  if (indices) for (let k = 0; k < indices.length; k++) stamp(indices[k]);
  else for (let i = 0; i < ds.count; i++) stamp(i);
  return { ...ds, images, labels: ds.labels.slice(0, ds.count) };
}

/** nc.py's unlearning set: a seeded 1 - ratio of the clean data as is, the rest stamped once per trigger. */
export function unlearningSet(
  clean: ImageDataset,
  triggers: ReadonlyArray<{ readonly mask: ArrayLike<number>; readonly pattern: ArrayLike<number> }>,
  ratio: number,
  seed: number,
): { data: ImageDataset; stamped: number } {
  const order = new Rng(mixSeed(seed, -1, 0x756e)).permutation(clean.count);
  const keep = Math.floor(clean.count * (1 - ratio));
  const size = clean.height * clean.width * clean.channels;
  const share = order.subarray(keep);
  const parts: ImageDataset[] = [selectPart(clean, order.subarray(0, keep))];
  for (const t of triggers) parts.push(stampTrigger(selectPart(clean, share), t));
  const count = parts.reduce((n, p) => n + p.count, 0);
  const images = new Uint8Array(count * size);
  const labels = new Int32Array(count);
  let at = 0;
  for (const p of parts) {
    images.set(p.images.subarray(0, p.count * size), at * size);
    labels.set(p.labels.subarray(0, p.count), at);
    at += p.count;
  }
  return { data: { ...clean, images, labels, count }, stamped: share.length * triggers.length };
}

function selectPart(ds: ImageDataset, idx: ArrayLike<number>): ImageDataset {
  const size = ds.height * ds.width * ds.channels;
  const images = new Uint8Array(idx.length * size);
  const labels = new Int32Array(idx.length);
  for (let k = 0; k < idx.length; k++) {
    images.set(ds.images.subarray(idx[k] * size, (idx[k] + 1) * size), k * size);
    labels[k] = ds.labels[idx[k]];
  }
  return { ...ds, images, labels, count: idx.length };
}

const toBase64 = (v: Uint8Array): string => Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
const toByte = (v: number): number => Math.max(0, Math.min(255, Math.round(255 * v)));

/** Each class's mask (grey) and mask x pattern (the image's channels), flagged classes marked. */
export function triggerImages(
  triggers: readonly RecoveredTrigger[],
  shape: { height: number; width: number; channels: number },
  flagged: ReadonlySet<number>,
  className: (k: number) => string,
): FigureImage[] {
  const { height, width, channels } = shape;
  return triggers.flatMap((t) => {
    const marked = flagged.has(t.target);
    const fused = Uint8Array.from(t.pattern, (p, j) => toByte(p * t.mask[Math.floor(j / channels)]));
    return [
      {
        caption: `${className(t.target)}: mask (L1 ${t.l1.toFixed(1)})`,
        height,
        width,
        channels: 1,
        pixels: toBase64(Uint8Array.from(t.mask, toByte)),
        marked,
      },
      { caption: `${className(t.target)}: pattern x mask`, height, width, channels, pixels: toBase64(fused), marked },
    ];
  });
}

/** Reverse settings from checked parameters and the run's schedule (its augmentation, without cutout). */
export function reverseSettingsOf(params: ParamValues, training: TrainSettings): ReverseSettings {
  return {
    epochs: params['ncEpochs'] as number,
    batchSize: params['ncBatchSize'] as number,
    initCost: params['initCost'] as number,
    lr: params['maskLr'] as number,
    costMultiplier: params['costMultiplier'] as number,
    patience: params['patience'] as number,
    attackSuccThreshold: params['attackSuccThreshold'] as number,
    earlyStopPatience: params['earlyStopPatience'] as number,
    augment: training.augment ? { flip: training.hflip ?? true } : undefined,
  };
}

export interface DetectionResult {
  readonly triggers: RecoveredTrigger[];
  readonly l1: number[];
  readonly anomalyIndex: number[];
  readonly flagged: FlaggedClass[];
  readonly stats: L1Statistics;
  readonly seconds: number;
}

/**
 * Reverse-engineer every class in turn and flag the outliers. Emits the detection phase (epochs: classes x
 * epochs per class), a step event per batch with the epoch counted over all classes (a class that stops
 * early skips to the next class's first epoch, so the pace is the time per class), and one log line per class.
 */
export async function detectBackdoor(a: {
  model: Model;
  data: ImageDataset;
  settings: ReverseSettings;
  threshold: number;
  seed: number;
  emit: EventSink;
  signal?: AbortSignal;
  className: (k: number) => string;
}): Promise<DetectionResult> {
  const { data, settings, emit } = a;
  const classes = data.numClasses;
  const epochs = settings.epochs;
  const steps = Math.ceil(data.count / settings.batchSize);
  emit({
    type: 'phase',
    phase: DETECT_PHASE,
    label: `Reverse-engineering a trigger for each of ${classes} classes on ${data.count} clean images (${epochs} epochs each at most)`,
    epochs: classes * epochs,
  });
  const t0 = performance.now();
  const triggers: RecoveredTrigger[] = [];
  for (let k = 0; k < classes; k++) {
    let lastReport = 0;
    const t = await reverseEngineer({
      model: a.model,
      data,
      target: k,
      settings,
      seed: a.seed,
      signal: a.signal,
      onStep: (epoch, b, batches, loss) => {
        const now = performance.now();
        if (now - lastReport > 250 || b === batches - 1) {
          lastReport = now;
          emit({ type: 'step', phase: DETECT_PHASE, epoch: k * epochs + epoch + 1, step: b + 1, steps, loss });
        }
      },
    });
    triggers.push(t);
    const how = t.reached
      ? `success ${t.success.toFixed(1)}%`
      : `never reached ${settings.attackSuccThreshold}% (last epoch ${t.success.toFixed(1)}%), last mask kept`;
    emit({
      type: 'log',
      message: `Neural Cleanse: class ${a.className(k)}: L1 ${t.l1.toFixed(2)}, ${how}, ${t.epochsRun} epochs${t.earlyStopped ? ' (early stop)' : ''}, cost ${t.finalCost.toExponential(2)}, ${t.seconds.toFixed(1)} s`,
    });
  }
  const l1 = triggers.map((t) => t.l1);
  return {
    triggers,
    l1,
    anomalyIndex: anomalyIndices(l1),
    flagged: flaggedClasses(l1, a.threshold),
    stats: l1Statistics(l1),
    seconds: (performance.now() - t0) / 1000,
  };
}

const fmt = (v: number, digits = 2): string => (Number.isFinite(v) ? v.toFixed(digits) : String(v));

function emitFindings(emit: EventSink, d: DetectionResult, threshold: number, className: (k: number) => string): void {
  // Signed, so the bars above the threshold line are exactly the flagged classes: positive for triggers
  // smaller than the median, negative for larger ones.
  const signed = d.l1.map((l1, k) => (l1 <= d.stats.median ? d.anomalyIndex[k] : -d.anomalyIndex[k]));
  emit({
    type: 'chart',
    id: 'anomaly-index',
    title: 'Anomaly index per class (positive: trigger smaller than the median)',
    xLabel: 'class',
    yLabel: 'anomaly index',
    chart: {
      kind: 'bar',
      labels: d.l1.map((_, k) => className(k)),
      series: [{ name: 'anomaly index', values: signed.map((v) => (Number.isFinite(v) ? v : Math.sign(v) * 1e6)) }],
    },
    threshold: { value: threshold, label: `flagged above ${threshold}` },
  });
  const facts: Fact[] = [
    {
      label: 'Flagged classes',
      value: d.flagged.length
        ? d.flagged.map((f) => `${className(f.class)} (anomaly index ${fmt(f.anomalyIndex)}, L1 ${fmt(f.l1, 1)})`).join(', ')
        : 'none: no backdoor detected',
    },
    { label: 'Median L1', value: fmt(d.stats.median, 1) },
    { label: 'MAD x 1.4826', value: fmt(d.stats.mad, 2) },
    { label: 'Threshold', value: `anomaly index > ${threshold} with L1 below the median` },
  ];
  const missed = d.triggers.filter((t) => !t.reached).map((t) => className(t.target));
  if (missed.length) facts.push({ label: 'Success threshold not reached', value: missed.join(', ') });
  facts.push({ label: 'Reverse engineering', value: `${d.seconds.toFixed(0)} s` });
  emit({ type: 'facts', title: 'Neural Cleanse', facts });
}

export const neuralCleanse: Defense = {
  name: 'neural-cleanse',
  title: 'Neural Cleanse',
  description:
    'Reverse-engineer the smallest trigger for every class, flag classes whose trigger is an outlier (anomaly index > 2), and unlearn the flagged triggers.',
  needs: 'clean data (BackdoorBench: 5% of the training set)',
  citation:
    'Wang, Yao, Shan, Li, Viswanath, Zheng, Zhao: Neural Cleanse: Identifying and Mitigating Backdoor Attacks in Neural Networks, IEEE S&P 2019 (bolunwang/backdoor); defaults of BackdoorBench defense/nc.py (Wu et al., NeurIPS 2022 Datasets and Benchmarks)',
  modes: ['detect', 'repair'],
  params: [
    {
      key: 'ncEpochs',
      type: 'number',
      integer: true,
      min: 1,
      default: NC_DEFAULTS.epochs,
      label: 'Reverse-engineering epochs',
      description: 'epochs over the clean data per class, at most (BackdoorBench nc_epoch: 80)',
    },
    {
      key: 'ncBatchSize',
      type: 'number',
      integer: true,
      min: 1,
      default: NC_DEFAULTS.batchSize,
      label: 'Batch size',
      description: "images per step of the trigger's optimisation (BackdoorBench: 256; the authors: 32)",
    },
    {
      key: 'initCost',
      type: 'number',
      min: 0,
      default: NC_DEFAULTS.initCost,
      label: 'Initial cost',
      description: "initial weight of the mask's L1 norm in the loss (both codes: 1e-3)",
    },
    {
      key: 'maskLr',
      type: 'number',
      min: 0,
      default: NC_DEFAULTS.lr,
      label: 'Learning rate',
      description: "Adam's learning rate for the mask and pattern, betas (0.5, 0.9) (both codes: 0.1)",
    },
    {
      key: 'costMultiplier',
      type: 'number',
      min: 1,
      default: NC_DEFAULTS.costMultiplier,
      label: 'Cost multiplier',
      description:
        'the cost is multiplied by this after `patience` successful epochs, divided by its 1.5th power after as many failed ones (BackdoorBench: 2)',
    },
    {
      key: 'patience',
      type: 'number',
      integer: true,
      min: 1,
      default: NC_DEFAULTS.patience,
      label: 'Cost patience',
      description: 'epochs in a row above (below) the success threshold before the cost goes up (down) (BackdoorBench: 5)',
    },
    {
      key: 'attackSuccThreshold',
      type: 'number',
      min: 0,
      max: 100,
      default: NC_DEFAULTS.attackSuccThreshold,
      label: 'Attack success threshold (%)',
      description: 'a trigger counts when this share of the stamped clean images goes to its class (BackdoorBench: 98; the authors: 99)',
    },
    {
      key: 'earlyStopPatience',
      type: 'number',
      integer: true,
      min: 1,
      default: NC_DEFAULTS.earlyStopPatience,
      label: 'Early-stop patience',
      description:
        'stop a class after this many epochs without a 1% smaller successful mask, once the cost went up and down (BackdoorBench: 25)',
    },
    {
      key: 'anomalyThreshold',
      type: 'number',
      min: 0,
      default: 2,
      label: 'Anomaly index threshold',
      description: 'a class is flagged when its anomaly index exceeds this and its trigger is below the median (the paper: 2)',
    },
    {
      key: 'unlearningRatio',
      type: 'number',
      min: 0,
      max: 1,
      default: 0.2,
      label: 'Unlearning share',
      description:
        'share of the clean data stamped with the recovered trigger, true labels kept, for unlearning (the paper and BackdoorBench: 0.2)',
    },
  ],
  training: FINETUNE_TRAINING,
  phases: (params, training, mode) => [
    // Per class: the run's own phase event gives classes x ncEpochs (the class count comes from the data).
    { phase: DETECT_PHASE, epochs: params['ncEpochs'] as number },
    ...(mode === 'repair' ? [{ phase: UNLEARN_PHASE, epochs: training.epochs }] : []),
  ],
  async run(input) {
    const { params, test, emit, clean } = input;
    const threshold = params['anomalyThreshold'] as number;
    const ratio = params['unlearningRatio'] as number;
    if (clean.numClasses < 3) {
      throw new InputError(
        `Neural Cleanse compares the triggers of all classes: it needs at least 3 classes, the data has ${clean.numClasses}`,
      );
    }
    if (clean.count < 2) throw new InputError(`Neural Cleanse needs clean images to reverse-engineer triggers on; got ${clean.count}`);
    if (input.mode === 'repair' && !(ratio > 0 && ratio < 1)) {
      throw new InputError(`unlearningRatio must be between 0 and 1 (exclusive) to unlearn, got ${ratio}`);
    }
    const className = (k: number): string => clean.classNames?.[k] ?? String(k);
    const backdoored = input.suspect();
    const rows: ResultRow[] = [{ model: 'backdoored', ...evaluate(backdoored, test) }];
    emit({ type: 'table', rows: [...rows] });

    const detection = await detectBackdoor({
      model: backdoored,
      data: clean,
      settings: reverseSettingsOf(params, input.training),
      threshold,
      seed: input.seed,
      emit,
      signal: input.signal,
      className,
    });
    const flaggedSet = new Set(detection.flagged.map((f) => f.class));
    emitFindings(emit, detection, threshold, className);
    emit({
      type: 'images',
      id: 'triggers',
      title: 'Recovered triggers (flagged classes outlined)',
      images: triggerImages(detection.triggers, clean, flaggedSet, className),
    });
    const report = {
      l1: detection.l1,
      anomalyIndex: detection.anomalyIndex,
      flagged: detection.flagged,
      median: detection.stats.median,
      mad: detection.stats.mad,
      reached: detection.triggers.map((t) => t.reached),
      epochsRun: detection.triggers.map((t) => t.epochsRun),
      secondsPerClass: detection.triggers.map((t) => Math.round(t.seconds * 10) / 10),
      // Best L1 after each epoch (null before the threshold was reached): what fewer epochs would have found.
      l1ByEpoch: detection.triggers.map((t) => t.l1ByEpoch.map((v) => (Number.isFinite(v) ? Math.round(v * 1000) / 1000 : null))),
      detectionSeconds: detection.seconds,
      threshold,
    };
    if (input.mode === 'detect') {
      return { rows, report, attention: [['backdoored', backdoored]] };
    }

    if (detection.flagged.length === 0) {
      emit({ type: 'log', message: 'Neural Cleanse: no class flagged, so nothing to unlearn: the model is returned unchanged' });
      rows.push({ ...rows[0], model: 'nc-unchanged' });
      emit({ type: 'table', rows: [...rows] });
      return { model: backdoored, rows, report: { ...report, unlearned: false }, attention: [['backdoored', backdoored]] };
    }
    const used = detection.flagged.map((f) => detection.triggers[f.class]);
    const { data, stamped } = unlearningSet(clean, used, ratio, input.seed);
    emit({
      type: 'log',
      message: `Neural Cleanse: unlearning the trigger of class ${used.map((t) => className(t.target)).join(', ')} on ${data.count} images (${stamped} stamped, true labels kept)`,
    });
    const model = input.suspect();
    const r = await input.trainPhase({
      student: model,
      data,
      settings: input.training,
      phase: UNLEARN_PHASE,
      label: `Unlearning the recovered trigger on ${data.count} images (${stamped} stamped)`,
      output: 'model',
      attentionAs: 'nc-unlearned',
    });
    rows.push({ model: 'nc-unlearned', ...r });
    emit({ type: 'table', rows: [...rows] });
    return {
      model,
      rows,
      report: { ...report, unlearned: true, unlearnedClasses: used.map((t) => t.target), unlearningImages: data.count, stamped },
      attention: [
        ['backdoored', backdoored],
        ['nc-unlearned', model],
      ],
    };
  },
};
