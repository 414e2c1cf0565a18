// UI: runs chosen in the history, side by side on the matrix page. Real runs made by the `nad` CLI on small
// digits: BadNets and Blend models, finetuning of the BadNets model with seeds 0 and 1 and of the Blend model
// with seed 0, and a STRIP detection. "As Matrix" on the history page (nothing selected: every shown run)
// opens the matrix page with the attacks as rows and the defenses as columns; the two BadNets finetunes are
// one cell, mean ± std of their status.json numbers; the detection run is named as left out. The page is
// back after a window reload, a click on a cell opens its run, screenshots in three themes.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT, Workbench } from '../../../scripts/vscode-test/workbench';
import { activeWebview, runCommand, setColorTheme, TEST_TIMEOUT_MS, watchCsp } from '../../../scripts/vscode-test/ui';
import { stat } from '../../../src/runs/matrix/table';
import { writeSmallMnist } from '../fixtures/small-mnist';
import { nadRun } from '../fixtures/nad-cli';

let wb: Workbench;
let workspace = '';
let runsDir = '';
let cspViolations: string[] = [];
const made: Record<string, string> = {};

/** `nad <args>` on the digits, quietly, in the workspace; the run folder it made. */
function nad(name: string, args: readonly string[]): string {
  made[name] = nadRun(workspace, runsDir, [...args, '--name', name]);
  return made[name];
}

const status = (name: string): { acc: number; asr: number } =>
  JSON.parse(readFileSync(join(made[name], 'status.json'), 'utf8')) as { acc: number; asr: number };
const two = (v: number): string => v.toFixed(2);

before(
  async () => {
    workspace = mkdtempSync(join(tmpdir(), 'nad-matrix-runs-'));
    runsDir = join(workspace, '.nad', 'runs');
    const data = writeSmallMnist(join(workspace, 'data'), { train: 80, test: 20 });
    const common = ['--data', data, '--epochs', '1', '--batch-size', '32', '--target', '5'];
    const model = (dir: string): string => join(dir, 'model', 'model.safetensors');
    const badnets = model(nad('badnets', ['train', ...common, '--attack', 'badnets']));
    const blend = model(nad('blend', ['train', ...common, '--attack', 'blend']));
    const clean = ['--clean-count', '20', '--trigger', 'gridTrigger'];
    nad('ft-badnets-0', ['defend', 'finetune', ...common, ...clean, '--model', badnets, '--seed', '0']);
    nad('ft-badnets-1', ['defend', 'finetune', ...common, ...clean, '--model', badnets, '--seed', '1']);
    nad('ft-blend-0', ['defend', 'finetune', ...common, ...clean, '--model', blend, '--seed', '0']);
    nad('strip', [
      'detect',
      'strip',
      '--data',
      data,
      '--clean-count',
      '70',
      '--model',
      badnets,
      '--trigger',
      'gridTrigger',
      '--target',
      '5',
    ]);
    wb = await Workbench.start({ name: 'ui-matrix-runs', workspace, extensionDevelopmentPath: REPO_ROOT });
    cspViolations = watchCsp(wb.page);
  },
  { timeout: 10 * 60_000 },
);

after(async () => {
  await wb?.close();
  if (workspace) rmSync(workspace, { recursive: true, force: true });
});

async function tableRows(): Promise<{ head: string[]; rows: string[][] }> {
  const frame = activeWebview(wb.page);
  await frame.locator('table.matrix tbody tr').nth(1).waitFor({ timeout: 30_000 });
  const head = (await frame.locator('table.matrix thead th').allInnerTexts()).map((t) => t.trim());
  const rows = await frame
    .locator('table.matrix tbody tr')
    .evaluateAll((trs) =>
      trs.map((tr) => [
        (tr.querySelector('th')?.textContent ?? '').trim(),
        ...Array.from(tr.querySelectorAll('td .cell-main')).map((c) => (c.textContent ?? '').trim()),
      ]),
    );
  return { head, rows };
}

test(
  '"As Matrix" on the history page: attacks as rows, defenses as columns, seeds folded, detection left out',
  { timeout: TEST_TIMEOUT_MS },
  () =>
    wb.step('as matrix', async () => {
      await runCommand(wb.page, 'NAD: Show Experiment History Table');
      const history = activeWebview(wb.page);
      await history.locator('#runs tbody tr[data-dir]').nth(5).waitFor({ timeout: 30_000 });
      await history.locator('#as-matrix').click();
      await wb.page.locator('.tabs-container .tab.active', { hasText: /Matrix/ }).waitFor({ timeout: 20_000 });
      const { head, rows } = await tableRows();
      assert.deepEqual(head, ['Attack \\ Defense', 'No defense', 'Finetuning']);
      const ft = [status('ft-badnets-0'), status('ft-badnets-1')];
      const acc = stat(ft.map((s) => s.acc));
      const asr = stat(ft.map((s) => s.asr));
      assert.ok(acc && asr);
      const pm = (s: { mean: number; std: number }): string => `${two(s.mean)} ± ${two(s.std)}`;
      const byRow = new Map(rows.map((r) => [r[0], r.slice(1)]));
      assert.deepEqual(byRow.get('BadNets'), [`${two(status('badnets').acc)} / ${two(status('badnets').asr)}`, `${pm(acc)} / ${pm(asr)}`]);
      assert.deepEqual(byRow.get('Blend'), [
        `${two(status('blend').acc)} / ${two(status('blend').asr)}`,
        `${two(status('ft-blend-0').acc)} / ${two(status('ft-blend-0').asr)}`,
      ]);
      const frame = activeWebview(wb.page);
      assert.match(await frame.locator('h1').innerText(), /Runs side by side/);
      assert.match(await frame.locator('.status').innerText(), /All 5 runs finished\. 2 seeds \(0, 1\); runs chosen in the history\./);
      assert.match(await frame.locator('.skipped').innerText(), /strip.*a detection run repairs no model/);
      // Seeds as each cell has them: "2 seeds" where two runs were folded, nothing where one.
      const details = await frame.locator('td[data-cell] .cell-detail').allInnerTexts();
      assert.equal(details.filter((d) => /\b2 seeds\b/.test(d)).length, 1, details.join(' | '));
      assert.ok(
        details.every((d) => !/\d\/\d seeds/.test(d)),
        details.join(' | '),
      );
      for (const [theme, file] of [
        ['Dark Modern', 'ui-matrix-runs-dark-modern'],
        ['Light Modern', 'ui-matrix-runs-light-modern'],
        ['Dark High Contrast', 'ui-matrix-runs-dark-high-contrast'],
      ] as const) {
        await setColorTheme(wb.page, theme);
        await activeWebview(wb.page).locator('table.matrix').waitFor({ timeout: 10_000 });
        await wb.page.mouse.move(700, 790);
        console.log(`  screenshot: ${await wb.screenshot(file, '.part.editor')}`);
      }
      await setColorTheme(wb.page, 'Dark Modern');
    }),
);

test('after "Developer: Reload Window" the page shows the same runs; a click on a cell opens its run', { timeout: TEST_TIMEOUT_MS }, () =>
  wb.step('reload and open', async () => {
    const page = wb.page;
    const before = await tableRows();
    await runCommand(page, 'Developer: Reload Window');
    await page.waitForSelector('.monaco-workbench', { timeout: 60_000 });
    assert.deepEqual(await tableRows(), before);
    await activeWebview(page).locator('td[data-cell="blend/finetune#1"] button.cell-link').click();
    await page.locator('.tabs-container .tab.active', { hasText: /ft-blend-0/ }).waitFor({ timeout: 20_000 });
    assert.deepEqual(cspViolations, []);
  }),
);
