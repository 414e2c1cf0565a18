// Sending runs and matrices to Slurm, and the job's side. A run (or each matrix cell) gets its run folder
// as a local run does (config.json by the one config builder), then a job script in it (slurm.ts). A
// defense cell's job waits for its attacked model's training job (afterok). The job runs `nad run-folder
// <dir>`: it starts the prepared run in its folder, or, when Slurm requeued or preempted it, continues from
// the last saved epoch. Submitting a matrix again keeps finished cells and queued or running jobs, and
// resubmits the others in their own folders (they resume).
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { InputError } from '../../engine/types';
import type { JobConfig } from '../config';
import { runJob, type JobContext, type JobResult } from '../jobs';
import { cellConfig, madeTrigger, type CellOutcome, type MatrixResult } from '../matrix/run';
import { openMatrixFolder, readMatrixFolder } from '../matrix/folder';
import { cellKey, matrixCells, matrixId, type MatrixCell, type MatrixSpec } from '../matrix/spec';
import { prepareResume } from '../resume';
import { isResumable, MODEL_FILES, RESUMABLE_KINDS, RunHandle, RunStore, writeFileAtomic, type RunSummary } from '../run-store';
import {
  readJobRecord,
  sbatchArgs,
  slurmCommand,
  submitRunFolder,
  thisCli,
  trackRuns,
  type JobCommand,
  type SlurmJobState,
  type SlurmOptions,
} from './slurm';

export interface SlurmContext {
  readonly cwd: string;
  readonly runsDir?: string;
  readonly slurm: SlurmOptions;
  /** The node binary and CLI the jobs run; default: this process's node and the dist/cli.js beside this bundle. */
  readonly node?: string;
  readonly cli?: string;
  /** The environment of sbatch/squeue (PATH); default process.env. */
  readonly env?: NodeJS.ProcessEnv;
}

export interface SubmittedRun {
  readonly runId: string;
  readonly runDir: string;
  readonly jobId: string;
}

function jobCommand(ctx: SlurmContext): JobCommand {
  return { node: ctx.node ?? process.execPath, cli: ctx.cli ?? thisCli(), cwd: ctx.cwd };
}

function readRun(store: RunStore, id: string): RunSummary | undefined {
  const r = store.read(id);
  return 'problem' in r ? undefined : r;
}

/** One run to Slurm: its folder, its script, its job. */
export function submitRun(config: JobConfig, ctx: SlurmContext, after: readonly string[] = []): SubmittedRun {
  slurmCommand('sbatch', ctx.env);
  sbatchArgs(ctx.slurm);
  const cmd = jobCommand(ctx);
  const store = new RunStore(ctx.cwd, ctx.runsDir);
  const handle = store.create(config.kind, { ...config }, config.name);
  const run = readRun(store, handle.id);
  if (!run) throw new Error(`the new run folder ${handle.dir} cannot be read`);
  const job = submitRunFolder(run, ctx.slurm, cmd, after, ctx.env);
  return { runId: run.id, runDir: run.dir, jobId: job.jobId };
}

/**
 * The job's side (`nad run-folder <dir>`): runs the job of a prepared run folder there, from its last saved
 * epoch when an earlier attempt saved one. Slurm runs one instance of a job at a time, so a folder that
 * still says running (the queue's placeholder, or an attempt killed on another node) is taken over; one
 * running on this machine in a live process is not.
 */
export async function runPreparedFolder(
  runDir: string,
  ctx: Omit<JobContext, 'cwd' | 'runsDir' | 'resume'>,
): Promise<JobResult | undefined> {
  const id = basename(runDir);
  const store = new RunStore('', dirname(runDir));
  let read = store.read(id);
  // A requeued job may start while the killed attempt's process is still exiting: give it 30 s.
  for (let i = 0; i < 60 && !('problem' in read) && read.status.state === 'running' && read.status.host === hostname(); i++) {
    await sleep(500);
    read = store.read(id);
  }
  if ('problem' in read) throw new InputError(`the run folder cannot be read (${read.problem})`, runDir);
  const s = read.status;
  if (s.state === 'finished') return undefined;
  if (s.state === 'running' && s.host === hostname())
    throw new InputError(`the run is running in process ${s.pid} on this machine; cancel it first`, runDir);
  const base = { cwd: process.cwd(), runsDir: dirname(runDir), ...ctx };
  // Every start writes metrics.jsonl: without it, this is the run's first start (a resubmitted run has one).
  const first = !existsSync(join(runDir, 'metrics.jsonl'));
  if (!first && RESUMABLE_KINDS.includes(s.kind)) {
    if (!isResumable(read)) new RunHandle(id, runDir, s.kind).setStatus({ ...s, state: 'interrupted' });
    // Slurm ends a job's earlier attempt before it requeues it, possibly on another node: its lock is stale.
    const { config, point } = await prepareResume(runDir, { takeOverOtherHost: 'Slurm requeued the job' });
    return runJob(config, { ...base, resume: point });
  }
  // A first start, or a kind that does not train (eval, attention): the job runs afresh in the folder.
  const {
    backendUsed: _b,
    provenance: _p,
    ...config
  } = read.config as Record<string, unknown> & { backendUsed?: unknown; provenance?: unknown };
  const run = new RunHandle(id, runDir, s.kind);
  const withTrigger = triggerOfParent(config);
  if (withTrigger !== config) run.writeFile('config.json', JSON.stringify(withTrigger, null, 2) + '\n');
  run.setStatus({ state: 'running', kind: s.kind, startedAt: s.startedAt, pid: process.pid, host: hostname() });
  return runJob(withTrigger as unknown as JobConfig, { ...base, resume: { run, epochsDone: {} } });
}

/**
 * A matrix defense cell was submitted before its attacked model trained (its job waits on the training job),
 * so a trigger that the attack made while poisoning (Trojan's optimised one, trigger.json beside the model)
 * did not exist yet: the job takes it now, and config.json records it, as the local runner does at the start.
 */
function triggerOfParent(config: Record<string, unknown>): Record<string, unknown> {
  const model = config['model'];
  if (config['kind'] !== 'defend' || config['matrix'] === undefined || typeof model !== 'string') return config;
  const made = madeTrigger(resolve(model));
  const backdoor = config['backdoor'];
  if (!made || typeof backdoor !== 'object' || backdoor === null) return config;
  return { ...config, backdoor: { ...backdoor, trigger: made } };
}

export interface SlurmMatrixContext extends SlurmContext {
  /** One line per cell as it is submitted, kept, changes state in Slurm or ends. */
  readonly onLine?: (line: string) => void;
  readonly signal?: AbortSignal;
  /** How often the wait asks Slurm, ms (default 5000). */
  readonly pollMs?: number;
}

export interface SlurmMatrixSubmission {
  readonly id: string;
  readonly dir: string;
  readonly spec: MatrixSpec;
  /** Run folders of the cells that have one, by cellKey. */
  readonly runDirs: ReadonlyMap<string, string>;
}

/** Submits every cell that is not finished or already in the queue; returns at once (see waitForMatrix). */
export async function submitMatrix(spec: MatrixSpec, ctx: SlurmMatrixContext): Promise<SlurmMatrixSubmission> {
  slurmCommand('sbatch', ctx.env);
  sbatchArgs(ctx.slurm);
  const cmd = jobCommand(ctx);
  const id = matrixId(spec);
  const { dir, store, state, save } = openMatrixFolder(id, spec, ctx);
  const cells = matrixCells(spec);
  const earlierDirs = Object.values(state.cells).map((runId) => join(store.runsDir, runId));
  const jobs = await trackRuns(earlierDirs, ctx.env);
  const runDirs = new Map<string, string>();
  // Per attacked model: its run, and its job when it is still in the queue.
  const trained = new Map<string, { runId?: string; jobId?: string; ok: boolean }>();
  for (const [index, cell] of cells.entries()) {
    const key = cellKey(cell);
    const say = (what: string): void => ctx.onLine?.(`[${index + 1}/${cells.length}] ${key}: ${what}`);
    const trainKey = cellKey({ attack: cell.attack, seed: cell.seed });
    const parent = cell.defense === undefined ? undefined : trained.get(trainKey);
    const remember = (r: { runId?: string; jobId?: string; ok: boolean }): void => {
      if (cell.defense === undefined) trained.set(trainKey, r);
    };
    if (parent && !parent.ok) {
      say('skipped: the attacked model did not train');
      continue;
    }
    const earlier = state.cells[key] ? readRun(store, state.cells[key]) : undefined;
    const job: SlurmJobState | undefined = earlier ? jobs.get(earlier.dir) : undefined;
    if (earlier) runDirs.set(key, earlier.dir);
    if (earlier?.status.state === 'finished') {
      say('kept from an earlier sitting (finished)');
      remember({ runId: earlier.id, ok: true });
      continue;
    }
    if (earlier && job && job.phase !== 'ended') {
      say(`kept: Slurm job ${job.jobId} is ${job.state}`);
      remember({ runId: earlier.id, jobId: job.jobId, ok: true });
      continue;
    }
    const after = parent?.jobId ? [parent.jobId] : [];
    try {
      let run: RunSummary;
      if (earlier && isResumable(earlier)) {
        run = earlier;
      } else {
        const modelFile = parent?.runId ? join(store.runsDir, parent.runId, MODEL_FILES.model) : undefined;
        const config = cellConfig(spec, cell as MatrixCell, modelFile, id);
        const handle = store.create(config.kind, { ...config }, config.name);
        state.cells[key] = handle.id;
        delete state.errors[key];
        save();
        const read = readRun(store, handle.id);
        if (!read) throw new Error(`the new run folder ${handle.dir} cannot be read`);
        run = read;
      }
      runDirs.set(key, run.dir);
      const submitted = submitRunFolder(run, ctx.slurm, cmd, after, ctx.env);
      say(
        `${run === earlier ? 'resubmitted (it resumes in its folder)' : 'submitted'} as Slurm job ${submitted.jobId}${after.length ? ` (after job ${after[0]})` : ''}`,
      );
      remember({ runId: run.id, jobId: submitted.jobId, ok: true });
    } catch (e) {
      if (!(e instanceof InputError)) throw e;
      if (!state.cells[key]) {
        state.errors[key] = e.message;
        save();
      }
      say(`failed: ${e.message}`);
      remember({ ok: false });
    }
  }
  return { id, dir, spec, runDirs };
}

/** The cells' outcomes from their folders, as the local runner reports them (defenses of a model that did not train: skipped). */
export function matrixOutcomes(sub: SlurmMatrixSubmission, runsDir: string): CellOutcome[] {
  const folder = readMatrixFolder(sub.dir, runsDir);
  const trained = new Map<string, CellOutcome>();
  return folder.outcomes.map((o) => {
    const key = cellKey({ attack: o.cell.attack, seed: o.cell.seed });
    if (o.cell.defense === undefined) trained.set(key, o);
    const parent = o.cell.defense === undefined ? undefined : trained.get(key);
    if (parent && parent.state !== 'finished' && o.state !== 'finished')
      return { cell: o.cell, runId: o.runId, state: 'skipped', error: `the attacked model (${key}) did not train` };
    return o;
  });
}

/**
 * Waits until every cell's job has ended, reporting state changes; settles jobs Slurm ended without our
 * CLI writing an end. Cancelling (ctx.signal) stops the wait only: the jobs stay queued.
 */
export async function waitForMatrix(sub: SlurmMatrixSubmission, ctx: SlurmMatrixContext): Promise<MatrixResult> {
  const runsDir = ctx.runsDir ?? new RunStore(ctx.cwd).runsDir;
  const seen = new Map<string, string>();
  const keyOf = new Map([...sub.runDirs].map(([key, d]) => [d, key]));
  for (;;) {
    const states = await trackRuns([...sub.runDirs.values()], ctx.env);
    let active = 0;
    for (const [d, s] of states) {
      const key = keyOf.get(d) ?? d;
      const now = s.phase === 'ended' ? endLine(d) : `Slurm ${s.state}${s.reason && s.reason !== 'None' ? ` (${s.reason})` : ''}`;
      if (s.phase !== 'ended') active++;
      if (seen.get(d) !== now) ctx.onLine?.(`${key}: ${now}`);
      seen.set(d, now);
    }
    if (!active) break;
    if (ctx.signal?.aborted)
      throw new InputError(`stopped waiting; ${active} Slurm jobs go on (run the same command again to wait for them)`);
    await sleep(ctx.pollMs ?? 5000, undefined, { signal: ctx.signal }).catch(() => undefined);
  }
  const outcomes = matrixOutcomes(sub, runsDir);
  writeFileAtomic(join(sub.dir, 'outcomes.json'), JSON.stringify({ version: 1, outcomes }, null, 2) + '\n');
  return { id: sub.id, dir: sub.dir, spec: sub.spec, outcomes };
}

function endLine(runDir: string): string {
  const r = new RunStore('', dirname(runDir)).read(basename(runDir));
  if ('problem' in r) return `unreadable (${r.problem})`;
  const s = r.status;
  if (s.state !== 'finished') return `${s.state}${s.error ? `: ${s.error}` : ''}`;
  return `ACC ${s.acc?.toFixed(2)}, ASR ${s.asr?.toFixed(2)}${s.der !== undefined ? `, DER ${s.der.toFixed(3)}` : ''}`;
}

/** The Slurm jobs of a matrix's cells, by cellKey (cells not submitted to Slurm are absent). */
export function matrixJobs(sub: SlurmMatrixSubmission): Map<string, string> {
  const out = new Map<string, string>();
  for (const [key, d] of sub.runDirs) {
    const job = readJobRecord(d);
    if (job) out.set(key, job.jobId);
  }
  return out;
}
