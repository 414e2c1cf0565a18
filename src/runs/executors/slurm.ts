// Runs on a Slurm cluster: a run folder (on the shared filesystem) gets a `slurm.sbatch` script that runs
// this same `nad` (same node binary, same dist/cli.js) on the folder, submitted with `sbatch --parsable`;
// `slurm.json` records the job. The job's own CLI writes status.json as a local run does; before it starts
// the folder's status says `running` on host "slurm" (owned by the queue), and when Slurm ends a job whose
// CLI never wrote an end (refused, killed, cancelled, timed out) `settleRun` marks the run failed or
// cancelled with Slurm's reason and the tail of its error file. States come from squeue, then sacct.
// No engine import: the extension host reads job states with this module.
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, delimiter, dirname, join } from 'node:path';
import { InputError } from '../../engine/types';
import { RunHandle, RunStore, writeFileAtomic, type RunKind, type RunSummary } from '../run-store';

/** What the user chose for the jobs (`--partition`, `--gpus`, `--time`, `--sbatch-arg`; the nad.slurm.* settings). */
export interface SlurmOptions {
  readonly partition?: string;
  readonly gpus?: number;
  /** Slurm's time limit syntax: `30`, `2:00:00`, `1-00:00:00`. */
  readonly time?: string;
  /** More sbatch arguments, one per item (`--mem=8G`, `--account=lab`). */
  readonly extraArgs?: readonly string[];
}

/** The files a Slurm run adds to its folder. */
export const SLURM_FILES = { script: 'slurm.sbatch', job: 'slurm.json', out: 'slurm.out', err: 'slurm.err' } as const;

/** The host that status.json names while the run waits in the queue (no process of ours owns it yet). */
export const SLURM_OWNER = 'slurm';

/** slurm.json: which job runs the folder, and how it was submitted (the job id changes when it is resubmitted). */
export interface SlurmJobRecord {
  readonly version: 1;
  readonly jobId: string;
  readonly submittedAt: string;
  /** Jobs this one waits for (afterok), e.g. the attacked model's training. */
  readonly after: readonly string[];
  readonly options: SlurmOptions;
  /** The sbatch command line as run. */
  readonly command: readonly string[];
}

/** Where a job is, in our words: waiting in the queue, running, or ended (then the run folder has the outcome). */
export type SlurmPhase = 'queued' | 'running' | 'ended';

export interface SlurmJobState {
  readonly jobId: string;
  /** Slurm's state (PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, TIMEOUT, PREEMPTED, NODE_FAIL...), or UNKNOWN. */
  readonly state: string;
  /** Slurm's reason (Resources, Dependency, NonZeroExitCode, DependencyNeverSatisfied...), when it gives one. */
  readonly reason?: string;
  readonly phase: SlurmPhase;
}

/** sbatch, squeue, sacct or scancel is not on PATH. */
export class SlurmMissingError extends InputError {
  constructor(readonly command: string) {
    super(
      `'${command}' was not found on PATH, so runs cannot go to Slurm: run on a machine with Slurm's client commands ` +
        `(a cluster's login node; Debian: apt-get install slurm-client) or use the local executor (--executor local, nad.executor "local")`,
    );
  }
}

const QUEUED = new Set(['PENDING', 'CONFIGURING', 'REQUEUED', 'REQUEUE_HOLD', 'REQUEUE_FED', 'RESV_DEL_HOLD', 'RESIZING']);
const RUNNING = new Set(['RUNNING', 'COMPLETING', 'STAGE_OUT', 'SIGNALING', 'SUSPENDED', 'STOPPED']);

/**
 * Slurm's state in our words. A preempted job submitted with --requeue shows as REQUEUED/PENDING and
 * resumes; PREEMPTED itself is final (the cluster did not requeue it): the run is failed, and can be resumed.
 */
export function phaseOf(state: string): SlurmPhase {
  const s = state.split(/\s/)[0].replace(/\+$/, '');
  if (QUEUED.has(s)) return 'queued';
  if (RUNNING.has(s)) return 'running';
  return 'ended';
}

/** The full path of a Slurm command, or SlurmMissingError. `env` is the environment the command will run in. */
export function slurmCommand(name: string, env: NodeJS.ProcessEnv = process.env): string {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const file = join(dir, name);
    try {
      if (statSync(file).isFile()) return file;
    } catch {
      // not in this folder
    }
  }
  throw new SlurmMissingError(name);
}

/** Runs a Slurm query command without blocking (the extension host asks squeue too). */
function run(name: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<{ ok: boolean; out: string; err: string }> {
  const file = slurmCommand(name, env);
  return new Promise((resolve) => {
    execFile(file, args, { env, encoding: 'utf8', timeout: 60_000 }, (error, stdout, stderr) =>
      resolve({ ok: !error, out: stdout, err: (stderr || error?.message || '').trim() }),
    );
  });
}

/** A word for sh, quoted when it needs to be. */
function shellWord(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The sbatch arguments for the options, checked: each problem names the option. */
export function sbatchArgs(o: SlurmOptions): string[] {
  const args: string[] = [];
  if (o.partition !== undefined) {
    if (!/^[\w.,-]+$/.test(o.partition)) throw new InputError(`--partition: '${o.partition}' is not a Slurm partition name`);
    args.push(`--partition=${o.partition}`);
  }
  if (o.gpus !== undefined) {
    if (!Number.isInteger(o.gpus) || o.gpus < 0) throw new InputError(`--gpus must be a whole number of GPUs, got ${o.gpus}`);
    if (o.gpus > 0) args.push(`--gpus=${o.gpus}`);
  }
  if (o.time !== undefined) {
    if (!/^(\d+-)?\d+(:\d+){0,2}$/.test(o.time))
      throw new InputError(`--time: '${o.time}' is not a Slurm time limit (minutes, H:MM:SS or D-HH:MM:SS)`);
    args.push(`--time=${o.time}`);
  }
  for (const a of o.extraArgs ?? []) {
    if (!a.startsWith('-')) throw new InputError(`--sbatch-arg: '${a}' is not an sbatch option (write --name=value)`);
    args.push(a);
  }
  return args;
}

export interface JobCommand {
  /** The node binary (process.execPath; Electron's runs as node). */
  readonly node: string;
  /** The CLI script, dist/cli.js of this very build. */
  readonly cli: string;
  /** The working folder of the job. */
  readonly cwd: string;
}

/** dist/cli.js beside the running bundle (the CLI, the worker), or InputError when there is none (sources run by tsx). */
export function thisCli(): string {
  const candidates = [process.argv[1], join(__dirname, 'cli.js')].filter((f): f is string => !!f && basename(f) === 'cli.js');
  const found = candidates.find((f) => existsSync(f));
  if (!found) throw new InputError('cannot find dist/cli.js for the Slurm job to run: build the CLI (npm run build) or give its path');
  return found;
}

/** The job script: the run folder's files for output, requeue allowed, and `nad run-folder <dir>`, which resumes. */
export function sbatchScript(runDir: string, name: string, o: SlurmOptions, cmd: JobCommand): string {
  const lines = [
    '#!/bin/sh',
    `# Runs ${basename(runDir)} with nad (${cmd.cli}); written when the run was submitted to Slurm.`,
    '# A requeued or preempted job continues the run from its last saved epoch.',
    `#SBATCH --job-name=${shellWord(`nad-${name}`.replace(/[^\w.-]+/g, '-').slice(0, 60))}`,
    `#SBATCH --output=${join(runDir, SLURM_FILES.out)}`,
    `#SBATCH --error=${join(runDir, SLURM_FILES.err)}`,
    '#SBATCH --open-mode=append',
    '#SBATCH --requeue',
    '#SBATCH --ntasks=1',
    `#SBATCH --chdir=${cmd.cwd}`,
    ...sbatchArgs({ partition: o.partition, gpus: o.gpus, time: o.time }).map((a) => `#SBATCH ${a}`),
    ...(o.extraArgs?.length ? [`# also given to sbatch: ${o.extraArgs.map(shellWord).join(' ')}`] : []),
    ...(process.versions.electron ? ['export ELECTRON_RUN_AS_NODE=1'] : []),
    `exec ${[cmd.node, cmd.cli, 'run-folder', runDir].map(shellWord).join(' ')}`,
    '',
  ];
  return lines.join('\n');
}

export function readJobRecord(runDir: string): SlurmJobRecord | undefined {
  const file = join(runDir, SLURM_FILES.job);
  if (!existsSync(file)) return undefined;
  try {
    const r = JSON.parse(readFileSync(file, 'utf8')) as Partial<SlurmJobRecord>;
    return typeof r.jobId === 'string' ? (r as SlurmJobRecord) : undefined;
  } catch {
    return undefined;
  }
}

/** Marks a prepared run folder as waiting in the Slurm queue (status.json owned by "slurm"). */
export function markQueued(runDir: string, kind: RunKind, startedAt = new Date().toISOString()): void {
  new RunHandle(basename(runDir), runDir, kind).setStatus({ state: 'running', kind, startedAt, host: SLURM_OWNER });
}

/**
 * Writes slurm.sbatch into the run folder and submits it; records the job in slurm.json. A refused
 * submission marks the run failed with sbatch's message and throws InputError.
 */
export function submitRunFolder(
  run: RunSummary,
  o: SlurmOptions,
  cmd: JobCommand,
  after: readonly string[] = [],
  env: NodeJS.ProcessEnv = process.env,
): SlurmJobRecord {
  slurmCommand('sbatch', env);
  sbatchArgs(o); // each option checked before anything is written
  const name = typeof run.config['name'] === 'string' ? (run.config['name'] as string) : run.id;
  const script = join(run.dir, SLURM_FILES.script);
  writeFileAtomic(script, sbatchScript(run.dir, name, o, cmd));
  const command = [
    'sbatch',
    '--parsable',
    ...(after.length ? [`--dependency=afterok:${after.join(':')}`, '--kill-on-invalid-dep=yes'] : []),
    ...(o.extraArgs ?? []),
    script,
  ];
  markQueued(run.dir, run.status.kind, run.status.startedAt);
  const r = spawnSync(slurmCommand('sbatch', env), command.slice(1), { env, encoding: 'utf8', timeout: 60_000 });
  const jobId = r.status === 0 ? r.stdout.trim().split(';')[0] : '';
  if (!/^\d+(_\d+)?$/.test(jobId)) {
    const why = (r.error?.message ?? r.stderr.trim()) || `sbatch exited with ${r.status}`;
    const error = `sbatch refused the job: ${why.replace(/^sbatch: error: /gm, '').replace(/\n/g, '; ')}`;
    new RunHandle(run.id, run.dir, run.status.kind).setStatus({
      state: 'failed',
      kind: run.status.kind,
      startedAt: run.status.startedAt,
      endedAt: new Date().toISOString(),
      host: SLURM_OWNER,
      error,
    });
    throw new InputError(error, script);
  }
  const record: SlurmJobRecord = { version: 1, jobId, submittedAt: new Date().toISOString(), after, options: o, command };
  writeFileAtomic(join(run.dir, SLURM_FILES.job), JSON.stringify(record, null, 2) + '\n');
  return record;
}

/** The states of jobs: squeue (queued, running and recently ended jobs), then sacct for older ones; UNKNOWN when neither knows. */
export async function queryJobs(ids: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<Map<string, SlurmJobState>> {
  const states = new Map<string, SlurmJobState>();
  if (!ids.length) return states;
  const add = (line: string): void => {
    const [id, state, reason] = line.split('|').map((s) => s.trim());
    if (!id || !state || !ids.includes(id) || states.has(id)) return;
    const r = reason && reason !== 'None' && reason !== '(null)' ? reason : undefined;
    states.set(id, { jobId: id, state: state.split(/\s/)[0], ...(r ? { reason: r } : {}), phase: phaseOf(state) });
  };
  const q = await run('squeue', ['-h', '-t', 'all', '-o', '%i|%T|%r', '-j', ids.join(',')], env);
  if (q.ok) q.out.split('\n').forEach(add);
  const rest = ids.filter((id) => !states.has(id));
  if (rest.length) {
    try {
      const a = await run('sacct', ['-n', '-P', '-X', '-o', 'JobID,State,Reason', '-j', rest.join(',')], env);
      if (a.ok) a.out.split('\n').forEach(add);
    } catch (e) {
      if (!(e instanceof SlurmMissingError)) throw e;
    }
  }
  for (const id of ids) if (!states.has(id)) states.set(id, { jobId: id, state: 'UNKNOWN', phase: 'ended' });
  return states;
}

/** Cancels a run's Slurm job with scancel; the run is then marked cancelled by `settleRun`. */
export async function cancelRunJob(runDir: string, env: NodeJS.ProcessEnv = process.env): Promise<SlurmJobRecord> {
  const job = readJobRecord(runDir);
  if (!job) throw new InputError('this run was not submitted to Slurm (no slurm.json)', runDir);
  const r = await run('scancel', [job.jobId], env);
  if (!r.ok) throw new InputError(`scancel ${job.jobId} failed: ${r.err}`, runDir);
  return job;
}

/** What the job's error file says: its last error line (`Error: ...`, `nad: error: ...`), else its last lines. */
export function errorTail(runDir: string, lines = 5): string {
  const file = join(runDir, SLURM_FILES.err);
  if (!existsSync(file)) return '';
  const all = readFileSync(file, 'utf8').trimEnd().split('\n');
  const error = all.filter((l) => /^(\w*Error\b|nad: error:|slurmstepd: error:|sbatch: error:)/.test(l.trim())).pop();
  return error?.trim() ?? all.slice(-lines).join('\n');
}

/**
 * When Slurm has ended a job but the run folder still says running (our CLI never started, or was killed
 * before it could write its end), writes the end: cancelled for CANCELLED, else failed with Slurm's state,
 * reason and the tail of slurm.err. Returns the run as read afterwards.
 */
export function settleRun(runDir: string, job: SlurmJobState): RunSummary | undefined {
  const read = new RunStore('', dirname(runDir)).read(basename(runDir));
  if ('problem' in read) return undefined;
  const s = read.status;
  if (job.phase !== 'ended' || (s.state !== 'running' && s.state !== 'interrupted')) return read;
  const said = `Slurm job ${job.jobId} ended ${job.state}${job.reason ? ` (${job.reason})` : ''}`;
  const why =
    job.reason === 'DependencyNeverSatisfied'
      ? `${said}: the job it waited for did not finish`
      : job.state === 'UNKNOWN'
        ? `Slurm job ${job.jobId} is no longer known to squeue or sacct and the run did not finish`
        : `${said} before the run finished`;
  const tail = errorTail(runDir);
  const cancelled = job.state === 'CANCELLED' && job.reason !== 'DependencyNeverSatisfied';
  const handle = new RunHandle(read.id, read.dir, s.kind);
  handle.setStatus({
    ...s,
    state: cancelled ? 'cancelled' : 'failed',
    endedAt: new Date().toISOString(),
    error: tail ? `${why}; ${SLURM_FILES.err}: ${tail}` : why,
  });
  const settled = new RunStore('', dirname(runDir)).read(basename(runDir));
  return 'problem' in settled ? undefined : settled;
}

/** The Slurm jobs of run folders (those with slurm.json), with their states, settling the ended ones. */
export async function trackRuns(runDirs: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<Map<string, SlurmJobState>> {
  const jobs = new Map<string, SlurmJobRecord>();
  for (const dir of runDirs) {
    const job = readJobRecord(dir);
    if (job) jobs.set(dir, job);
  }
  const states = await queryJobs(
    [...jobs.values()].map((j) => j.jobId),
    env,
  );
  const out = new Map<string, SlurmJobState>();
  for (const [dir, job] of jobs) {
    const state = states.get(job.jobId) ?? { jobId: job.jobId, state: 'UNKNOWN', phase: 'ended' as const };
    settleRun(dir, state);
    out.set(dir, state);
  }
  return out;
}
