// The config as a run holds it (config.json): the defaults of the data's kind filled in
// (../data-defaults.ts) and `auto` replaced by the architecture it stands for. Training reads the kind
// from its data, which it then trains on; finetuning and NAD read it from the model file's input. The
// other defenses (`defend`) keep their own schedules. A resumed run keeps what it recorded; an older run whose config.json still says `auto`
// keeps the architecture its saved epochs were built with (before per-kind defaults, `auto` meant the
// small CNN on 28x28 grayscale).
import { join } from 'node:path';
import { readCheckpoint } from '../../engine/checkpoint';
import { loadDataset } from '../../engine/data';
import type { ImageDataset, ModelSpec } from '../../engine/types';
import type { JobConfig, RunConfig } from '../config';
import { dataKindOf, resolveArch, resolveTraining } from '../data-defaults';
import type { ResumePoint } from '../resume';
import { MODEL_FILES } from '../run-store';

export interface ResolvedJob {
  readonly config: RunConfig;
  /** The training data, when reading the kind loaded it (a train job trains on it). */
  readonly trainData?: ImageDataset;
}

/** `resume`: the point a resumed run continues from (its saved model decides what an old `auto` was). */
export async function resolveDataDefaults(config: JobConfig, resume?: ResumePoint): Promise<ResolvedJob> {
  switch (config.kind) {
    case 'train': {
      const trainData = await loadDataset(config.data, { split: 'train' });
      const kind = dataKindOf(trainData);
      const built = config.model === 'auto' && resume ? await builtSpec(resume) : undefined;
      return {
        config: {
          ...config,
          model: built ?? resolveArch(config.model, kind),
          training: resolveTraining('train', kind, config.training, config.seed),
        },
        trainData,
      };
    }
    case 'finetune': {
      const kind = dataKindOf((await readCheckpoint(config.model)).spec);
      return { config: { ...config, training: resolveTraining('finetune', kind, config.training, config.seed) } };
    }
    case 'erase': {
      const kind = dataKindOf((await readCheckpoint(config.student)).spec);
      return {
        config: {
          ...config,
          teacherTraining: { ...resolveTraining('finetune', kind, config.teacherTraining, config.seed), betas: [0, 0, 0] },
          training: resolveTraining('nad', kind, config.training, config.seed),
        },
      };
    }
    default:
      return { config };
  }
}

/** The architecture of a resumed training run's saved epochs, if it saved any. */
async function builtSpec(resume: ResumePoint): Promise<ModelSpec | undefined> {
  if (!resume.epochsDone[MODEL_FILES.model]) return undefined;
  return (await readCheckpoint(join(resume.run.dir, MODEL_FILES.model))).spec;
}
