// `nad doctor` and "NAD: Check Runs": what is wrong with a runs folder (damaged run folders, runs whose
// process died, temp files left by crashed atomic writes), its size and free space, and the machine.
// Only reads, except the two explicit fixes (markInterrupted, removeTempFiles). No vscode, no tfjs.
import { existsSync, lstatSync, readdirSync, readFileSync, rmSync, statfsSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import os from 'node:os';
import { cpuFacts } from '../engine/machine';
import { isAlive, MODEL_FILES, readRunEvents, RunHandle, RunStore, type RunSummary } from './run-store';
import { findLocks, RUN_LOCK, type StaleLock } from './run-lock';

/** One problem of a run folder: the file (relative to the run's folder) and what is wrong with it. */
export interface RunProblem {
  readonly file: string;
  readonly problem: string;
}

export interface DamagedRun {
  readonly id: string;
  readonly dir: string;
  readonly problems: readonly RunProblem[];
}

/** A run whose status.json says running while its process (on this host) is gone. */
export interface DeadRun {
  readonly id: string;
  readonly dir: string;
  readonly pid?: number;
  readonly startedAt: string;
}

/** A running run of another host: its process cannot be checked from here, so it is left alone. */
export interface OtherHostRun {
  readonly id: string;
  readonly host: string;
}

/** A temp file of an atomic write (`.<name>.<pid>.<hex>.tmp`, see writeFileAtomic). */
export interface TempFile {
  readonly path: string;
  readonly bytes: number;
  readonly ageSeconds: number;
}

export interface RunsReport {
  readonly runsDir: string;
  readonly exists: boolean;
  /** Run folders (hidden folders excepted). */
  readonly runs: number;
  /** Runs with no problem that are not dead. */
  readonly ok: number;
  readonly damaged: readonly DamagedRun[];
  readonly dead: readonly DeadRun[];
  readonly otherHost: readonly OtherHostRun[];
  /** Temp files old enough (and whose writer is gone) to be leftovers of a crash. */
  readonly tempFiles: readonly TempFile[];
  /** Temp files that may belong to a write in progress: never offered for removal. */
  readonly liveTempFiles: number;
  /** Bytes of all files under the runs folder. */
  readonly bytes: number;
  /** run.lock files whose process is gone (stale: removable), and locks of other hosts (left alone). */
  readonly locks: { readonly stale: readonly StaleLock[]; readonly otherHost: readonly StaleLock[] };
}

/** A temp file younger than this may be a write in progress. */
export const TEMP_FILE_MIN_AGE_MS = 10 * 60 * 1000;
const TEMP_FILE = /^\..+\.(\d+)\.[0-9a-f]{8}\.tmp$/;

/** Kinds whose finished runs have written model/model.safetensors (a detection-only defense excepted). */
const MODEL_KINDS = ['train', 'finetune', 'erase', 'defend'];

/** Checks every run folder under runsDir. Reads only. */
export function checkRuns(runsDir: string, opts: { now?: number; tempMinAgeMs?: number } = {}): RunsReport {
  const now = opts.now ?? Date.now();
  const minAge = opts.tempMinAgeMs ?? TEMP_FILE_MIN_AGE_MS;
  const damaged: DamagedRun[] = [];
  const dead: DeadRun[] = [];
  const otherHost: OtherHostRun[] = [];
  const tempFiles: TempFile[] = [];
  let liveTempFiles = 0;
  let bytes = 0;
  let runs = 0;
  let ok = 0;
  const noLocks = { stale: [], otherHost: [] };
  if (!existsSync(runsDir))
    return { runsDir, exists: false, runs, ok, damaged, dead, otherHost, tempFiles, liveTempFiles, bytes, locks: noLocks };
  const runDirs: string[] = [];
  walk(runsDir, (path, size, mtimeMs) => {
    bytes += size;
    const m = TEMP_FILE.exec(basename(path));
    if (!m) return;
    const old = now - mtimeMs >= minAge;
    if (old && !isAlive(Number(m[1]))) tempFiles.push({ path, bytes: size, ageSeconds: Math.round((now - mtimeMs) / 1000) });
    else liveTempFiles++;
  });
  const store = new RunStore('', runsDir);
  for (const entry of readdirSync(runsDir, { withFileTypes: true })) {
    if (!entry.isDirectory() || entry.name.startsWith('.')) continue;
    runs++;
    const read = store.read(entry.name);
    const dir = join(runsDir, entry.name);
    runDirs.push(dir);
    const problems = 'problem' in read ? [{ file: fileOf(read.problem), problem: read.problem }] : runProblems(read);
    if (problems.length) damaged.push({ id: entry.name, dir, problems });
    const raw = rawStatus(dir);
    let isDead = false;
    if (!('problem' in read) && raw?.state === 'running') {
      if (read.status.state === 'interrupted') {
        isDead = true;
        dead.push({ id: read.id, dir, pid: read.status.pid, startedAt: read.status.startedAt });
      } else if (read.status.host !== undefined && read.status.host !== os.hostname())
        otherHost.push({ id: read.id, host: read.status.host });
    }
    if (!problems.length && !isDead) ok++;
  }
  return { runsDir, exists: true, runs, ok, damaged, dead, otherHost, tempFiles, liveTempFiles, bytes, locks: findLocks(runDirs) };
}

/** The problems of a readable run folder beyond status.json and config.json. */
function runProblems(run: RunSummary): RunProblem[] {
  const problems: RunProblem[] = [];
  const metrics = join(run.dir, 'metrics.jsonl');
  for (const p of readRunEvents(run.dir).problems) problems.push({ file: 'metrics.jsonl', problem: p });
  if (existsSync(metrics)) {
    const text = readFileSync(metrics, 'utf8');
    // readRunEvents skips a torn last line silently (the run view stays usable); here it is worth saying.
    if (text.length && !text.endsWith('\n') && run.status.state !== 'running') {
      const lines = text.split('\n');
      const last = lines[lines.length - 1];
      if (!parses(last))
        problems.push({
          file: 'metrics.jsonl',
          problem: `metrics.jsonl line ${lines.length}: cut off (${last.length} characters, a crash mid-write); the history ends the line before`,
        });
    }
  }
  for (const file of ['results.json', join('attention', 'maps.json')]) {
    const path = join(run.dir, file);
    if (existsSync(path) && !parses(readFileSync(path, 'utf8')))
      problems.push({ file: file.replace(/\\/g, '/'), problem: `${file.replace(/\\/g, '/')}: invalid JSON` });
  }
  const s = run.status;
  const detectOnly = run.config['mode'] === 'detect';
  if (s.state === 'finished' && MODEL_KINDS.includes(s.kind) && !detectOnly) {
    // Runs of version 0.1.0's finetune kind saved the finetuned model as the teacher.
    const found = existsSync(join(run.dir, MODEL_FILES.model)) || (s.kind === 'finetune' && existsSync(join(run.dir, MODEL_FILES.teacher)));
    if (!found)
      problems.push({
        file: MODEL_FILES.model,
        problem: `${MODEL_FILES.model} is missing (the ${s.kind} run finished, so it had saved one)`,
      });
  }
  return problems;
}

function parses(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/** The file a RunStore problem is about (its messages start with the file's name). */
function fileOf(problem: string): string {
  return /^([\w.]+\.json)/.exec(problem)?.[1] ?? '';
}

function rawStatus(dir: string): { state?: unknown } | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, 'status.json'), 'utf8')) as { state?: unknown };
  } catch {
    return undefined;
  }
}

/** Every file under dir (symbolic links not followed), with its size and modification time. */
function walk(dir: string, onFile: (path: string, size: number, mtimeMs: number) => void): void {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return; // removed meanwhile, or unreadable: nothing to count
  }
  for (const e of entries) {
    const path = join(dir, e.name);
    if (e.isDirectory()) walk(path, onFile);
    else if (e.isFile()) {
      try {
        const st = lstatSync(path);
        onFile(path, st.size, st.mtimeMs);
      } catch {
        // removed meanwhile
      }
    }
  }
}

/**
 * Marks a dead run interrupted: status.json rewritten atomically with state "interrupted", everything else
 * as it was (what `nad slurm` does for a job that ended without saying so). Re-checks first: a run that is
 * no longer dead (finished meanwhile, or its process is alive) is left alone and false returned.
 */
export function markInterrupted(run: Pick<DeadRun, 'id' | 'dir'>): boolean {
  const read = new RunStore('', dirname(run.dir)).read(run.id);
  if ('problem' in read || rawStatus(read.dir)?.state !== 'running' || read.status.state !== 'interrupted') return false;
  new RunHandle(read.id, read.dir, read.status.kind).setStatus({ ...read.status, state: 'interrupted' });
  return true;
}

/**
 * Removes the given temp files, each only if it is still an old leftover (name, age, writer gone) and
 * inside runsDir. Returns the paths removed.
 */
export function removeTempFiles(
  files: readonly Pick<TempFile, 'path'>[],
  runsDir: string,
  opts: { now?: number; tempMinAgeMs?: number } = {},
): string[] {
  const now = opts.now ?? Date.now();
  const minAge = opts.tempMinAgeMs ?? TEMP_FILE_MIN_AGE_MS;
  const removed: string[] = [];
  for (const { path } of files) {
    const rel = relative(runsDir, path);
    const m = TEMP_FILE.exec(basename(path));
    if (!m || rel.startsWith('..') || rel === path) continue;
    let st;
    try {
      st = lstatSync(path);
    } catch {
      continue;
    }
    if (!st.isFile() || now - st.mtimeMs < minAge || isAlive(Number(m[1]))) continue;
    rmSync(path, { force: true });
    removed.push(path);
  }
  return removed;
}

export interface DiskReport {
  readonly path: string;
  readonly freeBytes: number;
  readonly totalBytes: number;
  /** Under LOW_DISK_BYTES free. */
  readonly low: boolean;
}

export const LOW_DISK_BYTES = 1024 ** 3;

/** Free space of the file system holding runsDir (its nearest existing folder). */
export function checkDisk(runsDir: string): DiskReport | { readonly path: string; readonly problem: string } {
  let dir = runsDir;
  while (!existsSync(dir) && dirname(dir) !== dir) dir = dirname(dir);
  try {
    const st = statfsSync(dir);
    const freeBytes = st.bavail * st.bsize;
    return { path: dir, freeBytes, totalBytes: st.blocks * st.bsize, low: freeBytes < LOW_DISK_BYTES };
  } catch (e) {
    return { path: dir, problem: (e as Error).message };
  }
}

export interface MachineFacts {
  readonly node: string;
  readonly platform: string;
  readonly cpuModel: string;
  readonly cores: number;
  /** Vector instruction sets the CPU reports (Linux: /proc/cpuinfo flags; elsewhere unknown, empty). */
  readonly vectorFlags: readonly string[];
}

export function machineFacts(): MachineFacts {
  const cpus = os.cpus();
  const { cpuModel, vectorFlags } = cpuFacts();
  const cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : cpus.length;
  return { node: process.versions.node, platform: `${process.platform}-${process.arch}`, cpuModel, cores, vectorFlags };
}

/** Whether the report has problems that are still there (damaged, dead or leftover files, low disk). */
export function hasProblems(runs: RunsReport, disk: ReturnType<typeof checkDisk>): boolean {
  return (
    runs.damaged.length > 0 ||
    runs.dead.length > 0 ||
    runs.tempFiles.length > 0 ||
    runs.locks.stale.length > 0 ||
    ('low' in disk && disk.low)
  );
}

/** Bytes for people: 1.2 GB, 340.5 MB, 12 KB. */
export function formatBytes(bytes: number): string {
  if (bytes >= 1024 ** 3) return `${(bytes / 1024 ** 3).toFixed(1)} GB`;
  if (bytes >= 1024 ** 2) return `${(bytes / 1024 ** 2).toFixed(1)} MB`;
  return bytes >= 1024 ? `${Math.round(bytes / 1024)} KB` : `${bytes} byte${bytes === 1 ? '' : 's'}`;
}

/**
 * The readable report: Environment (machine facts, then `engine` lines when the caller probed the backends),
 * Disk, Runs. The CLI prints it; the extension writes it to its output channel.
 */
export function formatDoctorReport(r: {
  machine: MachineFacts;
  engine: readonly string[];
  disk: ReturnType<typeof checkDisk>;
  runs: RunsReport;
}): string {
  const { machine: m, disk, runs } = r;
  const out = ['Environment'];
  out.push(`  Node ${m.node} (${m.platform}); CPU ${m.cpuModel}, ${m.cores} cores; vector: ${m.vectorFlags.join(' ') || 'unknown'}`);
  for (const line of r.engine) out.push(`  ${line}`);
  out.push('', 'Disk');
  if ('problem' in disk) out.push(`  free space of ${disk.path}: unknown (${disk.problem})`);
  else
    out.push(
      `  ${formatBytes(disk.freeBytes)} free of ${formatBytes(disk.totalBytes)} at ${disk.path}${disk.low ? `  WARNING: under ${formatBytes(LOW_DISK_BYTES)}; runs may fail with "no space left"` : ''}`,
    );
  out.push(`  runs folder ${runs.runsDir}: ${runs.exists ? formatBytes(runs.bytes) : 'does not exist yet'}`);
  const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;
  out.push(
    '',
    `Runs: ${runs.ok} ok, ${runs.damaged.length} damaged, ${runs.dead.length} dead, ${plural(runs.tempFiles.length, 'temp file')} (of ${plural(runs.runs, 'run')})`,
  );
  for (const d of runs.damaged) for (const p of d.problems) out.push(`  damaged  ${d.id}: ${p.problem}`);
  for (const d of runs.dead)
    out.push(
      `  dead     ${d.id}: status.json says running, but its process${d.pid !== undefined ? ` ${d.pid}` : ''} is gone (shown as interrupted)`,
    );
  for (const o of runs.otherHost) out.push(`  remote   ${o.id}: running on host ${o.host} (not checked from here)`);
  for (const t of runs.tempFiles)
    out.push(
      `  temp     ${relative(runs.runsDir, t.path)} (${formatBytes(t.bytes)}, ${Math.round(t.ageSeconds / 60)} min old: a crashed write's leftover)`,
    );
  for (const l of runs.locks.stale) out.push(`  lock     ${l.id}: stale ${RUN_LOCK} (${l.why}); --remove-stale-locks removes it`);
  for (const l of runs.locks.otherHost) out.push(`  lock     ${l.id}: ${RUN_LOCK} ${l.why}; delete ${l.file} if no process there runs it`);
  if (runs.liveTempFiles) out.push(`  (${plural(runs.liveTempFiles, 'recent temp file')} of writes that may be in progress: left alone)`);
  return out.join('\n');
}
