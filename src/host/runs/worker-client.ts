// Forks the run worker (dist/worker.js) the way vscode-languageclient forks a server: the editor's own
// runtime as plain Node (ELECTRON_RUN_AS_NODE), no inherited debug flags, an IPC channel. Keeps the
// last lines of its stderr so that a crash can be explained.
import { fork, type ChildProcess } from 'node:child_process';
import type { HostToWorker, WorkerRequest, WorkerToHost } from '../../shared/worker-protocol';
import { parseWorkerMessage } from '../../shared/event-schemas';
import { messagePreview } from '../../shared/schema-kit';
import { isFinal } from '../../shared/worker-protocol';
import { workerMemoryOptions } from '../../runs/memory-limit';

const STDERR_LINES = 30;

export interface WorkerExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** Whether the worker said how the request ended (done/failed/cancelled) before exiting. */
  readonly reported: boolean;
  readonly stderrTail: readonly string[];
}

export interface WorkerCallbacks {
  readonly onMessage: (msg: WorkerToHost) => void;
  /** Lines the worker printed on stdout/stderr (warnings of the backend, stacks). */
  readonly onOutput: (line: string) => void;
  readonly onExit: (exit: WorkerExit) => void;
}

export class WorkerClient {
  private readonly child: ChildProcess;
  private readonly stderr: string[] = [];
  private reported = false;
  private exited = false;

  constructor(
    workerPath: string,
    request: WorkerRequest,
    private readonly callbacks: WorkerCallbacks,
    /** The worker's memory limit (JavaScript heap and wasm heap, each), MB; see runs/memory-limit.ts. */
    readonly memoryLimitMb?: number,
  ) {
    const memory = memoryLimitMb !== undefined ? workerMemoryOptions(memoryLimitMb) : { execArgv: [], env: {} };
    this.child = fork(workerPath, [], {
      cwd: request.cwd,
      execPath: process.execPath,
      execArgv: memory.execArgv,
      env: { ...process.env, ...memory.env, ELECTRON_RUN_AS_NODE: '1' },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      serialization: 'json',
    });
    this.child.on('message', (raw: unknown) => {
      const parsed = parseWorkerMessage(raw);
      if (!('message' in parsed)) {
        callbacks.onOutput(`dropped a malformed message from the worker (${parsed.reason}): ${messagePreview(raw)}`);
        return;
      }
      if (isFinal(parsed.message)) this.reported = true;
      callbacks.onMessage(parsed.message);
    });
    this.lines(this.child.stdout, false);
    this.lines(this.child.stderr, true);
    this.child.on('error', (e) => {
      this.stderr.push(`could not run the worker: ${e.message}`);
      this.finish(null, null);
    });
    this.child.on('exit', (code, signal) => this.finish(code, signal));
    this.send({ type: 'start', request });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return !this.exited;
  }

  /** Ask the run to stop after its current batch. */
  cancel(): void {
    this.send({ type: 'cancel' });
  }

  kill(): void {
    if (!this.exited) this.child.kill('SIGKILL');
  }

  private send(msg: HostToWorker): void {
    if (this.exited || !this.child.connected) return;
    this.child.send(msg, (e) => {
      if (e) this.callbacks.onOutput(`could not send ${msg.type} to the worker: ${e.message}`);
    });
  }

  private lines(stream: NodeJS.ReadableStream | null, isStderr: boolean): void {
    let partial = '';
    stream?.setEncoding('utf8');
    stream?.on('data', (chunk: string) => {
      const parts = (partial + chunk).split('\n');
      partial = parts.pop() ?? '';
      for (const line of parts) this.line(line, isStderr);
    });
    stream?.on('end', () => {
      if (partial) this.line(partial, isStderr);
      partial = '';
    });
  }

  private line(line: string, isStderr: boolean): void {
    if (!line.trim()) return;
    if (isStderr) {
      this.stderr.push(line);
      if (this.stderr.length > STDERR_LINES) this.stderr.shift();
    }
    this.callbacks.onOutput(line);
  }

  private finish(code: number | null, signal: NodeJS.Signals | null): void {
    if (this.exited) return;
    this.exited = true;
    // Let the pipes drain so that the stderr tail holds the last words.
    setTimeout(() => this.callbacks.onExit({ code, signal, reported: this.reported, stderrTail: [...this.stderr] }), 50);
  }
}
