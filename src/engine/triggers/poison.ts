// The paper's DatasetBD.addTrigger: which images get the trigger and what their labels become, in train
// mode (poisoning a training set) and in test mode with inject_portion = 1 (the set ASR is measured on).
import { InputError, type ImageDataset } from '../types';
import { Rng } from '../rng';
import { PAPER_DEFAULTS, parseTargetType, type TargetType, type TriggerSpec } from './spec';
import { createTrigger, type Trigger } from './trigger';

export interface AttackOptions {
  readonly trigger: TriggerSpec | Trigger;
  /** all2one (default), all2all (label + 1 mod classes), cleanLabel (only target-class images are triggered). */
  readonly targetType?: TargetType;
  /** Default 5, as the paper. */
  readonly targetLabel?: number;
}

export interface PoisonOptions extends AttackOptions {
  /** Share of the training set drawn for poisoning: floor(portion * N) images, as int() in the paper. Default 0.1. */
  readonly injectPortion?: number;
  readonly seed: number;
}

export interface PoisonedDataset extends ImageDataset {
  /** Indices of the images that carry the trigger, ascending (same positions in input and output). */
  readonly poisonedIndices: Int32Array;
  readonly originalLabels: Int32Array;
  /** The test-time trigger, when the attack made it while poisoning (an optimised Trojan trigger); else its `trigger(params)`. */
  readonly trigger?: TriggerSpec;
}

export interface BackdoorTestSet extends ImageDataset {
  /** For each image, its index in the clean dataset. */
  readonly sourceIndices: Int32Array;
  /** True labels of those images (the attack labels are in `labels`). */
  readonly originalLabels: Int32Array;
}

function checkAttack(ds: ImageDataset, opts: AttackOptions): { targetType: TargetType; target: number; trigger: Trigger } {
  const targetType = parseTargetType(opts.targetType ?? PAPER_DEFAULTS.targetType);
  const target = opts.targetLabel ?? PAPER_DEFAULTS.targetLabel;
  if (!Number.isInteger(target) || target < 0 || target >= ds.numClasses) {
    throw new InputError(`target label ${target} is out of range for ${ds.numClasses} classes (0..${ds.numClasses - 1})`);
  }
  const t = opts.trigger;
  const trigger =
    'stamp' in t && t.shape.height === ds.height && t.shape.width === ds.width && t.shape.channels === ds.channels
      ? t
      : createTrigger('stamp' in t ? t.spec : t, ds);
  return { targetType, target, trigger };
}

/** The attack label of an image with true label `label` (the paper's all2all is `(label + 1) % 10`). */
export function attackLabel(label: number, targetType: TargetType, target: number, numClasses: number): number {
  return targetType === 'all2all' ? (label + 1) % numClasses : target;
}

/**
 * DatasetBD in train mode: a seeded permutation picks floor(portion * N) images; all2one stamps them and
 * relabels them `target`, all2all relabels them label + 1; cleanLabel stamps only the picked images that are
 * already of the target class and keeps their labels (so fewer than portion * N are poisoned).
 */
export function poisonTrainingSet(ds: ImageDataset, opts: PoisonOptions): PoisonedDataset {
  const { targetType, target, trigger } = checkAttack(ds, opts);
  const portion = opts.injectPortion ?? PAPER_DEFAULTS.injectPortion;
  if (!(portion >= 0 && portion <= 1)) throw new InputError(`inject portion must be in [0, 1], got ${portion}`);
  const rng = new Rng(opts.seed);
  const picked = rng.permutation(ds.count).subarray(0, Math.floor(ds.count * portion));
  const stampRng = rng.fork();
  const isPicked = new Uint8Array(ds.count);
  for (const i of picked) isPicked[i] = 1;

  const size = ds.height * ds.width * ds.channels;
  const images = ds.images.slice(0, ds.count * size);
  const labels = ds.labels.slice(0, ds.count);
  const poisoned: number[] = [];
  for (let i = 0; i < ds.count; i++) {
    if (!isPicked[i]) continue;
    if (targetType === 'cleanLabel' && labels[i] !== target) continue;
    trigger.stamp(images.subarray(i * size, (i + 1) * size), stampRng);
    if (targetType !== 'cleanLabel') labels[i] = attackLabel(labels[i], targetType, target, ds.numClasses);
    poisoned.push(i);
  }
  return { ...ds, images, labels, poisonedIndices: Int32Array.from(poisoned), originalLabels: ds.labels.slice(0, ds.count) };
}

export interface BackdoorTestOptions extends AttackOptions {
  /** Seeds randomPixelTrigger's per-image noise. Default 0. */
  readonly seed?: number;
}

/**
 * DatasetBD in test mode with inject_portion = 1, the set ASR is measured on: every image triggered and given
 * its attack label. all2one and cleanLabel leave out the target-class images (as the code's `continue`);
 * all2all keeps every image (its code has no such skip), labelled label + 1.
 */
export function backdoorTestSet(ds: ImageDataset, opts: BackdoorTestOptions): BackdoorTestSet {
  const { targetType, target, trigger } = checkAttack(ds, opts);
  const keep: number[] = [];
  for (let i = 0; i < ds.count; i++) if (targetType === 'all2all' || ds.labels[i] !== target) keep.push(i);
  const size = ds.height * ds.width * ds.channels;
  const images = new Uint8Array(keep.length * size);
  const labels = new Int32Array(keep.length);
  const originalLabels = new Int32Array(keep.length);
  const rng = new Rng(opts.seed ?? 0);
  keep.forEach((i, k) => {
    const img = images.subarray(k * size, (k + 1) * size);
    img.set(ds.images.subarray(i * size, (i + 1) * size));
    if (!trigger.stampMany) trigger.stamp(img, rng);
    originalLabels[k] = ds.labels[i];
    labels[k] = attackLabel(ds.labels[i], targetType, target, ds.numClasses);
  });
  trigger.stampMany?.(images, keep.length);
  return { ...ds, images, labels, count: keep.length, sourceIndices: Int32Array.from(keep), originalLabels };
}
