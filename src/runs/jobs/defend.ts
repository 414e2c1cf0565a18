// Runs any defense of the registry on a suspect model: loads the clean and test data, hands the defense
// its inputs (model copies, a trainPhase bound to this run), saves the repaired model and the maps.
// `erase` and `finetune` configs are NAD and finetuning in their historical shape.
import { defenseNamed, type Defense, type DefenseMode, type ParamValues } from '../../engine/defenses/registry';
import { checkParams } from '../../engine/params';
import { defenseEffectiveness } from '../../engine/evaluate';
import type { Model } from '../../engine/models';
import type { TrainSettings } from '../../engine/train';
import { basename } from 'node:path';
import { InputError, type ImageDataset, type ModelSpec } from '../../engine/types';
import type { Phase } from '../../shared/run-events';
import type { DefendJobConfig, EraseJobConfig, FinetuneJobConfig } from '../config';
import { MODEL_FILES } from '../run-store';
import { reportClasses, writeAttention } from './evaluate';
import { imageFor } from './image-attention';
import { loadCleanData, loadModelFile, loadTestData, readModelFile } from './inputs';
import type { Env, JobOutcome } from './lifecycle';
import { saveModel, trainPhaseIn } from './train-phase';

export type DefenseConfig = DefendJobConfig | EraseJobConfig<TrainSettings> | FinetuneJobConfig<TrainSettings>;

/** A defense job in one shape: the defense, its checked parameters and schedules. */
export interface DefenseJob {
  readonly defense: Defense;
  readonly mode: DefenseMode;
  readonly suspectFile: string;
  readonly params: ParamValues;
  readonly training: TrainSettings;
  readonly teacherTraining?: TrainSettings;
}

export function defenseJobOf(cfg: DefenseConfig): DefenseJob {
  const named = (name: string): Defense => {
    const d = defenseNamed(name);
    if (!d) throw new InputError(`unknown defense '${name}'`);
    return d;
  };
  switch (cfg.kind) {
    case 'erase': {
      const defense = named('nad');
      const params = checkParams(
        defense.params,
        { ...(cfg.teacher ? { teacher: cfg.teacher } : {}), teacherEpochs: cfg.teacherTraining.epochs },
        'erase',
      );
      return { defense, mode: 'repair', suspectFile: cfg.student, params, training: cfg.training, teacherTraining: cfg.teacherTraining };
    }
    case 'finetune':
      return { defense: named('finetune'), mode: 'repair', suspectFile: cfg.model, params: {}, training: cfg.training };
    case 'defend': {
      const defense = named(cfg.method);
      const mode = cfg.mode ?? 'repair';
      if (!defense.modes.includes(mode)) {
        throw new InputError(
          mode === 'detect'
            ? `${defense.title} does not detect; it repairs a model: run it with "nad defend ${defense.name}" (mode "repair")`
            : `${defense.title} only detects; it does not repair a model: run it with "nad detect ${defense.name}" (mode "detect")`,
        );
      }
      return {
        defense,
        mode,
        suspectFile: cfg.model,
        params: checkParams(defense.params, cfg.params, `defense ${cfg.method}`),
        training: { ...defense.training, seed: cfg.seed, ...cfg.training },
      };
    }
    default: {
      const _: never = cfg;
      return _;
    }
  }
}

export function defensePhases(job: DefenseJob): ReadonlyArray<{ readonly phase: Phase; readonly epochs: number }> {
  return job.defense.phases(job.params, job.training, job.mode);
}

export async function defendJob(cfg: DefenseConfig, env: Env): Promise<JobOutcome> {
  const job = defenseJobOf(cfg);
  const { clean, of } = await loadCleanData(cfg);
  // The history's "Clean share" column reads these, however the share was asked for (count or ratio).
  env.run.update({ cleanImages: clean.count, dataImages: of });
  env.emit({ type: 'log', message: `clean data: ${clean.count} of ${of} images from ${clean.source}` });
  const test = await loadTestData(env.emit, cfg.test, cfg.backdoor);
  const suspect = await readModelFile(job.suspectFile, clean);
  const models: Model[] = [];
  const track = (m: Model): Model => {
    models.push(m);
    return m;
  };
  try {
    const files = cfg.kind === 'defend' ? (cfg.inspect ?? []) : [];
    if (files.length && !(job.mode === 'detect' && job.defense.inspectsImages))
      throw new InputError(`${job.defense.title} does not check given images; STRIP does ("nad detect strip --inspect ...")`);
    const inspect = files.length ? inspectImages(files, track(suspect.make()).spec, clean) : undefined;
    const out = await job.defense.run({
      mode: job.mode,
      ...(inspect ? { inspect } : {}),
      suspect: () => track(suspect.make()),
      loadModel: async (file) => track(await loadModelFile(file, clean)),
      clean,
      test: test.evalSets,
      samples: test.samples,
      training: job.training,
      teacherTraining: job.teacherTraining,
      params: job.params,
      seed: cfg.seed,
      emit: env.emit,
      signal: env.signal,
      trainPhase: trainPhaseIn(env, test),
      memo: env.memo,
    });
    const final = out.rows[out.rows.length - 1];
    await writeAttention(env, out.attention, test.samples);
    if (job.mode === 'detect') {
      // Nothing was repaired: the suspect's ACC/ASR and the detection report are the result.
      const classes = reportClasses(env, track(suspect.make()), test.evalSets);
      return { acc: final.acc, asr: final.asr, ra: final.ra, table: out.rows, report: out.report, classes };
    }
    if (!out.model) throw new Error(`${job.defense.title} returned no repaired model`);
    const classes = reportClasses(env, out.model, test.evalSets);
    const der = defenseEffectiveness(out.rows[0], final);
    env.emit({ type: 'log', message: `defense effectiveness rating (DER): ${der.toFixed(4)}` });
    // A defense that trained its model last saved it after each epoch; one that did not (pruning alone) is saved here.
    if (!models.includes(out.model) || !env.run.exists(MODEL_FILES.model)) await saveModel(env, MODEL_FILES.model, out.model, {});
    return {
      acc: final.acc,
      asr: final.asr,
      ra: final.ra,
      der,
      table: out.rows,
      modelPath: env.run.path(MODEL_FILES.model),
      report: out.report,
      classes,
    };
  } finally {
    for (const m of models) m.dispose();
  }
}

/** The images a detector is asked about, decoded in the model's input shape (a size mismatch names the file). */
function inspectImages(files: readonly string[], spec: ModelSpec, clean: ImageDataset): { names: string[]; images: ImageDataset } {
  const size = spec.imageSize * spec.imageSize * spec.inChannels;
  const images = new Uint8Array(files.length * size);
  files.forEach((f, i) => images.set(imageFor(f, spec), i * size));
  return {
    names: files.map((f) => basename(f)),
    images: { ...clean, images, labels: new Int32Array(files.length).fill(-1), count: files.length, source: files.join(', ') },
  };
}
