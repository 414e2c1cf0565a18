// kill -9 of the run worker and of `nad` at random moments, N times (test/faults/kill-runs.ts): no torn file, every killed run shown
// interrupted by the history's reader and resumed from its last saved epoch, no run lost or stuck, and
// the stale run.lock of each killed process taken over by its resume. N is NAD_KILL_FAULTS (default 10;
// `npm run faults` runs 100), the seed NAD_KILL_SEED. The counts are printed as a row of the README's
// fault table.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { faultTableRow, runKillSuite } from '../faults/kill-runs';

const ROOT = join(__dirname, '..', '..');
const FAULTS = Number(process.env.NAD_KILL_FAULTS ?? 10);
const SEED = Number(process.env.NAD_KILL_SEED ?? 1);

test(`kill -9 of the run worker and nad, ${FAULTS} times (seed ${SEED}): nothing torn, lost or stuck; every resume goes on`, async () => {
  if (!existsSync(join(ROOT, 'dist', 'cli.js')))
    execFileSync(process.execPath, [join(ROOT, 'scripts', 'build.mjs')], { cwd: ROOT, stdio: 'inherit' });
  const lines: string[] = [];
  const c = await runKillSuite({ faults: FAULTS, seed: SEED, onLine: (l) => lines.push(l) });
  const log = `\n${lines.join('\n')}\n${JSON.stringify(c)}`;
  console.log(`${log}\n${faultTableRow(c)}`);
  assert.equal(c.faults, FAULTS);
  assert.equal(c.tornFiles, 0, `torn files${log}`);
  assert.equal(c.lostRuns, 0, `lost runs${log}`);
  assert.equal(c.stuckRuns, 0, `stuck runs${log}`);
  assert.equal(c.crashes, 0, `attempts that failed on their own${log}`);
  assert.equal(c.badResumes, 0, `resumes that did not go on from the saved epoch${log}`);
  // Every fault either came before the run had a folder, or left it interrupted (or, killed on its way out, finished).
  assert.ok(c.interrupted + c.beforeFolder <= c.faults && c.interrupted + c.beforeFolder >= c.faults - c.finishedRuns, log);
  assert.equal(c.resumes, c.interrupted, `each interrupted run was resumed${log}`);
  assert.ok(c.finishedRuns >= 1, `the last run was taken to its end${log}`);
  // A killed process leaves its lock (the exit hook does not run on SIGKILL): its resume took it over.
  assert.ok(c.staleLocksTakenOver >= 1 && c.staleLocksTakenOver <= c.interrupted, log);
});
