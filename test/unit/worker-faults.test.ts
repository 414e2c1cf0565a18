// The run worker (dist/worker.js, forked as the extension forks it) under faults: two workers resuming one
// run (two windows): one runs it, the other is refused naming the owner; a memory limit on the wasm heap
// fails the run with a message and status failed; a JavaScript heap over the limit kills the process, which
// the host explains and records (failDeadRun), also for a real process that dies mid-run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { WorkerClient, type WorkerExit } from '../../src/host/runs/worker-client';
import type { WorkerJob, WorkerToHost } from '../../src/shared/worker-protocol';
import { explainWorkerCrash, failDeadRun } from '../../src/runs/memory-limit';
import { asOutOfMemory } from '../../src/runs/jobs/memory-guard';
import { readRunSnapshot } from '../../src/runs/run-folder';
import { RUN_LOCK } from '../../src/runs/run-lock';
import { readRunEvents } from '../../src/runs/run-store';
import { writeSmallMnist } from '../integration/fixtures/small-mnist';

const ROOT = join(__dirname, '..', '..');
const CLI = join(ROOT, 'dist', 'cli.js');
const WORKER = join(ROOT, 'dist', 'worker.js');

interface WorkerOutcome {
  readonly messages: WorkerToHost[];
  readonly exit: WorkerExit;
}

/** Forks the worker with `job`; resolves when it has exited. `onMessage` sees each message as it comes. */
function runWorker(
  job: WorkerJob,
  dirs: { cwd: string; runsDir: string },
  memoryLimitMb?: number,
  onMessage?: (m: WorkerToHost) => void,
): Promise<WorkerOutcome> {
  const messages: WorkerToHost[] = [];
  return new Promise((resolve) => {
    new WorkerClient(
      WORKER,
      { job, ...dirs },
      {
        onMessage: (m) => {
          messages.push(m);
          onMessage?.(m);
        },
        onOutput: () => undefined,
        onExit: (exit) => resolve({ messages, exit }),
      },
      memoryLimitMb,
    );
  });
}

function setup(): { work: string; runsDir: string; data: string } {
  if (!existsSync(WORKER)) execFileSync(process.execPath, [join(ROOT, 'scripts', 'build.mjs')], { cwd: ROOT, stdio: 'inherit' });
  const work = mkdtempSync(join(tmpdir(), 'nad-worker-faults-'));
  const runsDir = join(work, 'runs');
  mkdirSync(runsDir);
  return { work, runsDir, data: writeSmallMnist(join(work, 'digits'), { train: 10, test: 5, repoRoot: ROOT }) };
}

test('two workers resume one run (two windows): one resumes it, the other is refused with the owner pid@host', async () => {
  const { work, runsDir, data } = setup();
  try {
    // An interrupted run: `nad train` killed with SIGKILL once its first epoch is done.
    await new Promise<void>((resolve) => {
      const cli = spawn(process.execPath, [CLI, 'train', '--data', data, '--epochs', '4', '--runs-dir', runsDir], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let err = '';
      cli.stderr.setEncoding('utf8').on('data', (c: string) => {
        err += c;
        if (/epoch +1\//.test(err)) cli.kill('SIGKILL');
      });
      cli.on('exit', () => resolve());
    });
    const [id] = readdirSync(runsDir);
    const runDir = join(runsDir, id);
    const snap = readRunSnapshot(runDir);
    assert.ok(!('problem' in snap) && snap.run.state === 'interrupted' && snap.run.resumable);
    const dirs = { cwd: work, runsDir };
    let second: Promise<WorkerOutcome> | undefined;
    let firstPid: number | undefined;
    const first = runWorker({ kind: 'resume', runDir }, dirs, undefined, (m) => {
      // Once the first worker has the run (it reports started), the second window asks for it.
      if (m.type === 'started' && !second) {
        firstPid = JSON.parse(readFileSync(join(runDir, RUN_LOCK), 'utf8')).pid;
        second = runWorker({ kind: 'resume', runDir }, dirs);
      }
    });
    const a = await first;
    assert.ok(second, 'the first worker started the run');
    const b = await second;
    const failed = b.messages.find((m) => m.type === 'failed');
    assert.ok(failed && failed.type === 'failed', `second worker: ${JSON.stringify(b.messages)}`);
    assert.equal(failed.kind, 'input');
    assert.match(failed.message, new RegExp(`in use by process ${firstPid}@${hostname()}`));
    assert.ok(
      a.messages.some((m) => m.type === 'done'),
      `first worker: ${JSON.stringify(a.messages.filter((m) => m.type !== 'step'))}`,
    );
    const after = readRunSnapshot(runDir);
    assert.ok(!('problem' in after) && after.run.state === 'finished');
    assert.equal(existsSync(join(runDir, RUN_LOCK)), false, 'the lock is released');
    const epochs = readRunEvents(runDir).events.flatMap((e) => (e.type === 'epoch' ? [e.epoch] : []));
    assert.deepEqual(epochs, [1, 2, 3, 4]);
    assert.ok(readRunEvents(runDir).events.some((e) => e.type === 'log' && /took over a stale run\.lock/.test(e.message)));
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test('a worker whose wasm heap goes over its memory limit fails the run: the message says so, status.json says failed', async () => {
  const { work, runsDir, data } = setup();
  try {
    // 48 MB: the JavaScript heap fits; the WebAssembly heap (wasm or native backend) grows past it at the first
    // batch of 100 images through WRN-16-1 (~200 MB; the small CNN's batches of 64 stay under 48 MB on native).
    const job: WorkerJob = {
      kind: 'job',
      config: { kind: 'train', name: 'w', data, model: { arch: 'wrn', depth: 16, widen: 1 }, training: { epochs: 2, batchSize: 100 } },
    };
    const { messages, exit } = await runWorker(job, { cwd: work, runsDir }, 48);
    const failed = messages.find((m) => m.type === 'failed');
    assert.ok(failed && failed.type === 'failed', JSON.stringify(messages.filter((m) => m.type !== 'step')));
    assert.match(
      failed.message,
      /^the worker ran out of memory \(limit 48 MB\): the WebAssembly heap of the (wasm|native) backend has grown to \d+ MB/,
    );
    assert.equal(exit.code, 1);
    const [id] = readdirSync(runsDir);
    const status = JSON.parse(readFileSync(join(runsDir, id, 'status.json'), 'utf8')) as { state: string; error: string };
    assert.equal(status.state, 'failed');
    assert.equal(status.error, failed.message);
    const snap = readRunSnapshot(join(runsDir, id));
    assert.ok(!('problem' in snap) && snap.run.state === 'failed');
    assert.equal(existsSync(join(runsDir, id, RUN_LOCK)), false);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test('a worker over its JavaScript heap limit is killed by V8: the host explains it with the limit', async () => {
  const { work, runsDir } = setup();
  try {
    // 8 MB is too little for the worker to load at all.
    const { exit } = await runWorker({ kind: 'demo', quick: true, backend: 'wasm', seed: 0 }, { cwd: work, runsDir }, 8);
    assert.equal(exit.reported, false);
    assert.match(explainWorkerCrash(exit, 8) ?? '', /^the worker ran out of memory \(limit 8 MB\): its JavaScript heap reached the limit/);
    assert.equal(explainWorkerCrash({ stderrTail: ['Error: something else'] }, 8), undefined);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test('a process that dies of a full JavaScript heap mid-run: failDeadRun marks its run failed, taking its stale lock', async () => {
  const { work, runsDir } = setup();
  try {
    // A real run owner (folder, status running, lock, a metrics line cut in half), then an allocation V8 cannot serve.
    const code = `
      const { RunStore } = require(${JSON.stringify(join(ROOT, 'src', 'runs', 'run-store.ts'))});
      const { acquireRunLock } = require(${JSON.stringify(join(ROOT, 'src', 'runs', 'run-lock.ts'))});
      const fs = require('node:fs');
      const run = new RunStore('', ${JSON.stringify(runsDir)}).create('train', { kind: 'train', name: 'oom' }, 'oom');
      acquireRunLock(run.dir);
      run.appendMetric({ type: 'log', message: 'before' });
      fs.appendFileSync(run.path('metrics.jsonl'), '{"type":"log","mess');
      const keep = [];
      for (;;) keep.push({ a: new Array(1000).fill(keep.length) });`;
    const child = spawn(process.execPath, ['--max-old-space-size=48', '--import', 'tsx', '-e', code], {
      cwd: ROOT,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    await new Promise((resolve) => child.on('exit', resolve));
    const message = explainWorkerCrash({ stderrTail: stderr.split('\n').slice(-40) }, 48);
    assert.ok(message, `V8's words: ${stderr.slice(0, 400)}`);
    const [id] = readdirSync(runsDir);
    const runDir = join(runsDir, id);
    const before = readRunSnapshot(runDir);
    assert.ok(!('problem' in before) && before.run.state === 'interrupted', 'read as interrupted (its process is gone)');
    assert.equal(failDeadRun(runDir, message), true);
    const after = readRunSnapshot(runDir);
    assert.ok(!('problem' in after) && after.run.state === 'failed' && after.run.error === message);
    const { events, problems } = readRunEvents(runDir);
    assert.deepEqual(problems, [], 'the cut line was dropped, not left in the middle');
    assert.deepEqual(events[events.length - 1], { type: 'ended', state: 'failed', error: message });
    assert.equal(existsSync(join(runDir, RUN_LOCK)), false);
    assert.equal(failDeadRun(runDir, message), false, 'an ended run is left alone');
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test('failed allocations are said as running out of memory; other errors are left as they are', () => {
  // The words tfjs-wasm's threaded build threw when its heap could not grow past 4 GB (measured, Node 20).
  const aborted = asOutOfMemory(new WebAssembly.RuntimeError('Aborted(). Build with -sASSERTIONS for more info.'), 4096);
  assert.match(
    aborted?.message ?? '',
    /^the worker ran out of memory \(limit 4096 MB\): the WebAssembly heap could not grow \(Aborted\(\)\)/,
  );
  let v8: unknown;
  try {
    new ArrayBuffer(2 ** 42); // 4 TB: a real failed allocation
  } catch (e) {
    v8 = e;
  }
  assert.ok(v8 instanceof RangeError);
  assert.match(asOutOfMemory(v8, undefined)?.message ?? '', /^the run ran out of memory: a buffer could not be allocated/);
  assert.equal(asOutOfMemory(new WebAssembly.RuntimeError('memory access out of bounds'), 4096), undefined);
  assert.equal(asOutOfMemory(new TypeError('x is undefined'), 4096), undefined);
});
