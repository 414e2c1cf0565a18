// UI: "Run Again With Changes" on a real erase run (made by the nad CLI on a small MNIST): from the Runs
// view's context menu, the Erase Backdoor wizard opens with every answer from the run's config.json; Enter
// through them, one β changed; the new run (a new folder; the old one untouched) has a config.json that
// differs from the old in exactly that field. A hand-edited config with a bad field: a message naming the file
// and field, and the wizard offers the default there. The run panel offers the command too.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { Page } from 'playwright-core';
import { REPO_ROOT, Workbench } from '../../../scripts/vscode-test/workbench';
import { activeWebview, runCommand, setColorTheme, TEST_TIMEOUT_MS, viewPane, waitForQuestion } from '../../../scripts/vscode-test/ui';
import { makeWorkspace, type FixtureWorkspace } from '../fixtures/workspace';
import { trainSmallModel, writeSmallMnist } from '../fixtures/small-mnist';

let wb: Workbench;
let ws: FixtureWorkspace;
let runsDir = '';
let oldDir = '';
let oldConfigText = '';
const QUICK = '.quick-input-widget';
const NAME = 'erase-to-change';

before(
  async () => {
    ws = makeWorkspace();
    const data = writeSmallMnist(join(ws.dir, 'data', 'small-mnist'), { train: 60, test: 20 });
    runsDir = join(ws.dir, '.nad', 'runs');
    const model = join(trainSmallModel(data, runsDir, 'backdoored', ws.dir), 'model', 'model.safetensors');
    // The erase run to start from: a teacher finetuned first, 32 clean images, one epoch each.
    const cli = spawnSync(
      process.execPath,
      [
        join(REPO_ROOT, 'dist', 'cli.js'),
        'erase',
        ...['--student', model, '--data', data, '--clean-count', '32', '--teacher-epochs', '1', '--epochs', '1', '--batch-size', '32'],
        ...['--name', NAME, '--runs-dir', runsDir, '--json', '--quiet'],
      ],
      { encoding: 'utf8', cwd: ws.dir, timeout: 300_000 },
    );
    if (cli.status !== 0) throw new Error(`nad erase failed:\n${cli.stderr}`);
    oldDir = (JSON.parse(cli.stdout) as { runDir: string }).runDir;
    oldConfigText = readFileSync(join(oldDir, 'config.json'), 'utf8');
    // The same run with a config someone edited by hand: epochs as a word.
    const edited = join(runsDir, basename(oldDir).replace(NAME, 'epochs-as-a-word'));
    cpSync(oldDir, edited, { recursive: true });
    const config = JSON.parse(oldConfigText) as { training: Record<string, unknown> };
    writeFileSync(
      join(edited, 'config.json'),
      JSON.stringify({ ...config, name: 'epochs-as-a-word', training: { ...config.training, epochs: 'ten' } }, null, 2),
    );
    mkdirSync(join(ws.dir, '.vscode'), { recursive: true });
    writeFileSync(join(ws.dir, '.vscode', 'settings.json'), JSON.stringify({ 'nad.defaultEpochs': 2, 'nad.defaultBatchSize': 32 }));
    wb = await Workbench.start({ name: 'ui-run-again', workspace: ws.dir, extensionDevelopmentPath: REPO_ROOT });
  },
  { timeout: 600_000 },
);

after(async () => {
  await wb?.close();
  if (ws) rmSync(ws.dir, { recursive: true, force: true });
});

/** The label of the quick pick's active row, once the pick asks `question`. */
async function activeRow(page: Page, question: RegExp): Promise<string> {
  await waitForQuestion(page, question);
  const row = page.locator(`${QUICK} .quick-input-list .monaco-list-row.focused .label-name:visible`);
  await row.waitFor({ timeout: 10_000 });
  return (await row.innerText()).trim();
}

/** Accept the active row of the pick asking `question`, checking that it is the run's answer. */
async function keepPick(page: Page, question: RegExp, expected: RegExp): Promise<void> {
  assert.match(await activeRow(page, question), expected, `${question}: another answer is preselected`);
  await page.keyboard.press('Enter');
}

/** The value an input box offers once it asks `prompt`; with `value`, replaced by it; then Enter. */
async function keepInput(page: Page, prompt: RegExp, value?: string): Promise<string> {
  await waitForQuestion(page, prompt);
  const box = page.locator(`${QUICK} .quick-input-box input`);
  const offered = await box.inputValue();
  if (value !== undefined) await box.fill(value);
  await page.keyboard.press('Enter');
  return offered;
}

type Json = Record<string, unknown>;

/** A run's config without what the run layer adds (the backend used, provenance). */
function configOf(dir: string): Json {
  const { provenance: _p, backendUsed: _b, ...rest } = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Json;
  return rest;
}

test(
  'from the Runs view: every answer is the run’s, one β changed, the new run’s config differs in exactly that',
  { timeout: 300_000 },
  () =>
    wb.step('run again with changes', async () => {
      const page = wb.page;
      await setColorTheme(page, 'Dark Modern');
      await runCommand(page, 'NAD: Show Experiment History');
      const row = viewPane(page, 'Runs').locator('.monaco-list-row', { has: page.locator('.label-name', { hasText: NAME }) });
      await row.click({ button: 'right' });
      await page.locator('.context-view .action-label', { hasText: 'Run Again With Changes' }).hover();
      await page.keyboard.press('Enter');

      await keepPick(page, /Backdoored model to repair/, /model\.safetensors/);
      assert.match(await page.locator(`${QUICK} .quick-input-title`).innerText(), /Erase Backdoor, again with changes \(erase-to-change\)/);
      console.log(`  screenshot: ${await wb.screenshot('ui-run-again-wizard')}`);
      await keepPick(page, /Teacher model/, /Finetune one now/);
      await keepPick(page, /Clean data/, /small-mnist/);
      await keepPick(page, /Clean subset/, /A number of images/);
      assert.equal(await keepInput(page, /Number of clean images/), '32');
      await keepPick(page, /Trigger of the backdoor/, /^gridTrigger$/);
      assert.equal(await keepInput(page, /Target label/), '5');
      assert.equal(await keepInput(page, /teacher’s finetuning/), '1');
      // The run's 1 epoch, not the nad.defaultEpochs setting (2).
      assert.equal(await keepInput(page, /Epochs of Neural Attention Distillation/), '1');
      await waitForQuestion(page, /β for the three residual groups/);
      console.log(`  screenshot: ${await wb.screenshot('ui-run-again-betas')}`);
      assert.equal(await keepInput(page, /β for the three residual groups/, '500, 1000, 2000'), '500, 1000, 1000');
      await keepPick(page, /Ready/, /Run/);

      // A new run folder of the same name; wait for it to finish.
      const deadline = Date.now() + 240_000;
      let newDir = '';
      for (;;) {
        const dirs = readdirSync(runsDir).filter((d) => d.includes(NAME) && join(runsDir, d) !== oldDir);
        if (dirs.length === 1) {
          newDir = join(runsDir, dirs[0]);
          const status = existsSync(join(newDir, 'status.json'))
            ? (JSON.parse(readFileSync(join(newDir, 'status.json'), 'utf8')) as { state: string; error?: string })
            : undefined;
          if (status && status.state !== 'running') {
            assert.equal(status.state, 'finished', status.error);
            break;
          }
        }
        if (Date.now() > deadline) throw new Error(`the new run did not finish: ${readdirSync(runsDir).join(', ')}`);
        await page.waitForTimeout(500);
      }
      const old = configOf(oldDir);
      const changed = configOf(newDir);
      assert.deepEqual(changed, { ...old, training: { ...(old['training'] as Json), betas: [500, 1000, 2000] } });
      assert.notDeepEqual((old['training'] as Json)['betas'], [500, 1000, 2000]);
      // The old run is left as it was.
      assert.equal(readFileSync(join(oldDir, 'config.json'), 'utf8'), oldConfigText);
      await activeWebview(page).locator('.state', { hasText: 'Finished' }).waitFor({ timeout: 30_000 });
      console.log(`  screenshot: ${await wb.screenshot('ui-run-again-new-run')}`);
    }),
);

test(
  'a hand-edited config: the message names the file and the field, and the wizard offers the default there',
  { timeout: TEST_TIMEOUT_MS },
  () =>
    wb.step('bad field', async () => {
      const page = wb.page;
      await runCommand(page, 'NAD: Run Again With Changes');
      const row = page
        .locator(`${QUICK} .quick-input-list .monaco-list-row`)
        .filter({ has: page.locator('.label-name', { hasText: 'epochs-as-a-word' }) })
        .first();
      await row.click({ timeout: 20_000 });
      // Off the quick pick: a row under the pointer would look active in the next questions' lists.
      await page.mouse.move(5, 5);
      const toast = page.locator('.notifications-toasts .notification-list-item-message', { hasText: 'training.epochs' });
      await toast.waitFor({ timeout: 20_000 });
      assert.match(
        await toast.innerText(),
        /epochs-as-a-word-[0-9a-f]{4}[\\/]config\.json: "training\.epochs" must be a whole number from 1 to 10000, got "ten"\. The wizard offers the default instead\./,
      );
      await keepPick(page, /Backdoored model to repair/, /model\.safetensors/);
      await waitForQuestion(page, /Teacher model/);
      console.log(`  screenshot: ${await wb.screenshot('ui-run-again-bad-field')}`);
      await keepPick(page, /Teacher model/, /Finetune one now/);
      await keepPick(page, /Clean data/, /small-mnist/);
      await keepPick(page, /Clean subset/, /A number of images/);
      await keepInput(page, /Number of clean images/);
      await keepPick(page, /Trigger of the backdoor/, /^gridTrigger$/);
      await keepInput(page, /Target label/);
      await keepInput(page, /teacher’s finetuning/);
      // The default (the nad.defaultEpochs setting) where the file's value was unusable.
      await waitForQuestion(page, /Epochs of Neural Attention Distillation/);
      assert.equal(await page.locator(`${QUICK} .quick-input-box input`).inputValue(), '2');
      await page.keyboard.press('Escape');
    }),
);

test('the run panel offers "Run Again With Changes…", which opens the wizard of the run', { timeout: TEST_TIMEOUT_MS }, () =>
  wb.step('panel button', async () => {
    const page = wb.page;
    await runCommand(page, 'View: Close All Editors');
    await runCommand(page, 'NAD: Open Run');
    await page
      .locator(`${QUICK} .quick-input-list .monaco-list-row`)
      .filter({ has: page.locator('.label-name', { hasText: NAME }) })
      .first()
      .click({ timeout: 20_000 });
    const frame = activeWebview(page);
    const button = frame.locator('vscode-button', { hasText: 'Run Again With Changes…' });
    await button.waitFor({ timeout: 30_000 });
    await button.click();
    await waitForQuestion(page, /Backdoored model to repair/);
    assert.match(await page.locator(`${QUICK} .quick-input-title`).innerText(), /Erase Backdoor, again with changes \(erase-to-change\)/);
    await page.keyboard.press('Escape');
  }),
);
