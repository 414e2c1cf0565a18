// One training phase inside a run: trains with the engine's loop, saves the model after every epoch
// (with the epoch in its metadata, so that an interrupted run resumes there), and streams the events.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { attentionSnapshot } from '../../engine/attention-snapshot';
import { readCheckpoint, saveModelFile, specMetadata } from '../../engine/checkpoint';
import type { PhaseRequest, TrainPhase } from '../../engine/defenses/registry';
import { evaluate } from '../../engine/evaluate';
import type { Model } from '../../engine/models';
import { train } from '../../engine/train';
import { appendEpochAttention } from '../attention-files';
import { validateTraining } from '../config';
import { MODEL_FILES } from '../run-store';
import type { Env } from './lifecycle';
import type { TestData } from './inputs';

export async function saveModel(env: Env, rel: string, model: Model, extra: Record<string, string>): Promise<string> {
  const file = env.run.path(rel);
  mkdirSync(dirname(file), { recursive: true });
  await saveModelFile(file, model.params.toStateDict(), { ...specMetadata(model.spec), ...extra });
  return file;
}

/** The `trainPhase` a job hands to the engine (defenses) for this run. */
export function trainPhaseIn(env: Env, test: TestData): TrainPhase {
  return async (req: PhaseRequest) => {
    validateTraining(req.settings, req.label);
    const rel = MODEL_FILES[req.output];
    env.emit({ type: 'phase', phase: req.phase, label: req.label, epochs: req.settings.epochs });
    // Resuming: start from the weights this phase saved after its last completed epoch.
    const done = env.resume?.epochsDone[rel] ?? 0;
    if (done > 0) {
      // Our own file, read into a model of a known architecture: its limit applies before the file is read.
      const saved = await readCheckpoint(env.run.path(rel), { arch: req.student.spec });
      req.student.params.loadStateDict(saved.stateDict, env.run.path(rel));
    }
    if (done >= req.settings.epochs) return evaluate(req.student, test.evalSets, env.memo);
    const records = await train({
      startEpoch: done,
      student: req.student,
      teacher: req.teacher,
      data: req.data,
      evalSets: test.evalSets,
      settings: req.settings,
      signal: env.signal,
      phase: req.phase,
      emit: env.emit,
      afterStep: req.afterStep,
      hook: req.hook,
      epochData: req.epochData,
      memo: env.memo,
      onEpochEnd: async (epoch) => {
        await saveModel(env, rel, req.student, { epoch: String(epoch) });
        if (req.attentionAs) {
          const snapshot = attentionSnapshot(req.attentionAs, req.student, test.samples, epoch);
          appendEpochAttention(env.run, snapshot);
          env.emit({ type: 'attention', snapshot });
        }
      },
    });
    const last = records[records.length - 1];
    return { acc: last.acc, asr: last.asr, ...(last.ra !== undefined ? { ra: last.ra } : {}) };
  };
}
