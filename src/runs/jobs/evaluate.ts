// Jobs that measure without training: ACC/ASR of a model, attention maps of models on test images.
import type { AttentionSamples } from '../../engine/attention-snapshot';
import { attentionSnapshot } from '../../engine/attention-snapshot';
import { evaluate } from '../../engine/evaluate';
import type { Model } from '../../engine/models';
import { InputError } from '../../engine/types';
import type { ResultRow } from '../../shared/run-events';
import { saveAttentionFiles } from '../attention-files';
import type { AttentionJobConfig, EvalJobConfig } from '../config';
import { modelNamesOf } from './image-attention';
import { loadModelFile, loadTestData } from './inputs';
import type { Env, JobOutcome } from './lifecycle';

/** Store the final attention maps of `models` in the run folder. */
export async function writeAttention(env: Env, models: ReadonlyArray<readonly [string, Model]>, samples: AttentionSamples): Promise<void> {
  const snaps = models.map(([name, m]) => attentionSnapshot(name, m, samples, -1));
  const files = saveAttentionFiles(env.run, snaps, samples);
  env.emit({ type: 'log', message: `attention maps: ${files} files in ${env.run.path('attention')}` });
}

export async function evalJob(cfg: EvalJobConfig, env: Env): Promise<JobOutcome> {
  const test = await loadTestData(env.emit, cfg.test, cfg.backdoor);
  const { evalSets } = test;
  const model = await loadModelFile(cfg.model, evalSets.clean);
  try {
    const r = evaluate(model, evalSets);
    env.emit({
      type: 'log',
      message: `ACC ${r.acc.toFixed(2)}% on ${evalSets.clean.count} images, ASR ${r.asr.toFixed(2)}% on ${evalSets.backdoor?.count ?? 0} triggered non-target images`,
    });
    const table = [{ model: 'evaluated', ...r }];
    env.emit({ type: 'table', rows: table });
    await writeAttention(env, [['evaluated', model]], test.samples);
    return { ...r, table };
  } finally {
    model.dispose();
  }
}

export async function attentionJob(cfg: AttentionJobConfig, env: Env): Promise<JobOutcome> {
  if (cfg.models.length === 0) throw new InputError('give at least one model file');
  const test = await loadTestData(env.emit, cfg.test, cfg.backdoor, cfg.count);
  const models: Array<readonly [string, Model]> = [];
  try {
    const names = modelNamesOf(cfg.models);
    for (const [i, file] of cfg.models.entries()) models.push([names[i], await loadModelFile(file, test.evalSets.clean)]);
    const table: ResultRow[] = [];
    for (const [, m] of models) table.push({ model: 'evaluated', ...evaluate(m, test.evalSets) });
    await writeAttention(env, models, test.samples);
    return { acc: table[0].acc, asr: table[0].asr, ra: table[0].ra, table };
  } finally {
    for (const [, m] of models) m.dispose();
  }
}
