// Continuing an interrupted run in its own folder. Each training phase saves its model file after every
// epoch with the epoch in the metadata; resuming reloads those weights and trains from the next epoch
// (train() draws each epoch's data order from (seed, epoch), so the data seen is what an uninterrupted
// run would see; the optimizer's momentum starts afresh).
import { existsSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { hostname } from 'node:os';
import { readCheckpoint } from '../engine/checkpoint';
import type { JobConfig } from './config';
import { isResumable, MODEL_FILES, readRunEvents, RESUMABLE_KINDS, RunHandle, RunStore, writeFileAtomic } from './run-store';
import { InputError } from '../engine/types';
import { acquireRunLock, type AcquireOptions, type RunLock } from './run-lock';

/** The model files the jobs save after each epoch, in the order their phases run. */
const EPOCH_CHECKPOINTS = [MODEL_FILES.teacher, MODEL_FILES.model] as const;

/** What a job needs to continue a run: the reopened folder and the epochs done per model file. */
export interface ResumePoint {
  readonly run: RunHandle;
  /** Completed epochs per model file of the run folder, e.g. `model/teacher.safetensors` -> 10. */
  readonly epochsDone: Readonly<Record<string, number>>;
  /** The run folder's lock, taken by prepareResume; the job releases it when it ends. */
  readonly lock?: RunLock;
}

export interface PreparedResume {
  readonly config: JobConfig;
  readonly point: ResumePoint;
}

/**
 * Reopen a run folder for resuming: checks its state, reads the epochs its model files hold, drops
 * metric lines of epochs whose model was not saved, and marks it running again (owned by this process).
 */
export async function prepareResume(runDir: string, opts: Pick<AcquireOptions, 'takeOverOtherHost'> = {}): Promise<PreparedResume> {
  // First the lock: a second window (or `nad` command) resuming the same run is refused here, naming the owner.
  let tookOver: string | undefined;
  const lock = acquireRunLock(runDir, { ...opts, log: (message) => (tookOver = message) });
  try {
    return await reopen(runDir, lock, tookOver);
  } catch (e) {
    lock.release();
    throw e;
  }
}

async function reopen(runDir: string, lock: RunLock, tookOver: string | undefined): Promise<PreparedResume> {
  const id = basename(runDir);
  const read = new RunStore('', dirname(runDir)).read(id);
  if ('problem' in read) throw new InputError(`the run folder cannot be read (${read.problem})`, runDir);
  const { status } = read;
  if (!isResumable(read)) {
    const why = RESUMABLE_KINDS.includes(status.kind)
      ? `it is ${status.state}`
      : `a ${status.kind} run does not train; run it again instead`;
    throw new InputError(`this run cannot be resumed: ${why}`, runDir);
  }
  const {
    backendUsed: _backendUsed,
    provenance: _provenance,
    ...config
  } = read.config as Record<string, unknown> & { backendUsed?: unknown; provenance?: unknown };
  if (config['kind'] !== status.kind)
    throw new InputError(`config.json's kind (${String(config['kind'])}) is not the run's (${status.kind})`, join(runDir, 'config.json'));

  const epochsDone: Record<string, number> = {};
  for (const rel of EPOCH_CHECKPOINTS) {
    const file = join(runDir, rel);
    if (!existsSync(file)) continue;
    const epoch = Number((await readCheckpoint(file)).metadata['epoch']);
    if (Number.isInteger(epoch) && epoch > 0) epochsDone[rel] = epoch;
  }
  keepEpochMetrics(
    runDir,
    Object.values(epochsDone).reduce((a, b) => a + b, 0),
  );

  const run = new RunHandle(id, runDir, status.kind);
  run.setStatus({
    state: 'running',
    kind: status.kind,
    startedAt: status.startedAt,
    pid: process.pid,
    host: hostname(),
    backend: status.backend,
    lastEpoch: status.lastEpoch,
  });
  if (tookOver) run.appendMetric({ type: 'log', message: tookOver });
  const done = Object.entries(epochsDone).map(([rel, n]) => `${basename(rel, '.safetensors')} ${n}`);
  run.appendMetric({
    type: 'log',
    message: `resumed (${done.length ? `epochs done: ${done.join(', ')}` : 'no epoch was saved; starting over'})`,
  });
  return { config: config as unknown as JobConfig, point: { run, epochsDone, lock } };
}

/** Keep the first `count` epoch events (the ones whose model files were saved) and every other event. */
function keepEpochMetrics(runDir: string, count: number): void {
  const file = join(runDir, 'metrics.jsonl');
  if (!existsSync(file)) return;
  let epochs = 0;
  const kept = readRunEvents(runDir).events.filter((e) => e.type !== 'epoch' || ++epochs <= count);
  writeFileAtomic(file, kept.map((e) => JSON.stringify(e) + '\n').join(''));
}
