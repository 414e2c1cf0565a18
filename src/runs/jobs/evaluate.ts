// Jobs that measure without training: ACC/ASR of a model, attention maps of models on test images.
import type { AttentionSamples } from '../../engine/attention-snapshot';
import { attentionSnapshot } from '../../engine/attention-snapshot';
import { classBreakdown, evaluate, type ClassBreakdown, type EvalSets } from '../../engine/evaluate';
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

const share = (n: number, of: number): number => (of > 0 ? Math.round((10000 * n) / of) / 100 : 0);

/**
 * The final model's per-class results: accuracy per class on clean images, ASR and RA per true class of the
 * triggered ones, and both confusion matrices, as `chart` events of the panel's "Per class" section.
 */
export function reportClasses(env: Env, model: Model, sets: EvalSets): ClassBreakdown {
  const b = classBreakdown(model, sets, env.memo);
  const names = sets.clean.classNames?.length === b.numClasses ? sets.clean.classNames : undefined;
  // Digits are named by their digit: "3", not "3 3".
  const labels = Array.from({ length: b.numClasses }, (_, c) => (names && names[c] !== String(c) ? `${c} ${names[c]}` : String(c)));
  const rowSum = (m: number[][], c: number): number => m[c].reduce((a, v) => a + v, 0);
  const series = [{ name: 'ACC (clean)', values: labels.map((_, c) => share(b.clean[c][c], rowSum(b.clean, c))) }];
  const { triggered, attackHits } = b;
  if (triggered && attackHits) {
    series.push(
      { name: 'ASR (triggered)', values: labels.map((_, c) => share(attackHits[c], rowSum(triggered, c))) },
      { name: 'RA (triggered)', values: labels.map((_, c) => share(triggered[c][c], rowSum(triggered, c))) },
    );
  }
  const common = { group: 'classes' as const, xLabel: 'predicted class', yLabel: 'true class' };
  env.emit({
    type: 'chart',
    id: 'classes',
    title: 'Per class (%): ACC on clean images; ASR and RA of triggered images by their true class',
    group: 'classes',
    xLabel: 'class',
    yLabel: '%',
    chart: { kind: 'bar', labels, series },
  });
  env.emit({
    type: 'chart',
    id: 'confusion-clean',
    title: `Confusion matrix, clean test images (${sets.clean.count})`,
    ...common,
    chart: { kind: 'matrix', rowLabels: labels, colLabels: labels, values: b.clean },
  });
  if (triggered) {
    env.emit({
      type: 'chart',
      id: 'confusion-triggered',
      title: `Confusion matrix, triggered non-target test images (${sets.backdoor?.count ?? 0}), by true class`,
      ...common,
      chart: { kind: 'matrix', rowLabels: labels, colLabels: labels, values: triggered },
    });
  }
  return b;
}

export async function evalJob(cfg: EvalJobConfig, env: Env): Promise<JobOutcome> {
  const test = await loadTestData(env.emit, cfg.test, cfg.backdoor);
  const { evalSets } = test;
  const model = await loadModelFile(cfg.model, evalSets.clean);
  try {
    const r = evaluate(model, evalSets, env.memo);
    env.emit({
      type: 'log',
      message: `ACC ${r.acc.toFixed(2)}% on ${evalSets.clean.count} images, ASR ${r.asr.toFixed(2)}% on ${evalSets.backdoor?.count ?? 0} triggered non-target images`,
    });
    const table = [{ model: 'evaluated', ...r }];
    env.emit({ type: 'table', rows: table });
    const classes = reportClasses(env, model, evalSets);
    await writeAttention(env, [['evaluated', model]], test.samples);
    return { ...r, table, classes };
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
