// UI: the extension in Restricted Mode (workspace trust on, the folder not trusted). Commands that load
// models or data, or run jobs, are not offered (palette, Runs view, Explorer and editor menus) and are
// refused with a message when started anyway (a user's own keybinding); reading existing runs works and
// the workspace's nad.runsFolder is ignored. Trusting the folder through that message's "Manage Workspace
// Trust" enables everything in the same window: the runs folder setting applies, and a run is started.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { RunStore } from '../../../src/runs/run-store';
import { REPO_ROOT, Workbench } from '../../../scripts/vscode-test/workbench';
import {
  TEST_TIMEOUT_MS,
  activeWebview,
  contextMenuLabels,
  paletteLists,
  runCommand,
  treeRows,
  viewPane,
} from '../../../scripts/vscode-test/ui';
import { makeWorkspace, type FixtureWorkspace } from '../fixtures/workspace';
import { trainSmallModel, writeSmallMnist } from '../fixtures/small-mnist';

let wb: Workbench;
let ws: FixtureWorkspace;
const QUICK = '.quick-input-widget';
/** A user's own shortcut for a command the palette hides: keybindings do not obey the palette's when clauses. */
const EVALUATE_KEY = 'Control+Alt+E';
/** Commands that read checkpoints or data, or run jobs: hidden in Restricted Mode. */
const RUN_COMMANDS = [
  'NAD: Erase Backdoor',
  'NAD: Defend Model…',
  'NAD: Train Backdoored Model',
  'NAD: Finetune Teacher',
  'NAD: Evaluate Model',
  'NAD: Run Demo',
  'NAD: Run Config File',
  'NAD: Resume Run',
  'NAD: Run Again',
];
/** Commands that only read run folders: offered in Restricted Mode. */
const READ_COMMANDS = [
  'NAD: Show Experiment History',
  'NAD: Show Experiment History Table',
  'NAD: Open Run',
  'NAD: Compare Runs',
  'NAD: Show Attention Maps',
];
const TEAM_RUNS = 'team-runs';
const CONFIG_FILE = 'eval-backdoored.nad.json';

before(
  async () => {
    ws = makeWorkspace();
    const data = writeSmallMnist(join(ws.dir, 'data', 'small-mnist'), { train: 60, test: 20 });
    // A model to evaluate once trusted, trained by the CLI (the same engine) in a few seconds; its run is
    // one more existing run, and one of its heatmaps an image for "Show Attention Maps".
    const runsDir = join(ws.dir, '.nad', 'runs');
    const trained = trainSmallModel(data, runsDir, 'cli-backdoored', ws.dir);
    copyFileSync(join(trained, 'model', 'model.safetensors'), join(ws.dir, 'backdoored.safetensors'));
    copyFileSync(join(trained, 'attention', 'backdoored', 'clean-0-group1.png'), join(ws.dir, 'digit.png'));
    writeFileSync(
      join(ws.dir, CONFIG_FILE),
      JSON.stringify({ kind: 'eval', name: 'trusted-eval', model: 'backdoored.safetensors', test: 'data/small-mnist' }, null, 2),
    );
    // The workspace's own runs folder: a restricted setting, so only used once the folder is trusted.
    new RunStore(ws.dir, join(ws.dir, TEAM_RUNS)).create('eval', { name: 'team-eval' }, 'team-eval').finish({ acc: 77.5, asr: 12.5 });
    mkdirSync(join(ws.dir, '.vscode'), { recursive: true });
    writeFileSync(join(ws.dir, '.vscode', 'settings.json'), JSON.stringify({ 'nad.runsFolder': TEAM_RUNS }, null, 2));
    wb = await Workbench.start({
      name: 'ui-trust',
      workspace: ws.dir,
      extensionDevelopmentPath: REPO_ROOT,
      workspaceTrust: 'restricted',
      smokeTestDriver: false,
      keybindings: [{ key: 'ctrl+alt+e', command: 'nad.evaluateModel' }],
    });
  },
  { timeout: TEST_TIMEOUT_MS },
);

after(async () => {
  await wb?.close();
  if (ws) rmSync(ws.dir, { recursive: true, force: true });
});

async function runsViewLabels(page: Page): Promise<string[]> {
  return (await treeRows(viewPane(page, 'Runs'), 1)).map((r) => r.label);
}

async function viewTitleActions(page: Page): Promise<string[]> {
  return page
    .locator('.part.sidebar .title-actions .action-label')
    .evaluateAll((els) => els.map((e) => e.getAttribute('aria-label') ?? ''));
}

function explorerRow(page: Page, label: string) {
  return page.locator('.explorer-folders-view .monaco-list-row', { has: page.locator('.label-name', { hasText: label }) }).first();
}

function restrictedModeIndicator(page: Page) {
  return page.locator('.statusbar-item', { hasText: 'Restricted Mode' });
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

test('the folder opens in Restricted Mode', { timeout: TEST_TIMEOUT_MS }, () =>
  wb.step('restricted mode', async () => {
    await restrictedModeIndicator(wb.page).waitFor({ timeout: 30_000 });
    await wb.page.locator('.monaco-workbench .part.banner', { hasText: 'Restricted Mode' }).waitFor({ timeout: 10_000 });
  }),
);

test('the palette offers the read-only commands and none of the run commands', { timeout: TEST_TIMEOUT_MS }, () =>
  wb.step('palette', async () => {
    const page = wb.page;
    // The extension is active and its runs are listed: its commands are registered by now.
    await runCommand(page, 'NAD: Show Experiment History');
    await treeRows(viewPane(page, 'Runs'), 4);
    for (const title of READ_COMMANDS) assert.equal(await paletteLists(page, title), true, `"${title}" is not offered in Restricted Mode`);
    for (const title of RUN_COMMANDS) assert.equal(await paletteLists(page, title), false, `"${title}" is offered in Restricted Mode`);
  }),
);

test(
  'the Runs view lists the existing runs from .nad/runs, ignoring the workspace’s nad.runsFolder, without run buttons',
  { timeout: TEST_TIMEOUT_MS },
  () =>
    wb.step('runs view', async () => {
      const page = wb.page;
      const rows = await treeRows(viewPane(page, 'Runs'), 4);
      const labels = rows.map((r) => r.label);
      for (const name of ['badnets-erase', 'badnets-train', 'cli-backdoored'])
        assert.ok(labels.includes(name), `${name} is not listed: ${JSON.stringify(labels)}`);
      assert.ok(!labels.includes('team-eval'), 'the workspace’s nad.runsFolder was used in Restricted Mode');
      assert.equal(rows.find((r) => r.label === 'badnets-erase')?.icon, 'pass');
      const actions = await viewTitleActions(page);
      assert.ok(actions.includes('Refresh Runs') && actions.includes('Show Experiment History Table'), JSON.stringify(actions));
      assert.ok(
        !actions.includes('Erase Backdoor') && !actions.includes('Run Demo'),
        `run buttons in the view title: ${JSON.stringify(actions)}`,
      );
      const failedRow = viewPane(page, 'Runs').locator('.monaco-list-row', {
        has: page.locator('.label-name', { hasText: 'badnets-train' }),
      });
      const menu = await contextMenuLabels(page, failedRow);
      assert.ok(menu.includes('Open Run') && menu.includes('Delete Run'), `context menu of a failed run: ${JSON.stringify(menu)}`);
      assert.ok(!menu.includes('Resume Run') && !menu.includes('Run Again'), `run entries in Restricted Mode: ${JSON.stringify(menu)}`);
      console.log(`  screenshot: ${await wb.screenshot('ui-trust-restricted-runs')}`);
    }),
);

test('a run’s panel opens, without Run Again or Resume', { timeout: TEST_TIMEOUT_MS }, () =>
  wb.step('panel', async () => {
    const page = wb.page;
    await viewPane(page, 'Runs')
      .locator('.monaco-list-row', { has: page.locator('.label-name', { hasText: 'badnets-erase' }) })
      .click();
    const frame = activeWebview(page);
    await frame.locator('.state', { hasText: 'Finished' }).waitFor({ timeout: 30_000 });
    assert.equal((await frame.locator('#run-title').innerText()).trim(), 'badnets-erase');
    await frame.locator('vscode-button', { hasText: 'Reveal Folder' }).waitFor({ timeout: 10_000 });
    const buttons = (await frame.locator('header .actions vscode-button').allInnerTexts()).map((b) => b.trim());
    assert.ok(buttons.includes('Show Log'), `not the panel's buttons: ${JSON.stringify(buttons)}`);
    assert.ok(!buttons.includes('Run Again') && !buttons.includes('Resume'), `run buttons in Restricted Mode: ${JSON.stringify(buttons)}`);
    console.log(`  screenshot: ${await wb.screenshot('ui-trust-restricted-panel')}`);
    await runCommand(page, 'View: Close All Editors');
  }),
);

test('the Explorer and editor menus offer no NAD run entries for checkpoints, images and config files', { timeout: TEST_TIMEOUT_MS }, () =>
  wb.step('menus', async () => {
    const page = wb.page;
    await runCommand(page, 'View: Show Explorer');
    const model = await contextMenuLabels(page, explorerRow(page, 'backdoored.safetensors'));
    assert.ok(model.includes('Copy Path'), `not the Explorer menu: ${JSON.stringify(model)}`);
    for (const entry of ['Erase Backdoor', 'Finetune Teacher', 'Evaluate Model'])
      assert.ok(!model.includes(entry), `"${entry}" on a checkpoint: ${JSON.stringify(model)}`);
    const image = await contextMenuLabels(page, explorerRow(page, 'digit.png'));
    assert.ok(image.includes('Copy Path') && !image.includes('Show Attention Maps'), `menu of an image: ${JSON.stringify(image)}`);
    const config = await contextMenuLabels(page, explorerRow(page, CONFIG_FILE));
    assert.ok(config.includes('Copy Path') && !config.includes('Run Config File'), `menu of a config file: ${JSON.stringify(config)}`);
    await explorerRow(page, CONFIG_FILE).dblclick();
    await page.locator('.tabs-container .tab.active', { hasText: CONFIG_FILE }).waitFor({ timeout: 15_000 });
    assert.equal(
      await page.locator('.editor-actions .action-label[aria-label^="Run Config File"]').count(),
      0,
      'the editor offers Run Config File',
    );
  }),
);

test(
  'a run command started anyway (a user’s keybinding) is refused; its message leads to trusting the folder',
  { timeout: TEST_TIMEOUT_MS },
  () =>
    wb.step('refused, then trusted', async () => {
      const page = wb.page;
      await page.locator('.editor-instance .monaco-editor').first().click();
      await page.keyboard.press(EVALUATE_KEY);
      const toast = page.locator('.notifications-toasts .notification-toast', {
        hasText: 'NAD: Evaluating a model is disabled in Restricted Mode',
      });
      await toast.waitFor({ timeout: 10_000 });
      assert.equal(await page.locator(`${QUICK} .quick-input-box input`).isVisible(), false, 'the wizard opened anyway');
      console.log(`  screenshot: ${await wb.screenshot('ui-trust-refused-keybinding')}`);
      await toast.locator('.monaco-button', { hasText: 'Manage Workspace Trust' }).click();
      const editor = page.locator('.workspace-trust-editor');
      await editor.waitFor({ timeout: 15_000 });
      console.log(`  screenshot: ${await wb.screenshot('ui-trust-manage')}`);
      await editor.locator('.monaco-button', { hasText: /^Trust$/ }).click();
      await restrictedModeIndicator(page).waitFor({ state: 'detached', timeout: 20_000 });
    }),
);

test(
  'once trusted, the run commands are offered, the workspace’s runs folder applies, and a run starts from the editor',
  { timeout: TEST_TIMEOUT_MS },
  () =>
    wb.step('trusted', async () => {
      const page = wb.page;
      for (const title of RUN_COMMANDS) assert.equal(await paletteLists(page, title), true, `"${title}" is not offered once trusted`);
      await runCommand(page, 'NAD: Show Experiment History');
      // nad.runsFolder now applies: the view shows the team's runs folder.
      await until('the Runs view shows nad.runsFolder', async () =>
        (await runsViewLabels(page)).includes('team-eval') ? true : undefined,
      );
      const actions = await viewTitleActions(page);
      assert.ok(
        actions.includes('Erase Backdoor') && actions.includes('Run Demo'),
        `no run buttons once trusted: ${JSON.stringify(actions)}`,
      );
      console.log(`  screenshot: ${await wb.screenshot('ui-trust-trusted-runs')}`);
      // The config file's editor has its Run button now.
      await runCommand(page, 'View: Show Explorer');
      await explorerRow(page, CONFIG_FILE).dblclick();
      const run = page.locator('.editor-actions .action-label[aria-label^="Run Config File"]');
      await run.waitFor({ timeout: 15_000 });
      await run.click();
      const frame = activeWebview(page);
      await frame.locator('#run-title', { hasText: 'trusted-eval' }).waitFor({ timeout: 60_000 });
      await frame.locator('.state', { hasText: /Finished|Failed/ }).waitFor({ timeout: 90_000 });
      assert.equal(
        (await frame.locator('.state').innerText()).trim(),
        'Finished',
        await frame
          .locator('.error')
          .innerText()
          .catch(() => ''),
      );
      const dir = readdirSync(join(ws.dir, TEAM_RUNS)).find((d) => d.includes('trusted-eval'));
      assert.ok(dir, `the run is not in ${TEAM_RUNS} (nad.runsFolder)`);
      assert.ok(
        !existsSync(join(ws.dir, '.nad', 'runs')) || !readdirSync(join(ws.dir, '.nad', 'runs')).some((d) => d.includes('trusted-eval')),
      );
      const status = JSON.parse(readFileSync(join(ws.dir, TEAM_RUNS, dir, 'status.json'), 'utf8')) as {
        state: string;
        acc: number;
        asr: number;
      };
      assert.equal(status.state, 'finished');
      const cells = await frame.locator('#results tbody tr').first().locator('td').allInnerTexts();
      const [row] = (JSON.parse(readFileSync(join(ws.dir, TEAM_RUNS, dir, 'results.json'), 'utf8')) as { table: Array<{ ra: number }> })
        .table;
      assert.deepEqual(
        cells.map((c) => c.trim()),
        [status.acc.toFixed(2), status.asr.toFixed(2), row.ra.toFixed(2)],
      );
      await frame.locator('vscode-button', { hasText: /^\s*Run Again\s*$/ }).waitFor({ timeout: 10_000 });
      console.log(`  screenshot: ${await wb.screenshot('ui-trust-trusted-run')}`);
      // The user's keybinding starts the wizard now.
      await page.keyboard.press(EVALUATE_KEY);
      await until('the Evaluate Model wizard', async () =>
        /Model to evaluate/.test((await page.locator(`${QUICK} .quick-input-box input`).getAttribute('placeholder')) ?? '')
          ? true
          : undefined,
      );
      await page.keyboard.press('Escape');
    }),
);
