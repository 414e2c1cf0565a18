// Previewing an attack without training ("NAD: Preview Attack", `nad preview`): the attack of a train config
// poisons a seeded sample of the training data, and the trigger gallery shows a few poisoned images and the
// test-time trigger on a few test images. No run folder: nothing is stored, nothing is trained (an attack that
// needs a model of its own, such as CL's surrogate, still trains it, on the sample).
import { initBackend } from '../../engine/backend';
import { testGallery, trainGallery } from '../../engine/attacks/gallery';
import { loadDataset, selectImages } from '../../engine/data';
import { specFor } from '../../engine/models';
import { Rng } from '../../engine/rng';
import { backdoorTestSet, poisonTrainingSet } from '../../engine/triggers';
import { InputError, type ImageDataset } from '../../engine/types';
import type { EventSink, ImagesFigure } from '../../shared/run-events';
import { validateBackdoor, type TrainJobConfig } from '../config';
import { dataKindOf, resolveArch } from '../data-defaults';
import type { AttackPoisoning } from '../../engine/attacks/registry';
import { attackOf } from './train';

export interface PreviewOptions {
  /** Poisoned training images (and triggered test images) shown. */
  readonly samples?: number;
  /** Training images drawn (seeded) and poisoned; the attack's share applies to these. */
  readonly sampleSize?: number;
  readonly signal?: AbortSignal;
  readonly emit?: EventSink;
}

export interface AttackPreview {
  readonly title: string;
  /** The attack's description, and how many images it changed. */
  readonly summary: string;
  readonly backend: string;
  readonly figures: readonly ImagesFigure[];
}

export const PREVIEW_DEFAULTS = { samples: 4, sampleSize: 1000 } as const;

/** A seeded sample of `n` images (all when there are fewer), in their original order. */
function sampleOf(ds: ImageDataset, n: number, seed: number): ImageDataset {
  if (ds.count <= n) return ds;
  const picked = Array.from(new Rng(seed).permutation(ds.count).subarray(0, n)).sort((a, b) => a - b);
  return { ...selectImages(ds, picked), source: ds.source };
}

export async function previewAttack(cfg: TrainJobConfig, opts: PreviewOptions = {}): Promise<AttackPreview> {
  const samples = opts.samples ?? PREVIEW_DEFAULTS.samples;
  const sampleSize = opts.sampleSize ?? PREVIEW_DEFAULTS.sampleSize;
  if (!Number.isInteger(samples) || samples < 1 || samples > 32)
    throw new InputError(`samples must be an integer in 1..32, got ${samples}`);
  if (!Number.isInteger(sampleSize) || sampleSize < 10) throw new InputError(`sample size must be an integer >= 10, got ${sampleSize}`);
  const backend = await initBackend(cfg.backend);
  const full = await loadDataset(cfg.data, { split: 'train' });
  validateBackdoor(cfg.backdoor, full.numClasses, 'backdoor');
  const train = sampleOf(full, sampleSize, cfg.seed);
  const { targetType, targetLabel, injectPortion } = cfg.backdoor;
  const attack = cfg.attack ? attackOf(cfg.attack) : undefined;
  const trigger = attack ? attack.attack.trigger(attack.params, { data: cfg.data, targetLabel }) : cfg.backdoor.trigger;
  const poisoned: AttackPoisoning = attack
    ? await attack.attack.poison({
        train,
        params: attack.params,
        targetType,
        targetLabel,
        injectPortion,
        seed: cfg.seed,
        // CL trains its surrogate with the architecture the run would train (`auto`: the data kind's).
        model: specFor(resolveArch(cfg.model, dataKindOf(train)), train),
        signal: opts.signal,
        emit: opts.emit,
      })
    : poisonTrainingSet(train, { trigger, targetType, targetLabel, injectPortion, seed: cfg.seed });
  const test = sampleOf(await loadDataset(cfg.test, { split: 'test' }), Math.max(200, samples * 20), cfg.seed + 1);
  // An attack that trains with the model (input-aware) shows the trigger as made before training.
  poisoned.training?.dispose();
  const triggered = backdoorTestSet(test, { trigger: poisoned.trigger ?? trigger, targetType, targetLabel });
  const figures: ImagesFigure[] = [];
  if (poisoned.poisonedIndices.length > 0) figures.push(trainGallery({ clean: train, poisoned, count: samples }));
  if (triggered.count > 0) figures.push(testGallery({ clean: test, triggered, count: samples }));
  const name = attack ? attack.attack.title : `DatasetBD ${trigger.name}`;
  const share = `${poisoned.poisonedIndices.length} of ${train.count} sampled training images poisoned`;
  const labels = attack?.attack.labels === 'clean' || targetType === 'cleanLabel' ? 'labels kept' : `relabelled to ${targetLabel}`;
  return {
    title: `${name} on ${full.source === 'mnist' ? 'MNIST' : full.source}`,
    summary: `${attack ? attack.attack.description + ' ' : ''}${share} (${labels}); test trigger: ${trigger.name}.`,
    backend: backend.description,
    figures,
  };
}
