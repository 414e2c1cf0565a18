// UI: the attack x defense matrix page. A matrix folder as `nad matrix` writes it (matrix.json, cells.json)
// with its cells' run folders (the real RunStore; one cell still running, one failed), opened from
// "NAD: Open Matrix…": the table, the best defense of each row, the legend, in three themes; a click on a
// cell opens its run.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RunStore } from '../../../src/runs/run-store';
import { cellKey, matrixCells, type MatrixSpec } from '../../../src/runs/matrix/cells';
import { REPO_ROOT, Workbench } from '../../../scripts/vscode-test/workbench';
import {
  activeWebview,
  answerInput,
  pickItem,
  runCommand,
  setColorTheme,
  TEST_TIMEOUT_MS,
  waitForQuestion,
  watchCsp,
} from '../../../scripts/vscode-test/ui';
import { parseMatrix } from '../../../src/runs/matrix/spec';
import { makeWorkspace, type FixtureWorkspace } from '../fixtures/workspace';

let wb: Workbench;
let ws: FixtureWorkspace;
let cspViolations: string[] = [];

const spec: MatrixSpec = {
  name: 'ui-table-1',
  data: 'mnist',
  test: 'mnist',
  arch: 'auto',
  backend: 'auto',
  seeds: [0, 1],
  target: 5,
  cleanRatio: 0.05,
  attacks: [
    { name: 'badnets', params: {} },
    { name: 'blend', params: {} },
  ],
  defenses: [
    { name: 'none', params: {} },
    { name: 'finetune', params: {} },
    { name: 'nad', params: {} },
  ],
  training: {},
  defenseTraining: {},
};

/** [acc, asr, der] per cell and seed; blend/nad seed 1 is still running, blend/finetune seed 1 failed. */
const NUMBERS: Record<string, [number, number, number?] | 'running' | 'failed'> = {
  'badnets/train/seed0': [91, 100],
  'badnets/train/seed1': [93, 99],
  'badnets/finetune/seed0': [90, 60, 0.7],
  'badnets/finetune/seed1': [90, 40, 0.79],
  'badnets/nad/seed0': [89, 4, 0.97],
  'badnets/nad/seed1': [89, 6, 0.96],
  'blend/train/seed0': [92, 100],
  'blend/train/seed1': [92, 100],
  'blend/finetune/seed0': [91, 90, 0.55],
  'blend/finetune/seed1': 'failed',
  'blend/nad/seed0': [90, 12, 0.93],
  'blend/nad/seed1': 'running',
};

function writeMatrix(dir: string): string {
  const store = new RunStore(dir);
  const matrixDir = join(dir, '.nad', 'matrices', 'ui-table-1-0000');
  mkdirSync(matrixDir, { recursive: true });
  writeFileSync(join(matrixDir, 'matrix.json'), JSON.stringify(spec, null, 2));
  const cells: Record<string, string> = {};
  for (const cell of matrixCells(spec)) {
    const key = cellKey(cell);
    const run = store.create(cell.defense ? 'defend' : 'train', { name: key, matrix: { id: 'ui-table-1-0000', cell: key } }, key);
    cells[key] = run.id;
    const n = NUMBERS[key];
    if (n === 'failed') run.fail('the loss became NaN');
    else if (n === 'running') run.update({ lastEpoch: 3 });
    else run.finish({ acc: n[0], asr: n[1], ...(n[2] !== undefined ? { der: n[2] } : {}) });
  }
  writeFileSync(join(matrixDir, 'cells.json'), JSON.stringify({ version: 1, cells, errors: {} }, null, 2));
  return matrixDir;
}

before(
  async () => {
    ws = makeWorkspace();
    writeMatrix(ws.dir);
    wb = await Workbench.start({ name: 'ui-matrix', workspace: ws.dir, extensionDevelopmentPath: REPO_ROOT });
    cspViolations = watchCsp(wb.page);
  },
  { timeout: TEST_TIMEOUT_MS },
);

after(async () => {
  await wb?.close();
  if (ws) rmSync(ws.dir, { recursive: true, force: true });
});

test(
  '"NAD: Open Matrix…" shows the table: mean ± std over seeds, the best defense per row, running and failed seeds',
  { timeout: TEST_TIMEOUT_MS },
  () =>
    wb.step('matrix page', async () => {
      const page = wb.page;
      await runCommand(page, 'NAD: Open Matrix…');
      await pickItem(page, /ui-table-1/);
      const frame = activeWebview(page);
      await frame.locator('table.matrix tbody tr').nth(1).waitFor({ timeout: 30_000 });
      const rows = await frame
        .locator('table.matrix tbody tr')
        .evaluateAll((trs) => trs.map((tr) => Array.from(tr.querySelectorAll('td .cell-main')).map((c) => (c.textContent ?? '').trim())));
      assert.deepEqual(rows, [
        ['92.00 ± 1.41 / 99.50 ± 0.71', '90.00 ± 0.00 / 50.00 ± 14.14', '89.00 ± 0.00 / 5.00 ± 1.41'],
        ['92.00 ± 0.00 / 100.00 ± 0.00', '91.00 / 90.00', '90.00 / 12.00'],
      ]);
      const best = await frame.locator('td.best').evaluateAll((tds) => tds.map((td) => td.getAttribute('data-cell')));
      assert.deepEqual(best, ['badnets/nad', 'blend/nad']);
      const details = await frame.locator('td[data-cell^="blend/"] .cell-detail').allInnerTexts();
      assert.ok(
        details.some((d) => /1\/2 seeds \(1 failed\)/.test(d)),
        details.join(' | '),
      );
      assert.ok(
        details.some((d) => /1\/2 seeds \(1 running\)/.test(d)),
        details.join(' | '),
      );
      assert.match(await frame.locator('.status').innerText(), /10 of 12 runs finished, 1 running, 1 failed/);
      assert.match(await frame.locator('#legend').innerText(), /Shading: the ASR left/);
      await setColorTheme(page, 'Dark Modern');
      await page.mouse.move(700, 790);
      console.log(`  screenshot: ${await wb.screenshot('ui-matrix-dark-modern', '.part.editor')}`);
    }),
);

test('the matrix page reads well in Light Modern and Dark High Contrast', { timeout: TEST_TIMEOUT_MS }, () =>
  wb.step('matrix themes', async () => {
    const page = wb.page;
    for (const [theme, file] of [
      ['Light Modern', 'ui-matrix-light-modern'],
      ['Dark High Contrast', 'ui-matrix-dark-high-contrast'],
    ] as const) {
      await setColorTheme(page, theme);
      await activeWebview(page).locator('table.matrix').waitFor({ timeout: 10_000 });
      console.log(`  screenshot: ${await wb.screenshot(file, '.part.editor')}`);
    }
    await setColorTheme(page, 'Dark Modern');
  }),
);

test('a click on a cell opens its run; the page ran without a CSP violation', { timeout: TEST_TIMEOUT_MS }, () =>
  wb.step('open a cell', async () => {
    const page = wb.page;
    await activeWebview(page).locator('td[data-cell="badnets/nad"] button.cell-link').click();
    await page.locator('.tabs-container .tab.active', { hasText: /badnets\/nad\/seed0/ }).waitFor({ timeout: 20_000 });
    assert.deepEqual(cspViolations, []);
  }),
);

test(
  '"NAD: New Matrix…" writes a matrix file from checked lists of attacks and defenses, which `nad matrix` accepts',
  { timeout: TEST_TIMEOUT_MS },
  () =>
    wb.step('new matrix wizard', async () => {
      const page = wb.page;
      await runCommand(page, 'NAD: New Matrix…');
      await waitForQuestion(page, /Data: each attack poisons/);
      await pickItem(page, 'Built-in MNIST demo digits');
      await waitForQuestion(page, /Attacks: the rows/);
      console.log(`  screenshot: ${await wb.screenshot('ui-new-matrix-attacks')}`);
      // The paper's attacks come checked; uncheck Blend.
      await pickItem(page, /^Blend$/);
      await page.keyboard.press('Enter');
      await waitForQuestion(page, /Defenses: the columns/);
      await pickItem(page, /^Mode Connectivity Repair/);
      await page.keyboard.press('Enter');
      assert.equal(await answerInput(page, /Seeds, comma-separated/, '0, 1'), '0');
      await answerInput(page, /Epochs of training each attacked model/, '3');
      assert.equal(await answerInput(page, /Epochs of every defense/), '');
      await waitForQuestion(page, /Clean subset/);
      await pickItem(page, '5% of the images');
      await answerInput(page, /Target label/, '2');
      await answerInput(page, /Matrix file, relative to the workspace folder/, 'nad/ui-new.nad-matrix.json');
      await page.locator('.tabs-container .tab.active', { hasText: 'ui-new.nad-matrix.json' }).waitFor({ timeout: 20_000 });
      const file = join(ws.dir, 'nad', 'ui-new.nad-matrix.json');
      const written = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
      const offered = JSON.parse(readFileSync(join(REPO_ROOT, 'dist', 'attacks.json'), 'utf8')) as Array<{ name: string }>;
      // In the registry's order, as the list shows them.
      const paper = offered.map((o) => o.name).filter((a) => ['badnets', 'trojan', 'cl', 'sig', 'refool'].includes(a));
      assert.deepEqual(written, {
        name: 'ui-new',
        data: 'mnist',
        test: 'mnist',
        arch: 'auto',
        seeds: [0, 1],
        target: 2,
        cleanRatio: 0.05,
        attacks: paper,
        defenses: ['none', 'finetune', 'fine-pruning', 'nad'],
        training: { epochs: 3 },
        defenseTraining: {},
      });
      // The runs layer's own check accepts it.
      const spec = parseMatrix(written, file, join(ws.dir, 'nad'));
      assert.equal(matrixCells(spec).length, paper.length * 2 * (1 + 3));
    }),
);
