// UI tests: the workbench in headless Chromium, driven as a person does (palette, tree, webview).
// Screenshots go to test-results/ (kept by CI); look at them when the UI changes.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { rmSync } from 'node:fs';
import { RunStore } from '../../../src/runs/run-store';
import { REPO_ROOT, Workbench } from '../../../scripts/vscode-test/workbench';
import { TEST_TIMEOUT_MS, activeWebview, openFile, runCommand, treeRows, viewPane, windowTitle } from '../../../scripts/vscode-test/ui';
import { FINISHED_ACC, FINISHED_ASR, makeWorkspace, type FixtureWorkspace } from '../fixtures/workspace';

let wb: Workbench;
let ws: FixtureWorkspace;

before(
  async () => {
    ws = makeWorkspace();
    wb = await Workbench.start({ name: 'ui', workspace: ws.dir, extensionDevelopmentPath: REPO_ROOT });
  },
  { timeout: TEST_TIMEOUT_MS },
);

after(async () => {
  await wb?.close();
  if (ws) rmSync(ws.dir, { recursive: true, force: true });
});

test('the window is an Extension Development Host on the fixture workspace', { timeout: TEST_TIMEOUT_MS }, () =>
  wb.step('window title', async () => {
    assert.match(await windowTitle(wb.page), /\[Extension Development Host\]/);
  }),
);

test('"NAD: Show Experiment History" from the palette shows the runs in the Runs view', { timeout: TEST_TIMEOUT_MS }, () =>
  wb.step('show history', async () => {
    await runCommand(wb.page, 'NAD: Show Experiment History');
    const rows = await treeRows(viewPane(wb.page, 'Runs'), 3);
    console.log(`  screenshots: ${await wb.screenshot('ui-runs-view', '.part.sidebar')}, ${await wb.screenshot('ui-workbench')}`);
    const finished = rows.find((r) => r.label === ws.finishedLabel);
    assert.ok(finished, `no row "${ws.finishedLabel}" in ${JSON.stringify(rows)}`);
    assert.equal(finished.description, `erase · finished · ACC ${FINISHED_ACC.toFixed(1)}% · ASR ${FINISHED_ASR.toFixed(1)}%`);
    assert.equal(finished.icon, 'pass');
    const failed = rows.find((r) => r.label === ws.failedLabel);
    assert.equal(failed?.icon, 'error');
    const broken = rows.find((r) => r.label === ws.brokenId);
    assert.ok(broken, `the broken folder ${ws.brokenId} is not shown`);
    assert.equal(broken.icon, 'warning');
    assert.match(broken.ariaLabel, /status\.json: invalid JSON/);
  }),
);

test('a run folder written by another process appears in the open view', { timeout: TEST_TIMEOUT_MS }, () =>
  wb.step('watcher', async () => {
    const store = new RunStore(ws.dir);
    const run = store.create('finetune', { name: 'ui-watcher-probe' }, 'ui-watcher-probe');
    run.finish({ acc: 88, asr: 4.5 });
    const rows = await treeRows(viewPane(wb.page, 'Runs'), 4);
    const probe = rows.find((r) => r.label === 'ui-watcher-probe');
    assert.ok(probe, `the new run is not shown: ${JSON.stringify(rows)}`);
    assert.equal(probe.description, 'finetune · finished · ACC 88.0% · ASR 4.5%');
    await store.delete(run.id);
    // The view's own refresh button (a person's "NAD: Refresh Runs") shows the folder gone.
    await wb.page.locator('.part.sidebar .title-actions .codicon-refresh').click();
    await assert.doesNotReject(
      waitUntil(async () => !(await treeRows(viewPane(wb.page, 'Runs'), 3)).some((r) => r.label === 'ui-watcher-probe')),
    );
  }),
);

test('webview content is read two iframes deep (Markdown preview of the workspace README)', { timeout: TEST_TIMEOUT_MS }, () =>
  wb.step('webview', async () => {
    await openFile(wb.page, 'README.md');
    await runCommand(wb.page, 'Markdown: Open Preview');
    const heading = activeWebview(wb.page).locator('h1');
    await heading.waitFor({ timeout: 20_000 });
    assert.equal((await heading.innerText()).trim(), 'NAD fixture workspace');
    console.log(`  screenshot: ${await wb.screenshot('ui-webview', '.part.editor')}`);
  }),
);

async function waitUntil(probe: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
