// The run store: one folder per run under <workspace>/.nad/runs/. History is derived by reading the
// folders (no second index that could drift), so runs made by the CLI and the extension look alike.
import {
  promises as fs,
  existsSync,
  readdirSync,
  readFileSync,
  renameSync,
  writeFileSync,
  mkdirSync,
  appendFileSync,
  rmSync,
} from 'node:fs';
import { join, dirname, basename } from 'node:path';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';

import { DiskFullError, isDiskFull } from '../engine/disk';
import { parseStoredEvent } from '../shared/event-schemas';
import type { RunEvent, RunKind, RunState } from '../shared/run-events';

export type { RunKind, RunState };

/** The model files a run writes: `teacher` by a teacher's finetuning, `model` by the run's main phase. */
export const MODEL_FILES = { teacher: 'model/teacher.safetensors', model: 'model/model.safetensors' } as const;

export interface RunStatus {
  readonly state: RunState;
  readonly kind: RunKind;
  readonly startedAt: string;
  readonly endedAt?: string;
  /** Process that owns a running run; a dead owner means the run was interrupted. */
  readonly pid?: number;
  readonly host?: string;
  readonly backend?: string;
  readonly lastEpoch?: number;
  readonly error?: string;
  /** Headline numbers of the produced/evaluated model, in percent. */
  readonly acc?: number;
  readonly asr?: number;
  /** Robust accuracy, percent, where the test set allows it. */
  readonly ra?: number;
  /** A defense's effectiveness rating (BackdoorBench's DER), in [0, 1]. */
  readonly der?: number;
  /** Images a defense was given clean, and how many its training data holds (the history's clean share). */
  readonly cleanImages?: number;
  readonly dataImages?: number;
}

export interface RunSummary {
  readonly id: string;
  readonly dir: string;
  readonly status: RunStatus;
  readonly config: Record<string, unknown>;
}

/** A run folder that could not be read (hand-edited, half-deleted...): listed with its problem, never hidden. */
export interface BrokenRun {
  readonly id: string;
  readonly dir: string;
  readonly problem: string;
}

/** Runs in these states can be continued: the process died, the user stopped it, or the worker crashed. */
export const RESUMABLE_STATES: readonly RunState[] = ['interrupted', 'cancelled', 'failed'];
/** Kinds that train, and so have per-epoch model files to continue from. */
export const RESUMABLE_KINDS: readonly RunKind[] = ['train', 'finetune', 'erase', 'defend'];

export function isResumable(run: Pick<RunSummary, 'status'>): boolean {
  return RESUMABLE_STATES.includes(run.status.state) && RESUMABLE_KINDS.includes(run.status.kind);
}

export const RUNS_SUBDIR = join('.nad', 'runs');

export { DiskFullError, freeSpace } from '../engine/disk';

/** Write a file atomically: temp file in the same folder, then rename over the target. */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw isDiskFull(e) ? new DiskFullError(file) : e;
  }
}

/** Whether process `pid` of this host exists (EPERM: it does, owned by someone else). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The name a run was given (the middle of its folder's id, `<date>-<time>-<name>-<hex>`), when `file` is
 * in that run's model/ folder; undefined for any other file.
 */
export function runNameOfModelFile(file: string): string | undefined {
  return /(?:^|[\\/])\d{8}-\d{6}-([^\\/]+)-[0-9a-f]{4}[\\/]model[\\/][^\\/]+$/.exec(file)?.[1];
}

export class RunStore {
  readonly runsDir: string;

  /** `root` is the working folder (the runs live in root/.nad/runs) unless `runsDir` is given. */
  constructor(root: string, runsDir?: string) {
    this.runsDir = runsDir ?? join(root, RUNS_SUBDIR);
  }

  /** Create a new run folder with its config and a `running` status owned by this process. */
  create(kind: RunKind, config: Record<string, unknown>, name?: string): RunHandle {
    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
    const slug = (name ?? kind).replace(/[^A-Za-z0-9_.-]+/g, '-').slice(0, 40);
    const id = `${stamp}-${slug}-${randomBytes(2).toString('hex')}`;
    const dir = join(this.runsDir, id);
    mkdirSync(dir, { recursive: true });
    const handle = new RunHandle(id, dir, kind);
    writeFileAtomic(join(dir, 'config.json'), JSON.stringify({ kind, ...config }, null, 2) + '\n');
    handle.setStatus({ state: 'running', kind, startedAt: new Date().toISOString(), pid: process.pid, host: hostname() });
    return handle;
  }

  /** All runs, newest first, plus folders that could not be read. */
  list(): { runs: RunSummary[]; broken: BrokenRun[] } {
    const runs: RunSummary[] = [];
    const broken: BrokenRun[] = [];
    if (!existsSync(this.runsDir)) return { runs, broken };
    for (const entry of readdirSync(this.runsDir, { withFileTypes: true })) {
      if (!entry.isDirectory() || entry.name.startsWith('.')) continue;
      const read = this.read(entry.name);
      if ('problem' in read) broken.push(read);
      else runs.push(read);
    }
    runs.sort((a, b) =>
      a.status.startedAt < b.status.startedAt ? 1 : a.status.startedAt > b.status.startedAt ? -1 : b.id.localeCompare(a.id),
    );
    return { runs, broken };
  }

  /** Read one run folder; a run whose owner process is gone is reported as interrupted, never running. */
  read(id: string): RunSummary | BrokenRun {
    const dir = join(this.runsDir, id);
    const status = readJson(join(dir, 'status.json'));
    if (typeof status === 'string') return { id, dir, problem: status };
    const config = readJson(join(dir, 'config.json'));
    if (typeof config === 'string') return { id, dir, problem: config };
    const s = status as Partial<RunStatus>;
    if (!s.state || !['running', 'finished', 'failed', 'cancelled', 'interrupted'].includes(s.state) || !s.startedAt) {
      return { id, dir, problem: `status.json: missing or invalid "state"/"startedAt"` };
    }
    let effective = s as RunStatus;
    if (s.state === 'running' && (s.host === undefined || s.host === hostname()) && (s.pid === undefined || !isAlive(s.pid))) {
      effective = { ...effective, state: 'interrupted' };
    }
    return { id, dir, status: effective, config: config as Record<string, unknown> };
  }

  /** A run's stored events (see readRunEvents). */
  events(id: string): StoredEvents {
    return readRunEvents(join(this.runsDir, id));
  }

  async delete(id: string): Promise<void> {
    if (!id || id.includes('/') || id.includes('\\') || id.startsWith('.')) throw new Error(`invalid run id "${id}"`);
    await fs.rm(join(this.runsDir, id), { recursive: true, force: true });
  }
}

export class RunHandle {
  private status: RunStatus | undefined;

  constructor(
    readonly id: string,
    readonly dir: string,
    readonly kind: RunKind,
  ) {}

  setStatus(status: RunStatus): void {
    this.status = status;
    writeFileAtomic(join(this.dir, 'status.json'), JSON.stringify(status, null, 2) + '\n');
  }

  update(patch: Partial<RunStatus>): void {
    if (!this.status) throw new Error('run status not initialised');
    this.setStatus({ ...this.status, ...patch });
  }

  appendMetric(event: RunEvent): void {
    const file = join(this.dir, 'metrics.jsonl');
    try {
      appendFileSync(file, JSON.stringify(event) + '\n');
    } catch (e) {
      throw isDiskFull(e) ? new DiskFullError(file) : e;
    }
  }

  /** Path of a file inside the run folder (e.g. `model/model.safetensors`). */
  path(rel: string): string {
    return join(this.dir, rel);
  }

  exists(rel: string): boolean {
    return existsSync(this.path(rel));
  }

  writeFile(rel: string, data: string | Uint8Array): string {
    const file = this.path(rel);
    writeFileAtomic(file, data);
    return file;
  }

  finish(result: { acc?: number; asr?: number; ra?: number; der?: number }): void {
    this.update({ state: 'finished', endedAt: new Date().toISOString(), ...result });
  }

  fail(error: string): void {
    this.update({ state: 'failed', endedAt: new Date().toISOString(), error });
  }

  cancel(): void {
    this.update({ state: 'cancelled', endedAt: new Date().toISOString() });
  }
}

function readJson(file: string): unknown {
  if (!existsSync(file)) return `${basename(file)} is missing`;
  try {
    const v: unknown = JSON.parse(readFileSync(file, 'utf8'));
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return `${basename(file)}: not a JSON object`;
    return v;
  } catch (e) {
    return `${basename(file)}: invalid JSON (${(e as Error).message})`;
  }
}

/** The events of a run folder's metrics.jsonl, and the lines that could not be read (a torn last line is skipped silently). */
export interface StoredEvents {
  readonly events: RunEvent[];
  readonly problems: string[];
}

/** Reads metrics.jsonl: the one parser of it. Lines of older versions (epoch lines without a phase) come back as they are. */
export function readRunEvents(runDir: string): StoredEvents {
  const file = join(runDir, 'metrics.jsonl');
  const events: RunEvent[] = [];
  const problems: string[] = [];
  if (!existsSync(file)) return { events, problems };
  const lines = readFileSync(file, 'utf8').split('\n');
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    let e: unknown;
    try {
      e = JSON.parse(line);
    } catch {
      // The last line may be torn by a crash mid-write; any other bad line is a problem worth showing.
      if (i !== lines.length - 1) problems.push(`metrics.jsonl line ${i + 1}: not valid JSON`);
      return;
    }
    // Lines of 0.1.0's `eval` kind carry nothing the run view uses.
    if (typeof e === 'object' && e !== null && (e as { type?: unknown }).type === 'eval') return;
    const parsed = parseStoredEvent(e);
    if ('event' in parsed) events.push(parsed.event);
    else problems.push(`metrics.jsonl line ${i + 1}: not a valid run event (${parsed.reason})`);
  });
  return { events, problems };
}
