// Messages between the extension host and the run worker (src/worker/main.ts, a forked Node child).
// One worker process runs one request and exits: tfjs memory and wasm threads go away with it. The
// worker forwards the run's events (run-events.ts) unchanged, then one message that ends the request.
import type { ResultRow, RunEvent } from './run-events';

/**
 * What to run: a job config (checked by the worker with the runs layer's builder, since it crosses a
 * process boundary), the MNIST demo (three runs in a row), or an interrupted run continued in its folder.
 */
export type WorkerJob =
  | { readonly kind: 'job'; readonly config: object }
  | { readonly kind: 'demo'; readonly quick: boolean; readonly backend: string; readonly seed: number }
  | { readonly kind: 'resume'; readonly runDir: string }
  /** An attack x defense matrix file (*.nad-matrix.json): its cells run one after the other. */
  | { readonly kind: 'matrix'; readonly file: string }
  /** A train config's attack previewed on a sample of its data: an `images` event per gallery, no run folder. */
  | { readonly kind: 'preview'; readonly config: object; readonly samples?: number };

export interface WorkerRequest {
  readonly job: WorkerJob;
  /** Working folder (a workspace folder); runs go to `runsDir`. */
  readonly cwd: string;
  readonly runsDir: string;
  /** Submit a `job` or a `matrix` to Slurm instead of running it here (the worker returns once submitted). */
  readonly slurm?: SlurmSettings;
}

/** The sbatch options of the nad.slurm.* settings (checked by the runs layer in the worker). */
export interface SlurmSettings {
  readonly partition?: string;
  readonly gpus?: number;
  readonly time?: string;
  readonly extraArgs?: readonly string[];
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

/** A finished run's headline, as the host keeps it. */
export interface RunResult {
  readonly runId: string;
  readonly runDir: string;
  readonly backend: string;
  readonly acc: number;
  readonly asr: number;
  /** Robust accuracy of the produced/evaluated model, percent, where the test set allows it. */
  readonly ra?: number;
  /** A defense's effectiveness rating (BackdoorBench's DER), in [0, 1]. */
  readonly der?: number;
  readonly table: readonly ResultRow[];
  readonly modelPath?: string;
}

/** Worker to host: the run's events as they are, then what ended the request. */
export type WorkerToHost =
  | RunEvent
  /** A run of the request ended well (the demo sends one per run). */
  | { readonly type: 'runDone'; readonly result: RunResult }
  /** The whole request ended well; the worker exits next. */
  | { readonly type: 'done' }
  | { readonly type: 'failed'; readonly message: string; readonly kind: FailureKind; readonly file?: string }
  | { readonly type: 'cancelled' };

/** Worker messages that end a request. */
export function isFinal(msg: WorkerToHost): boolean {
  return msg.type === 'done' || msg.type === 'failed' || msg.type === 'cancelled';
}
