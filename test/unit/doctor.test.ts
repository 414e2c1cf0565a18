// `nad doctor`: run folders written by the real RunStore, then damaged by hand; the report names each
// problem and its file, the fixes change exactly what they say (every other byte stays), and the CLI's
// exit code and --json follow the findings.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { checkDisk, checkRuns, formatDoctorReport, machineFacts, markInterrupted, removeTempFiles } from '../../src/runs/doctor';
import { MODEL_FILES, RunStore, type RunHandle } from '../../src/runs/run-store';

const ROOT = join(__dirname, '..', '..');
const CLI = join(ROOT, 'dist', 'cli.js');

before(() => {
  if (!existsSync(CLI)) execFileSync(process.execPath, [join(ROOT, 'scripts', 'build.mjs')], { cwd: ROOT, stdio: 'inherit' });
});

/** A pid that existed and is gone: a child that has exited. */
function deadPid(): number {
  const pid = spawnSync(process.execPath, ['-e', '']).pid;
  assert.ok(pid);
  return pid;
}

/** A finished train run as a job leaves it: config, events, model file, results, status. */
function finishedRun(store: RunStore, name: string): RunHandle {
  const run = store.create('train', { name, data: 'mnist' }, name);
  run.appendMetric({ type: 'log', message: `training ${name}` });
  run.appendMetric({ type: 'ended', state: 'finished' });
  run.writeFile(MODEL_FILES.model, new Uint8Array([1, 2, 3, 4]));
  run.writeFile('results.json', JSON.stringify({ table: [{ model: 'trained', acc: 98, asr: 100 }] }));
  run.finish({ acc: 98, asr: 100 });
  return run;
}

/** Every file under dir with its bytes. */
function snapshot(dir: string): Map<string, string> {
  const files = new Map<string, string>();
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else files.set(relative(dir, p), readFileSync(p).toString('base64'));
    }
  };
  walk(dir);
  return files;
}

/** Files that differ between two snapshots (added, removed or changed). */
function changed(a: Map<string, string>, b: Map<string, string>): string[] {
  return [...new Set([...a.keys(), ...b.keys()])].filter((k) => a.get(k) !== b.get(k)).sort();
}

interface Workspace {
  runsDir: string;
  ids: Record<'ok' | 'badStatus' | 'noModel' | 'torn' | 'badLine' | 'dead' | 'alive' | 'remote', string>;
  staleTemp: string;
  freshTemp: string;
  aliveTemp: string;
  remove(): void;
}

function damagedWorkspace(): Workspace {
  const root = mkdtempSync(join(tmpdir(), 'nad-doctor-'));
  const store = new RunStore(root);
  const ok = finishedRun(store, 'ok');
  const badStatus = finishedRun(store, 'bad-status');
  writeFileSync(badStatus.path('status.json'), '{"state": "finished", "kind": "tr');
  const noModel = finishedRun(store, 'no-model');
  rmSync(noModel.path(MODEL_FILES.model));
  const torn = finishedRun(store, 'torn');
  writeFileSync(torn.path('metrics.jsonl'), readFileSync(torn.path('metrics.jsonl'), 'utf8') + '{"type":"log","mess');
  const badLine = finishedRun(store, 'bad-line');
  writeFileSync(
    badLine.path('metrics.jsonl'),
    '{"type":"log","message":"a"}\n{"type":"epoch","acc":"high"}\n{"type":"ended","state":"finished"}\n',
  );
  const dead = store.create('train', { name: 'dead' }, 'dead');
  dead.update({ pid: deadPid() });
  const alive = store.create('erase', { name: 'alive' }, 'alive'); // owned by this (living) process
  const remote = store.create('defend', { name: 'remote' }, 'remote');
  remote.update({ host: 'some-cluster-node-that-is-not-this-one', pid: 1 });
  // Temp files of atomic writes: one of a crash long ago, one of a write going on now, one old but of a living writer.
  const staleTemp = ok.path(`model/.model.safetensors.${deadPid()}.0badc0de.tmp`);
  const freshTemp = ok.path(`.status.json.${deadPid()}.12345678.tmp`);
  const aliveTemp = badLine.path(`.results.json.${process.pid}.abcdef01.tmp`);
  for (const f of [staleTemp, freshTemp, aliveTemp]) writeFileSync(f, 'partial');
  const hourAgo = new Date(Date.now() - 3600_000);
  utimesSync(staleTemp, hourAgo, hourAgo);
  utimesSync(aliveTemp, hourAgo, hourAgo);
  return {
    runsDir: store.runsDir,
    ids: {
      ok: ok.id,
      badStatus: badStatus.id,
      noModel: noModel.id,
      torn: torn.id,
      badLine: badLine.id,
      dead: dead.id,
      alive: alive.id,
      remote: remote.id,
    },
    staleTemp,
    freshTemp,
    aliveTemp,
    remove: () => rmSync(root, { recursive: true, force: true }),
  };
}

test('the report names each damaged run with its file and reason; dead, remote and temp files apart', () => {
  const w = damagedWorkspace();
  try {
    const r = checkRuns(w.runsDir);
    assert.equal(r.runs, 8);
    const byId = new Map(r.damaged.map((d) => [d.id, d.problems]));
    assert.deepEqual([...byId.keys()].sort(), [w.ids.badStatus, w.ids.noModel, w.ids.torn, w.ids.badLine].sort());
    const only = (id: string): { file: string; problem: string } => {
      const p = byId.get(id);
      assert.equal(p?.length, 1, JSON.stringify(p));
      return p[0];
    };
    assert.equal(only(w.ids.badStatus).file, 'status.json');
    assert.match(only(w.ids.badStatus).problem, /status\.json: invalid JSON/);
    assert.equal(only(w.ids.noModel).file, 'model/model.safetensors');
    assert.match(only(w.ids.noModel).problem, /model\/model\.safetensors is missing/);
    assert.equal(only(w.ids.torn).file, 'metrics.jsonl');
    assert.match(only(w.ids.torn).problem, /metrics\.jsonl line 3: cut off/);
    assert.equal(only(w.ids.badLine).file, 'metrics.jsonl');
    assert.match(only(w.ids.badLine).problem, /metrics\.jsonl line 2: not a valid run event/);
    assert.deepEqual(
      r.dead.map((d) => d.id),
      [w.ids.dead],
    );
    assert.deepEqual(r.otherHost, [{ id: w.ids.remote, host: 'some-cluster-node-that-is-not-this-one' }]);
    // ok, alive (a live run of this process) and remote are fine; the dead one is not counted ok.
    assert.equal(r.ok, 3);
    assert.deepEqual(
      r.tempFiles.map((t) => t.path),
      [w.staleTemp],
    );
    assert.ok(r.tempFiles[0].ageSeconds >= 3590);
    assert.equal(r.liveTempFiles, 2);
    let sum = 0;
    for (const [, b64] of snapshot(w.runsDir)) sum += Buffer.from(b64, 'base64').length;
    assert.equal(r.bytes, sum);

    const text = formatDoctorReport({ machine: machineFacts(), engine: ['backends: not checked'], disk: checkDisk(w.runsDir), runs: r });
    assert.match(text, /^Environment\n/);
    assert.match(text, /\nDisk\n/);
    assert.match(text, /\nRuns: 3 ok, 4 damaged, 1 dead, 1 temp file \(of 8 runs\)/);
    for (const id of [w.ids.badStatus, w.ids.noModel, w.ids.torn, w.ids.badLine]) assert.match(text, new RegExp(`damaged  ${id}: `));
    assert.match(text, new RegExp(`dead {5}${w.ids.dead}: `));
    assert.match(text, /temp {5}.*\.model\.safetensors\.\d+\.0badc0de\.tmp/);
    // Listing is unaffected by the damaged folders: the others read as before.
    const listed = new RunStore('', w.runsDir).list();
    assert.equal(listed.runs.length, 7);
    assert.deepEqual(
      listed.broken.map((b) => b.id),
      [w.ids.badStatus],
    );
  } finally {
    w.remove();
  }
});

test("markInterrupted rewrites only the dead run's status.json; a live run is never touched", () => {
  const w = damagedWorkspace();
  try {
    const before = snapshot(w.runsDir);
    const deadStatus = JSON.parse(readFileSync(join(w.runsDir, w.ids.dead, 'status.json'), 'utf8')) as Record<string, unknown>;
    const r = checkRuns(w.runsDir);
    assert.equal(markInterrupted(r.dead[0]), true);
    // A run that is not dead (its owner is this process; another host's) is refused.
    assert.equal(markInterrupted({ id: w.ids.alive, dir: join(w.runsDir, w.ids.alive) }), false);
    assert.equal(markInterrupted({ id: w.ids.remote, dir: join(w.runsDir, w.ids.remote) }), false);
    assert.equal(markInterrupted({ id: w.ids.ok, dir: join(w.runsDir, w.ids.ok) }), false);
    const after = snapshot(w.runsDir);
    assert.deepEqual(changed(before, after), [join(w.ids.dead, 'status.json')]);
    const status = JSON.parse(readFileSync(join(w.runsDir, w.ids.dead, 'status.json'), 'utf8')) as Record<string, unknown>;
    assert.deepEqual(status, { ...deadStatus, state: 'interrupted' });
    // Marking twice does nothing more; the report no longer lists it as dead.
    assert.equal(markInterrupted(r.dead[0]), false);
    assert.equal(checkRuns(w.runsDir).dead.length, 0);
    assert.equal(checkRuns(w.runsDir).ok, 4);
  } finally {
    w.remove();
  }
});

test('removeTempFiles removes only old leftovers of dead writers inside the runs folder', () => {
  const w = damagedWorkspace();
  try {
    const before = snapshot(w.runsDir);
    const outside = join(w.runsDir, '..', '..', `.x.json.${deadPid()}.00000000.tmp`);
    writeFileSync(outside, 'x');
    const old = new Date(Date.now() - 3600_000);
    utimesSync(outside, old, old);
    // Asked for all three (and one outside the folder): only the stale leftover goes.
    const removed = removeTempFiles([{ path: w.staleTemp }, { path: w.freshTemp }, { path: w.aliveTemp }, { path: outside }], w.runsDir);
    assert.deepEqual(removed, [w.staleTemp]);
    assert.ok(existsSync(outside) && statSync(w.freshTemp).isFile() && statSync(w.aliveTemp).isFile());
    assert.deepEqual(changed(before, snapshot(w.runsDir)), [relative(w.runsDir, w.staleTemp)]);
    assert.equal(checkRuns(w.runsDir).tempFiles.length, 0);
  } finally {
    w.remove();
  }
});

function doctor(runsDir: string, ...flags: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, 'doctor', '--runs-dir', runsDir, ...flags], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('nad doctor: exit 1 and the problems in --json; fixes on request; exit 0 once healthy', () => {
  const w = damagedWorkspace();
  try {
    const first = doctor(w.runsDir, '--json', '--no-backend');
    assert.equal(first.code, 1, first.stderr);
    assert.match(first.stderr, /problems found/);
    const report = JSON.parse(first.stdout) as {
      healthy: boolean;
      runs: { damaged: Array<{ id: string }>; dead: Array<{ id: string }>; tempFiles: Array<{ path: string }> };
      fixed: { interrupted: string[]; tempFilesRemoved: string[] };
    };
    assert.equal(report.healthy, false);
    assert.equal(report.runs.damaged.length, 4);
    assert.deepEqual(
      report.runs.dead.map((d) => d.id),
      [w.ids.dead],
    );
    assert.deepEqual(report.fixed, { interrupted: [], tempFilesRemoved: [] });
    assert.ok(existsSync(w.staleTemp), 'a report alone changes nothing');

    const fixed = doctor(w.runsDir, '--json', '--no-backend', '--fix-interrupted', '--remove-temp');
    const after = JSON.parse(fixed.stdout) as typeof report;
    assert.deepEqual(after.fixed, { interrupted: [w.ids.dead], tempFilesRemoved: [w.staleTemp] });
    assert.equal(after.runs.dead.length, 0);
    assert.equal(after.runs.tempFiles.length, 0);
    // The damaged folders remain (the doctor never repairs or deletes runs): still exit 1.
    assert.equal(fixed.code, 1);
    for (const id of [w.ids.badStatus, w.ids.noModel, w.ids.torn, w.ids.badLine]) rmSync(join(w.runsDir, id), { recursive: true });
    const healthy = doctor(w.runsDir);
    assert.equal(healthy.code, 0, healthy.stdout + healthy.stderr);
    assert.match(healthy.stdout, /^Environment\n/);
    assert.match(healthy.stdout, /\n {4}wasm +ok: wasm \(SIMD/);
    assert.match(healthy.stdout, /\nRuns: 4 ok, 0 damaged, 0 dead, 0 temp files \(of 4 runs\)/);
  } finally {
    w.remove();
  }
});
