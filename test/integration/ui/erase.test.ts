// UI: "NAD: Erase Backdoor" from the palette, answered as a person does (Back included), on a small
// MNIST; the run panel live and finished, its table read two iframes deep and compared with the run
// folder; the Runs view; screenshots in three themes; the panel back after a window reload; a run
// deleted from the view's context menu through the real confirmation dialog.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FrameLocator, Page } from 'playwright-core';
import { REPO_ROOT, Workbench } from '../../../scripts/vscode-test/workbench';
import {
  activeWebview,
  runCommand,
  setColorTheme,
  TEST_TIMEOUT_MS,
  treeRows,
  viewPane,
  waitForQuestion,
} from '../../../scripts/vscode-test/ui';
import { folderTable, panelTable } from './run-checks';
import { makeWorkspace, type FixtureWorkspace } from '../fixtures/workspace';
import { trainSmallModel, writeSmallMnist } from '../fixtures/small-mnist';

let wb: Workbench;
let ws: FixtureWorkspace;
let eraseDir = '';
const QUICK = '.quick-input-widget';

before(
  async () => {
    ws = makeWorkspace();
    const data = writeSmallMnist(join(ws.dir, 'data', 'small-mnist'), { train: 60, test: 20 });
    // A backdoored model to erase, trained by the CLI (the same engine) in a few seconds.
    const runsDir = join(ws.dir, '.nad', 'runs');
    const trained = trainSmallModel(data, runsDir, 'ui-backdoored', ws.dir);
    mkdirSync(join(ws.dir, 'models'), { recursive: true });
    copyFileSync(join(trained, 'model', 'model.safetensors'), join(ws.dir, 'models', 'backdoored.safetensors'));
    mkdirSync(join(ws.dir, 'configs'), { recursive: true });
    writeFileSync(
      join(ws.dir, 'configs', 'long-train.nad.json'),
      JSON.stringify({ kind: 'train', name: 'ui-long', data: '../data/small-mnist', training: { epochs: 100, batchSize: 32 } }, null, 2),
    );
    mkdirSync(join(ws.dir, '.vscode'), { recursive: true });
    writeFileSync(
      join(ws.dir, '.vscode', 'settings.json'),
      JSON.stringify({ 'nad.defaultEpochs': 2, 'nad.defaultBatchSize': 32 }, null, 2),
    );
    // No smoke-test driver: the delete confirmation must appear on screen to be clicked.
    wb = await Workbench.start({ name: 'ui-erase', workspace: ws.dir, extensionDevelopmentPath: REPO_ROOT, smokeTestDriver: false });
  },
  { timeout: TEST_TIMEOUT_MS },
);

after(async () => {
  await wb?.close();
  if (ws) rmSync(ws.dir, { recursive: true, force: true });
});

/** Pick the row whose label contains `label` in the open quick pick. */
async function pick(page: Page, label: string): Promise<void> {
  const row = page
    .locator(`${QUICK} .quick-input-list .monaco-list-row`)
    .filter({ has: page.locator('.label-name', { hasText: label }) })
    .first();
  await row.waitFor({ state: 'visible', timeout: 20_000 });
  await row.click();
}

/** Answer an input box once its prompt shows: replace the value (or keep it) and press Enter. */
async function input(page: Page, prompt: RegExp, value?: string): Promise<string> {
  await page.locator(`${QUICK} .quick-input-message`, { hasText: prompt }).waitFor({ state: 'visible', timeout: 20_000 });
  const box = page.locator(`${QUICK} .quick-input-box input`);
  const shown = await box.inputValue();
  if (value !== undefined) await box.fill(value);
  await page.keyboard.press('Enter');
  return shown;
}

function panel(page: Page): FrameLocator {
  return activeWebview(page);
}

test(
  '"NAD: Erase Backdoor" from the palette runs NAD on the clean data; the panel shows the run live and its table equals the folder',
  { timeout: 240_000 },
  () =>
    wb.step('erase wizard', async () => {
      const page = wb.page;
      // A fresh profile follows the browser's light preference: start from Dark Modern, VS Code's default.
      await setColorTheme(page, 'Dark Modern');
      await runCommand(page, 'NAD: Erase Backdoor');
      await waitForQuestion(page, /Backdoored model to repair/);
      await pick(page, 'backdoored.safetensors');
      await waitForQuestion(page, /Teacher model/);
      await pick(page, 'Finetune one now');
      await waitForQuestion(page, /Clean data/);
      console.log(`  screenshot: ${await wb.screenshot('ui-erase-wizard')}`);
      // Back to the teacher question, and forward again: the answer is kept.
      await page.locator(`${QUICK} .codicon-quick-input-back, ${QUICK} .codicon-arrow-left`).first().click();
      await waitForQuestion(page, /Teacher model/);
      await pick(page, 'Finetune one now');
      await waitForQuestion(page, /Clean data/);
      await pick(page, 'small-mnist');
      await waitForQuestion(page, /Clean subset/);
      await pick(page, 'A number of images');
      await input(page, /Number of clean images/, '200');
      await waitForQuestion(page, /Trigger of the backdoor/);
      await pick(page, 'gridTrigger');
      assert.equal(await input(page, /Target label/), '5');
      await input(page, /teacher’s finetuning/, '1');
      assert.equal(await input(page, /Epochs of Neural Attention Distillation/), '2', 'nad.defaultEpochs was not used');
      assert.equal(await input(page, /β for the three residual groups/), '500, 1000, 1000');
      await waitForQuestion(page, /Ready/);
      await pick(page, 'Save as config file and run');
      await input(page, /Config file, relative to the workspace folder/);

      const frame = panel(page);
      await frame.locator('#run-title').waitFor({ timeout: 60_000 });
      assert.equal((await frame.locator('#run-title').innerText()).trim(), 'erase-backdoored');
      // Live: progress with the phase, epoch and step while the worker trains.
      await frame.locator('.progress-text', { hasText: /epoch \d+ of \d+ · step/ }).waitFor({ timeout: 60_000 });
      console.log(`  screenshot: ${await wb.screenshot('ui-run-panel-live')}`);
      await frame.locator('.state', { hasText: /Finished|Failed/ }).waitFor({ timeout: 150_000 });
      assert.equal((await frame.locator('.state').innerText()).trim(), 'Finished', await frame.locator('.error').innerText());
      const runsDir = join(ws.dir, '.nad', 'runs');
      const dir = readdirSync(runsDir)
        .filter((d) => d.includes('erase-backdoored'))
        .sort()
        .pop();
      assert.ok(dir, 'no erase run folder');
      eraseDir = join(runsDir, dir);
      assert.deepEqual(await panelTable(frame), folderTable(eraseDir));
      assert.equal(await frame.locator('#epochs tbody tr').count(), 3);
      assert.ok((await frame.locator('table.attention canvas').count()) >= 18, 'attention maps missing');
      // Copy buttons: by mouse and by keyboard (Enter on the focused button).
      await frame.locator('vscode-button', { hasText: 'Copy as Markdown' }).click();
      await page.locator('.statusbar', { hasText: 'table copied as Markdown' }).waitFor({ timeout: 10_000 });
      await frame.locator('vscode-button', { hasText: 'Copy as CSV' }).focus();
      await page.keyboard.press('Enter');
      await page.locator('.statusbar', { hasText: 'table copied as CSV' }).waitFor({ timeout: 10_000 });
      await runCommand(page, 'File: New Untitled Text File');
      await page.locator('.editor-instance .monaco-editor textarea').first().focus();
      await page.keyboard.press('Control+V');
      await page.waitForTimeout(1000);
      // The clipboard holds the folder's numbers (pasted into an untitled editor, then thrown away).
      const pasted = (await page.locator('.editor-instance .monaco-editor .view-lines').first().innerText()).replace(/\u00a0/g, ' ');
      for (const [model, acc, asr] of folderTable(eraseDir).slice(1))
        assert.ok(pasted.includes(`${model},,,,${acc},${asr}`), `CSV lacks ${model}: ${pasted}`);
      await runCommand(page, 'View: Revert and Close Editor');
      await frame.locator('#results').waitFor({ timeout: 10_000 });
      const saved = readdirSync(join(ws.dir, 'nad')).filter((f) => f.endsWith('.nad.json'));
      assert.equal(saved.length, 1, 'the config file was not saved');
      await page
        .locator('.notifications-toasts .codicon-notifications-clear-all, .notifications-toasts .codicon-close')
        .first()
        .click()
        .catch(() => undefined);
      console.log(`  screenshot: ${await wb.screenshot('ui-run-panel-dark-modern')}`);
      await frame.locator('table.attention').scrollIntoViewIfNeeded();
      console.log(`  screenshot: ${await wb.screenshot('ui-run-panel-attention-dark-modern')}`);
    }),
);

test('the run is listed in the Runs view', { timeout: TEST_TIMEOUT_MS }, () =>
  wb.step('runs view', async () => {
    await runCommand(wb.page, 'NAD: Show Experiment History');
    const rows = await treeRows(viewPane(wb.page, 'Runs'), 4);
    const row = rows.find((r) => r.label === 'erase-backdoored');
    assert.ok(row, JSON.stringify(rows));
    assert.match(row.description, /^erase · finished · ACC [\d.]+% · ASR [\d.]+%$/);
    assert.equal(row.icon, 'pass');
  }),
);

test('the Explorer context menu of a checkpoint starts Erase Backdoor with that model', { timeout: TEST_TIMEOUT_MS }, () =>
  wb.step('explorer menu', async () => {
    const page = wb.page;
    await runCommand(page, 'View: Show Explorer');
    const row = (label: string) =>
      page.locator('.explorer-folders-view .monaco-list-row', { has: page.locator('.label-name', { hasText: label }) }).first();
    if (!(await row('backdoored.safetensors').isVisible())) await row('models').click();
    await row('backdoored.safetensors').click({ button: 'right' });
    await page.locator('.context-view .action-label', { hasText: 'Erase Backdoor' }).hover();
    await page.keyboard.press('Enter');
    // The model question is skipped: the wizard starts at the teacher.
    await waitForQuestion(page, /Teacher model/);
    await page.keyboard.press('Escape');
  }),
);

test('the panel reads well in Light Modern and Dark High Contrast', { timeout: TEST_TIMEOUT_MS }, () =>
  wb.step('themes', async () => {
    const page = wb.page;
    for (const [theme, file] of [
      ['Light Modern', 'light-modern'],
      ['Dark High Contrast', 'dark-high-contrast'],
    ] as const) {
      await setColorTheme(page, theme);
      const frame = panel(page);
      await frame.locator('#results').scrollIntoViewIfNeeded();
      const body = await frame.locator('body').getAttribute('class');
      assert.match(body ?? '', file.startsWith('light') ? /vscode-light/ : /vscode-high-contrast/);
      console.log(`  screenshot: ${await wb.screenshot(`ui-run-panel-${file}`)}`);
    }
    await setColorTheme(page, 'Dark Modern');
  }),
);

test('after "Developer: Reload Window" the panel comes back with the same table', { timeout: TEST_TIMEOUT_MS }, () =>
  wb.step('reload', async () => {
    const page = wb.page;
    await runCommand(page, 'Developer: Reload Window');
    await page.waitForSelector('.monaco-workbench', { timeout: 60_000 });
    const frame = panel(page);
    await frame.locator('.state', { hasText: 'Finished' }).waitFor({ timeout: 60_000 });
    assert.equal((await frame.locator('#run-title').innerText()).trim(), 'erase-backdoored');
    assert.deepEqual(await panelTable(frame), folderTable(eraseDir));
    console.log(`  screenshot: ${await wb.screenshot('ui-run-panel-restored')}`);
  }),
);

test('"Delete Run" from the Runs view asks first, then deletes the folder', { timeout: TEST_TIMEOUT_MS }, () =>
  wb.step('delete', async () => {
    const page = wb.page;
    await runCommand(page, 'NAD: Show Experiment History');
    const row = viewPane(page, 'Runs').locator('.monaco-list-row', { has: page.locator('.label-name', { hasText: 'ui-backdoored' }) });
    await row.click({ button: 'right' });
    // Menu items act on mouse-up after hover in the browser workbench; the keyboard is reliable.
    await page.locator('.context-view .action-label', { hasText: 'Delete Run' }).hover();
    await page.keyboard.press('Enter');
    const dialog = page.locator('.monaco-dialog-box');
    await dialog.waitFor({ timeout: 10_000 });
    assert.match(await dialog.innerText(), /Delete the run "ui-backdoored"/);
    console.log(`  screenshot: ${await wb.screenshot('ui-delete-dialog')}`);
    await dialog.locator('.monaco-button', { hasText: 'Delete' }).click();
    const runsDir = join(ws.dir, '.nad', 'runs');
    const deadline = Date.now() + 10_000;
    while (readdirSync(runsDir).some((d) => d.includes('ui-backdoored'))) {
      if (Date.now() > deadline) throw new Error('the run folder was not deleted');
      await page.waitForTimeout(200);
    }
    assert.ok(existsSync(eraseDir), 'another run was deleted');
  }),
);

test(
  'a run interrupted by a window reload is listed as interrupted and resumed from its panel; Cancel in the panel stops it',
  { timeout: 180_000 },
  () =>
    wb.step('interrupted', async () => {
      const page = wb.page;
      await runCommand(page, 'View: Close All Editors');
      await runCommand(page, 'NAD: Run Config File');
      await waitForQuestion(page, /Run which config file/);
      await pick(page, 'long-train.nad.json');
      const frame = panel(page);
      await frame.locator('.progress-text', { hasText: /step/ }).waitFor({ timeout: 60_000 });
      await runCommand(page, 'Developer: Reload Window');
      await page.waitForSelector('.monaco-workbench', { timeout: 60_000 });
      await frame.locator('.state', { hasText: 'Interrupted' }).waitFor({ timeout: 60_000 });
      await runCommand(page, 'NAD: Show Experiment History');
      const deadline = Date.now() + 20_000;
      let rows = await treeRows(viewPane(page, 'Runs'), 1);
      while (!rows.some((r) => r.label === 'ui-long' && r.description.startsWith('train · interrupted'))) {
        if (Date.now() > deadline) throw new Error(`no interrupted ui-long row: ${JSON.stringify(rows)}`);
        await page.waitForTimeout(300);
        rows = await treeRows(viewPane(page, 'Runs'), 1);
      }
      console.log(`  screenshot: ${await wb.screenshot('ui-run-panel-interrupted')}`);
      await frame.locator('vscode-button', { hasText: 'Resume' }).click();
      await frame.locator('.state', { hasText: 'Running' }).waitFor({ timeout: 30_000 });
      await frame.locator('.progress-text', { hasText: /step/ }).waitFor({ timeout: 60_000 });
      await frame.locator('vscode-button', { hasText: 'Cancel' }).click();
      await frame.locator('.state', { hasText: 'Cancelled' }).waitFor({ timeout: 20_000 });
      const runsDir = join(ws.dir, '.nad', 'runs');
      const dir = readdirSync(runsDir).filter((d) => d.includes('ui-long'));
      assert.equal(dir.length, 1, 'resuming made another folder');
      const status = JSON.parse(readFileSync(join(runsDir, dir[0], 'status.json'), 'utf8')) as { state: string };
      assert.equal(status.state, 'cancelled');
      assert.match(readFileSync(join(runsDir, dir[0], 'metrics.jsonl'), 'utf8'), /"resumed /);
    }),
);
