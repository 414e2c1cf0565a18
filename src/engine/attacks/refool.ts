// Refool (Liu, Ma, Bailey, Lu, "Reflection Backdoor: A Natural Backdoor Attack on Deep Neural Networks",
// ECCV 2020): a clean-label attack whose trigger is a reflection. Target-class training images get a
// reflection image blended in with one of the paper's three reflection models (same depth of field, out of
// focus, ghost effect) and keep their labels; at test time a reflection on a non-target image should make
// the model answer the target. The blend is `blend_images` of the authors' code (DreamtaleCore/Refool),
// which BackdoorBench's attack/refool.py adopts; it lives in src/engine/triggers/reflection.ts as the
// `reflection` trigger, with its random draws from our seeded Rng.
//
// Defaults are BackdoorBench's (config/attack/refool/default.yaml): alpha_t 0.4 (the image's weight; its
// header says a random alpha_t made the ASR unstable; a negative reflectionAlpha restores the authors'
// 1 - uniform(0.05, 0.45) per image), ghost_rate 0.49, sigma and ghost_alpha random, pratio 0.1. Its
// default label mode is dirty (all2one) because, its header says, the clean-label ASR stayed low; we
// default to the paper's clean label (cleanLabel) and offer all2one/all2all as for other attacks.
// Clean label picks as BackdoorBench's generate_poison_index with clean_label: floor(injectPortion * N)
// images drawn among the target class only (at most all of it), so 0.1 on a balanced 10-class set is the
// whole target class; all2one/all2all pick floor(injectPortion * N) of the whole set and relabel them.
//
// Where reflections come from: the paper selects R_adv (reflections that worked best on a surrogate) out of
// PascalVOC, BackdoorBench reads the authors' selected R_adv folder. We pick `reflectionCount` images with a
// seeded draw out of `reflectionSource` (any data set the engine reads, or a folder of PNG/JPEG images of
// any sizes, resized as blend_images does), or by default out of the training data's other classes, so
// it works without a download; we do not run the paper's adversarial selection. `random` picks the model
// per image: ghost with blend_images' ghost_rate 0.49, else same depth or out of focus, half each (the
// code's non-ghost branch is out of focus; same depth is that branch without the blur, the paper's delta
// kernel). The test-time trigger records the source path, the class left out, the count and the seed, so
// the run's config.json rebuilds the same candidates.
import { RunCancelledError } from '../train';
import { Rng } from '../rng';
import {
  attackLabel,
  datasetPool,
  loadReflectionCandidates,
  reflectionCandidates,
  REFLECTION_MODELS,
  stampReflection,
  type PoisonedDataset,
  type ReflectionModel,
  type TriggerSpec,
} from '../triggers';
import { resolveTriggerSpec } from '../triggers/spec';
import { InputError } from '../types';
import type { ParamValues } from '../params';
import type { Attack, PoisonRequest, TriggerContext } from './types';

/** BackdoorBench's alpha_t: the image's weight in the blend. */
export const REFOOL_ALPHA = 0.4;
export const REFOOL_CANDIDATES = 200;

/** The test-time trigger: the `reflection` trigger over the same candidates the poisoning used. */
export function refoolTrigger(p: ParamValues, context?: TriggerContext): TriggerSpec {
  const source = p['reflectionSource'] as string;
  return {
    name: 'reflection',
    reflectionSource: source !== '' ? source : (context?.data ?? ''),
    ...(source === '' && context ? { reflectionExclude: context.targetLabel } : {}),
    reflectionCount: p['reflectionCount'] as number,
    reflectionModel: p['reflectionModel'] as string,
    alpha: p['reflectionAlpha'] as number,
    patternSeed: p['reflectionSeed'] as number,
  };
}

/** Blend reflections into floor(portion * N) seeded picks (of the target class for cleanLabel). */
export async function poisonRefool(req: PoisonRequest): Promise<PoisonedDataset> {
  const { train: ds, targetType, targetLabel, injectPortion, seed, signal } = req;
  if (!Number.isInteger(targetLabel) || targetLabel < 0 || targetLabel >= ds.numClasses)
    throw new InputError(`target label ${targetLabel} is out of range for ${ds.numClasses} classes (0..${ds.numClasses - 1})`);
  if (!(injectPortion >= 0 && injectPortion <= 1)) throw new InputError(`inject portion must be in [0, 1], got ${injectPortion}`);
  // The trigger's checks (model, alpha, count, seed) without a source path, which the poisoning may not have.
  const spec = resolveTriggerSpec({ ...refoolTrigger(req.params), reflectionSource: '-' });
  if (ds.height < 9 || ds.width < 9)
    throw new InputError(`Refool shifts ghost reflections by up to 8 px: images must be at least 9x9, got ${ds.height}x${ds.width}`);
  const source = req.params['reflectionSource'] as string;
  const options = { count: spec.reflectionCount ?? REFOOL_CANDIDATES, seed: spec.patternSeed ?? 0 };
  const candidates =
    source !== ''
      ? loadReflectionCandidates(source, ds, options)
      : reflectionCandidates(datasetPool(ds), ds, { ...options, excludeLabel: targetLabel });

  const n = ds.count;
  const pool: number[] = [];
  for (let i = 0; i < n; i++) if (targetType !== 'cleanLabel' || ds.labels[i] === targetLabel) pool.push(i);
  const rng = new Rng(seed);
  const order = rng.permutation(pool.length);
  const picked = Int32Array.from(order.subarray(0, Math.min(Math.floor(n * injectPortion), pool.length)), (k) => pool[k]).sort();
  const stampRng = rng.fork();

  const size = ds.height * ds.width * ds.channels;
  const images = ds.images.slice(0, n * size);
  const labels = ds.labels.slice(0, n);
  const model = spec.reflectionModel as ReflectionModel;
  const alpha = spec.alpha ?? REFOOL_ALPHA;
  for (let k = 0; k < picked.length; k++) {
    if (k % 256 === 0 && signal?.aborted === true) throw new RunCancelledError();
    const i = picked[k];
    stampReflection(images.subarray(i * size, (i + 1) * size), ds, candidates, model, alpha, stampRng);
    if (targetType !== 'cleanLabel') labels[i] = attackLabel(labels[i], targetType, targetLabel, ds.numClasses);
  }
  req.emit?.({
    type: 'log',
    message:
      `Refool: ${picked.length} ${targetType === 'cleanLabel' ? `class-${targetLabel} images` : 'images'} given a reflection ` +
      `(${model}, alpha_t ${alpha < 0 ? 'random' : alpha}) from ${candidates.length} candidates of ` +
      (source !== '' ? source : `the training data's other classes`),
  });
  return { ...ds, images, labels, poisonedIndices: picked, originalLabels: ds.labels.slice(0, n) };
}

export const refool: Attack = {
  name: 'refool',
  title: 'Refool',
  description: 'Reflections (ghost, out of focus or same depth) blended into target-class images, labels kept.',
  citation:
    'Liu, Ma, Bailey, Lu: Reflection Backdoor: A Natural Backdoor Attack on Deep Neural Networks, ECCV 2020; ' +
    'BackdoorBench (alpha_t 0.4, ghost_rate 0.49, pratio 0.1)',
  labels: 'clean',
  params: [
    {
      key: 'reflectionSource',
      type: 'path',
      default: '',
      label: 'Reflection images',
      description:
        "where reflections come from: a data set (as --data takes it) or a folder of PNG/JPEG images; empty: the training data's other classes",
    },
    {
      key: 'reflectionModel',
      type: 'choice',
      choices: REFLECTION_MODELS,
      default: 'random',
      label: 'Reflection model',
      description: 'same (depth of field), blur (out of focus), ghost, or random per image (ghost 49%, else same or blur)',
    },
    {
      key: 'reflectionCount',
      type: 'number',
      integer: true,
      min: 1,
      default: REFOOL_CANDIDATES,
      label: 'Candidate reflections',
      description: 'how many reflection images are picked from the source (seeded); each poisoned image gets one at random',
    },
    {
      key: 'reflectionAlpha',
      type: 'number',
      min: -1,
      max: 1,
      default: REFOOL_ALPHA,
      label: 'Image weight alpha_t',
      description:
        "the image's weight in the blend, alpha_t (BackdoorBench 0.4); negative: random 0.55..0.95 per image, as the authors' code",
    },
    {
      key: 'reflectionSeed',
      type: 'number',
      integer: true,
      min: 0,
      default: 0,
      label: 'Reflection seed',
      description: 'seed of the pick of candidate reflections (fixed per attack, so training and test share them)',
    },
  ],
  defaults: { targetType: 'cleanLabel', injectPortion: 0.1 },
  trigger: refoolTrigger,
  poison: poisonRefool,
};
