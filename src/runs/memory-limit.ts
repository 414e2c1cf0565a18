// The run worker's memory limit, and what happens at it (no tfjs here: the extension host uses this; the
// wasm heap's check is jobs/memory-guard.ts). The extension host forks the worker with
// `--max-old-space-size=N` (the JavaScript heap) and NAD_MEMORY_LIMIT_MB=N, which the runs layer applies to
// the WebAssembly heap of the wasm backend: V8's flag does not cover wasm memory, and capping that with
// `--wasm-max-mem-pages` makes tfjs-wasm's threaded build hang when the heap cannot grow. So the runs layer
// checks the wasm heap after every batch and fails the run at the limit, with a message, at a safe point;
// a heap that cannot grow at all (wasm32 stops at 4 GB) makes tfjs-wasm abort, which is explained the same
// way. Going over the JavaScript heap kills the worker outright: the host reads V8's last words on stderr,
// says so, and marks the run failed (failDeadRun), taking the dead worker's stale run lock to write it.
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { acquireRunLock } from './run-lock';
import { RunHandle, RunStore, writeFileAtomic } from './run-store';

export const MEMORY_LIMIT_ENV = 'NAD_MEMORY_LIMIT_MB';
/** The setting's default: well above what the paper's CIFAR runs need (a few hundred MB), under most machines' RAM. */
export const DEFAULT_MEMORY_LIMIT_MB = 4096;

/** How the host starts a worker with `limitMb`: its execArgv and the environment variables to add. */
export function workerMemoryOptions(limitMb: number): { execArgv: string[]; env: Record<string, string> } {
  const mb = Math.max(1, Math.round(limitMb));
  return { execArgv: [`--max-old-space-size=${mb}`], env: { [MEMORY_LIMIT_ENV]: String(mb) } };
}

/** The limit this process runs under (NAD_MEMORY_LIMIT_MB), if any. */
export function memoryLimitFromEnv(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const v = Number(env[MEMORY_LIMIT_ENV]);
  return Number.isFinite(v) && v > 0 ? v : undefined;
}

/** A run that needed more memory than it may use. */
export class OutOfMemoryError extends Error {
  constructor(
    message: string,
    readonly limitMb: number | undefined,
  ) {
    super(message);
    this.name = 'OutOfMemoryError';
  }
}

const ADVICE =
  'Use a smaller batch size or data set, or raise the limit (the setting nad.workerMemoryLimitMB; for `nad`, NAD_MEMORY_LIMIT_MB).';

/** "the worker ran out of memory (limit N MB): what. advice" (no limit: the process's own words). */
export function outOfMemoryMessage(limitMb: number | undefined, what: string): string {
  const who = limitMb !== undefined ? `the worker ran out of memory (limit ${limitMb} MB)` : 'the run ran out of memory';
  return `${who}: ${what}. ${ADVICE}`;
}

/** V8's last words when the JavaScript heap is full. */
const V8_OUT_OF_MEMORY = /JavaScript heap out of memory|Reached heap limit|Ineffective mark-compacts near heap limit/;

/** Why a worker that died without reporting did, when it was memory; undefined otherwise. */
export function explainWorkerCrash(exit: { readonly stderrTail: readonly string[] }, limitMb: number | undefined): string | undefined {
  if (!exit.stderrTail.some((l) => V8_OUT_OF_MEMORY.test(l))) return undefined;
  return outOfMemoryMessage(limitMb, 'its JavaScript heap reached the limit and V8 stopped the process');
}

/**
 * Marks a run whose process died (status.json says running, its owner gone) failed with `error`, as its
 * process would have. Takes the dead owner's stale run lock first, so that this is the folder's one writer,
 * and leaves a run that is alive, ended or locked by someone else alone. Returns whether it wrote.
 */
export function failDeadRun(runDir: string, error: string): boolean {
  let lock;
  try {
    lock = acquireRunLock(runDir);
  } catch {
    return false;
  }
  try {
    const read = new RunStore('', dirname(runDir)).read(basename(runDir));
    if ('problem' in read || read.status.state !== 'interrupted') return false;
    const run = new RunHandle(read.id, read.dir, read.status.kind);
    // A line the crash cut in half would no longer be the last one: drop it first.
    const metrics = join(runDir, 'metrics.jsonl');
    const text = existsSync(metrics) ? readFileSync(metrics, 'utf8') : '';
    if (text && !text.endsWith('\n')) writeFileAtomic(metrics, text.slice(0, text.lastIndexOf('\n') + 1));
    run.appendMetric({ type: 'ended', state: 'failed', error });
    run.setStatus({ ...read.status, state: 'failed', endedAt: new Date().toISOString(), error });
    return true;
  } finally {
    lock.release();
  }
}
