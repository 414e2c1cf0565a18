// Messages between the extension host and the run worker (src/worker/main.ts, a forked Node child).
// One worker process runs one request and exits: tfjs memory and wasm threads go away with it.
import type { JobConfig } from '../runs/config';
import type { JobResult, Phase, ResultRow } from '../runs/jobs';
import type { AttentionSnapshot, SampleImages } from '../engine/attention-snapshot';
import type { TrainProgress } from '../engine/train';
import type { BackendPreference } from '../engine/backend';

/** What to run: a job config, the MNIST demo (three runs in a row), or an interrupted run continued in its folder. */
export type WorkerJob =
  | { readonly kind: 'job'; readonly config: JobConfig }
  | { readonly kind: 'demo'; readonly quick: boolean; readonly backend: BackendPreference; readonly seed: number }
  | { readonly kind: 'resume'; readonly runDir: string };

export interface WorkerRequest {
  readonly job: WorkerJob;
  /** Working folder (a workspace folder); runs go to `runsDir`. */
  readonly cwd: string;
  readonly runsDir: string;
}

/** Host to worker. */
export type HostToWorker =
  | { readonly type: 'start'; readonly request: WorkerRequest }
  /** Stop after the current batch; the run folder is kept and marked cancelled. */
  | { readonly type: 'cancel' };

/** Why a run failed, so that the host can offer the right way out. */
export type FailureKind =
  /** A file, folder or setting the user gave is wrong: `file` names it. */
  | 'input'
  /** The loss became NaN: lower the learning rate or betas. */
  | 'diverged'
  /** No TensorFlow.js backend could start. */
  | 'backend'
  | 'internal';

export interface LiveProgress {
  readonly phase: Phase;
  /** Epochs of this phase (the `phase` message's count). */
  readonly epochs: number;
  readonly progress: TrainProgress;
  /** Estimated seconds left in this run (this phase and the ones after it), once there is a rate. */
  readonly etaSeconds?: number;
}

/** Worker to host. Every message after `started` belongs to the run it named, until the next `started`. */
export type WorkerToHost =
  | { readonly type: 'started'; readonly runId: string; readonly runDir: string; readonly backend: string; readonly resumed: boolean }
  | { readonly type: 'phase'; readonly phase: Phase; readonly label: string; readonly epochs?: number }
  | ({ readonly type: 'progress' } & LiveProgress)
  | { readonly type: 'table'; readonly rows: readonly ResultRow[] }
  | { readonly type: 'attention'; readonly snapshot: AttentionSnapshot }
  | { readonly type: 'samples'; readonly samples: SampleImages }
  | { readonly type: 'log'; readonly message: string }
  /** A run of the request ended well (the demo sends one per run). */
  | { readonly type: 'runDone'; readonly result: JobResult }
  /** The whole request ended well; the worker exits next. */
  | { readonly type: 'done' }
  | { readonly type: 'failed'; readonly message: string; readonly kind: FailureKind; readonly file?: string }
  | { readonly type: 'cancelled' };

/** Worker messages that end a request. */
export function isFinal(msg: WorkerToHost): boolean {
  return msg.type === 'done' || msg.type === 'failed' || msg.type === 'cancelled';
}

/** Structural check of a message from the other side of an IPC channel (it is untyped there). */
export function isHostToWorker(value: unknown): value is HostToWorker {
  if (typeof value !== 'object' || value === null) return false;
  const type = (value as { type?: unknown }).type;
  return type === 'cancel' || (type === 'start' && typeof (value as { request?: unknown }).request === 'object');
}

export function isWorkerToHost(value: unknown): value is WorkerToHost {
  if (typeof value !== 'object' || value === null) return false;
  const type = (value as { type?: unknown }).type;
  return typeof type === 'string' && ['started', 'phase', 'progress', 'table', 'attention', 'samples', 'log', 'runDone', 'done', 'failed', 'cancelled'].includes(type);
}
