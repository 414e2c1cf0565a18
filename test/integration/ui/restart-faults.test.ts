// Fault suite of the extension host: in a real VS Code, short training runs started from the palette
// ("NAD: Run Config File", then "NAD: Resume Run") are hit at seeded random moments by "Developer: Reload
// Window" or by SIGKILL of the extension host process, N times (NAD_RESTART_FAULTS, default 3; the seed
// NAD_RESTART_SEED). After each fault: no run worker outlives its host, every run folder's JSON parses and
// its metrics lines are whole, the history's reader and the Runs view show every run finished or
// interrupted (none stuck as running), and the interrupted run is resumed from the palette, which must go
// on from its last saved epoch. A run takes at most three faults, then runs to its end (epochs 1..E once
// each, no run.lock left). The counts are printed as a row of the README's fault table.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT, Workbench } from '../../../scripts/vscode-test/workbench';
import { pickItem, runCommand, treeRows, viewPane, waitForQuestion, type TreeRow } from '../../../scripts/vscode-test/ui';
import { continuedFrom, savedEpoch, starts, storedEpochs, tornFiles } from '../../faults/kill-runs';
import { extensionHostPids, workerPids } from '../../faults/host-processes';
import { Rng } from '../../../src/engine/rng';
import { isAlive } from '../../../src/runs/run-store';
import { readRunSnapshot, readRunSummary } from '../../../src/runs/run-folder';
import { RUN_LOCK } from '../../../src/runs/run-lock';
import { RESTART_FAULTS, restartTableRow, type RestartCounts } from '../../faults/restart-counts';
import { pressShortcut, shortcutBindings } from '../fixtures/shortcuts';
import { digitsWorkspace } from '../fixtures/workspace';

const SEED = Number(process.env.NAD_RESTART_SEED ?? 1);
const EPOCHS = 5;
/** Faults per run before it is let run to its end. */
const FAULTS_PER_RUN = 3;
/** How long a run may take to show up as not running in the Runs view after a fault. */
const SETTLE_MS = 30_000;
const press = (command: string): Promise<void> => pressShortcut(wb, command);

let wb: Workbench;
let ws = '';
let runsDir = '';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

before(
  async () => {
    ({ ws, runsDir } = digitsWorkspace('nad-restart-ws-'));
    wb = await Workbench.start({
      name: 'ui-restart-faults',
      workspace: ws,
      extensionDevelopmentPath: REPO_ROOT,
      // The commands on shortcuts, as a person may bind them: on a loaded machine the palette is too slow
      // to hit a moment, and its 2-second waits for a row time out.
      keybindings: shortcutBindings(),
    });
  },
  { timeout: 240_000 },
);

after(async () => {
  await wb?.close();
  if (ws) rmSync(ws, { recursive: true, force: true });
});

const home = (): string => join(wb.root, 'home');

/** The folder of run `name` once it exists. */
function folderOf(name: string): string | undefined {
  const d = readdirSync(runsDir).find((f) => f.includes(`-${name}-`));
  return d ? join(runsDir, d) : undefined;
}

/** Waits until `cond` holds (polled every 100 ms); false after `timeoutMs`. */
async function until(cond: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await cond()) return true;
    await sleep(100);
  }
  return cond();
}

/** The run's state as status.json's reader gives it (a dead owner reads as interrupted), or undefined. */
function stateOf(dir: string | undefined): string | undefined {
  if (!dir || !existsSync(join(dir, 'status.json'))) return undefined;
  const snap = readRunSnapshot(dir);
  return 'problem' in snap ? `unreadable: ${snap.problem}` : snap.run.state;
}

/** Epoch lines in the folder's metrics.jsonl so far (the live `step` events are not stored). */
function epochsWritten(dir: string | undefined): number {
  return dir && existsSync(join(dir, 'metrics.jsonl')) ? storedEpochs(dir).length : 0;
}

/** Shows the NAD Runs view once the extension answers again (its command runs after a restart). */
async function showRunsView(): Promise<void> {
  const pane = viewPane(wb.page, 'Runs');
  for (const deadline = Date.now() + 90_000; ;) {
    await press('nad.showHistory');
    if (await until(() => pane.isVisible(), 5_000)) return;
    if (Date.now() > deadline) throw new Error('the Runs view did not show');
  }
}

/** Runs `command` by its shortcut until its quick pick asks `question` (the extension may still be starting), then picks `item`. */
async function pickFrom(command: string, question: RegExp, item: string): Promise<void> {
  for (const deadline = Date.now() + 90_000; ;) {
    await press(command);
    const asked = await waitForQuestion(wb.page, question, 10_000).then(
      () => true,
      () => false,
    );
    if (asked) break;
    if (Date.now() > deadline) throw new Error(`${command} did not ask ${question}`);
    await wb.page.keyboard.press('Escape');
  }
  await pickItem(wb.page, item, 60_000);
}

/** The Runs view's rows now (none while it shows its welcome text). */
function runsViewRows(): Promise<TreeRow[]> {
  return treeRows(viewPane(wb.page, 'Runs'), 0);
}

/** "Developer: Reload Window" by its shortcut (from the palette if that did nothing); returns once a new extension host runs. */
async function reloadWindow(): Promise<void> {
  const hosts = extensionHostPids(home());
  const newHost = (): boolean => extensionHostPids(home()).some((p) => !hosts.includes(p));
  await press('workbench.action.reloadWindow');
  if (!(await until(newHost, 20_000))) {
    await runCommand(wb.page, 'Developer: Reload Window', 60_000);
    assert.ok(await until(newHost, 60_000), 'the window did not reload');
  }
  await wb.page.waitForSelector('.monaco-workbench', { timeout: 60_000 });
}

/** Injects one fault: a window reload, or SIGKILL of the extension host. */
async function inject(kind: 'reload' | 'kill', c: RestartCounts): Promise<string> {
  if (kind === 'reload') {
    await reloadWindow();
    c.reloads++;
    return 'window reloaded';
  }
  const hosts = extensionHostPids(home());
  assert.ok(hosts.length > 0, 'no extension host process found');
  for (const pid of hosts) process.kill(pid, 'SIGKILL');
  c.hostKills++;
  // Desktop VS Code restarts a crashed extension host by itself; the browser workbench of the VS Code
  // server gives up on a remote one ("Unknown reconnection token") and a person reloads the window.
  if (!(await until(() => extensionHostPids(home()).some((p) => !hosts.includes(p)), 10_000))) {
    await reloadWindow();
    c.reloadsAfterKill++;
  }
  return `extension host ${hosts.join(',')} killed`;
}

async function runFaults(c: RestartCounts, say: (line: string) => void): Promise<void> {
  const rng = new Rng(SEED);
  let current: string | undefined; // name of the run being hit and resumed
  let faultsOfCurrent = 0;
  let n = 0;
  while (c.faults < RESTART_FAULTS || current) {
    const name = current ?? `hf-${String(++n).padStart(2, '0')}`;
    const dirBefore = folderOf(name);
    const saved = dirBefore ? await savedEpoch(dirBefore) : 0;
    const startsBefore = dirBefore ? starts(dirBefore) : 0;
    if (current) {
      await pickFrom('nad.resumeRun', /Resume which run/, name);
      c.resumes++;
    } else {
      writeFileSync(
        join(ws, 'configs', `${name}.nad.json`),
        JSON.stringify({ kind: 'train', name, data: '../data/digits', training: { epochs: EPOCHS, batchSize: 32 } }, null, 2),
      );
      await pickFrom('nad.runConfigFile', /Run which config file/, `${name}.nad.json`);
    }
    const t0 = Date.now();
    const hit = c.faults < RESTART_FAULTS && faultsOfCurrent < FAULTS_PER_RUN;
    let moment = 'none';
    let hitIt = false;
    if (hit) {
      // A fifth at start-up (worker, backend, data: 0-4 s after the command), the others 0-1.5 s after
      // an epoch at most two past the saved one was stored, so that faults land in training and in the
      // writes of the end (final evaluation, attention maps, results).
      const kind = rng.next() < 0.5 ? 'reload' : 'kill';
      const k = Math.min(EPOCHS, saved + 1 + Math.floor(rng.next() * 2));
      const atStartup = rng.next() < 0.2;
      const delay = Math.round(rng.next() * (atStartup ? 4000 : 1500));
      const reached = atStartup
        ? true
        : await until(() => epochsWritten(folderOf(name)) >= k || ['finished', 'failed'].includes(stateOf(folderOf(name)) ?? ''), 120_000);
      assert.ok(reached, `${name}: epoch ${k} never came`);
      await sleep(atStartup ? Math.max(0, delay - (Date.now() - t0)) : delay);
      if (stateOf(folderOf(name)) !== 'finished') {
        moment = atStartup ? `${delay} ms after the command` : `${delay} ms after epoch ${k}`;
        const worker = readWorkerPid(folderOf(name));
        say(`${name}: ${await inject(kind, c)} ${moment}`);
        c.faults++;
        if (atStartup) c.atStartup++;
        faultsOfCurrent++;
        hitIt = true;
        // The worker goes with its host (it exits on the IPC channel's disconnect).
        const orphans = (): number[] => [...new Set([...workerPids(home()), ...(worker && isAlive(worker) ? [worker] : [])])];
        if (!(await until(() => orphans().length === 0, 10_000))) {
          c.orphanWorkers += orphans().length;
          say(`${name}: workers ${orphans().join(',')} outlived their extension host; killing them`);
          for (const pid of orphans()) process.kill(pid, 'SIGKILL');
        }
      }
    }
    if (!hitIt) {
      // Let it run to its end.
      const ended = await until(() => ['finished', 'failed', 'cancelled'].includes(stateOf(folderOf(name)) ?? ''), 180_000);
      assert.ok(ended, `${name}: did not end (state ${stateOf(folderOf(name))})`);
      await until(() => workerPids(home()).length === 0, 10_000);
    }
    const dir = folderOf(name);
    if (current && dir && starts(dir) > startsBefore && !continuedFrom(dir, saved)) {
      c.badResumes++;
      say(`${name}: the resume from epoch ${saved} did not go on from it: epochs ${storedEpochs(dir).join(',')}`);
    }
    if (!dir) {
      if (hitIt) {
        c.beforeFolder++;
        say(`${name}: hit before its folder existed`);
        continue;
      }
      c.lostRuns++;
      say(`${name}: no run folder`);
      continue;
    }
    // Every run folder, not only this one: nothing torn, nothing shown running, in the reader and the view.
    for (const d of readdirSync(runsDir).filter((f) => !f.startsWith('.'))) {
      const { torn, cutLast } = await tornFiles(join(runsDir, d));
      const bad = [...torn, ...(cutLast ? ['metrics.jsonl (cut last line)'] : [])];
      if (bad.length) say(`${d}: TORN ${bad.join(', ')}`);
      c.tornFiles += bad.length;
    }
    let rows: TreeRow[] = [];
    await showRunsView();
    const settled = await until(async () => {
      rows = await runsViewRows();
      const mine = rows.filter((r) => /^hf-\d+$/.test(r.label));
      return mine.some((r) => r.label === name) && mine.every((r) => !/· running/.test(r.description));
    }, SETTLE_MS);
    const state = stateOf(dir);
    const row = rows.find((r) => r.label === name);
    if (!settled || state === 'running') {
      c.stuckRuns++;
      say(`${name}: STUCK: reader ${state}, view ${JSON.stringify(rows.map((r) => `${r.label}: ${r.description}`))}`);
      current = undefined;
      faultsOfCurrent = 0;
      continue;
    }
    if (state === 'finished') {
      const got = storedEpochs(dir);
      const whole = got.join(',') === Array.from({ length: EPOCHS }, (_, i) => i + 1).join(',');
      if (!whole) c.badResumes++;
      if (existsSync(join(dir, RUN_LOCK))) c.stuckRuns++;
      c.finishedRuns++;
      say(
        `${name}: finished after ${faultsOfCurrent} faults, epochs ${got.join(',')}${whole ? '' : ' (NOT 1..E)'}; view: ${row?.description}`,
      );
      current = undefined;
      faultsOfCurrent = 0;
    } else if (state === 'interrupted' && row?.description.startsWith('train · interrupted')) {
      c.interrupted++;
      say(`${name}: interrupted after epoch ${await savedEpoch(dir)} (${moment}); view: ${row.description}; resuming`);
      current = name;
    } else {
      if (state === 'failed') c.crashes++;
      else c.lostRuns++;
      say(`${name}: ${state === 'failed' ? 'FAILED' : 'LOST'}: reader ${state}, view ${row?.description}`);
      current = undefined;
      faultsOfCurrent = 0;
    }
    // A run hit three times is let run: the next round resumes it without a fault.
  }
}

/** The worker pid status.json names while the run is running. */
function readWorkerPid(dir: string | undefined): number | undefined {
  if (!dir || !existsSync(join(dir, 'status.json'))) return undefined;
  const s = readRunSummary(dir);
  return 'problem' in s || s.status.state !== 'running' ? undefined : s.status.pid;
}

test(
  `reload the window or kill the extension host mid-run, ${RESTART_FAULTS} times (seed ${SEED}): no run stuck, torn or lost; resumes go on`,
  { timeout: 300_000 + RESTART_FAULTS * 120_000 },
  () =>
    wb.step('restart faults', async () => {
      const t0 = Date.now();
      const lines: string[] = [];
      const c: RestartCounts = {
        faults: 0,
        crashes: 0,
        reloads: 0,
        hostKills: 0,
        reloadsAfterKill: 0,
        atStartup: 0,
        beforeFolder: 0,
        orphanWorkers: 0,
        tornFiles: 0,
        lostRuns: 0,
        stuckRuns: 0,
        interrupted: 0,
        resumes: 0,
        badResumes: 0,
        finishedRuns: 0,
        seconds: 0,
      };
      await showRunsView();
      await runFaults(c, (l) => {
        lines.push(l);
        console.log(`  ${l}`);
      });
      c.seconds = Math.round((Date.now() - t0) / 100) / 10;
      console.log(`  screenshot: ${await wb.screenshot('ui-restart-faults-runs')}`);
      const log = `\n${lines.join('\n')}\n${JSON.stringify(c)}`;
      console.log(`${JSON.stringify(c)}\n${restartTableRow(c)}`);
      assert.equal(c.faults, RESTART_FAULTS);
      assert.equal(c.crashes, 0, `runs that failed${log}`);
      assert.equal(c.stuckRuns, 0, `stuck runs${log}`);
      assert.equal(c.tornFiles, 0, `torn files${log}`);
      assert.equal(c.lostRuns, 0, `lost runs${log}`);
      assert.equal(c.orphanWorkers, 0, `workers that outlived their host${log}`);
      assert.equal(c.badResumes, 0, `resumes that did not go on from the saved epoch${log}`);
      assert.equal(c.resumes, c.interrupted, `each interrupted run was resumed${log}`);
      assert.ok(c.finishedRuns >= 1, `the last run was taken to its end${log}`);
    }),
);
