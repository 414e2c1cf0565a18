// What jobs read before they train: the test set with its backdoor counterpart and attention samples,
// model files checked against the data, and the clean subset.
import { sampleImages, type AttentionSamples } from '../../engine/attention-snapshot';
import { readCheckpoint } from '../../engine/checkpoint';
import { cleanSubset, loadDataset, selectImages } from '../../engine/data';
import type { EvalSets } from '../../engine/evaluate';
import { modelFromStateDict, type Model } from '../../engine/models';
import { backdoorTestSet, type BackdoorTestSet } from '../../engine/triggers';
import { InputError, type ImageDataset } from '../../engine/types';
import type { EventSink } from '../../shared/run-events';
import { validateBackdoor, type BackdoorConfig, type CleanDataConfig } from '../config';

export interface TestData {
  readonly evalSets: EvalSets;
  /** A few non-target test images, clean and triggered, whose attention maps are shown and stored. */
  readonly samples: AttentionSamples;
  /** The triggered non-target test images with their positions in the clean set (the trigger gallery's). */
  readonly triggered: BackdoorTestSet;
}

/**
 * Load a test set and its backdoor counterpart (triggered non-target images labelled with the attack
 * label), and announce the attention samples' images.
 */
export async function loadTestData(emit: EventSink, test: string, backdoor: BackdoorConfig, samples = 4): Promise<TestData> {
  const clean = await loadDataset(test, { split: 'test' });
  validateBackdoor(backdoor, clean.numClasses, 'backdoor');
  const bd = backdoorTestSet(clean, { trigger: backdoor.trigger, targetType: backdoor.targetType, targetLabel: backdoor.targetLabel });
  const k = Math.min(samples, bd.count);
  // Spread the samples over the set so several classes show up.
  const picks = Array.from({ length: k }, (_, i) => Math.floor((i * bd.count) / k));
  const chosen = {
    clean: selectImages(
      clean,
      picks.map((i) => bd.sourceIndices[i]),
    ),
    triggered: selectImages(bd, picks),
  };
  emit({ type: 'samples', samples: sampleImages(chosen) });
  return { evalSets: { clean, backdoor: bd }, samples: chosen, triggered: bd };
}

/** Read and check a model file once; `make()` builds as many independent copies as a job needs. */
export async function readModelFile(path: string, data?: ImageDataset): Promise<{ make: () => Model }> {
  const ck = await readCheckpoint(path);
  if (data) {
    const s = ck.spec;
    if (s.numClasses !== data.numClasses)
      throw new InputError(`the model has ${s.numClasses} classes but the data (${data.source}) has ${data.numClasses}`, path);
    if (s.inChannels !== data.channels)
      throw new InputError(
        `the model takes ${s.inChannels}-channel images but the data (${data.source}) has ${data.channels} channels`,
        path,
      );
  }
  return { make: () => modelFromStateDict(ck.spec, ck.stateDict, path) };
}

export async function loadModelFile(path: string, data?: ImageDataset): Promise<Model> {
  return (await readModelFile(path, data)).make();
}

/** The clean data a defense gets (a seeded subset by count or ratio, or all of it) and the size of the data it came from. */
export async function loadCleanData(cfg: CleanDataConfig & { readonly seed: number }): Promise<{ clean: ImageDataset; of: number }> {
  const full = await loadDataset(cfg.data, { split: 'train' });
  if (cfg.cleanCount === undefined && cfg.cleanRatio === undefined) return { clean: full, of: full.count };
  return { clean: cleanSubset(full, { count: cfg.cleanCount, ratio: cfg.cleanRatio, seed: cfg.seed }), of: full.count };
}
