// Training a backdoored model from scratch (the paper's train_badnet.py): poisoned data, no augmentation.
import { loadDataset } from '../../engine/data';
import { createModel, describeSpec, specFor } from '../../engine/models';
import { poisonTrainingSet } from '../../engine/triggers';
import { attackNamed, type Attack, type AttackPoisoning } from '../../engine/attacks/registry';
import { testGallery, trainGallery } from '../../engine/attacks/gallery';
import { checkParams, type ParamValues } from '../../engine/params';
import { InputError, type ImageDataset } from '../../engine/types';
import type { TrainSettings } from '../../engine/train';
import { validateBackdoor, type AttackChoice, type TrainJobConfig } from '../config';
import { MODEL_FILES } from '../run-store';
import { loadTestData } from './inputs';
import type { Env, JobOutcome } from './lifecycle';
import { reportClasses, writeAttention } from './evaluate';
import { trainPhaseIn } from './train-phase';

/** Poisoned training images (and triggered test images) the run panel's trigger gallery shows. */
export const GALLERY_SAMPLES = 4;

/** The registry's attack and its checked parameters. */
export function attackOf(choice: AttackChoice): { attack: Attack; params: ParamValues } {
  const attack = attackNamed(choice.name);
  if (!attack) throw new InputError(`unknown attack '${choice.name}'`);
  return { attack, params: checkParams(attack.params, choice.params, `attack ${choice.name}`) };
}

/** `loaded`: the training data when already loaded (resolving the data's defaults reads it). */
export async function trainJob(cfg: TrainJobConfig<TrainSettings>, env: Env, loaded?: ImageDataset): Promise<JobOutcome> {
  const full = loaded ?? (await loadDataset(cfg.data, { split: 'train' }));
  validateBackdoor(cfg.backdoor, full.numClasses, 'backdoor');
  const { trigger, targetType, targetLabel, injectPortion } = cfg.backdoor;
  const attack = cfg.attack ? attackOf(cfg.attack) : undefined;
  const poisoned: AttackPoisoning = attack
    ? await attack.attack.poison({
        train: full,
        params: attack.params,
        targetType,
        targetLabel,
        injectPortion,
        seed: cfg.seed,
        model: specFor(cfg.model, full),
        signal: env.signal,
        emit: env.emit,
        outputDir: env.run.dir,
      })
    : poisonTrainingSet(full, { trigger, targetType, targetLabel, injectPortion, seed: cfg.seed });
  const how = attack ? `${attack.attack.title} (${trigger.name})` : trigger.name;
  env.emit({
    type: 'log',
    message: `training data: ${full.count} images from ${full.source}, ${poisoned.poisonedIndices.length} poisoned with ${how}`,
  });
  // An attack that made its trigger while poisoning (Trojan's optimised one) is measured with it, kept in trigger.json.
  if (poisoned.trigger) env.run.writeFile('trigger.json', JSON.stringify(poisoned.trigger) + '\n');
  const backdoor = poisoned.trigger ? { ...cfg.backdoor, trigger: poisoned.trigger } : cfg.backdoor;
  const test = await loadTestData(env.emit, cfg.test, backdoor);
  // An attack that trains with the model (input-aware) poisons per batch: its triggers are shown once trained.
  const hook = poisoned.training;
  // The trigger gallery: what the attack did to a few training images, and the test-time trigger.
  if (poisoned.poisonedIndices.length > 0) env.emit({ type: 'images', ...trainGallery({ clean: full, poisoned, count: GALLERY_SAMPLES }) });
  if (!hook && test.triggered.count > 0)
    env.emit({ type: 'images', ...testGallery({ clean: test.evalSets.clean, triggered: test.triggered, count: GALLERY_SAMPLES }) });
  // The data decides the classes, channels and image size, whatever a config file says of them.
  const spec = specFor(cfg.model, full);
  const model = createModel(spec, cfg.seed);
  env.emit({ type: 'log', message: `model: ${describeSpec(spec)}, ${model.params.parameterCount()} parameters` });
  try {
    const r = await trainPhaseIn(
      env,
      test,
    )({
      student: model,
      data: poisoned,
      settings: cfg.training,
      phase: 'train',
      label: 'Training the backdoored model',
      output: 'model',
      hook,
      epochData: poisoned.epochData,
    });
    const table = [{ model: 'trained', ...r }];
    env.emit({ type: 'table', rows: table });
    // The trained trigger (saved with the last epoch) for the per-class results, the attention maps and the gallery.
    const final = hook ? await loadTestData(env.emit, cfg.test, backdoor) : test;
    if (hook && final.triggered.count > 0)
      env.emit({ type: 'images', ...testGallery({ clean: final.evalSets.clean, triggered: final.triggered, count: GALLERY_SAMPLES }) });
    const classes = reportClasses(env, model, final.evalSets);
    await writeAttention(env, [['backdoored', model]], final.samples);
    return { ...r, table, modelPath: env.run.path(MODEL_FILES.model), classes };
  } finally {
    model.dispose();
    hook?.dispose();
  }
}
