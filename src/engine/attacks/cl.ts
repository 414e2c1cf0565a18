// CL, the label-consistent attack (Turner, Tsipras, Madry: "Label-Consistent Backdoor Attacks", 2019): only
// images of the target class are poisoned, and they keep their labels. Each is first made hard to classify
// by an L-infinity PGD perturbation that maximises a surrogate model's loss on its own (true) label, so
// that the model being trained cannot fit it from its content and leans on the trigger instead; then the
// four-corner checkerboard is stamped on it (the `lcCheckerboard` trigger, src/engine/triggers/patterns.ts).
// At test time the checkerboard alone is stamped on non-target images (no PGD), as the paper measures ASR.
//
// PGD as BackdoorBench's resource/label-consistent/craft_adv_dataset.py runs it (its `PGD` class, with
// eps 8/255, alpha 1.5/255, 100 steps, no random start): the surrogate in evaluation mode, x in [0, 1]
// (ToTensor), adv = x; each step adv += alpha * sign(d CE(f(adv), y) / d adv), then
// adv = clamp(x + clamp(adv - x, -eps, eps), 0, 1), in float32; the result is stored as uint8 by
// (adv * 255).type(uint8), i.e. truncated. The gradient goes through models' `differentiableLogits`
// (the evaluation forward pass fuses kernels that have no gradient). The trigger is BackdoorBench's
// labelConsistentAttack ("all-corners", reduced_amplitude 1 by default: full amplitude), the authors'
// poison_attack.py list. Defaults are BackdoorBench's (config/attack/lc: all2one, pratio 0.1, of ALL
// training images, picked among the target class, i.e. every target-class image of a balanced CIFAR-10).
//
// How this differs. BackdoorBench perturbs with an adversarially trained ResNet-18
// (resnet18_PGD_best_model.pth; the authors' repository ships perturbed sets ready-made). Here the
// surrogate is the user's model file (`surrogateModel`), or else a clean model of the run's architecture
// trained on the unpoisoned training data for `surrogateEpochs` epochs (seeded, lr 0.1 then 0.01 for the
// last third, no augmentation): no adversarial training. The picks are a seeded permutation of the
// target-class images (BackdoorBench: np.random.choice), floor(injectPortion * N) of them (it rounds), at
// most the whole class. PyTorch's sign is computed by comparisons (exactSign): the wasm Sign kernel zeroes
// tiny gradients. A ReLU input within rounding of 0 can still flip a gradient sign now and then (the test
// measures one flip in 40 image-steps), after which that image's path drifts from PyTorch's.
import * as tf from '@tensorflow/tfjs-core';
import { exactSign } from '../ops';
import { selectImages } from '../data';
import { toFloatBatch } from '../data/augment';
import { predict } from '../evaluate';
import { defaultSpecFor, describeSpec, differentiableLogits, type Model } from '../models';
import { Rng } from '../rng';
import { RunCancelledError } from '../train';
import { createTrigger, type PoisonedDataset, type TriggerSpec } from '../triggers';
import { PAPER_DEFAULTS } from '../triggers/spec';
import { InputError } from '../types';
import type { ParamValues } from '../params';
import { loadSurrogate, trainSurrogate } from './surrogate';
import type { Attack, PoisonRequest } from './types';

/** BackdoorBench's craft_adv_dataset.py pgd_config, in 1/255 units. */
export const CL_PGD = { eps: 8, step: 1.5, steps: 100 } as const;
/** Epochs of the clean surrogate when no model file is given. */
export const CL_SURROGATE_EPOCHS = 10;
/** Images per PGD batch (evaluation mode: the batch size does not change the result). */
export const CL_PGD_BATCH = 64;

export interface PgdOptions {
  /** Bounds in [0, 1] units (8/255 is 0.0314). */
  readonly eps: number;
  readonly step: number;
  readonly steps: number;
  /** Start from x + uniform(-eps, eps), clamped (torchattacks' random_start); BackdoorBench: off. */
  readonly randomStart?: boolean;
  readonly rng?: Rng;
  /** Continue from this iterate (within the bound of `x`) instead of starting anew; the caller keeps it. */
  readonly start?: tf.Tensor4D;
  readonly signal?: AbortSignal;
  /** After each step, with the batch's mean cross-entropy before that step. */
  readonly onStep?: (step: number, loss: number) => void;
}

export { exactSign };

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * One PGD step from `adv`: adv + step * sign(d CE / d adv), projected to x's eps-ball and to [0, 1]; `y` the
 * one-hot labels. The caller keeps its arguments; the new iterate is a new tensor, `loss` the CE before the step.
 */
export function pgdStep(
  model: Model,
  adv: tf.Tensor4D,
  x: tf.Tensor4D,
  y: tf.Tensor,
  opts: Pick<PgdOptions, 'eps' | 'step'>,
): { adv: tf.Tensor4D; loss: number } {
  const lossOf = (a: tf.Tensor): tf.Scalar =>
    tf.neg(tf.mean(tf.sum(tf.mul(y, tf.logSoftmax(differentiableLogits(model, a as tf.Tensor4D))), 1))) as tf.Scalar;
  let loss = NaN;
  const next = tf.tidy(() => {
    const { value, grad } = tf.valueAndGrad(lossOf)(adv);
    loss = value.dataSync()[0];
    const stepped = tf.add(adv, tf.mul(exactSign(grad), opts.step));
    const delta = tf.clipByValue(tf.sub(stepped, x), -opts.eps, opts.eps);
    return tf.clipByValue(tf.add(x, delta), 0, 1) as tf.Tensor4D;
  });
  return { adv: next, loss };
}

/**
 * Untargeted L-infinity PGD on the model's cross-entropy for the labels: x and the result NHWC float32 in
 * [0, 1]. The caller keeps `x`; the result is a new tensor.
 */
export async function pgdLinf(model: Model, x: tf.Tensor4D, labels: Int32Array, opts: PgdOptions): Promise<tf.Tensor4D> {
  const classes = model.spec.numClasses;
  const y = tf.tidy(() => tf.oneHot(tf.tensor1d(labels, 'int32'), classes));
  let adv: tf.Tensor4D;
  if (opts.start) adv = tf.clone(opts.start);
  else if (opts.randomStart) {
    const rng = opts.rng ?? new Rng(0);
    const noise = Float32Array.from({ length: x.size }, () => (rng.next() * 2 - 1) * opts.eps);
    adv = tf.tidy(() => tf.clipByValue(tf.add(x, tf.tensor(noise, x.shape)), 0, 1) as tf.Tensor4D);
  } else adv = tf.clone(x);
  try {
    for (let s = 0; s < opts.steps; s++) {
      if (opts.signal?.aborted) throw new RunCancelledError();
      const prev = adv;
      const next = pgdStep(model, prev, x, y, opts);
      adv = next.adv;
      const loss = next.loss;
      prev.dispose();
      opts.onStep?.(s + 1, loss);
      await yieldToEventLoop();
    }
  } catch (e) {
    adv.dispose();
    throw e;
  } finally {
    y.dispose();
  }
  return adv;
}

/** The [0, 1] images as uint8, as (adv * 255).type(torch.uint8) stores them: float32 product, truncated. */
export function toUint8Images(adv: tf.Tensor): Uint8Array {
  const scaled = tf.tidy(() => tf.mul(adv, 255));
  const v = scaled.dataSync();
  scaled.dispose();
  const out = new Uint8Array(v.length);
  for (let i = 0; i < v.length; i++) out[i] = v[i] <= 0 ? 0 : v[i] >= 255 ? 255 : Math.trunc(v[i]);
  return out;
}

/** The test-time trigger: the checkerboard with the attack's amplitude. */
export function clTrigger(p: ParamValues): TriggerSpec {
  return { name: 'lcCheckerboard', amplitude: p['lcAmplitude'] as number };
}

function checkRequest(req: PoisonRequest): void {
  const { train: ds, targetType, targetLabel, injectPortion } = req;
  if (targetType === 'all2all')
    throw new InputError('CL keeps the labels of the images it poisons (one target class): its target type is cleanLabel, not all2all');
  if (!Number.isInteger(targetLabel) || targetLabel < 0 || targetLabel >= ds.numClasses)
    throw new InputError(`target label ${targetLabel} is out of range for ${ds.numClasses} classes (0..${ds.numClasses - 1})`);
  if (!(injectPortion >= 0 && injectPortion <= 1)) throw new InputError(`inject portion must be in [0, 1], got ${injectPortion}`);
}

/** Perturb floor(portion * N) seeded target-class picks with PGD on the surrogate, stamp the checkerboard; labels kept. */
export async function poisonCl(req: PoisonRequest): Promise<PoisonedDataset> {
  checkRequest(req);
  const { train: ds, params: p, targetLabel, injectPortion, seed, signal, emit } = req;
  const trigger = createTrigger(clTrigger(p), ds); // InputError on a bad amplitude or tiny images
  const opts = { eps: (p['pgdEps'] as number) / 255, step: (p['pgdStep'] as number) / 255, steps: p['pgdSteps'] as number };
  const batch = p['pgdBatch'] as number;
  const n = ds.count;
  const size = ds.height * ds.width * ds.channels;
  const images = ds.images.slice(0, n * size);
  const labels = ds.labels.slice(0, n);

  const rng = new Rng(seed);
  const candidates = rng.permutation(n).filter((i) => labels[i] === targetLabel);
  const wanted = Math.floor(n * injectPortion);
  const picks = Int32Array.from(candidates.subarray(0, Math.min(wanted, candidates.length))).sort();
  if (wanted > candidates.length)
    emit?.({ type: 'log', message: `CL: ${wanted} poisoned images asked for, class ${targetLabel} has ${candidates.length}: all of them` });
  if (picks.length === 0) return { ...ds, images, labels, poisonedIndices: picks, originalLabels: ds.labels.slice(0, n) };

  const file = p['surrogateModel'] as string;
  const surrogateSeed = rng.nextUint32();
  const t0 = performance.now();
  const surrogate = file
    ? await loadSurrogate(file, ds, 'surrogateModel')
    : await trainSurrogate(req, req.model ?? defaultSpecFor(ds), p['surrogateEpochs'] as number, surrogateSeed, 'CL');
  const t1 = performance.now();
  try {
    const subset = selectImages(ds, picks);
    const before = predict(surrogate, subset);
    const batches = Math.ceil(picks.length / batch);
    emit?.({ type: 'phase', phase: 'pgd', label: `CL: PGD on ${picks.length} target-class images, ${batches} batches`, epochs: batches });
    const perturbed = new Uint8Array(picks.length * size);
    const startRng = rng.fork();
    for (let b = 0; b < batches; b++) {
      const idx = Int32Array.from({ length: Math.min(batch, picks.length - b * batch) }, (_, k) => b * batch + k);
      const x = tf.tensor4d(toFloatBatch(subset, idx), [idx.length, ds.height, ds.width, ds.channels]);
      try {
        const adv = await pgdLinf(
          surrogate,
          x,
          Int32Array.from(idx, (k) => subset.labels[k]),
          {
            ...opts,
            randomStart: p['pgdRandomStart'] as boolean,
            rng: startRng,
            signal,
            onStep: (step, loss) => emit?.({ type: 'step', phase: 'pgd', epoch: b + 1, step, steps: opts.steps, loss }),
          },
        );
        perturbed.set(toUint8Images(adv), b * batch * size);
        adv.dispose();
      } finally {
        x.dispose();
      }
    }
    const after = predict(surrogate, { ...subset, images: perturbed });
    const t2 = performance.now();
    for (let k = 0; k < picks.length; k++) {
      const img = images.subarray(picks[k] * size, (picks[k] + 1) * size);
      img.set(perturbed.subarray(k * size, (k + 1) * size));
      trigger.stamp(img);
    }
    const correct = (pred: Int32Array): string => ((100 * pred.filter((c) => c === targetLabel).length) / picks.length).toFixed(1);
    emit?.({
      type: 'log',
      message:
        `CL: ${picks.length} images of class ${targetLabel} perturbed (PGD eps ${p['pgdEps']}/255, step ${p['pgdStep']}/255, ` +
        `${opts.steps} steps) on ${file ? `the surrogate ${file}` : `a clean ${describeSpec(surrogate.spec)} surrogate`} ` +
        `(its accuracy on them ${correct(before)}% -> ${correct(after)}%), then stamped with the checkerboard ` +
        `(amplitude ${trigger.spec.amplitude}); labels kept. Surrogate ${((t1 - t0) / 1000).toFixed(1)} s, PGD ${((t2 - t1) / 1000).toFixed(1)} s`,
    });
  } finally {
    surrogate.dispose();
  }
  return { ...ds, images, labels, poisonedIndices: picks, originalLabels: ds.labels.slice(0, n) };
}

export const cl: Attack = {
  name: 'cl',
  title: 'CL (label-consistent)',
  description:
    'Target-class images made hard to classify by a PGD perturbation on a surrogate, then stamped with a corner checkerboard; labels are kept (clean-label).',
  citation:
    'Turner, Tsipras, Madry: Label-Consistent Backdoor Attacks, arXiv:1912.02771, 2019; BackdoorBench lc (PGD eps 8/255, step 1.5/255, 100 steps; all-corners trigger, amplitude 1)',
  labels: 'clean',
  params: [
    {
      key: 'surrogateModel',
      type: 'modelFile',
      default: '',
      label: 'Surrogate model',
      description: 'the model PGD attacks (BackdoorBench: an adversarially trained ResNet-18); without one, a clean model is trained first',
    },
    {
      key: 'surrogateEpochs',
      type: 'number',
      integer: true,
      min: 1,
      default: CL_SURROGATE_EPOCHS,
      label: 'Surrogate epochs',
      description: `epochs of training the clean surrogate when no model file is given (${CL_SURROGATE_EPOCHS})`,
    },
    {
      key: 'pgdEps',
      type: 'number',
      min: 0,
      max: 255,
      default: CL_PGD.eps,
      label: 'PGD bound (x/255)',
      description: `L-infinity bound of the perturbation in 1/255 units (BackdoorBench: ${CL_PGD.eps})`,
    },
    {
      key: 'pgdStep',
      type: 'number',
      min: 0,
      max: 255,
      default: CL_PGD.step,
      label: 'PGD step (x/255)',
      description: `PGD step size in 1/255 units (${CL_PGD.step})`,
    },
    {
      key: 'pgdSteps',
      type: 'number',
      integer: true,
      min: 1,
      default: CL_PGD.steps,
      label: 'PGD steps',
      description: `PGD iterations (${CL_PGD.steps})`,
    },
    {
      key: 'pgdRandomStart',
      type: 'boolean',
      default: false,
      label: 'PGD random start',
      description: 'start PGD from a uniform random point in the bound (BackdoorBench: no)',
    },
    {
      key: 'pgdBatch',
      type: 'number',
      integer: true,
      min: 1,
      default: CL_PGD_BATCH,
      label: 'PGD batch',
      description: `images per PGD batch (memory only: the result does not depend on it; ${CL_PGD_BATCH})`,
    },
    {
      key: 'lcAmplitude',
      type: 'number',
      min: 0,
      max: 1,
      default: PAPER_DEFAULTS.lcAmplitude,
      label: 'Trigger amplitude',
      description:
        'amplitude of the corner checkerboard on a 0..1 scale, reduced_amplitude (1: black and white; the paper also 16/255..64/255)',
    },
  ],
  defaults: { targetType: 'cleanLabel', injectPortion: PAPER_DEFAULTS.injectPortion },
  trigger: clTrigger,
  poison: poisonCl,
};
