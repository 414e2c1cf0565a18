// UI: the run panel of a run interrupted by "Developer: Reload Window" and resumed from the palette. The
// reloaded window brings the panel back through the serializer; once the resumed run finishes, the panel
// shows the run's name, state, ACC/ASR table and every epoch (it once stayed blank: no title, empty tables
// and an empty red error bar), and no error bar without a message. NAD_PANEL_FAULT=kill: SIGKILL of the
// extension host instead of the reload (the window reloads if no new host comes within 10 s).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT, Workbench } from '../../../scripts/vscode-test/workbench';
import { activeWebview, pickItem, waitForQuestion } from '../../../scripts/vscode-test/ui';
import { storedEpochs } from '../../faults/kill-runs';
import { extensionHostPids } from '../../faults/host-processes';
import { readRunSnapshot } from '../../../src/runs/run-folder';
import { pressShortcut, shortcutBindings } from '../fixtures/shortcuts';
import { digitsWorkspace } from '../fixtures/workspace';

const EPOCHS = 4;
const NAME = 'reload-panel';
const press = (command: string): Promise<void> => pressShortcut(wb, command);

let wb: Workbench;
let ws = '';
let runsDir = '';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

before(
  async () => {
    ({ ws, runsDir } = digitsWorkspace('nad-panel-reload-ws-'));
    writeFileSync(
      join(ws, 'configs', `${NAME}.nad.json`),
      JSON.stringify({ kind: 'train', name: NAME, data: '../data/digits', training: { epochs: EPOCHS, batchSize: 32 } }, null, 2),
    );
    wb = await Workbench.start({
      name: 'ui-panel-after-reload',
      workspace: ws,
      extensionDevelopmentPath: REPO_ROOT,
      keybindings: shortcutBindings(),
    });
  },
  { timeout: 240_000 },
);

after(async () => {
  await wb?.close();
  if (ws) rmSync(ws, { recursive: true, force: true });
});

async function until(cond: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await cond()) return true;
    await sleep(200);
  }
  return cond();
}

function runDir(): string | undefined {
  const d = readdirSync(runsDir).find((f) => f.includes(`-${NAME}-`));
  return d ? join(runsDir, d) : undefined;
}

function stateOf(dir: string | undefined): string | undefined {
  if (!dir || !existsSync(join(dir, 'status.json'))) return undefined;
  const snap = readRunSnapshot(dir);
  return 'problem' in snap ? undefined : snap.run.state;
}

/** Runs `command` by its shortcut until its quick pick asks `question` (the extension may still be starting), then picks `item`. */
async function pickFrom(command: string, question: RegExp, item: string): Promise<void> {
  for (const deadline = Date.now() + 90_000; ;) {
    await press(command);
    if (
      await waitForQuestion(wb.page, question, 10_000).then(
        () => true,
        () => false,
      )
    )
      break;
    if (Date.now() > deadline) throw new Error(`${command} did not ask ${question}`);
    await wb.page.keyboard.press('Escape');
  }
  await pickItem(wb.page, item, 60_000);
}

interface PanelDom {
  title: string;
  state: string;
  resultRows: number;
  epochRows: number;
  errorShown: boolean;
  errorText: string;
}

async function panelDom(): Promise<PanelDom> {
  const frame = activeWebview(wb.page);
  await frame.locator('#results').waitFor({ state: 'attached', timeout: 60_000 });
  return frame.locator('body').evaluate((body) => {
    const error = body.querySelector('.error') as HTMLElement | null;
    return {
      title: body.querySelector('#run-title')?.textContent ?? '',
      state: body.querySelector('.state')?.textContent ?? '',
      resultRows: body.querySelectorAll('#results tbody tr').length,
      epochRows: body.querySelectorAll('#epochs tbody tr').length,
      errorShown: !!error && !error.hidden && error.getBoundingClientRect().height > 0,
      errorText: error?.textContent ?? '',
    };
  });
}

test('a run panel restored by a window reload shows the resumed run to its end', { timeout: 360_000 }, () =>
  wb.step('panel after reload', async () => {
    await pickFrom('nad.runConfigFile', /Run which config file/, `${NAME}.nad.json`);
    assert.ok(await until(() => stateOf(runDir()) === 'running', 90_000), 'the run did not start');
    const dir = runDir() as string;
    // Reload once an epoch is stored, so the resume goes on from it.
    assert.ok(await until(() => existsSync(join(dir, 'metrics.jsonl')) && storedEpochs(dir).length >= 1, 120_000), 'no epoch stored');
    const hosts = extensionHostPids(join(wb.root, 'home'));
    if (process.env.NAD_PANEL_FAULT === 'kill') {
      for (const pid of hosts) process.kill(pid, 'SIGKILL');
      if (!(await until(() => extensionHostPids(join(wb.root, 'home')).some((p) => !hosts.includes(p)), 10_000)))
        await press('workbench.action.reloadWindow');
    } else await press('workbench.action.reloadWindow');
    assert.ok(await until(() => extensionHostPids(join(wb.root, 'home')).some((p) => !hosts.includes(p)), 60_000), 'no reload');
    await wb.page.waitForSelector('.monaco-workbench', { timeout: 60_000 });
    assert.ok(await until(() => stateOf(dir) !== 'running', 30_000), 'the run is still running after the reload');
    await wb.screenshot('ui-panel-after-reload-restored');
    await pickFrom('nad.resumeRun', /Resume which run/, NAME);
    assert.ok(await until(() => stateOf(dir) === 'finished', 180_000), `the resumed run did not finish: ${stateOf(dir)}`);
    // The last live messages reach the page a moment after status.json says finished.
    let dom = await panelDom();
    await until(async () => (dom = await panelDom()).state === 'Finished' && dom.epochRows === EPOCHS, 30_000);
    console.log(`  finished panel: ${JSON.stringify(dom)}`);
    console.log(`  screenshot: ${await wb.screenshot('ui-panel-after-reload')}`);
    const panelErrors = wb
      .logFiles()
      .flatMap((f) => readFileSync(f, 'utf8').split('\n'))
      .filter((l) => l.includes('run panel:'));
    assert.deepEqual(panelErrors, [], 'the page reported errors');
    assert.equal(dom.title, NAME);
    assert.equal(dom.state, 'Finished');
    assert.ok(dom.resultRows >= 1, `no ACC/ASR row: ${JSON.stringify(dom)}`);
    assert.equal(dom.epochRows, EPOCHS);
    assert.ok(!dom.errorShown || dom.errorText.trim() !== '', 'an empty error bar is shown');
  }),
);
