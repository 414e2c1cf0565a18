// Fine-Pruning (Liu, Dolan-Gavitt, Garg: "Fine-Pruning: Defending Against Backdooring Attacks on Deep
// Neural Networks", RAID 2018), with the defaults of BackdoorBench's defense/fp.py (SCLBD/BackdoorBench):
// rank the channels of the last convolutional layer by their mean activation over the defender's clean
// images (evaluation mode), prune the most dormant ones first, one step at a time, and keep the last
// pruning whose clean accuracy is within `maxAccDrop` (relative) of the unpruned model's: fp.py keeps a
// step while |acc - acc0| / acc0 < acc_ratio (0.1) and stops at the first that is not; we count only a
// drop, and decide on the defender's clean data where fp.py looks at the clean test set. Then finetune.
//
// The pruned unit is a channel of the features the classifier reads, which is what fp.py hooks and cuts
// (the input of the last linear layer; its older version cut layer4's last conv2 together with the
// shortcut's channel, `ind`, and the linear layer's column):
//  - WRN (NAD's WideResNet): the last block's conv2 output plus its shortcut, through the final bn1 and
//    ReLU: relu(bn1(block3 output)), pooled into `fc`. Zeroing conv2's filter alone would leave the
//    channel flowing through the shortcut.
//  - CNN: conv3's output channels after bn3 and ReLU, flattened into `fc`.
//  - VGG-16-BN: the last convolution features.40 through features.41 and ReLU, max-pooled into `classifier`.
//  - PreAct-ResNet-18 and ResNet-18: their classifier reads layer4's residual sum with the identity
//    shortcut (pooled), which no batch norm's scale and shift can zero. As fp.py does (a
//    torch.nn.utils.prune mask on the linear layer, kept through finetuning), the pruned channels' columns
//    of `linear.weight` are set to 0 and set back to 0 after every finetuning step (`holdPruned`, the
//    phase's afterStep): the forward pass always sees weight * mask, as under torch's mask, and every other
//    weight gets the same update (SGD is per entry), so the effective weights are fp.py's. The channel
//    itself still computes; only the classifier stops reading it. Checked against torch's
//    prune.custom_from_mask and two SGD steps (test/fixtures/defenses/make_fine_pruning_resnet_fixture.py).
//    fp.py prunes seq_sort[0:num_pruned - 1] at step num_pruned (one fewer than it logs); we prune k at k.
// The layers come from the model's structure (structureOf in src/engine/models/structure.ts).
// Elsewhere, pruning a channel sets its batch norm's scale and shift to 0 (its ReLU'd activation is then exactly 0
// for any input, in training and evaluation mode) and the classifier weights that read it to 0. No mask
// lives outside the weights, so the state dict saved after each epoch is the pruned model as it is, for
// any loader. It stays exact under SGD with momentum, Nesterov and weight decay: the ReLU passes no
// gradient where its output is 0 (every kernel masks by y > 0), so those scales and shifts get a zero
// gradient, and the classifier rows get (feature = 0) x (dlogits) = 0; then g = 0 + wd * 0 = 0, the
// momentum buffer (zero at the start of the phase) stays 0, and p - lr * 0 = p = 0.
// The accuracy at each step comes from the classifier inputs computed once per image set, with the
// pruned channels' entries set to 0 - exactly the pruned model's inputs (checked in the tests): the
// whole curve of WRN-16-1 on 2,500 + 1,329 images takes ~5 s, where a forward pass per step would take minutes.
import * as tf from '@tensorflow/tfjs-core';
import { toFloatBatch } from '../data/augment';
import { EVAL_BATCH, evaluate, type EvalSets } from '../evaluate';
import { describeSpec, structureOf, type ForwardResult, type Model } from '../models';
import { FINETUNE_TRAINING } from '../schedules';
import { RunCancelledError } from '../train';
import { InputError, type ImageDataset } from '../types';
import type { SeriesPoint } from '../../shared/run-events';
import type { Defense } from './types';

/** Where a model is pruned, and how to read the activations that rank its channels. */
export interface PruneTarget {
  /** The last convolutional layer (state-dict name), for messages and the report. */
  readonly layer: string;
  /**
   * The batch norm whose ReLU'd output is the channel's activation; pruning zeroes its scale and shift.
   * None (the ResNets): only the classifier's columns are zeroed, and `holdPruned` keeps them 0 while training.
   */
  readonly bn: string | undefined;
  /** The linear classifier reading the channels (state-dict prefix). */
  readonly classifier: string;
  readonly channels: number;
  /** Classifier inputs per channel: 1 (WRN pools), H*W (the CNN flattens, channel-major as PyTorch). */
  readonly positions: number;
  /** The classifier's input [n, channels * positions] from the forward pass (evaluation mode). */
  features(out: ForwardResult): tf.Tensor2D;
}

export function pruneTarget(model: Model): PruneTarget {
  const shapes = model.params.torchShapes();
  const name = describeSpec(model.spec);
  if (![...shapes.values()].some((s) => s.length === 4)) {
    throw new InputError(`${name} has no convolutional layer: Fine-Pruning prunes the channels of the last one`);
  }
  const { classifier, lastConv } = structureOf(model.spec);
  const layer = lastConv.conv;
  const bn = 'bn' in lastConv ? lastConv.bn : undefined;
  const conv = shapes.get(`${layer}.weight`);
  const scale = bn === undefined ? conv : shapes.get(`${bn}.weight`);
  const fc = shapes.get(`${classifier}.weight`);
  if (!conv || !scale || !fc || scale[0] !== conv[0] || fc[1] % conv[0] !== 0) {
    throw new InputError(
      `${name}: expected its last convolutional layer ${layer}${bn ? `, batch norm ${bn}` : ''} and classifier ${classifier} to match; Fine-Pruning cannot prune this model`,
    );
  }
  const channels = conv[0];
  return { layer, bn, classifier, channels, positions: fc[1] / channels, features: (out) => out.features };
}

/** Classifier inputs of every image, row-major [count, width]. */
interface Features {
  readonly data: Float32Array;
  readonly count: number;
  readonly width: number;
}

function featuresOf(model: Model, target: PruneTarget, ds: ImageDataset, signal?: AbortSignal): Features {
  const width = target.channels * target.positions;
  const data = new Float32Array(ds.count * width);
  const size = ds.height * ds.width * ds.channels;
  const buf = new Float32Array(EVAL_BATCH * size);
  for (let start = 0; start < ds.count; start += EVAL_BATCH) {
    if (signal?.aborted) throw new RunCancelledError();
    const n = Math.min(EVAL_BATCH, ds.count - start);
    const x = toFloatBatch(
      ds,
      Int32Array.from({ length: n }, (_, i) => start + i),
      buf.subarray(0, n * size),
    );
    const f = tf.tidy(() => target.features(model.forward(tf.tensor4d(x, [n, ds.height, ds.width, ds.channels]), false)));
    data.set(f.dataSync(), start * width);
    f.dispose();
  }
  return { data, count: ds.count, width };
}

/** Mean activation of each channel over all images and positions (float64 sums). */
function channelMeans(target: PruneTarget, { data, count, width }: Features): Float64Array {
  const sums = new Float64Array(target.channels);
  for (let i = 0; i < count; i++) for (let j = 0; j < width; j++) sums[Math.floor(j / target.positions)] += data[i * width + j];
  return sums.map((s) => s / (count * target.positions));
}

/** Mean activation of each channel of the pruned layer over the images of `ds`, in evaluation mode. */
export function meanActivations(model: Model, ds: ImageDataset, signal?: AbortSignal): Float64Array {
  const target = pruneTarget(model);
  return channelMeans(target, featuresOf(model, target, ds, signal));
}

/** Channels from the most dormant (lowest mean activation) up; ties keep channel order. */
export function pruningOrder(means: ArrayLike<number>): number[] {
  return Array.from({ length: means.length }, (_, c) => c).sort((a, b) => means[a] - means[b] || a - b);
}

/** Percent of images the classifier gets right from their features with `pruned` channels zeroed. */
function maskedAccuracy(model: Model, target: PruneTarget, feats: Features, labels: Int32Array, pruned: readonly number[]): number {
  if (feats.count === 0) return NaN;
  const keep = new Float32Array(feats.width).fill(1);
  for (const c of pruned) keep.fill(0, c * target.positions, (c + 1) * target.positions);
  let correct = 0;
  for (let start = 0; start < feats.count; start += EVAL_BATCH) {
    const n = Math.min(EVAL_BATCH, feats.count - start);
    const pred = tf.tidy(() => {
      const x = tf.mul(
        tf.tensor2d(feats.data.subarray(start * feats.width, (start + n) * feats.width), [n, feats.width]),
        tf.tensor1d(keep),
      );
      const w = model.params.get(`${target.classifier}.weight`) as tf.Tensor2D;
      return tf.argMax(tf.add(tf.matMul(x, w), model.params.get(`${target.classifier}.bias`)), 1);
    });
    const p = pred.dataSync();
    pred.dispose();
    for (let i = 0; i < n; i++) if (p[i] === labels[start + i]) correct++;
  }
  return (100 * correct) / feats.count;
}

/** Prune `channels` in place: zero their batch norm's scale and shift (where the target has one) and the classifier weights reading them. */
export function pruneChannels(model: Model, target: PruneTarget, channels: readonly number[]): void {
  const keepChannel = new Float32Array(target.channels).fill(1);
  for (const c of channels) keepChannel[c] = 0;
  const keepRow = Float32Array.from(
    { length: target.channels * target.positions },
    (_, j) => keepChannel[Math.floor(j / target.positions)],
  );
  const zeroWhere = (name: string, keep: tf.Tensor): void => {
    const v = model.params.get(name);
    // where(), not a multiply: exact +0, whatever the weight's sign.
    tf.tidy(() => v.assign(tf.where(tf.cast(keep, 'bool'), v, tf.zerosLike(v))));
  };
  tf.tidy(() => {
    if (target.bn !== undefined) {
      const perChannel = tf.tensor1d(keepChannel);
      zeroWhere(`${target.bn}.weight`, perChannel);
      zeroWhere(`${target.bn}.bias`, perChannel);
    }
    zeroWhere(`${target.classifier}.weight`, tf.tensor2d(keepRow, [keepRow.length, 1]));
  });
}

/**
 * What keeps `channels` pruned while the model trains, called after every optimiser step: nothing where
 * the batch norm's zeros hold by themselves; for a classifier-columns target (the ResNets), the columns set
 * back to 0 (fp.py's prune mask).
 */
export function holdPruned(model: Model, target: PruneTarget, channels: readonly number[]): (() => void) | undefined {
  if (target.bn !== undefined || channels.length === 0) return undefined;
  const cut = [...channels];
  return () => pruneChannels(model, target, cut);
}

/** The values of the pruned channels' parameters that are not exactly 0 (none, if pruning held). */
export function prunedNonZeros(model: Model, target: PruneTarget, channels: readonly number[]): number {
  let count = 0;
  const none = new Float32Array(target.channels);
  const gamma = target.bn === undefined ? none : model.params.get(`${target.bn}.weight`).dataSync();
  const beta = target.bn === undefined ? none : model.params.get(`${target.bn}.bias`).dataSync();
  const fc = model.params.get(`${target.classifier}.weight`);
  const w = fc.dataSync();
  const classes = fc.shape[1] as number;
  for (const c of channels) {
    if (gamma[c] !== 0) count++;
    if (beta[c] !== 0) count++;
    for (let j = c * target.positions * classes; j < (c + 1) * target.positions * classes; j++) if (w[j] !== 0) count++;
  }
  return count;
}

export interface PruningPlan {
  /** Channels from the most dormant up. */
  readonly order: number[];
  /** How many of `order` to prune. */
  readonly pruned: number;
  readonly cleanAccBefore: number;
  readonly cleanAccAfter: number;
  /** ACC/ASR on the test sets at every step, for display. */
  readonly curve: SeriesPoint[];
}

/**
 * Rank the channels on the clean data and choose how many to prune: steps of `step` channels, stopping
 * at the first step whose clean accuracy fell by maxAccDrop (relative) or more; the curve runs to the end.
 */
export function planPruning(
  model: Model,
  clean: ImageDataset,
  test: EvalSets,
  opts: { maxAccDrop: number; step: number; signal?: AbortSignal },
): PruningPlan {
  const target = pruneTarget(model);
  if (opts.step >= target.channels)
    throw new InputError(`step must be less than the number of channels of ${target.layer} (${target.channels}), got ${opts.step}`);
  const cleanFeats = featuresOf(model, target, clean, opts.signal);
  const testFeats = featuresOf(model, target, test.clean, opts.signal);
  const bdFeats = test.backdoor ? featuresOf(model, target, test.backdoor, opts.signal) : undefined;
  const order = pruningOrder(channelMeans(target, cleanFeats));
  const acc0 = maskedAccuracy(model, target, cleanFeats, clean.labels, []);
  let pruned = 0;
  let cleanAccAfter = acc0;
  let stopped = false;
  const curve: SeriesPoint[] = [];
  for (let k = 0; k < target.channels; k += opts.step) {
    const cut = order.slice(0, k);
    curve.push({
      x: k,
      acc: maskedAccuracy(model, target, testFeats, test.clean.labels, cut),
      asr: bdFeats && test.backdoor ? maskedAccuracy(model, target, bdFeats, test.backdoor.labels, cut) : NaN,
    });
    if (stopped || k === 0) continue;
    const acc = maskedAccuracy(model, target, cleanFeats, clean.labels, cut);
    if (acc0 > 0 && (acc0 - acc) / acc0 < opts.maxAccDrop) {
      pruned = k;
      cleanAccAfter = acc;
    } else stopped = true;
  }
  return { order, pruned, cleanAccBefore: acc0, cleanAccAfter, curve };
}

export const finePruning: Defense = {
  name: 'fine-pruning',
  title: 'Fine-Pruning',
  description: "Prune the last convolutional layer's most dormant channels on clean data while clean accuracy holds, then finetune.",
  needs: 'clean data (BackdoorBench: 5% of the training set)',
  citation:
    'Liu, Dolan-Gavitt, Garg: Fine-Pruning: Defending Against Backdooring Attacks on Deep Neural Networks, RAID 2018; defaults of BackdoorBench defense/fp.py (Wu et al., NeurIPS 2022 Datasets and Benchmarks)',
  modes: ['repair'],
  params: [
    {
      key: 'maxAccDrop',
      type: 'number',
      min: 0,
      max: 1,
      default: 0.1,
      label: 'Largest clean-accuracy drop',
      description: "prune while the clean accuracy stays within this fraction of the unpruned model's (BackdoorBench acc_ratio: 0.1)",
    },
    {
      key: 'step',
      type: 'number',
      integer: true,
      min: 1,
      default: 1,
      label: 'Channels per step',
      description: "channels pruned between two accuracy checks (BackdoorBench: 1% of the channels, rounded up: 1 for WRN-16-1's 64)",
    },
  ],
  training: FINETUNE_TRAINING,
  phases: (_params, training) => [{ phase: 'finetune', epochs: training.epochs }],
  async run(input) {
    const { test, emit } = input;
    const backdoored = input.suspect();
    const target = pruneTarget(backdoored);
    const rows = [{ model: 'backdoored', ...evaluate(backdoored, test, input.memo) }];
    emit({ type: 'table', rows: [...rows] });
    const t0 = performance.now();
    const plan = planPruning(backdoored, input.clean, test, {
      maxAccDrop: input.params['maxAccDrop'] as number,
      step: input.params['step'] as number,
      signal: input.signal,
    });
    emit({ type: 'series', id: 'pruning', title: 'Pruning curve', xLabel: 'channels pruned', points: plan.curve });
    const cut = plan.order.slice(0, plan.pruned);
    const seconds = ((performance.now() - t0) / 1000).toFixed(1);
    emit({
      type: 'log',
      message: `pruned ${plan.pruned} of ${target.channels} channels of ${target.layer}: clean accuracy ${plan.cleanAccBefore.toFixed(2)}% -> ${plan.cleanAccAfter.toFixed(2)}% (${seconds} s)`,
    });

    const model = input.suspect();
    pruneChannels(model, target, cut);
    rows.push({ model: 'pruned', ...evaluate(model, test, input.memo) });
    emit({ type: 'table', rows: [...rows] });
    const r = await input.trainPhase({
      student: model,
      data: input.clean,
      settings: input.training,
      phase: 'finetune',
      label: `Finetuning the pruned model on ${input.clean.count} clean images`,
      output: 'model',
      attentionAs: 'fine-pruned',
      afterStep: holdPruned(model, target, cut),
    });
    const left = prunedNonZeros(model, target, cut);
    if (left > 0) throw new Error(`fine-pruning: ${left} pruned weights of ${target.layer} became non-zero during finetuning`);
    rows.push({ model: 'fine-pruned', ...r });
    emit({ type: 'table', rows: [...rows] });
    return {
      model,
      rows,
      report: {
        layer: target.layer,
        prunedChannels: plan.pruned,
        totalChannels: target.channels,
        pruneOrder: plan.order,
        cleanAccBefore: plan.cleanAccBefore,
        cleanAccAfterPruning: plan.cleanAccAfter,
      },
      attention: [
        ['backdoored', backdoored],
        ['fine-pruned', model],
      ],
    };
  },
};
