// Neural Cleanse, step 1: reverse-engineer the smallest trigger that sends the clean data to one class
// (nc.py's train_mask; the method and its sources are described in ./index.ts).
//
// Input gradients: the models' evaluation-mode forward pass fuses batch norm, ReLU and the 3x3 convolution
// of the WideResNet into one wasm kernel (ParamSet.bnReluConv3x3 -> ops.bnReluConv3x3Eval ->
// NadConv3x3Winograd) that has no gradient: tf.grad through model.forward(x, false) fails with "gradient
// function not found for NadConv3x3Winograd". `differentiableLogits` (models/index.ts) therefore runs the WideResNet's
// evaluation-mode forward pass from the separate differentiable ops (applyBatchNorm in evaluation mode,
// whose backward gives dx, and conv2d, whose input gradient is a forward convolution); the CNN's forward
// pass is already made of those. Same logits (checked in the tests).
import * as tf from '@tensorflow/tfjs-core';
import { yieldToEventLoop } from '../../evaluate';
import { augmentBatch, toFloatBatch } from '../../data/augment';
import { differentiableLogits, type Model } from '../../models';
import { Rng } from '../../rng';
import { RunCancelledError } from '../../train';
import { Adam } from '../../optim';
import { type ImageDataset } from '../../types';

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

export function mixSeed(seed: number, a: number, b: number): number {
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
