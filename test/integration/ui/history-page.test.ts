// UI: the experiment history table (sort, filter, select, compare) and the compare page (curves of the
// selected runs, their configs' differences), in three themes, and both pages back after a reload.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { rmSync } from 'node:fs';
import type { FrameLocator, Locator } from 'playwright-core';
import { RunStore } from '../../../src/runs/run-store';
import { REPO_ROOT, Workbench } from '../../../scripts/vscode-test/workbench';
import { activeWebview, runCommand, setColorTheme, TEST_TIMEOUT_MS, viewPane, watchCsp } from '../../../scripts/vscode-test/ui';
import { makeWorkspace, type FixtureWorkspace } from '../fixtures/workspace';

let wb: Workbench;
let ws: FixtureWorkspace;
/** Messages of the browser about blocked content: a webview breaking its own CSP shows up here. */
let cspViolations: string[] = [];
const backdoor = { trigger: { name: 'gridTrigger' }, targetType: 'all2one', targetLabel: 5, injectPortion: 0.1 };

/** Runs as the engine writes them (config, status, metrics.jsonl), with the real RunStore. */
function addRuns(dir: string): void {
  const store = new RunStore(dir);
  const write = (
    kind: 'train' | 'erase',
    name: string,
    config: Record<string, unknown>,
    epochs: Array<[number, number, number, number]>,
  ): void => {
    const run = store.create(kind, { name, backendUsed: 'wasm', backdoor, ...config }, name);
    for (const [epoch, loss, acc, asr] of epochs)
      run.appendMetric({
        type: 'epoch',
        phase: kind === 'erase' ? 'nad' : 'train',
        epochs: epochs.length,
        epoch,
        loss,
        acc,
        asr,
        lr: 0.1,
        seconds: 2,
        imagesPerSecond: 100,
      });
    const last = epochs[epochs.length - 1];
    run.update({ lastEpoch: last[0], backend: 'wasm (SIMD, 2 threads)' });
    run.finish({ acc: last[2], asr: last[3] });
  };
  write('train', 'mnist-backdoored', { data: 'mnist', training: { epochs: 4, betas: [0, 0, 0] } }, [
    [1, 1.6, 62, 98],
    [2, 0.9, 81, 99.5],
    [3, 0.6, 88, 99.8],
    [4, 0.45, 91, 100],
  ]);
  write('erase', 'mnist-nad-beta5000', { data: 'mnist', cleanRatio: 0.05, training: { epochs: 4, betas: [5000, 5000, 5000] } }, [
    [1, 6.1, 80, 40],
    [2, 3.2, 85, 12],
    [3, 2.1, 87, 6],
    [4, 1.8, 88, 4.2],
  ]);
  write('erase', 'mnist-nad-beta500', { data: 'mnist', cleanRatio: 0.05, training: { epochs: 4, betas: [500, 1000, 1000] } }, [
    [1, 3.0, 84, 70],
    [2, 1.9, 87, 35],
    [3, 1.4, 89, 18],
    [4, 1.2, 89.5, 11],
  ]);
}

before(
  async () => {
    ws = makeWorkspace();
    addRuns(ws.dir);
    wb = await Workbench.start({ name: 'ui-history-page', workspace: ws.dir, extensionDevelopmentPath: REPO_ROOT });
    cspViolations = watchCsp(wb.page);
  },
  { timeout: TEST_TIMEOUT_MS },
);

after(async () => {
  await wb?.close();
  if (ws) rmSync(ws.dir, { recursive: true, force: true });
});

async function shownNames(frame: FrameLocator): Promise<string[]> {
  return (await frame.locator('#runs tbody th.name button.link').allInnerTexts()).map((t) => t.trim());
}

function names(): { all: string[]; byAcc: string[] } {
  const runs = new RunStore(ws.dir).list().runs;
  const label = (r: (typeof runs)[number]): string => String(r.config['name'] ?? r.id);
  const withAcc = runs.filter((r) => r.status.acc !== undefined).sort((a, b) => (b.status.acc ?? 0) - (a.status.acc ?? 0));
  return { all: runs.map(label), byAcc: [...withAcc.map(label), ...runs.filter((r) => r.status.acc === undefined).map(label)] };
}

test('"Show Experiment History Table" lists every run, newest first, and the unreadable folder', { timeout: TEST_TIMEOUT_MS }, () =>
  wb.step('history table', async () => {
    const page = wb.page;
    await runCommand(page, 'NAD: Show Experiment History Table');
    const frame = activeWebview(page);
    await frame.locator('#runs tbody tr[data-dir]').first().waitFor({ timeout: 30_000 });
    assert.deepEqual(await shownNames(frame), names().all);
    assert.match(await frame.locator('#broken').innerText(), new RegExp(`${ws.brokenId}: status\\.json: invalid JSON`));
    await setColorTheme(page, 'Dark Modern');
    await page.mouse.move(700, 790);
    console.log(`  screenshot: ${await wb.screenshot('ui-history-table-dark-modern', '.part.editor')}`);
  }),
);

test('columns sort by value, the filter narrows the rows, two selected runs are compared', { timeout: TEST_TIMEOUT_MS }, () =>
  wb.step('sort, filter, compare', async () => {
    const page = wb.page;
    const frame = activeWebview(page);
    await frame.locator('th[data-column="acc"] button.sort').click();
    assert.equal(await frame.locator('th[data-column="acc"]').getAttribute('aria-sort'), 'descending');
    assert.deepEqual(await shownNames(frame), names().byAcc);
    await frame.locator('th[data-column="acc"] button.sort').click();
    assert.equal(await frame.locator('th[data-column="acc"]').getAttribute('aria-sort'), 'ascending');
    await frame.locator('#filter input').fill('nad-beta');
    await frame.locator('#status', { hasText: /^2 of/ }).waitFor({ timeout: 5_000 });
    assert.deepEqual((await shownNames(frame)).sort(), ['mnist-nad-beta500', 'mnist-nad-beta5000']);
    for (const name of ['mnist-nad-beta500', 'mnist-nad-beta5000'])
      await frame
        .locator('tr', { has: frame.locator('button.link', { hasText: new RegExp(`^${name}$`) }) })
        .locator('vscode-checkbox')
        .click();
    await frame.locator('#status', { hasText: '2 selected' }).waitFor({ timeout: 5_000 });
    // Maps and Reveal act on one run; these runs have no attention maps either.
    assert.equal(await frame.locator('#show-maps').getAttribute('disabled'), '');
    assert.equal(await frame.locator('#reveal').getAttribute('disabled'), '');
    console.log(`  screenshot: ${await wb.screenshot('ui-history-table-selected', '.part.editor')}`);
    await frame.locator('#compare').click();
    const compare = activeWebview(page);
    await compare.locator('#charts canvas').nth(2).waitFor({ timeout: 30_000 });
    assert.equal(await compare.locator('#charts canvas').count(), 3);
    const differing = (await compare.locator('#config tr.differs code').allInnerTexts()).map((t) => t.trim()).sort();
    assert.deepEqual(differing, ['name', 'training.betas']);
    await page.mouse.move(700, 790);
    console.log(`  screenshot: ${await wb.screenshot('ui-compare-dark-modern', '.part.editor')}`);
  }),
);

test(
  'the compare page reads well in Light Modern and Dark High Contrast; "Only keys that differ" hides the rest',
  { timeout: TEST_TIMEOUT_MS },
  () =>
    wb.step('compare themes', async () => {
      const page = wb.page;
      for (const [theme, file] of [
        ['Light Modern', 'light-modern'],
        ['Dark High Contrast', 'dark-high-contrast'],
      ] as const) {
        await setColorTheme(page, theme);
        await activeWebview(page).locator('#charts canvas').first().waitFor();
        console.log(`  screenshot: ${await wb.screenshot(`ui-compare-${file}`, '.part.editor')}`);
      }
      const frame = activeWebview(page);
      await frame.locator('#only-differences').click();
      await frame.locator('#config tbody tr:not(.differs)').first().waitFor({ state: 'detached', timeout: 5_000 });
      assert.equal(await frame.locator('#config tbody tr').count(), 2);
      await frame.locator('#config').scrollIntoViewIfNeeded();
      console.log(`  screenshot: ${await wb.screenshot('ui-compare-config-dark-high-contrast', '.part.editor')}`);
      await setColorTheme(page, 'Dark Modern');
    }),
);

test('after "Developer: Reload Window" the compare page comes back with the same runs', { timeout: TEST_TIMEOUT_MS }, () =>
  wb.step('reload', async () => {
    const page = wb.page;
    await runCommand(page, 'Developer: Reload Window');
    await page.waitForSelector('.monaco-workbench', { timeout: 60_000 });
    const frame = activeWebview(page);
    await frame.locator('#charts canvas').nth(2).waitFor({ timeout: 60_000 });
    assert.match(await frame.locator('h1').innerText(), /Compare 2 runs/);
    assert.equal(await frame.locator('#only-differences').getAttribute('checked'), '');
  }),
);

test('"Compare Runs" from the Runs view context menu compares the rows selected there', { timeout: TEST_TIMEOUT_MS }, () =>
  wb.step('compare from the tree', async () => {
    const page = wb.page;
    await runCommand(page, 'NAD: Show Experiment History');
    const pane = viewPane(page, 'Runs');
    const row = (name: string): Locator =>
      pane.locator('.monaco-list-row', { has: page.locator('.label-name', { hasText: new RegExp(`^${name}$`) }) });
    await row('mnist-backdoored').click();
    await row('mnist-nad-beta500').click({ modifiers: ['Control'] });
    await row('mnist-nad-beta500').click({ button: 'right' });
    const item = page.locator('.context-view .action-label', { hasText: 'Compare Runs' });
    await item.click();
    if (await item.isVisible()) await page.keyboard.press('Enter');
    const frame = activeWebview(page);
    await frame.locator('h1', { hasText: 'Compare 2 runs' }).waitFor({ timeout: 30_000 });
    assert.deepEqual((await frame.locator('#results tbody th button.link').allInnerTexts()).map((t) => t.trim()).sort(), [
      'mnist-backdoored',
      'mnist-nad-beta500',
    ]);
    console.log(`  screenshot: ${await wb.screenshot('ui-compare-from-tree')}`);
  }),
);

test('the history and compare pages ran without a Content Security Policy violation', () => {
  assert.deepEqual(cspViolations, []);
});
