// The kill -9 fault suite: a training run on a small MNIST (the embedded digits), in `nad train` or in the
// run worker the extension forks (drawn per attempt), is killed with SIGKILL at seeded random moments, N
// times; each killed run is checked (no torn file, shown interrupted by the history's reader, resumable) and
// resumed (`nad run-folder`, or the worker's resume job), which is the next attempt to kill. A run
// that reaches its end is checked for epochs that continued (1..E once each, never restarted) and then
// the next run starts. Used by test/unit/fault-kill.test.ts; `node --import tsx test/faults/kill-runs.ts
// [faults] [seed]` prints the counts alone.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { readCheckpoint } from '../../src/engine/checkpoint';
import { Rng } from '../../src/engine/rng';
import { readRunSnapshot } from '../../src/runs/run-folder';
import { readRunEvents } from '../../src/runs/run-store';
import { RUN_LOCK } from '../../src/runs/run-lock';
import { writeSmallMnist } from '../integration/fixtures/small-mnist';
import { WorkerClient } from '../../src/host/runs/worker-client';
import type { WorkerJob } from '../../src/shared/worker-protocol';

const ROOT = join(__dirname, '..', '..');
const CLI = join(ROOT, 'dist', 'cli.js');
const WORKER = join(ROOT, 'dist', 'worker.js');

export interface KillSuiteOptions {
  readonly faults: number;
  readonly seed: number;
  /** Epochs of each run (default 10: a few seconds). */
  readonly epochs?: number;
  /**
   * A fifth of the kills come at a moment drawn uniformly in [0, startupMs] after the process starts (its
   * start-up: backend, data, folder); the others at a delay in [0, epochMs] after the line the CLI prints
   * when a random epoch ends (or its training phase begins), which spreads them over training, checkpoint
   * writes and the end of the run (final evaluation, attention maps, results).
   */
  readonly startupMs?: number;
  readonly epochMs?: number;
  /** Kills per run before it is let run to its end (default 6). */
  readonly faultsPerRun?: number;
  /** Whose process is killed: `nad` (CLI), the run worker, or either, drawn per attempt (default). */
  readonly via?: 'cli' | 'worker' | 'both';
  /** One line per attempt, for the test's log. */
  readonly onLine?: (line: string) => void;
}

export interface KillCounts {
  /** SIGKILLs sent to a live `nad` process or run worker. */
  faults: number;
  /** Of those, sent to a run worker (the rest: to `nad`). */
  workerFaults: number;
  /** Of those, kills before the run's folder existed (nothing to lose). */
  beforeFolder: number;
  /** JSON files that did not parse, metrics lines broken before the last, model files that did not load. */
  tornFiles: number;
  /** metrics.jsonl ending in a cut line (tolerated by the reader; the history ends the line before). */
  cutLastLines: number;
  /** Run folders the history could not read, or runs that could not be resumed. */
  lostRuns: number;
  /** Killed runs still shown as running. */
  stuckRuns: number;
  /** Killed runs shown interrupted and resumable. */
  interrupted: number;
  /** Resumes (`nad run-folder` of a killed run), killed again or run to the end. */
  resumes: number;
  /** Resumes whose epochs did not go on from the saved one (restarted or skipped), and finished runs whose stored epochs are not 1..E once each. */
  badResumes: number;
  /** Attempts that ended with an error on their own (not killed). */
  crashes: number;
  /** Stale run.lock files of killed processes taken over by a resume (its log line, in the finished run). */
  staleLocksTakenOver: number;
  /** Runs that reached their end (after their kills and resumes). */
  finishedRuns: number;
  seconds: number;
}

interface Attempt {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly killed: boolean;
  readonly stderr: string;
}

/** When to kill: `delayMs` after the process starts, or after the first stderr line matching `after`. */
interface KillAt {
  readonly after?: RegExp;
  readonly delayMs: number;
  readonly label: string;
}

/** Runs `nad args`, and SIGKILLs it at `at` unless it ended before. */
function attempt(args: readonly string[], at: KillAt | undefined): Promise<Attempt> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    let killed = false;
    let timer: NodeJS.Timeout | undefined;
    const arm = (): void => {
      timer ??= setTimeout(() => (killed = child.kill('SIGKILL')), at?.delayMs);
    };
    child.stderr.setEncoding('utf8').on('data', (c: string) => {
      stderr = (stderr + c).slice(-4000);
      if (at?.after?.test(stderr)) arm();
    });
    if (at && !at.after) arm();
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, killed: killed && signal === 'SIGKILL', stderr });
    });
  });
}

/** The same with the run worker (dist/worker.js, forked as the extension forks it), killed as the host kills it. */
function workerAttempt(job: WorkerJob, dirs: { cwd: string; runsDir: string }, at: KillAt | undefined): Promise<Attempt> {
  return new Promise((resolve) => {
    let progress = ''; // what the CLI would print, from the worker's messages
    let failed = '';
    let killed = false;
    let timer: NodeJS.Timeout | undefined;
    const arm = (): void => {
      timer ??= setTimeout(() => {
        killed = true;
        client.kill();
      }, at?.delayMs);
    };
    const client = new WorkerClient(
      WORKER,
      { job, ...dirs },
      {
        onMessage: (m) => {
          if (m.type === 'phase') progress += `== ${m.label}\n`;
          else if (m.type === 'epoch') progress += `epoch ${m.epoch}/${m.epochs}\n`;
          else if (m.type === 'failed') failed = m.message;
          if (at?.after?.test(progress)) arm();
        },
        onOutput: () => undefined,
        onExit: (exit) => {
          clearTimeout(timer);
          resolve({
            code: exit.code,
            signal: exit.signal,
            killed: killed && exit.signal === 'SIGKILL',
            stderr: failed || exit.stderrTail.join('\n'),
          });
        },
      },
    );
    if (at && !at.after) arm();
  });
}

/** Every file under dir, relative to it. */
function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)));
}

/** Torn files of a run folder (see KillCounts.tornFiles) and whether metrics.jsonl ends in a cut line. */
export async function tornFiles(runDir: string): Promise<{ torn: string[]; cutLast: boolean }> {
  const torn: string[] = [];
  let cutLast = false;
  for (const rel of files(runDir)) {
    if (rel.endsWith('.tmp')) continue; // a write's temp file: never read, renamed or removed
    const text = (): string => readFileSync(join(runDir, rel), 'utf8');
    if (rel.endsWith('.json') || rel === RUN_LOCK) {
      try {
        JSON.parse(text());
      } catch {
        torn.push(rel);
      }
    } else if (rel.endsWith('.jsonl')) {
      const lines = text().split('\n');
      lines.forEach((line, i) => {
        if (!line) return;
        try {
          JSON.parse(line);
        } catch {
          if (i === lines.length - 1) cutLast = true;
          else torn.push(`${rel}:${i + 1}`);
        }
      });
    } else if (rel.endsWith('.safetensors')) {
      try {
        await readCheckpoint(join(runDir, rel));
      } catch {
        torn.push(rel);
      }
    }
  }
  return { torn, cutLast };
}

export async function savedEpoch(runDir: string): Promise<number> {
  const file = join(runDir, 'model', 'model.safetensors');
  if (!existsSync(file)) return 0;
  return Number((await readCheckpoint(file)).metadata['epoch']) || 0;
}

/** The epochs of a finished run, in the order stored: 1..E once each when every resume continued. */
export function storedEpochs(runDir: string): number[] {
  return readRunEvents(runDir).events.flatMap((e) => (e.type === 'epoch' ? [e.epoch] : []));
}

/** How many times the run has started (its first start and every resume that got as far). */
export function starts(runDir: string): number {
  return readRunEvents(runDir).events.filter((e) => e.type === 'started').length;
}

/** Whether the last start of the run (a resume) trained on from epoch `saved` + 1, one epoch after another. */
export function continuedFrom(runDir: string, saved: number): boolean {
  const events = readRunEvents(runDir).events;
  const start = events.map((e) => e.type).lastIndexOf('started');
  const resumed = events[start];
  if (start < 0 || resumed.type !== 'started' || !resumed.resumed) return false;
  const after = events.slice(start).flatMap((e) => (e.type === 'epoch' ? [e.epoch] : []));
  return after.every((epoch, i) => epoch === saved + 1 + i);
}

export async function runKillSuite(opts: KillSuiteOptions): Promise<KillCounts> {
  const t0 = Date.now();
  const epochs = opts.epochs ?? 10;
  const startupMs = opts.startupMs ?? 3000;
  const epochMs = opts.epochMs ?? 500;
  const rng = new Rng(opts.seed);
  const say = opts.onLine ?? ((): void => undefined);
  const work = mkdtempSync(join(tmpdir(), 'nad-kill-'));
  const runs = join(work, 'runs');
  mkdirSync(runs);
  const data = writeSmallMnist(join(work, 'digits'), { train: 10, test: 5, repoRoot: ROOT });
  const c: KillCounts = {
    faults: 0,
    workerFaults: 0,
    beforeFolder: 0,
    tornFiles: 0,
    cutLastLines: 0,
    lostRuns: 0,
    stuckRuns: 0,
    interrupted: 0,
    resumes: 0,
    badResumes: 0,
    crashes: 0,
    staleLocksTakenOver: 0,
    finishedRuns: 0,
    seconds: 0,
  };
  let current: string | undefined; // the run folder being killed and resumed
  let resumesOfCurrent = 0;
  let n = 0;
  let saved = 0; // epochs saved in the current run's model file when this attempt started
  try {
    // Stop at N faults, once the run under way has been taken to its end (every resume checked).
    while (c.faults < opts.faults || current) {
      let killAt: KillAt | undefined;
      saved = current ? await savedEpoch(current) : 0;
      const startsBefore = current ? starts(current) : 0;
      // A run takes at most faultsPerRun kills, then runs to its end: kills spread over runs' whole lives.
      if (c.faults < opts.faults && resumesOfCurrent < (opts.faultsPerRun ?? 6)) {
        // An epoch at most two ahead (or the phase's start), so that a run sees several kills before its end.
        const k = Math.min(epochs, saved + Math.floor(rng.next() * 3));
        const delayMs = Math.round(rng.next() * epochMs);
        killAt =
          rng.next() < 0.2
            ? { delayMs: Math.round(rng.next() * startupMs), label: 'at start-up' }
            : k === saved
              ? { after: /^== /m, delayMs, label: `${delayMs} ms into training` }
              : { after: new RegExp(`epoch +${k}/`), delayMs, label: `${delayMs} ms after epoch ${k}` };
      }
      const before = new Set(readdirSync(runs));
      const viaWorker = (opts.via ?? 'both') === 'both' ? rng.next() < 0.5 : opts.via === 'worker';
      const name = `k${n++}`;
      const r = viaWorker
        ? await workerAttempt(
            current ? { kind: 'resume', runDir: current } : { kind: 'job', config: { kind: 'train', name, data, training: { epochs } } },
            { cwd: work, runsDir: runs },
            killAt,
          )
        : await attempt(
            current ? ['run-folder', current] : ['train', '--data', data, '--epochs', String(epochs), '--runs-dir', runs, '--name', name],
            killAt,
          );
      const dir =
        current ??
        readdirSync(runs)
          .filter((d) => !before.has(d) && !d.startsWith('.'))
          .map((d) => join(runs, d))[0];
      if (current) {
        c.resumes++;
        // A resume killed before it started (backend, data) has nothing to check yet; the next one is checked.
        if (starts(current) > startsBefore && !continuedFrom(current, saved)) {
          c.badResumes++;
          say(`the resume from epoch ${saved} did not continue from it: epochs ${storedEpochs(current).join(',')}`);
        }
      }
      if (!r.killed) {
        // It ended on its own: it must have finished, with its epochs continued across the resumes.
        if (r.code !== 0 || !dir) {
          c.crashes++;
          say(`attempt ended with ${r.code ?? r.signal}: ${r.stderr.trim().split('\n').pop() ?? ''}`);
        } else {
          const got = storedEpochs(dir);
          const ok = got.join(',') === Array.from({ length: epochs }, (_, i) => i + 1).join(',');
          if (!ok) c.badResumes++;
          if (existsSync(join(dir, RUN_LOCK))) c.stuckRuns++; // a finished run must have released its lock
          c.staleLocksTakenOver += readRunEvents(dir).events.filter(
            (e) => e.type === 'log' && e.message.startsWith('took over a stale run.lock'),
          ).length;
          c.finishedRuns++;
          say(`finished after ${resumesOfCurrent} resumes, epochs ${got.join(',')}${ok ? '' : ' (NOT 1..E)'}`);
        }
        current = undefined;
        resumesOfCurrent = 0;
        continue;
      }
      c.faults++;
      if (viaWorker) c.workerFaults++;
      if (!dir) {
        c.beforeFolder++;
        say(`fault ${c.faults}: ${viaWorker ? 'worker' : 'nad'} killed ${killAt?.label}, before the run folder existed`);
        continue;
      }
      const { torn, cutLast } = await tornFiles(dir);
      c.tornFiles += torn.length;
      if (cutLast) c.cutLastLines++;
      const snap = readRunSnapshot(dir);
      const epoch = await savedEpoch(dir).catch(() => -1);
      let note: string;
      if ('problem' in snap) {
        c.lostRuns++;
        note = `unreadable: ${snap.problem}`;
        current = undefined;
      } else if (snap.run.state === 'running') {
        c.stuckRuns++;
        note = 'shown running (stuck)';
        current = undefined;
      } else if (snap.run.state === 'finished') {
        c.finishedRuns++;
        note = 'had finished';
        current = undefined;
      } else if (snap.run.state === 'interrupted' && snap.run.resumable) {
        c.interrupted++;
        note = `interrupted after epoch ${epoch}; resuming`;
        current = dir;
        resumesOfCurrent++;
      } else {
        c.lostRuns++;
        note = `shown ${snap.run.state}, resumable ${snap.run.resumable}`;
        current = undefined;
      }
      say(
        `fault ${c.faults}: ${viaWorker ? 'worker' : 'nad'} killed ${killAt?.label} (${killAt?.delayMs} ms); ${note}${torn.length ? `; TORN ${torn.join(', ')}` : ''}${cutLast ? '; cut last line' : ''}`,
      );
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  c.seconds = Math.round((Date.now() - t0) / 100) / 10;
  return c;
}

/** The counts as a row of the README's fault table. */
export function faultTableRow(c: KillCounts): string {
  return (
    `| kill -9 at random moments of the run worker (${c.workerFaults}) and of \`nad train\` / \`nad run-folder\` (${c.faults - c.workerFaults}) | ${c.faults} | ${c.crashes} crashes | ${c.lostRuns} lost | ` +
    `${c.stuckRuns} stuck | ${c.tornFiles} torn | ${c.interrupted} shown interrupted; ${c.resumes} resumes, ${c.resumes - c.badResumes} ` +
    `went on from the last saved epoch; ${c.staleLocksTakenOver} stale locks taken over; ${c.beforeFolder} killed before the ` +
    `folder existed; ${c.cutLastLines} cut metrics lines tolerated |`
  );
}

if (require.main === module) {
  const faults = Number(process.argv[2] ?? 10);
  const seed = Number(process.argv[3] ?? 1);
  void runKillSuite({ faults, seed, onLine: (l) => process.stderr.write(l + '\n') }).then((c) => {
    process.stdout.write(JSON.stringify(c) + '\n' + faultTableRow(c) + '\n');
  });
}
