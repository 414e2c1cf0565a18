// run.lock: which process may run a run folder, so that two windows (or a window and a `nad` command)
// never resume the same run at once. The process that runs the job takes the lock before it touches the
// folder and holds it to the end; status.json has one writer because only the lock's holder writes it.
//
// The lock file holds its owner's pid, host, start time and a random token. It appears whole or not at
// all: it is written to a temp file first and hard-linked into place, and link(2) fails when run.lock
// exists (the O_EXCL of a rename). A lock whose pid is dead on this host is stale and is taken over (said
// in the log); a lock of another host cannot be checked from here, so it is never broken silently.
import { closeSync, linkSync, openSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { InputError } from '../engine/types';
import { DiskFullError, isDiskFull } from '../engine/disk';
import { isAlive } from './run-store';

export const RUN_LOCK = 'run.lock';
/** Held only while a stale lock is being replaced, so that two processes never replace it both. */
const TAKEOVER_GUARD = 'run.lock.takeover';
/** A guard, or an unreadable lock, older than this is a leftover of a crash. */
const LEFTOVER_MS = 10_000;

export interface LockOwner {
  readonly pid: number;
  readonly host: string;
  readonly startedAt: string;
  /** Random: tells this holder's lock from a later one with the same pid (pids are reused). */
  readonly token: string;
}

/** What is known about a run folder's lock without taking it. */
export type LockState =
  | { readonly state: 'free' }
  | { readonly state: 'held'; readonly owner: LockOwner }
  /** Its owner's process is gone (this host), or the file is a crash's unreadable leftover. */
  | { readonly state: 'stale'; readonly owner?: LockOwner; readonly why: string }
  /** Held by a process of another host: it may be alive. */
  | { readonly state: 'other-host'; readonly owner: LockOwner };

/** A second process wanted a run that is in use: the message names the owner and what to do. */
export class RunLockedError extends InputError {
  constructor(
    message: string,
    runDir: string,
    readonly owner?: LockOwner,
  ) {
    super(message, runDir);
    this.name = 'RunLockedError';
  }
}

export interface RunLock {
  readonly file: string;
  readonly owner: LockOwner;
  /** Removes the lock if it is still this holder's. Safe to call more than once. */
  release(): void;
}

/** The locks this process holds, released when it exits (process.exit included; not SIGKILL: then they go stale). */
const held = new Map<string, LockOwner>();
let exitHook = false;

export function describeOwner(o: Pick<LockOwner, 'pid' | 'host' | 'startedAt'>): string {
  return `process ${o.pid}@${o.host} (since ${o.startedAt})`;
}

function parseOwner(text: string): LockOwner | undefined {
  try {
    const v = JSON.parse(text) as Partial<LockOwner>;
    if (Number.isInteger(v.pid) && typeof v.host === 'string' && typeof v.startedAt === 'string' && typeof v.token === 'string')
      return v as LockOwner;
  } catch {
    // unreadable: handled by the caller
  }
  return undefined;
}

/** The state of `runDir`'s lock. Reads only. */
export function readRunLock(runDir: string, now = Date.now()): LockState {
  const file = join(runDir, RUN_LOCK);
  let text: string;
  let mtimeMs: number;
  try {
    text = readFileSync(file, 'utf8');
    mtimeMs = statSync(file).mtimeMs;
  } catch {
    return { state: 'free' };
  }
  const owner = parseOwner(text);
  if (!owner) {
    // Never written by acquireRunLock (its lock appears whole): a hand edit or another writer's leftover.
    return now - mtimeMs >= LEFTOVER_MS
      ? { state: 'stale', why: `${RUN_LOCK} cannot be read and is ${Math.round((now - mtimeMs) / 1000)} s old` }
      : { state: 'held', owner: { pid: -1, host: '?', startedAt: new Date(mtimeMs).toISOString(), token: '' } };
  }
  if (owner.host !== hostname()) return { state: 'other-host', owner };
  const mine = held.get(file);
  if (owner.pid === process.pid && mine?.token !== owner.token)
    return { state: 'stale', owner, why: `its pid ${owner.pid} is now this process: the owner is gone` };
  if (owner.pid !== process.pid && !isAlive(owner.pid)) return { state: 'stale', owner, why: `process ${owner.pid} is gone` };
  return { state: 'held', owner };
}

/** Links a whole file holding `content` to `target`; false when `target` exists. */
function linkExclusive(target: string, content: string): boolean {
  const tmp = join(dirname(target), `.${basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    writeFileSync(tmp, content);
    linkSync(tmp, target);
    return true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (isDiskFull(e)) throw new DiskFullError(target);
    // File systems without hard links: an exclusive create; its content is written right after.
    if (code === 'EPERM' || code === 'ENOTSUP' || code === 'ENOSYS' || code === 'EOPNOTSUPP') {
      let fd: number;
      try {
        fd = openSync(target, 'wx');
      } catch (again) {
        if ((again as NodeJS.ErrnoException).code === 'EEXIST') return false;
        throw again;
      }
      try {
        writeSync(fd, content);
      } finally {
        closeSync(fd);
      }
      return true;
    }
    throw e;
  } finally {
    rmSync(tmp, { force: true });
  }
}

function lockedMessage(s: Extract<LockState, { state: 'held' | 'other-host' }>, file: string): string {
  if (s.state === 'other-host')
    return (
      `this run is in use by ${describeOwner(s.owner)} on another machine, which cannot be checked from here. ` +
      `If no process on ${s.owner.host} runs it any more, delete ${file} and try again`
    );
  if (s.owner.pid < 0) return `this run's ${RUN_LOCK} is being written by another process just now; try again in a few seconds`;
  return (
    `this run is in use by ${describeOwner(s.owner)}: another window or a \`nad\` command is running or resuming it. ` +
    `Wait for it to end, or cancel it there`
  );
}

export interface AcquireOptions {
  /** Told when a stale lock is taken over, and whose it was. */
  readonly log?: (message: string) => void;
  /**
   * Take over a lock of another host too, for this reason: only for a caller that knows the other holder
   * is gone (a Slurm job requeued on another node; Slurm ends the earlier attempt first).
   */
  readonly takeOverOtherHost?: string;
}

/**
 * Takes the run folder's lock for this process, or throws RunLockedError naming the holder. A stale lock
 * (its process gone, on this host) is replaced; `log` is told whose it was.
 */
export function acquireRunLock(runDir: string, opts: AcquireOptions = {}): RunLock {
  const file = join(runDir, RUN_LOCK);
  const owner: LockOwner = {
    pid: process.pid,
    host: hostname(),
    startedAt: new Date().toISOString(),
    token: randomBytes(8).toString('hex'),
  };
  const content = JSON.stringify(owner) + '\n';
  for (let attempt = 0; attempt < 5; attempt++) {
    if (linkExclusive(file, content)) return hold(file, owner);
    const s = readRunLock(runDir);
    if (s.state === 'free') continue; // released meanwhile
    const stale: LockState =
      s.state === 'other-host' && opts.takeOverOtherHost ? { state: 'stale', owner: s.owner, why: opts.takeOverOtherHost } : s;
    if (stale.state !== 'stale') throw new RunLockedError(lockedMessage(stale, file), runDir, stale.owner);
    if (takeOverStale(runDir, stale, content)) {
      opts.log?.(`took over a stale ${RUN_LOCK} (${stale.owner ? describeOwner(stale.owner) : 'unreadable'}: ${stale.why})`);
      return hold(file, owner);
    }
  }
  throw new RunLockedError(`could not take ${file}: other processes keep taking it`, runDir);
}

/** Replaces the stale lock `seen` under the takeover guard; false when it changed meanwhile (the caller looks again). */
function takeOverStale(runDir: string, seen: Extract<LockState, { state: 'stale' }>, content: string): boolean {
  const guard = join(runDir, TAKEOVER_GUARD);
  if (!linkExclusive(guard, JSON.stringify({ pid: process.pid, host: hostname() }))) {
    let age = 0;
    try {
      age = Date.now() - statSync(guard).mtimeMs;
    } catch {
      return false; // released meanwhile
    }
    if (age < LEFTOVER_MS) throw new RunLockedError(`another process is taking over this run's stale ${RUN_LOCK} just now`, runDir);
    rmSync(guard, { force: true }); // a crash's leftover: the takeover takes milliseconds
    return false;
  }
  try {
    const now = readRunLock(runDir);
    const same = (now.state === 'stale' || now.state === 'other-host') && (now.owner?.token ?? '') === (seen.owner?.token ?? '');
    if (!same) return false;
    rmSync(join(runDir, RUN_LOCK), { force: true });
    return linkExclusive(join(runDir, RUN_LOCK), content);
  } finally {
    rmSync(guard, { force: true });
  }
}

function hold(file: string, owner: LockOwner): RunLock {
  held.set(file, owner);
  if (!exitHook) {
    exitHook = true;
    process.on('exit', () => {
      for (const f of [...held.keys()]) releaseFile(f);
    });
  }
  return { file, owner, release: () => releaseFile(file) };
}

function releaseFile(file: string): void {
  const mine = held.get(file);
  if (!mine) return;
  held.delete(file);
  try {
    if (parseOwner(readFileSync(file, 'utf8'))?.token === mine.token) rmSync(file, { force: true });
  } catch {
    // gone already (the folder deleted): nothing to release
  }
}

/** A run folder's stale lock, for `nad doctor` and Check Runs. */
export interface StaleLock {
  readonly id: string;
  readonly file: string;
  readonly owner?: LockOwner;
  readonly why: string;
}

/** Every stale lock (this host) and every lock of another host under runsDir. Reads only. */
export function findLocks(runDirs: readonly string[]): { stale: StaleLock[]; otherHost: StaleLock[] } {
  const stale: StaleLock[] = [];
  const otherHost: StaleLock[] = [];
  for (const dir of runDirs) {
    const s = readRunLock(dir);
    const file = join(dir, RUN_LOCK);
    if (s.state === 'stale') stale.push({ id: basename(dir), file, owner: s.owner, why: s.why });
    else if (s.state === 'other-host')
      otherHost.push({ id: basename(dir), file, owner: s.owner, why: `held on host ${s.owner.host}; not checked from here` });
  }
  return { stale, otherHost };
}

/** Removes the given locks that are still stale (checked again, under the takeover guard). Returns the removed files. */
export function removeStaleLocks(locks: readonly Pick<StaleLock, 'file'>[]): string[] {
  const removed: string[] = [];
  for (const { file } of locks) {
    const dir = dirname(file);
    if (readRunLock(dir).state !== 'stale') continue;
    try {
      const lock = acquireRunLock(dir);
      lock.release();
      removed.push(file);
    } catch {
      // held again by a live process, or another host's: left alone
    }
  }
  return removed;
}
