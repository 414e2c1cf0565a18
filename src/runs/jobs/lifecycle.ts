// A run's life: choose the backend, create (or reopen) its folder, tag and store its events, and leave
// the folder's status truthful whatever happens. This process (the CLI or the worker) is the only
// writer of the run's status.json; metrics.jsonl stores the same events the worker forwards.
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../engine/backend';
import type { ClassBreakdown } from '../../engine/evaluate';
import { PredictionMemo } from '../../engine/prediction-memo';
import { RunCancelledError } from '../../engine/train';
import { LIVE_ONLY_EVENTS, type EngineEvent, type EventSink, type RunEvent } from '../../shared/run-events';
import type { RunResult } from '../../shared/worker-protocol';
import type { JobConfig } from '../config';
import { EtaClock, type PlannedPhase } from '../eta';
import type { ResumePoint } from '../resume';
import { collectProvenance } from '../provenance';
import { RunStore, type RunHandle } from '../run-store';
import { acquireRunLock } from '../run-lock';
import { memoryLimitFromEnv } from '../memory-limit';
import { asOutOfMemory, wasmHeapGuard } from './memory-guard';

export interface JobContext {
  /** Working folder: runs are stored in <cwd>/.nad/runs unless `runsDir` is given. */
  readonly cwd: string;
  readonly runsDir?: string;
  /** Every event of the run, as stored (plus the live-only ones). */
  readonly onEvent?: (e: RunEvent) => void;
  readonly signal?: AbortSignal;
  /** Continue an interrupted run in its folder instead of creating one (see resume.ts). */
  readonly resume?: ResumePoint;
  /** Predictions shared by the runs of one sitting (a matrix); each run has its own otherwise. */
  readonly memo?: PredictionMemo;
}

export interface JobResult extends RunResult {
  /** A defense's own results (pruned channels, flagged classes...). */
  readonly report?: Readonly<Record<string, unknown>>;
  /** The final model's confusion matrices (results.json). */
  readonly classes?: ClassBreakdown;
}

/** What a job body gets: its run folder, the event sink, cancellation and the resume point. */
export interface Env {
  readonly run: RunHandle;
  readonly emit: EventSink;
  readonly signal?: AbortSignal;
  readonly resume?: ResumePoint;
  /** Predictions already made (see PredictionMemo): every final model goes over the test set once. */
  readonly memo: PredictionMemo;
}

export type JobOutcome = Omit<JobResult, 'runId' | 'runDir' | 'backend'>;

/** Run `body` as one run: `plan` is the phases it will train, for the ETA. */
export async function withRun(
  config: JobConfig,
  plan: readonly PlannedPhase[],
  ctx: JobContext,
  body: (env: Env) => Promise<JobOutcome>,
): Promise<JobResult> {
  const backend = await initBackend(config.backend);
  const store = new RunStore(ctx.cwd, ctx.runsDir);
  const run =
    ctx.resume?.run ??
    store.create(config.kind, { ...config, backendUsed: backend.name, provenance: collectProvenance(config, backend) }, config.name);
  // The run's lock (see run-lock.ts): a resume took it already; a new folder's is free.
  let tookOver: string | undefined;
  const lock = ctx.resume?.lock ?? acquireRunLock(run.dir, { log: (message) => (tookOver = message) });
  run.update({ backend: backend.description });
  const eta = new EtaClock(plan);
  // The worker's memory limit on the wasm heap (see memory-limit.ts), checked after every batch.
  const memoryLimit = memoryLimitFromEnv();
  const checkMemory = wasmHeapGuard(memoryLimit);
  const publish = (e: RunEvent): void => {
    if (!LIVE_ONLY_EVENTS.has(e.type)) run.appendMetric(e);
    if (e.type === 'epoch') run.update({ lastEpoch: e.epoch });
    ctx.onEvent?.(e);
  };
  const emit = (e: EngineEvent): void => {
    if (e.type === 'step' || e.type === 'epoch') checkMemory();
    const etaSeconds = eta.update(e);
    publish((e.type === 'step' || e.type === 'epoch') && etaSeconds !== undefined ? { ...e, etaSeconds } : e);
  };
  publish({
    type: 'started',
    runId: run.id,
    runDir: run.dir,
    kind: config.kind,
    backend: backend.description,
    resumed: ctx.resume !== undefined,
  });
  for (const reason of backend.fallbackReasons) emit({ type: 'log', message: `backend: ${reason}` });
  emit({ type: 'log', message: `backend: ${backend.description}` });
  if (tookOver) emit({ type: 'log', message: tookOver });
  const tensorsBefore = tf.memory().numTensors;
  const memo = ctx.memo ?? new PredictionMemo();
  const before = memo.counts();
  try {
    const out = await body({ run, emit, signal: ctx.signal, resume: ctx.resume, memo });
    const after = memo.counts();
    emit({
      type: 'log',
      message: `test predictions: ${after.forwarded - before.forwarded} images run through a model, ${after.reused - before.reused} read from an earlier pass of the same weights over the same images`,
    });
    // Every finished run stores its table (and a defense's report), for scripts and older readers.
    run.writeFile(
      'results.json',
      JSON.stringify(
        { table: out.table, ...(out.report ? { report: out.report } : {}), ...(out.classes ? { classes: out.classes } : {}) },
        null,
        2,
      ) + '\n',
    );
    publish({ type: 'ended', state: 'finished' });
    run.finish({
      acc: out.acc,
      asr: out.asr,
      ...(out.ra !== undefined && Number.isFinite(out.ra) ? { ra: out.ra } : {}),
      ...(out.der !== undefined ? { der: out.der } : {}),
    });
    return { ...out, runId: run.id, runDir: run.dir, backend: backend.description };
  } catch (thrown) {
    // An allocation that failed is said as what it is: out of memory, with the limit and what to do.
    const e = asOutOfMemory(thrown, memoryLimit) ?? thrown;
    const cancelled = e instanceof RunCancelledError;
    const error = e instanceof Error ? e.message : String(e);
    const ended: RunEvent = cancelled ? { type: 'ended', state: 'cancelled' } : { type: 'ended', state: 'failed', error };
    // On a full disk these writes may fail too: the run's end is still reported, and the first error is the one raised.
    // status.json then keeps "running" with this process's pid, which the run store reads as interrupted once it exits.
    const bestEffort = (what: string, write: () => void): void => {
      try {
        write();
      } catch (again) {
        ctx.onEvent?.({ type: 'log', message: `could not record ${what}: ${again instanceof Error ? again.message : String(again)}` });
      }
    };
    bestEffort("the run's end in metrics.jsonl", () => run.appendMetric(ended));
    ctx.onEvent?.(ended);
    bestEffort('the state in status.json', () => (cancelled ? run.cancel() : run.fail(error)));
    throw e;
  } finally {
    lock.release();
    const leaked = tf.memory().numTensors - tensorsBefore;
    if (leaked > 0) emit({ type: 'log', message: `warning: ${leaked} tensors were not released by this run` });
  }
}
