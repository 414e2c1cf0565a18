// Where a command's runs go: `--executor local` (this process) or `--executor slurm` with the sbatch
// options. A single run on Slurm is submitted, then followed with squeue until it ends (--no-wait: not).
import { Option, type Command } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { InputError } from '../engine/types';
import type { JobConfig } from '../runs/config';
import { submitRun } from '../runs/executors/slurm-submit';
import { trackRuns, type SlurmOptions } from '../runs/executors/slurm';
import { RunStore } from '../runs/run-store';
import type { ResultRow } from '../shared/run-events';

type Flags = Record<string, string | boolean | string[] | undefined>;

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

/** `--executor` and the sbatch options. */
export function addExecutorOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option('--executor <where>', 'where the runs go: this machine, or Slurm (sbatch)').choices(['local', 'slurm']).default('local'),
    )
    .option('--partition <p>', 'with --executor slurm: the partition (sbatch --partition)')
    .option('--gpus <n>', 'with --executor slurm: GPUs per job (sbatch --gpus)')
    .option('--time <t>', 'with --executor slurm: time limit per job (sbatch --time, e.g. 2:00:00)')
    .option('--sbatch-arg <arg>', 'with --executor slurm: one more sbatch argument, e.g. --sbatch-arg=--mem=8G (repeatable)', collect)
    .option('--no-wait', 'with --executor slurm: submit and return')
    .option('--poll <seconds>', 'with --executor slurm: how often to ask squeue while waiting', '5');
}

/** The SlurmOptions of the flags, or undefined for the local executor. */
export function slurmOptionsOf(f: Flags): SlurmOptions | undefined {
  if (f.executor !== 'slurm') {
    const given = (['partition', 'gpus', 'time', 'sbatchArg'] as const).find((k) => f[k] !== undefined);
    if (given) throw new InputError(`--${given === 'sbatchArg' ? 'sbatch-arg' : given} needs --executor slurm`);
    return undefined;
  }
  const gpus = typeof f.gpus === 'string' ? Number(f.gpus) : undefined;
  if (gpus !== undefined && !(Number.isInteger(gpus) && gpus >= 0))
    throw new InputError(`--gpus must be a whole number >= 0, got '${f.gpus}'`);
  return {
    ...(typeof f.partition === 'string' ? { partition: f.partition } : {}),
    ...(gpus !== undefined ? { gpus } : {}),
    ...(typeof f.time === 'string' ? { time: f.time } : {}),
    ...(Array.isArray(f.sbatchArg) ? { extraArgs: f.sbatchArg } : {}),
  };
}

/** How often to ask Slurm, ms, from --poll. */
export function pollMsOf(f: Flags): number {
  const s = Number(f.poll ?? 5);
  if (!Number.isFinite(s) || s < 0.1) throw new InputError(`--poll must be a number of seconds >= 0.1, got '${String(f.poll)}'`);
  return s * 1000;
}

/**
 * Submits one run to Slurm and, unless --no-wait, follows it until it ends: its result (the table of
 * results.json), or an error with the run's own. Ctrl-C stops the wait, not the job.
 */
export async function runOnSlurm(
  config: JobConfig,
  f: Flags,
  slurm: SlurmOptions,
  signal: AbortSignal,
): Promise<{ runId: string; runDir: string; jobId: string; state?: string; acc?: number; asr?: number; table?: ResultRow[] }> {
  const job = submitRun(config, { cwd: process.cwd(), runsDir: typeof f.runsDir === 'string' ? f.runsDir : undefined, slurm });
  process.stderr.write(`submitted to Slurm as job ${job.jobId}; run folder ${job.runDir}\n`);
  if (f.wait === false) return job;
  let last = '';
  for (;;) {
    const s = (await trackRuns([job.runDir])).get(job.runDir);
    const now = s ? `${s.state}${s.reason ? ` (${s.reason})` : ''}` : 'UNKNOWN';
    if (now !== last && !f.quiet) process.stderr.write(`Slurm job ${job.jobId}: ${now}\n`);
    last = now;
    if (!s || s.phase === 'ended') break;
    if (signal.aborted) throw new InputError(`stopped waiting; Slurm job ${job.jobId} goes on (nad cancel ${job.runDir} stops it)`);
    await sleep(pollMsOf(f), undefined, { signal }).catch(() => undefined);
  }
  const run = new RunStore('', join(job.runDir, '..')).read(job.runId);
  if ('problem' in run) throw new Error(`the run folder cannot be read (${run.problem})`);
  if (run.status.state !== 'finished') throw new Error(`the run ${run.status.state}${run.status.error ? `: ${run.status.error}` : ''}`);
  const results = join(job.runDir, 'results.json');
  const table = existsSync(results) ? (JSON.parse(readFileSync(results, 'utf8')) as { table?: ResultRow[] }).table : undefined;
  return { ...job, state: run.status.state, acc: run.status.acc, asr: run.status.asr, ...(table ? { table } : {}) };
}
