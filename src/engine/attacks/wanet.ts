// WaNet (Nguyen & Tran, "WaNet - Imperceptible Warping-based Backdoor Attack", ICLR 2021): the trigger is a
// smooth warp of the whole image. A random k x k flow field (uniform in [-1, 1], divided by its mean
// absolute value) is upsampled bicubic (align_corners=True) to H x W; the sampling grid is the identity
// plus s * flow / H, times grid_rescale, clamped to [-1, 1], and the image is resampled with
// F.grid_sample (bilinear, align_corners=True). "Noise mode" (cross) samples are warped with that grid plus
// a fresh random perturbation (uniform in [-1, 1] / H per pixel and axis) and keep their labels, so the
// model learns the one warp, not "any warp". The formulas are the authors' train.py
// (VinAIResearch/Warping-based_Backdoor_Attack-release), which BackdoorBench's attack/wanet.py copies; the
// warp itself is the `warp` trigger (src/engine/triggers/patterns.ts: warpGrid, noisyWarpGrid; warp-plan.ts: warpPlan, applyWarpPlan).
// Defaults are BackdoorBench's CIFAR-10 ones (config/attack/wanet/cifar10.yaml): k 4, s 0.5, grid_rescale 1,
// cross_ratio 2, pratio 0.1, all2one (its target 0; ours the run's target, the NAD paper's 5 by default).
//
// Two training schemes. train.py (and BackdoorBench's train_step) warp on the fly: in every batch of 128 the
// first int(0.1 * 128) = 12 images are warped and relabelled and the next int(12 * cross_ratio) = 24 are
// noise-warped, anew each epoch (the loader shuffles, so every image is warped in some epochs and clean in
// others, and the noise is redrawn each time), in float without rounding, and then every image goes through
// PostTensorTransform (random crop pad 5 at p 0.8, rotation 10 degrees at p 0.5, flip).
// - By default (warpPerEpoch false) we poison the training set once, as BackdoorBench's static version does
//   (the bd_train set its stage2_training saves after training, which its defenses load): one pass, a fixed
//   set of warped-and-relabelled images and a fixed set of noise-mode images (one noise draw each), stored as
//   uint8. BackdoorBench picks them by position (the first 12 and the next 24 of each unshuffled batch of 128,
//   i.e. 9.375% and 18.75%); we pick them with a seeded permutation of the run's seed: floor(injectPortion * N)
//   warped and relabelled, then floor(that * crossRatio) noise-mode (at most the rest of the set, as the
//   code's slice). On the 5,085-image CIFAR subset the model memorises that fixed set (README: ASR 64 with
//   --augment in 25 epochs, 74 in 50).
// - With warpPerEpoch (`nad train --attack wanet --warp-per-epoch`) the poisoning also returns an epochData
//   hook (AttackPoisoning.epochData) that the training loop calls at the start of every epoch: epoch e trains
//   on its own draw, the same counts picked and the noise drawn afresh from mixSeed(run seed, e, 3), so a
//   resumed run draws what an uninterrupted one did, and epoch 0's draw is the set poison() returns. What
//   still differs from train.py: the picks are a share of the epoch, not exactly 12 + 24 of every batch; the
//   warped images are rounded to uint8 as the static set's (same grid, same rounding as the test-time
//   trigger), where train.py keeps the float; the augmentation is the schedule's (--augment: crop pad 4,
//   flip, cutout), not PostTensorTransform. On the CIFAR subset with --augment it is the better of the two
//   (README: ASR 68 in 25 epochs, 81 in 50, with 2 points more ACC; s 1 and 50 epochs: 77.43 / 89.03, ACC 1
//   point under clean training), but not yet at 90 there, and an older run's config.json, which has no
//   warpPerEpoch, must still mean the static set: the default stays false.
// Our train path adds no augmentation unless the schedule asks for it (train_badnet.py's does not).
//
// Rounding to uint8 happens in applyWarpPlan (warpImage), once per warped image: the float value (in 0..255) is truncated
// as BackdoorBench's ToPILImage (`x.mul(255).byte()`) stores its bd_train and bd_test images. The test-time
// trigger (ASR) is the same `warp` with the same k, s, grid_rescale and seed, hence the same grid, and
// the same rounding. The field's seed is a parameter (warpSeed), not the run's seed, so that the run's
// config.json trigger alone reproduces the test-time warp; the original draws it from torch's generator
// once per run and keeps it in the checkpoint. The noise-mode draws and the picks come from the run's seed.
// all2all relabels label + 1 (BackdoorBench; the original's torch.remainder(targets, num_classes) keeps the
// label). WaNet relabels what it warps: cleanLabel is refused.
import { Rng } from '../rng';
import { RunCancelledError, mixSeed } from '../train';
import {
  applyWarpPlan,
  attackLabel,
  createTrigger,
  noisyWarpGrid,
  warpPlan,
  warpTriggerGrid,
  type PoisonedDataset,
  type TargetType,
  type Trigger,
  type TriggerSpec,
  type WarpPlan,
} from '../triggers';
import { PAPER_DEFAULTS } from '../triggers/spec';
import { InputError, type ImageDataset } from '../types';
import type { ParamValues } from '../params';
import type { Attack, AttackPoisoning, PoisonRequest } from './types';

/** BackdoorBench's cross_ratio: noise-mode images per warped-and-relabelled image. */
export const WANET_CROSS_RATIO = 2;

export interface WanetPoisonedDataset extends PoisonedDataset {
  /** Noise-mode images (warped with the grid plus fresh noise, labels kept), ascending; disjoint from poisonedIndices. */
  readonly crossIndices: Int32Array;
}

/** The test-time trigger: the `warp` with these parameters. */
export function wanetTrigger(p: ParamValues): TriggerSpec {
  return {
    name: 'warp',
    k: p['warpK'] as number,
    s: p['warpStrength'] as number,
    gridRescale: p['warpGridRescale'] as number,
    patternSeed: p['warpSeed'] as number,
  };
}

/** Seed stream of the per-epoch draws (train.ts's mixSeed: 1 is the data order, 2 the augmentation). */
const EPOCH_STREAM = 3;

/** Warp floor(portion * N) seeded picks and relabel them; noise-warp floor(that * crossRatio) more, labels kept. */
export async function poisonWanet(req: PoisonRequest): Promise<WanetPoisonedDataset & AttackPoisoning> {
  const { train: ds, targetType, targetLabel, injectPortion, seed, signal } = req;
  if (targetType === 'cleanLabel')
    throw new InputError('WaNet relabels the images it warps: its target type is all2one or all2all, not cleanLabel');
  if (!Number.isInteger(targetLabel) || targetLabel < 0 || targetLabel >= ds.numClasses)
    throw new InputError(`target label ${targetLabel} is out of range for ${ds.numClasses} classes (0..${ds.numClasses - 1})`);
  if (!(injectPortion >= 0 && injectPortion <= 1)) throw new InputError(`inject portion must be in [0, 1], got ${injectPortion}`);
  const crossRatio = req.params['crossRatio'] as number;
  if (!(crossRatio >= 0) || !Number.isFinite(crossRatio)) throw new InputError(`crossRatio must be a number >= 0, got ${crossRatio}`);
  const perEpoch = req.params['warpPerEpoch'] === true;
  const trigger = createTrigger(wanetTrigger(req.params), ds); // InputError on bad k, s, grid_rescale
  const n = ds.count;
  const numBd = Math.floor(n * injectPortion);
  const numCross = Math.min(Math.floor(numBd * crossRatio), n - numBd);
  const draw: WarpDraw = { ds, trigger, grid: warpTriggerGrid(trigger.spec, ds), numBd, numCross, targetType, targetLabel };
  const cancelled = (): boolean => signal?.aborted === true;
  const first = drawWarp(draw, new Rng(perEpoch ? mixSeed(seed, 0, EPOCH_STREAM) : seed), cancelled);
  req.emit?.({
    type: 'log',
    message:
      `WaNet: ${numBd} images warped and relabelled, ${numCross} noise-mode images warped with their labels kept` +
      `${perEpoch ? ', drawn anew every epoch' : ''} ` +
      `(k ${trigger.spec.k}, s ${trigger.spec.s}, grid_rescale ${trigger.spec.gridRescale}, cross_ratio ${crossRatio})`,
  });
  if (!perEpoch) return first;
  const epochData = (epoch: number): WanetPoisonedDataset => {
    if (!(Number.isInteger(epoch) && epoch >= 0)) throw new RangeError(`epoch must be a whole number >= 0, got ${epoch}`);
    return epoch === 0 ? first : drawWarp(draw, new Rng(mixSeed(seed, epoch, EPOCH_STREAM)), cancelled);
  };
  return { ...first, epochData };
}

/** What every draw of one run shares: the clean set, the trigger (its plan made once) and its grid, the counts, the labelling. */
interface WarpDraw {
  readonly ds: ImageDataset;
  readonly trigger: Trigger;
  readonly grid: Float32Array;
  readonly numBd: number;
  readonly numCross: number;
  readonly targetType: TargetType;
  readonly targetLabel: number;
}

/** One poisoned copy of the clean set: rng's permutation picks the warped images, then the noise-mode ones; its fork draws the noise. */
function drawWarp(d: WarpDraw, rng: Rng, cancelled: () => boolean): WanetPoisonedDataset {
  const { ds, trigger, grid, numBd, numCross } = d;
  const n = ds.count;
  const order = rng.permutation(n);
  const noiseRng = rng.fork();
  const bd = Int32Array.from(order.subarray(0, numBd)).sort();
  const cross = Int32Array.from(order.subarray(numBd, numBd + numCross)).sort();

  const size = ds.height * ds.width * ds.channels;
  const images = ds.images.slice(0, n * size);
  const labels = ds.labels.slice(0, n);
  for (let k = 0; k < bd.length; k++) {
    if (k % 256 === 0 && cancelled()) throw new RunCancelledError();
    const i = bd[k];
    trigger.stamp(images.subarray(i * size, (i + 1) * size));
    labels[i] = attackLabel(labels[i], d.targetType, d.targetLabel, ds.numClasses);
  }
  const noise = new Float32Array(grid.length);
  const noisy = new Float32Array(grid.length);
  const scratch = new Uint8Array(size);
  let plan: WarpPlan | undefined;
  for (let k = 0; k < cross.length; k++) {
    if (k % 256 === 0 && cancelled()) throw new RunCancelledError();
    for (let j = 0; j < noise.length; j++) noise[j] = noiseRng.next() * 2 - 1; // torch.rand(H, W, 2) * 2 - 1
    noisyWarpGrid(grid, noise, ds.height, noisy);
    const i = cross[k];
    plan = warpPlan(ds, noisy, plan); // a fresh random warp per image: its taps, in the same arrays
    applyWarpPlan(images.subarray(i * size, (i + 1) * size), plan, scratch);
  }
  return { ...ds, images, labels, poisonedIndices: bd, crossIndices: cross, originalLabels: ds.labels.slice(0, n) };
}

export const wanet: Attack = {
  name: 'wanet',
  title: 'WaNet',
  description: 'A smooth random warp of the whole image (imperceptible); warped images are relabelled, noisy warps keep their labels.',
  citation:
    'Nguyen, Tran: WaNet - Imperceptible Warping-based Backdoor Attack, ICLR 2021; BackdoorBench (k 4, s 0.5, grid_rescale 1, cross_ratio 2)',
  labels: 'poison',
  params: [
    {
      key: 'warpK',
      type: 'number',
      integer: true,
      min: 1,
      default: PAPER_DEFAULTS.warpK,
      label: 'Control grid size k',
      description: 'side of the random control grid the flow field is upsampled from, k (BackdoorBench CIFAR-10: 4)',
    },
    {
      key: 'warpStrength',
      type: 'number',
      min: 0,
      default: PAPER_DEFAULTS.warpStrength,
      label: 'Warp strength s',
      description: 'strength of the warp, s: pixels move about s / 2 on average (0.5)',
    },
    {
      key: 'warpGridRescale',
      type: 'number',
      min: 0,
      default: PAPER_DEFAULTS.gridRescale,
      label: 'Grid rescale',
      description: 'the sampling grid is scaled by this before clamping to the image, grid_rescale (1)',
    },
    {
      key: 'crossRatio',
      type: 'number',
      min: 0,
      default: WANET_CROSS_RATIO,
      label: 'Noise-mode ratio',
      description: 'noise-mode images (random warps, labels kept) per warped-and-relabelled image, cross_ratio (2)',
    },
    {
      key: 'warpPerEpoch',
      type: 'boolean',
      default: false,
      label: 'Warp anew every epoch',
      description:
        "draw the warped and the noise-mode images anew every epoch, as WaNet's train.py warps each batch (default: once, as BackdoorBench's saved set)",
    },
    {
      key: 'warpSeed',
      type: 'number',
      integer: true,
      min: 0,
      default: 0,
      label: 'Warp seed',
      description: 'seed of the random flow field (fixed per attack, so training and test share the warp)',
    },
  ],
  defaults: { targetType: 'all2one', injectPortion: PAPER_DEFAULTS.injectPortion },
  trigger: wanetTrigger,
  poison: poisonWanet,
};
