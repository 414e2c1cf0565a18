// run.lock with real processes: a child holds a run's lock and a second taker is refused with the owner's
// pid@host; the child is killed with SIGKILL and its lock is found stale and taken over (said in the log);
// children racing for one stale lock: exactly one wins, and the lock file never reads torn; another host's
// lock is never broken silently; `nad doctor`'s checks report stale locks and remove only those.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { acquireRunLock, readRunLock, removeStaleLocks, RUN_LOCK, RunLockedError } from '../../src/runs/run-lock';
import { checkRuns, formatDoctorReport, machineFacts, checkDisk } from '../../src/runs/doctor';
import { prepareResume } from '../../src/runs/resume';
import { RunStore } from '../../src/runs/run-store';

const ROOT = join(__dirname, '..', '..');
const LOCK_MODULE = join(ROOT, 'src', 'runs', 'run-lock.ts');

/**
 * A node child that takes `dir`'s lock (or says why not) and then waits; `exit` makes it exit normally. With
 * `gate`, it loads, says `ready` and waits for a line on stdin before it tries (so that several race).
 */
function lockHolder(dir: string, then: 'wait' | 'exit' = 'wait', gate = false): ChildProcess {
  const code = `
    const { acquireRunLock } = require(${JSON.stringify(LOCK_MODULE)});
    const go = () => {
      try { acquireRunLock(${JSON.stringify(dir)}, { log: (m) => console.log('log ' + m) }); console.log('locked'); }
      catch (e) { console.log('refused ' + e.message); process.exit(3); }
      if (${JSON.stringify(then)} === 'exit') process.exit(0); else setInterval(() => {}, 1000);
    };
    if (${gate}) { console.log('ready'); process.stdin.once('data', go); } else go();`;
  return spawn(process.execPath, ['--import', 'tsx', '-e', code], { cwd: ROOT, stdio: [gate ? 'pipe' : 'ignore', 'pipe', 'inherit'] });
}

const outputs = new WeakMap<ChildProcess, { text: string; waiters: (() => void)[] }>();

/** The child's output so far once a line matches `until` (by default: it took the lock or was refused), or it ended. */
function firstLine(child: ChildProcess, until = /^(locked|refused)/m): Promise<string> {
  let out = outputs.get(child);
  if (!out) {
    const o = { text: '', waiters: [] as (() => void)[] };
    outputs.set(child, (out = o));
    child.stdout?.setEncoding('utf8');
    const wake = (): void => o.waiters.splice(0).forEach((w) => w());
    child.stdout?.on('data', (chunk: string) => {
      o.text += chunk;
      wake();
    });
    child.on('exit', wake);
  }
  const o = out;
  return new Promise((resolve) => {
    const check = (): void => {
      if (until.test(o.text) || child.exitCode !== null || child.signalCode !== null) resolve(o.text);
      else o.waiters.push(check);
    };
    check();
  });
}

async function killed(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'nad-lock-'));
}

test('a lock held by a live process refuses a second taker, naming pid@host; after kill -9 it is stale and taken over', async () => {
  const dir = tempDir();
  const child = lockHolder(dir);
  try {
    assert.match(await firstLine(child), /^locked/m);
    const s = readRunLock(dir);
    assert.equal(s.state, 'held');
    assert.throws(
      () => acquireRunLock(dir),
      (e: unknown) =>
        e instanceof RunLockedError &&
        e.message.includes(`process ${child.pid}@${hostname()}`) &&
        /another window or a `nad` command/.test(e.message),
    );
    await killed(child);
    const stale = readRunLock(dir);
    assert.equal(stale.state, 'stale');
    assert.match(stale.state === 'stale' ? stale.why : '', new RegExp(`process ${child.pid} is gone`));
    const logs: string[] = [];
    const lock = acquireRunLock(dir, { log: (m) => logs.push(m) });
    assert.equal(logs.length, 1);
    assert.match(logs[0], new RegExp(`took over a stale run\\.lock \\(process ${child.pid}@`));
    assert.equal(JSON.parse(readFileSync(join(dir, RUN_LOCK), 'utf8')).pid, process.pid);
    // The same process asking again is refused too: one holder at a time.
    assert.throws(() => acquireRunLock(dir), RunLockedError);
    lock.release();
    assert.equal(existsSync(join(dir, RUN_LOCK)), false);
    lock.release(); // twice is harmless
  } finally {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a process that exits normally leaves no lock behind', async () => {
  const dir = tempDir();
  try {
    const child = lockHolder(dir, 'exit');
    assert.match(await firstLine(child), /^locked/m);
    const [code] = (await once(child, 'exit')) as [number];
    assert.equal(code, 0);
    assert.equal(existsSync(join(dir, RUN_LOCK)), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('children racing for one stale lock: exactly one takes it each round, and the lock file never reads torn', async () => {
  const dir = tempDir();
  let torn = 0;
  let reads = 0;
  // Read the lock file as fast as possible meanwhile: it is absent or whole, never partial.
  const reader = setInterval(() => {
    try {
      const text = readFileSync(join(dir, RUN_LOCK), 'utf8');
      reads++;
      JSON.parse(text);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') torn++;
    }
  }, 1);
  const children: ChildProcess[] = [];
  try {
    for (let round = 0; round < 2; round++) {
      const racers = [0, 1, 2, 3].map(() => lockHolder(dir, 'wait', true));
      children.push(...racers);
      await Promise.all(racers.map((c) => firstLine(c, /^ready/m)));
      for (const c of racers) c.stdin?.write('go\n');
      const lines = await Promise.all(racers.map((c) => firstLine(c)));
      const won = lines.flatMap((l, i) => (/^locked/m.test(l) ? [i] : []));
      assert.equal(won.length, 1, `round ${round}: ${lines.join(' | ')}`);
      for (const l of lines.filter((x) => !/^locked/m.test(x))) assert.match(l, /refused .*(in use by process|taking over)/);
      // In round 1 the lock left by round 0's killed winner is stale. The winner either took it over (and says
      // so) or found the file gone, removed by a racer whose takeover it then beat to the exclusive create: in
      // both cases the file now names the winner, alive.
      const now = readRunLock(dir);
      assert.ok(now.state === 'held' && now.owner.pid === racers[won[0]].pid, `round ${round}: ${JSON.stringify(now)}`);
      await Promise.all(racers.map(killed));
      assert.equal(readRunLock(dir).state, 'stale');
    }
  } finally {
    await Promise.all(children.map(killed)); // a failed round must not leave children holding the test open
    clearInterval(reader);
    rmSync(dir, { recursive: true, force: true });
  }
  assert.ok(reads > 0, 'the reader saw the lock');
  assert.equal(torn, 0, `${torn} of ${reads} reads of the lock file were torn`);
});

test('a lock of another host is never broken silently: the message says how to clear it; Slurm may take it over', () => {
  const dir = tempDir();
  try {
    const file = join(dir, RUN_LOCK);
    const owner = { pid: 4242, host: 'some-other-node', startedAt: '2026-01-01T00:00:00.000Z', token: 'abcd' };
    writeFileSync(file, JSON.stringify(owner));
    assert.throws(
      () => acquireRunLock(dir),
      (e: unknown) =>
        e instanceof RunLockedError && e.message.includes('process 4242@some-other-node') && e.message.includes(`delete ${file}`),
    );
    assert.equal(removeStaleLocks([{ file }]).length, 0, 'doctor leaves it alone');
    assert.equal(JSON.parse(readFileSync(file, 'utf8')).host, 'some-other-node');
    const logs: string[] = [];
    acquireRunLock(dir, { takeOverOtherHost: 'Slurm requeued the job', log: (m) => logs.push(m) }).release();
    assert.match(logs[0], /4242@some-other-node.*Slurm requeued the job/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('resuming a run another process holds is refused; doctor reports its stale lock once the holder is dead and removes it', async () => {
  const root = tempDir();
  const store = new RunStore(root);
  const run = store.create('train', { kind: 'train', name: 'locked' }, 'locked');
  run.update({ state: 'interrupted' });
  const live = store.create('train', { kind: 'train', name: 'live' }, 'live');
  const child = lockHolder(run.dir);
  const liveChild = lockHolder(live.dir);
  try {
    assert.match(await firstLine(child), /^locked/m);
    assert.match(await firstLine(liveChild), /^locked/m);
    await assert.rejects(prepareResume(run.dir), (e: unknown) => e instanceof RunLockedError && e.message.includes(`${child.pid}@`));
    // The refused resume changed nothing in the folder.
    assert.equal(JSON.parse(readFileSync(join(run.dir, 'status.json'), 'utf8')).state, 'interrupted');
    await killed(child);
    const report = checkRuns(store.runsDir);
    assert.deepEqual(
      report.locks.stale.map((l) => l.id),
      [run.id],
    );
    const text = formatDoctorReport({ machine: machineFacts(), engine: [], disk: checkDisk(store.runsDir), runs: report });
    assert.match(text, new RegExp(`lock +${run.id}: stale run\\.lock \\(process ${child.pid} is gone\\)`));
    // Only the stale one goes, even when asked for both: the live holder's lock is checked again.
    const removed = removeStaleLocks([{ file: join(run.dir, RUN_LOCK) }, { file: join(live.dir, RUN_LOCK) }]);
    assert.deepEqual(removed, [join(run.dir, RUN_LOCK)]);
    assert.equal(readRunLock(live.dir).state, 'held');
    assert.equal(checkRuns(store.runsDir).locks.stale.length, 0);
  } finally {
    child.kill('SIGKILL');
    liveChild.kill('SIGKILL');
    rmSync(root, { recursive: true, force: true });
  }
});
