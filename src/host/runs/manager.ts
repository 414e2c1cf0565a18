// Starts runs in worker processes, queues them beyond `nad.maxConcurrentRuns`, cancels them, and keeps
// a live copy of what each run's panel shows. Notifications, status bar and log are in run-feedback.ts.
import * as vscode from 'vscode';
import type { HostToPanel, PanelSnapshot } from '../../shared/panel-protocol';
import { applyPanelMessage } from '../../shared/panel-protocol';
import { describeEvent } from '../../shared/run-state';
import type { FailureKind, RunResult, WorkerJob, WorkerToHost } from '../../shared/worker-protocol';
import { readRunSnapshot } from '../../runs/run-folder';
import { WorkerClient, type WorkerExit } from './worker-client';
import { slurmSettings } from '../settings';
import { explainWorkerCrash, failDeadRun } from '../../runs/memory-limit';

/** A worker that does not stop this long after Cancel is killed. */
const CANCEL_GRACE_MS = 10_000;
/** Ended tasks kept for taskFor/all(): each holds its run's snapshot (≈ 0.1 MB for a short run); the folder has it all. */
const KEEP_ENDED = 20;

export interface RunRequest {
  /** What notifications and the status bar call it, e.g. "Erase backdoor (model.pth)". */
  readonly title: string;
  readonly job: WorkerJob;
  readonly cwd: string;
  readonly runsDir: string;
  /** Offered as "Pick Another File" when a file the run reads is wrong. */
  readonly retry?: () => void;
  /** The config file it came from, offered as "Open Config File" when it is wrong. */
  readonly configFile?: string;
  /** Open the run panel when the run starts (default true). */
  readonly openPanel?: boolean;
  /** A progress notification while it runs and a message when it ends (default true); false when the caller shows its own. */
  readonly notify?: boolean;
}

export type TaskState = 'queued' | 'running' | 'finished' | 'failed' | 'cancelled';

export interface TaskFailure {
  readonly message: string;
  readonly kind: FailureKind | 'crash';
  readonly file?: string;
  readonly stderrTail: readonly string[];
}

export class RunTask {
  state: TaskState = 'queued';
  /** The run folder being written (the demo writes several in turn). */
  runDir: string | undefined;
  readonly runDirs: string[] = [];
  snapshot: PanelSnapshot | undefined;
  failure: TaskFailure | undefined;
  readonly results: RunResult[] = [];
  worker: WorkerClient | undefined;
  cancelRequested = false;
  /** Set when nad.executor sent it to Slurm: the task ends once submitted, the job runs on. */
  slurm = false;
  private settle: (t: RunTask) => void = () => undefined;
  /** Resolves when the task has ended, whichever way. */
  readonly ended = new Promise<RunTask>((r) => (this.settle = r));

  constructor(
    readonly id: number,
    readonly request: RunRequest,
  ) {}

  end(state: Exclude<TaskState, 'queued' | 'running'>): void {
    this.state = state;
    this.settle(this);
  }
}

export interface RunStartedEvent {
  readonly task: RunTask;
  readonly runDir: string;
  readonly previous?: string;
}

export class RunManager implements vscode.Disposable {
  private readonly tasks: RunTask[] = [];
  private nextId = 1;
  private readonly changed = new vscode.EventEmitter<RunTask>();
  private readonly panelUpdate = new vscode.EventEmitter<{ readonly runDir: string; readonly msg: HostToPanel }>();
  private readonly runStarted = new vscode.EventEmitter<RunStartedEvent>();
  private readonly output = new vscode.EventEmitter<{
    readonly task: RunTask;
    readonly line: string;
    readonly level: 'info' | 'warn' | 'error';
  }>();
  /** State or progress of a task changed. */
  readonly onDidChangeTask = this.changed.event;
  /** An update for the panel showing `runDir`. */
  readonly onPanelUpdate = this.panelUpdate.event;
  readonly onRunStarted = this.runStarted.event;
  readonly onOutput = this.output.event;

  constructor(
    private readonly workerPath: string,
    private readonly maxConcurrent: () => number,
    /** nad.workerMemoryLimitMB, read when each worker starts. */
    private readonly memoryLimitMb?: () => number,
  ) {}

  start(request: RunRequest): RunTask {
    const task = new RunTask(this.nextId++, request);
    this.forgetEnded();
    this.tasks.push(task);
    this.say(task, 'info', `${request.title}: queued`);
    this.changed.fire(task);
    this.pump();
    return task;
  }

  /** Drops all but the newest KEEP_ENDED ended tasks, so that a long session does not keep every run in memory. */
  private forgetEnded(): void {
    const ended = this.tasks.filter((t) => t.state !== 'queued' && t.state !== 'running');
    for (const t of ended.slice(0, Math.max(0, ended.length - KEEP_ENDED))) this.tasks.splice(this.tasks.indexOf(t), 1);
  }

  /** Tasks not ended yet (running first, then queued in order). */
  active(): RunTask[] {
    return this.tasks.filter((t) => t.state === 'running').concat(this.tasks.filter((t) => t.state === 'queued'));
  }

  all(): readonly RunTask[] {
    return this.tasks;
  }

  taskFor(runDir: string): RunTask | undefined {
    return [...this.tasks].reverse().find((t) => t.runDirs.includes(runDir));
  }

  /** The live snapshot of a run a task is writing now, if one is. */
  liveSnapshot(runDir: string): PanelSnapshot | undefined {
    const t = this.taskFor(runDir);
    return t && t.runDir === runDir && t.state === 'running' ? t.snapshot : undefined;
  }

  cancel(task: RunTask): void {
    if (task.state === 'queued') {
      this.say(task, 'info', `${task.request.title}: removed from the queue`);
      task.end('cancelled');
      this.changed.fire(task);
      return;
    }
    if (task.state !== 'running' || task.cancelRequested) return;
    task.cancelRequested = true;
    this.say(task, 'info', `${task.request.title}: cancelling after the current batch`);
    task.worker?.cancel();
    const worker = task.worker;
    setTimeout(() => {
      if (worker?.running) {
        this.say(task, 'warn', `${task.request.title}: the worker did not stop within ${CANCEL_GRACE_MS / 1000} s; killing it`);
        worker.kill();
      }
    }, CANCEL_GRACE_MS).unref();
    this.changed.fire(task);
  }

  private pump(): void {
    const running = this.tasks.filter((t) => t.state === 'running').length;
    const next = this.tasks.find((t) => t.state === 'queued');
    if (!next || running >= Math.max(1, this.maxConcurrent())) return;
    next.state = 'running';
    const { job, cwd, runsDir } = next.request;
    // nad.executor "slurm": runs and matrices are submitted by the worker, which returns once sbatch has them.
    const slurm = job.kind === 'job' || job.kind === 'matrix' ? slurmSettings(vscode.Uri.file(cwd)) : undefined;
    next.slurm = slurm !== undefined;
    next.worker = new WorkerClient(
      this.workerPath,
      { job, cwd, runsDir, ...(slurm ? { slurm } : {}) },
      {
        onMessage: (msg) => this.onWorkerMessage(next, msg),
        onOutput: (line) => this.say(next, 'info', `[worker] ${line}`),
        onExit: (exit) => this.onWorkerExit(next, exit),
      },
      this.memoryLimitMb?.(),
    );
    this.say(next, 'info', `${next.request.title}: started (worker pid ${next.worker.pid ?? '?'})`);
    this.changed.fire(next);
    this.pump();
  }

  private onWorkerMessage(task: RunTask, msg: WorkerToHost): void {
    switch (msg.type) {
      case 'started': {
        const previous = task.runDir;
        task.runDir = msg.runDir;
        task.runDirs.push(msg.runDir);
        const read = readRunSnapshot(msg.runDir);
        const base = 'problem' in read ? undefined : read;
        // A new run's events all follow as messages; the folder may already hold the first of them.
        if (base)
          task.snapshot = {
            ...base,
            run: { ...base.run, state: 'running', backend: msg.backend, resumable: false },
            ...(msg.resumed ? {} : { log: [], table: [], epochs: [], series: [], charts: [], images: [], facts: undefined }),
          };
        this.say(task, 'info', `${task.request.title}: ${msg.resumed ? 'resumed' : 'writing'} run ${msg.runId} on ${msg.backend}`);
        this.runStarted.fire({ task, runDir: msg.runDir, previous });
        if (task.snapshot) this.toPanel(task, { type: 'snapshot', snapshot: task.snapshot });
        break;
      }
      case 'runDone':
        task.results.push(msg.result);
        this.refreshFromFolder(task);
        break;
      case 'done':
        this.refreshFromFolder(task);
        task.end('finished');
        break;
      case 'failed':
        task.failure = { message: msg.message, kind: msg.kind, file: msg.file, stderrTail: [] };
        this.say(task, 'error', `${task.request.title} failed: ${msg.message}`);
        this.refreshFromFolder(task);
        task.end('failed');
        break;
      case 'cancelled':
        this.say(task, 'info', `${task.request.title}: cancelled; the run folder is kept`);
        this.refreshFromFolder(task);
        task.end('cancelled');
        break;
      default: {
        // Every other message is one of the run's events: fold it, and show it.
        this.toPanel(task, { type: 'event', event: msg });
        const line = describeEvent(msg);
        if (line) this.say(task, 'info', msg.type === 'epoch' || msg.type === 'log' ? line : `${task.request.title}: ${line}`);
      }
    }
    this.changed.fire(task);
  }

  private onWorkerExit(task: RunTask, exit: WorkerExit): void {
    const limit = task.worker?.memoryLimitMb;
    task.worker = undefined;
    if (!exit.reported) {
      const how = exit.signal ? `was killed (${exit.signal})` : `exited with code ${exit.code}`;
      if (task.cancelRequested) {
        // Killed after Cancel: its folder reads as interrupted, and resumable.
        this.refreshFromFolder(task);
        task.end('cancelled');
      } else {
        const last = exit.stderrTail.length ? `: ${exit.stderrTail[exit.stderrTail.length - 1]}` : '';
        // Out of memory: said so, and the run marked failed as the worker would have (it could not).
        const memory = explainWorkerCrash(exit, limit);
        const message = memory ?? `the worker process ${how}${last}`;
        if (memory && task.runDir && failDeadRun(task.runDir, memory)) this.say(task, 'info', `marked ${task.runDir} failed`);
        task.failure = { message, kind: 'crash', stderrTail: exit.stderrTail };
        this.say(task, 'error', `${task.request.title} failed: ${message}`);
        for (const line of exit.stderrTail) this.say(task, 'error', `  ${line}`);
        // The worker is the only writer of its run's status.json: the folder now reads as interrupted
        // (its owner is gone), which is the truth, and it can be resumed from its last saved epoch.
        this.refreshFromFolder(task);
        task.end('failed');
      }
      this.changed.fire(task);
    }
    this.pump();
  }

  /** The run's files are final: show exactly what they say (status, table, final attention maps). */
  private refreshFromFolder(task: RunTask): void {
    if (!task.runDir) return;
    const read = readRunSnapshot(task.runDir);
    if ('problem' in read) return;
    // The folder replays the same events through the same reducer; it adds the final status and maps.
    task.snapshot = read;
    this.panelUpdate.fire({ runDir: task.runDir, msg: { type: 'snapshot', snapshot: task.snapshot } });
  }

  private toPanel(task: RunTask, msg: HostToPanel): void {
    if (!task.runDir) return;
    if (task.snapshot) task.snapshot = applyPanelMessage(task.snapshot, msg);
    this.panelUpdate.fire({ runDir: task.runDir, msg });
  }

  private say(task: RunTask, level: 'info' | 'warn' | 'error', line: string): void {
    this.output.fire({ task, line, level });
  }

  dispose(): void {
    // Leaving the window: workers stop with it; their runs read as interrupted and can be resumed.
    for (const t of this.tasks) t.worker?.kill();
    this.changed.dispose();
    this.panelUpdate.dispose();
    this.runStarted.dispose();
    this.output.dispose();
  }
}
