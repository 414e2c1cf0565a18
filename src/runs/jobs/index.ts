// The engine's jobs as runs: each takes a plain config, an event callback and an AbortSignal, stores
// its run folder, and returns plain results. The CLI, the extension's worker and the tests call these.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../../engine/types';
import type { AttentionSnapshot } from '../../shared/run-events';
import type { ImageAttentionConfig, JobConfig, RunConfig } from '../config';
import type { PlannedPhase } from '../eta';
import type { RunHandle } from '../run-store';
import { defendJob, defenseJobOf, defensePhases } from './defend';
import { attentionJob, evalJob } from './evaluate';
import { imageAttentionBody } from './image-attention';
import { withRun, type JobContext, type JobResult } from './lifecycle';
import { resolveDataDefaults } from './resolve';
import { attackOf, trainJob } from './train';

export type { JobContext, JobResult } from './lifecycle';
export { modelNamesOf } from './image-attention';
export type { ImageAttentionConfig } from '../config';

/** The training phases a job will run, in order: for the ETA, and to place epoch lines of older runs. */
export function phasesOf(config: RunConfig): readonly PlannedPhase[] {
  switch (config.kind) {
    case 'train':
      return [{ phase: 'train', epochs: config.training.epochs }];
    case 'finetune':
    case 'erase':
    case 'defend':
      return defensePhases(defenseJobOf(config));
    case 'eval':
    case 'attention':
    case 'imageAttention':
      return [];
    default: {
      const never: never = config;
      throw new InputError(`unknown job kind ${JSON.stringify((never as { kind?: unknown }).kind)}`);
    }
  }
}

/**
 * The config as it will run, so that config.json reproduces the run: a defense's schedule and
 * parameters complete; an attack's parameters complete and its trigger as the backdoor's.
 */
function complete(config: RunConfig): RunConfig {
  if (config.kind === 'defend') {
    const job = defenseJobOf(config);
    return { ...config, training: job.training, params: job.params };
  }
  if (config.kind === 'train' && config.attack) {
    const { attack, params } = attackOf(config.attack);
    return {
      ...config,
      attack: { name: attack.name, params },
      backdoor: { ...config.backdoor, trigger: attack.trigger(params, { data: config.data, targetLabel: config.backdoor.targetLabel }) },
    };
  }
  return config;
}

export async function runJob(given: JobConfig, ctx: JobContext): Promise<JobResult> {
  // The data's kind decides the defaults (data-defaults.ts); config.json records the result.
  const resolved = await resolveDataDefaults(given, ctx.resume);
  const config = complete(resolved.config);
  // A folder prepared before its data was read (a Slurm job's) records the schedules it runs now.
  if (ctx.resume) recordResolved(ctx.resume.run, config);
  const plan = phasesOf(config);
  switch (config.kind) {
    case 'train':
      return withRun(config, plan, ctx, (env) => trainJob(config, env, resolved.trainData));
    case 'finetune':
    case 'erase':
    case 'defend':
      return withRun(config, plan, ctx, (env) => defendJob(config, env));
    case 'eval':
      return withRun(config, plan, ctx, (env) => evalJob(config, env));
    case 'attention':
      return withRun(config, plan, ctx, (env) => attentionJob(config, env));
    case 'imageAttention':
      return withRun(config, plan, ctx, async (env) => {
        await imageAttentionBody(config, env.run, (message) => env.emit({ type: 'log', message }), env.signal);
        return { acc: NaN, asr: NaN, table: [] };
      });
    default: {
      const never: never = config;
      throw new InputError(`unknown job kind ${JSON.stringify((never as { kind?: unknown }).kind)}`);
    }
  }
}

/** config.json with the resolved config's fields over it (what the run layer added, backend and provenance, stays). */
function recordResolved(run: RunHandle, config: RunConfig): void {
  if (!run.exists('config.json')) return;
  const stored = JSON.parse(readFileSync(run.path('config.json'), 'utf8')) as Record<string, unknown>;
  const updated = { ...stored, ...config };
  if (JSON.stringify(updated) !== JSON.stringify(stored)) run.writeFile('config.json', JSON.stringify(updated, null, 2) + '\n');
}

export interface ImageAttentionResult extends JobResult {
  /** attention/maps.json inside the run folder. */
  readonly mapsFile: string;
  /** Per model (in config order): its prediction for each image, clean and triggered. */
  readonly predictions: ReadonlyArray<{ readonly model: string; readonly clean: number[]; readonly triggered: number[] }>;
}

/** Attention maps of PNG/JPEG images as a run of its own; reads back the maps file and the predictions. */
export async function imageAttention(cfg: ImageAttentionConfig, ctx: JobContext): Promise<ImageAttentionResult> {
  const result = await runJob(cfg, ctx);
  const mapsFile = join(result.runDir, 'attention', 'maps.json');
  const maps = JSON.parse(readFileSync(mapsFile, 'utf8')) as { snapshots: AttentionSnapshot[] };
  return {
    ...result,
    mapsFile,
    predictions: maps.snapshots.map((s) => ({ model: s.model, clean: [...s.predictions.clean], triggered: [...s.predictions.triggered] })),
  };
}
