// UI: "NAD: Defend Model…" from the palette: the defense is picked from the registry (each item says
// what it needs), its own parameters are asked with their defaults, and the run panel shows the
// defense's own curve (Fine-Pruning's pruning curve) beside the table, which equals the run folder;
// screenshots in three themes.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT, Workbench } from '../../../scripts/vscode-test/workbench';
import {
  activeWebview,
  answerInput,
  pickItem,
  runCommand,
  setColorTheme,
  TEST_TIMEOUT_MS,
  waitForQuestion,
} from '../../../scripts/vscode-test/ui';
import { folderTable, panelTable } from './run-checks';
import { makeWorkspace, type FixtureWorkspace } from '../fixtures/workspace';
import { trainSmallModel, writeSmallMnist } from '../fixtures/small-mnist';

let wb: Workbench;
let ws: FixtureWorkspace;

before(
  async () => {
    ws = makeWorkspace();
    // Enough digits for a model that learns something in one epoch, so that the pruning curve has a shape.
    const data = writeSmallMnist(join(ws.dir, 'data', 'small-mnist'), { train: 1500, test: 100 });
    const trained = trainSmallModel(data, join(ws.dir, '.nad', 'runs'), 'ui-suspect', ws.dir);
    mkdirSync(join(ws.dir, 'models'), { recursive: true });
    copyFileSync(join(trained, 'model', 'model.safetensors'), join(ws.dir, 'models', 'suspect.safetensors'));
    mkdirSync(join(ws.dir, '.vscode'), { recursive: true });
    writeFileSync(join(ws.dir, '.vscode', 'settings.json'), JSON.stringify({ 'nad.defaultBatchSize': 32 }, null, 2));
    wb = await Workbench.start({ name: 'ui-defend', workspace: ws.dir, extensionDevelopmentPath: REPO_ROOT });
  },
  { timeout: TEST_TIMEOUT_MS },
);

after(async () => {
  await wb?.close();
  if (ws) rmSync(ws.dir, { recursive: true, force: true });
});

test(
  '"NAD: Defend Model…" runs Fine-Pruning with its parameters asked; the panel shows the pruning curve and the folder\'s table',
  { timeout: 240_000 },
  () =>
    wb.step('defend wizard', async () => {
      const page = wb.page;
      await setColorTheme(page, 'Dark Modern');
      await runCommand(page, 'NAD: Defend Model…');
      await waitForQuestion(page, /Which defense\?/);
      // Every defense of the registry is offered, each saying what it needs.
      const items = await page.locator('.quick-input-widget .quick-input-list .monaco-list-row').allInnerTexts();
      for (const title of ['Neural Attention Distillation', 'Finetuning', 'Fine-Pruning'])
        assert.ok(
          items.some((t) => t.includes(title)),
          items.join(' | '),
        );
      assert.ok(
        items.some((t) => /Needs clean data/.test(t)),
        items.join(' | '),
      );
      console.log(`  screenshot: ${await wb.screenshot('ui-defend-pick')}`);
      await pickItem(page, 'Fine-Pruning');
      await waitForQuestion(page, /Backdoored model to repair/);
      await pickItem(page, 'suspect.safetensors');
      await waitForQuestion(page, /Clean data/);
      await pickItem(page, 'small-mnist');
      await waitForQuestion(page, /Clean subset/);
      await pickItem(page, 'A number of images');
      await answerInput(page, /Number of clean images/, '150');
      await waitForQuestion(page, /Trigger of the backdoor/);
      await pickItem(page, 'gridTrigger');
      await answerInput(page, /Target label/);
      // Fine-Pruning's own parameters, with their declared defaults.
      assert.equal(await answerInput(page, /Largest clean-accuracy drop/, '0.2'), '0.1');
      assert.equal(await answerInput(page, /Channels per step/), '1');
      assert.equal(await answerInput(page, /Finetuning epochs/, '1'), '10');
      await waitForQuestion(page, /Ready/);
      await pickItem(page, 'Run');

      const frame = activeWebview(page);
      await frame.locator('#run-title').waitFor({ timeout: 60_000 });
      assert.equal((await frame.locator('#run-title').innerText()).trim(), 'fine-pruning-suspect');
      await frame.locator('.state', { hasText: /Finished|Failed/ }).waitFor({ timeout: 150_000 });
      assert.equal((await frame.locator('.state').innerText()).trim(), 'Finished', await frame.locator('.error').innerText());
      const runsDir = join(ws.dir, '.nad', 'runs');
      const dir = readdirSync(runsDir).find((d) => d.includes('fine-pruning-suspect'));
      assert.ok(dir, 'no run folder');
      const runDir = join(runsDir, dir);
      assert.deepEqual(await panelTable(frame), folderTable(runDir));
      assert.deepEqual(
        (await panelTable(frame)).map((r) => r[0]),
        ['Model', 'Backdoored', 'Pruned', 'Fine-pruned'],
      );
      // The defense's own section: the pruning curve, one point per step, as stored in metrics.jsonl.
      const curve = frame.locator('canvas[data-series="pruning"]');
      await curve.waitFor({ timeout: 10_000 });
      const stored = readFileSync(join(runDir, 'metrics.jsonl'), 'utf8')
        .split('\n')
        .filter((l) => l.includes('"type":"series"'))
        .map((l) => JSON.parse(l) as { points: unknown[] });
      assert.equal(stored.length, 1);
      assert.match((await curve.getAttribute('aria-label')) ?? '', new RegExp(`^Pruning curve: ${stored[0].points.length} points`));
      const config = JSON.parse(readFileSync(join(runDir, 'config.json'), 'utf8')) as { method: string; params: Record<string, number> };
      assert.equal(config.method, 'fine-pruning');
      assert.deepEqual(config.params, { maxAccDrop: 0.2, step: 1 });
      await page
        .locator('.notifications-toasts .codicon-notifications-clear-all, .notifications-toasts .codicon-close')
        .first()
        .click()
        .catch(() => undefined);
      for (const [theme, file] of [
        ['Dark Modern', 'dark-modern'],
        ['Light Modern', 'light-modern'],
        ['Dark High Contrast', 'dark-high-contrast'],
      ] as const) {
        await setColorTheme(page, theme);
        await frame.locator('#series-h').scrollIntoViewIfNeeded();
        console.log(`  screenshot: ${await wb.screenshot(`ui-defend-panel-${file}`)}`);
      }
      await setColorTheme(page, 'Dark Modern');
    }),
);
