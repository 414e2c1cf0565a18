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
// How this differs from the original training scheme. train.py (and BackdoorBench's train_step) warp on
// the fly: in every batch of 128 the first int(0.1 * 128) = 12 images are warped and relabelled and the
// next int(12 * cross_ratio) = 24 are noise-warped, anew each epoch (the loader shuffles, so every image is
// warped in some epochs and clean in others, and the noise is redrawn each time), in float without
// rounding, and then every image goes through PostTensorTransform (random crop pad 5, rotation 10 degrees,
// flip). Our Attack poisons the training set once, as BackdoorBench's static version does (the bd_train
// set its stage2_training saves after training, which its defenses load): one pass, a fixed set of
// warped-and-relabelled images and a fixed set of noise-mode images (one noise draw each), stored as
// uint8. BackdoorBench picks them by position (the first 12 and the next 24 of each unshuffled batch of
// 128, i.e. 9.375% and 18.75%); we pick them with a seeded permutation: floor(injectPortion * N) warped
// and relabelled, then floor(that * crossRatio) noise-mode (at most the rest of the set, as the code's
// slice). Our train path adds no augmentation unless the schedule asks for it (train_badnet.py's does not).
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
import { RunCancelledError } from '../train';
import {
  applyWarpPlan,
  attackLabel,
  createTrigger,
  noisyWarpGrid,
  warpPlan,
  warpTriggerGrid,
  type PoisonedDataset,
  type TriggerSpec,
  type WarpPlan,
} from '../triggers';
import { PAPER_DEFAULTS } from '../triggers/spec';
import { InputError } from '../types';
import type { ParamValues } from '../params';
import type { Attack, PoisonRequest } from './types';

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

/** Warp floor(portion * N) seeded picks and relabel them; noise-warp floor(that * crossRatio) more, labels kept. */
export async function poisonWanet(req: PoisonRequest): Promise<WanetPoisonedDataset> {
  const { train: ds, targetType, targetLabel, injectPortion, seed, signal } = req;
  if (targetType === 'cleanLabel')
    throw new InputError('WaNet relabels the images it warps: its target type is all2one or all2all, not cleanLabel');
  if (!Number.isInteger(targetLabel) || targetLabel < 0 || targetLabel >= ds.numClasses)
    throw new InputError(`target label ${targetLabel} is out of range for ${ds.numClasses} classes (0..${ds.numClasses - 1})`);
  if (!(injectPortion >= 0 && injectPortion <= 1)) throw new InputError(`inject portion must be in [0, 1], got ${injectPortion}`);
  const crossRatio = req.params['crossRatio'] as number;
  if (!(crossRatio >= 0) || !Number.isFinite(crossRatio)) throw new InputError(`crossRatio must be a number >= 0, got ${crossRatio}`);
  const trigger = createTrigger(wanetTrigger(req.params), ds); // InputError on bad k, s, grid_rescale
  const grid = warpTriggerGrid(trigger.spec, ds);

  const n = ds.count;
  const numBd = Math.floor(n * injectPortion);
  const numCross = Math.min(Math.floor(numBd * crossRatio), n - numBd);
  const rng = new Rng(seed);
  const order = rng.permutation(n);
  const noiseRng = rng.fork();
  const bd = Int32Array.from(order.subarray(0, numBd)).sort();
  const cross = Int32Array.from(order.subarray(numBd, numBd + numCross)).sort();

  const size = ds.height * ds.width * ds.channels;
  const images = ds.images.slice(0, n * size);
  const labels = ds.labels.slice(0, n);
  const cancelled = (): boolean => signal?.aborted === true;
  for (let k = 0; k < bd.length; k++) {
    if (k % 256 === 0 && cancelled()) throw new RunCancelledError();
    const i = bd[k];
    trigger.stamp(images.subarray(i * size, (i + 1) * size));
    labels[i] = attackLabel(labels[i], targetType, targetLabel, ds.numClasses);
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
  req.emit?.({
    type: 'log',
    message:
      `WaNet: ${numBd} images warped and relabelled, ${numCross} noise-mode images warped with their labels kept ` +
      `(k ${trigger.spec.k}, s ${trigger.spec.s}, grid_rescale ${trigger.spec.gridRescale}, cross_ratio ${crossRatio})`,
  });
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
