// UI: "NAD: Run Demo" from the palette (its Quick setting: 2 + 2 + 4 epochs on the built-in MNIST digits)
// in an empty folder. While NAD runs, the panel draws the attention maps over their input images (sent at
// the run's start, before maps.json exists); when the demo ends, the three runs are in the Runs view as
// finished with their folders' ACC/ASR, and each run's panel shows its folder's table and epochs.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FrameLocator, Page } from 'playwright-core';
import { REPO_ROOT, Workbench } from '../../../scripts/vscode-test/workbench';
import {
  activeWebview,
  pickItem,
  runCommand,
  TEST_TIMEOUT_MS,
  treeRows,
  viewPane,
  useDarkTheme,
  waitForQuestion,
  watchCsp,
} from '../../../scripts/vscode-test/ui';
import {
  folderEpochs,
  folderLog,
  folderStatus,
  folderTable,
  imageAtCentres,
  panelEpochRows,
  panelTable,
  readMapsFile,
  runFolder,
} from './run-checks';

/** The demo's runs, in the order it makes them, with the kind each is. */
const RUNS = [
  ['demo-backdoored', 'train'],
  ['demo-teacher', 'finetune'],
  ['demo-nad', 'erase'],
] as const;
/** The quick demo takes about a minute on a quiet 2-core machine, three or four under load. */
const DEMO_TIMEOUT_MS = 540_000;

let wb: Workbench;
let workspace = '';
let runsDir = '';
let cspViolations: string[] = [];

before(
  async () => {
    workspace = mkdtempSync(join(tmpdir(), 'nad-demo-workspace-'));
    runsDir = join(workspace, '.nad', 'runs');
    writeFileSync(join(workspace, 'README.md'), '# An empty folder for the NAD demo\n');
    useDarkTheme(workspace);
    wb = await Workbench.start({ name: 'ui-demo', workspace, extensionDevelopmentPath: REPO_ROOT });
    cspViolations = watchCsp(wb.page);
  },
  { timeout: TEST_TIMEOUT_MS },
);

after(async () => {
  await wb?.close();
  if (workspace) rmSync(workspace, { recursive: true, force: true });
});

/** What the run panel shows at one moment, read in one go so that it cannot change half-way. */
interface LiveRead {
  readonly title: string;
  readonly state: string;
  readonly error: string;
  /** The input row's clean image 1, and the backdoored model's group 1 clean map of image 1; absent when not drawn. */
  readonly input?: { width: number; height: number; data: number[] };
  readonly backdooredMap?: { width: number; height: number; data: number[] };
}

function readPanel(frame: FrameLocator): Promise<LiveRead> {
  // No named helper functions inside: the callback is serialized into the page, without tsx's helpers.
  return frame.locator('body').evaluate((body) => {
    const [input, backdooredMap] = [
      'table.attention canvas[aria-label="clean input image 1"]',
      'table.attention canvas[aria-label^="Backdoored, group 1, clean image 1:"]',
    ].map((selector) => {
      const c = body.querySelector(selector) as HTMLCanvasElement | null;
      const d = c?.getContext('2d')?.getImageData(0, 0, c.width, c.height).data;
      return c && d ? { width: c.width, height: c.height, data: Array.from(d) } : undefined;
    });
    return {
      title: body.querySelector('#run-title')?.textContent?.trim() ?? '',
      state: body.querySelector('.state')?.textContent?.trim() ?? '',
      error: body.querySelector('.error')?.textContent?.trim() ?? '',
      input,
      backdooredMap,
    };
  });
}

/** Read the panel until `done`; throws when the run failed, or when `missed` says it can no longer happen. */
async function waitForPanel(
  page: Page,
  what: string,
  done: (r: LiveRead) => boolean,
  timeoutMs: number,
  missed: (r: LiveRead) => boolean = () => false,
): Promise<LiveRead> {
  const frame = activeWebview(page);
  const deadline = Date.now() + timeoutMs;
  let last: LiveRead | undefined;
  let problem = '';
  for (;;) {
    // The frame is not there for a moment while the panel moves to the demo's next run.
    last = await readPanel(frame).catch((e: Error) => {
      problem = e.message;
      return last;
    });
    if (last && done(last)) return last;
    if (last?.state === 'Failed') throw new Error(`the demo failed in ${last.title}: ${last.error}`);
    if (last && missed(last))
      throw new Error(
        `the panel did not show ${what}; it now shows ${JSON.stringify({ title: last.title, state: last.state, input: last.input !== undefined })}`,
      );
    if (Date.now() > deadline)
      throw new Error(
        `the panel did not show ${what} within ${timeoutMs / 1000} s; it showed ${JSON.stringify({ title: last?.title, state: last?.state })}${problem ? `; last read failed: ${problem}` : ''}`,
      );
    await page.waitForTimeout(250);
  }
}

function maxDifference(a: readonly number[], b: readonly number[]): number {
  assert.equal(a.length, b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

let live: LiveRead;

test(
  '"NAD: Run Demo" (Quick) trains the three runs; while NAD runs, its maps are drawn over the input images',
  { timeout: DEMO_TIMEOUT_MS + 60_000 },
  () =>
    wb.step('run demo', async () => {
      const page = wb.page;
      await runCommand(page, 'NAD: Run Demo');
      await waitForQuestion(page, /built-in MNIST digits/);
      console.log(`  screenshot: ${await wb.screenshot('ui-demo-pick')}`);
      await pickItem(page, 'Quick');
      const started = Date.now();
      const frame = activeWebview(page);
      await frame.locator('#run-title', { hasText: 'demo-backdoored' }).waitFor({ timeout: 60_000 });

      // NAD starts with the teacher's and the backdoored model's maps (epoch 0) and trains on: catch the
      // panel while the run is still running and its attention/maps.json (which also has the images) is
      // not written yet, so the images can only have come with the live messages.
      const nadMaps = (): string | undefined => {
        const dir = runFolder(runsDir, 'demo-nad');
        return dir && join(dir, 'attention', 'maps.json');
      };
      live = await waitForPanel(
        page,
        'the NAD run live with its input images',
        (r) => r.title === 'demo-nad' && r.state === 'Running' && r.input !== undefined && r.backdooredMap !== undefined,
        DEMO_TIMEOUT_MS,
        (r) => r.title === 'demo-nad' && r.state !== 'Running',
      );
      const file = nadMaps();
      const readBeforeMaps = file !== undefined && !existsSync(file);
      console.log(
        `  live NAD panel read ${((Date.now() - started) / 1000).toFixed(0)} s after the start; maps.json ${readBeforeMaps ? 'not written yet' : 'already written'}`,
      );
      await frame
        .locator('table.attention')
        .scrollIntoViewIfNeeded()
        .catch(() => undefined);
      console.log(`  screenshot: ${await wb.screenshot('ui-demo-live-attention')}`);

      const end = await waitForPanel(page, 'the demo finished', (r) => r.title === 'demo-nad' && r.state === 'Finished', DEMO_TIMEOUT_MS);
      console.log(`  demo finished ${((Date.now() - started) / 1000).toFixed(0)} s after it was picked`);
      const nadDir = runFolder(runsDir, 'demo-nad');
      assert.ok(nadDir, 'no demo-nad run folder');
      const maps = readMapsFile(nadDir);
      // The live input row showed the first sample image: the one maps.json stores at the end.
      assert.ok(live.input);
      const stored = Array.from(Buffer.from(maps.images.clean[0], 'base64'));
      assert.deepEqual(
        imageAtCentres(live.input, maps.image.height, maps.image.width),
        stored,
        'the live input image is not the run’s first sample',
      );
      assert.ok(stored.some((v) => v > 200) && stored.some((v) => v === 0), 'the sample is not a digit');
      // The backdoored model does not change during NAD: its live map (epoch 0) and its final map are the
      // same values, drawn the same way over the same image. Live without the image, it would be the bare
      // colour map, far from the blend with the digit.
      assert.ok(live.backdooredMap && end.backdooredMap);
      const diff = maxDifference(live.backdooredMap.data, end.backdooredMap.data);
      assert.ok(diff <= 3, `the live map differs from the final one (drawn over the image) by ${diff} levels`);

      assert.deepEqual(await panelTable(frame), folderTable(nadDir));
      // Both models are called model.safetensors: the header says which run made each.
      const facts = await frame.locator('header dl.facts div').allInnerTexts();
      assert.ok(
        facts.some((f) => /^Model\s+model\.safetensors \(run demo-backdoored\)$/.test(f)),
        facts.join(' | '),
      );
      assert.ok(
        facts.some((f) => /^Teacher\s+model\.safetensors \(run demo-teacher\)$/.test(f)),
        facts.join(' | '),
      );
      // The live log has each line once (the folder's first line used to arrive a second time as a message).
      const log = await frame.locator('pre.log div').allInnerTexts();
      const backendLines = (lines: readonly string[]): number => lines.filter((l) => l.startsWith('backend: ')).length;
      assert.equal(backendLines(log), backendLines(folderLog(nadDir)), log.join('\n'));
      assert.deepEqual(
        (await panelEpochRows(frame)).map((r) => r.slice(1, 5)),
        folderEpochs(nadDir),
      );
      // The "demo finished" notification would cover the panel in the screenshots.
      await page
        .locator('.notifications-toasts .notification-toast', { hasText: 'finished' })
        .waitFor({ timeout: 10_000 })
        .catch(() => undefined);
      await runCommand(page, 'Notifications: Clear All Notifications');
      await frame.locator('#results').scrollIntoViewIfNeeded();
      console.log(`  screenshot: ${await wb.screenshot('ui-demo-finished')}`);
      await frame.locator('table.attention').scrollIntoViewIfNeeded();
      console.log(`  screenshot: ${await wb.screenshot('ui-demo-finished-attention')}`);
    }),
);

test('the Runs view lists the three demo runs as finished, with their folders’ ACC and ASR', { timeout: TEST_TIMEOUT_MS }, () =>
  wb.step('runs view', async () => {
    const page = wb.page;
    await runCommand(page, 'NAD: Show Experiment History');
    const rows = await treeRows(viewPane(page, 'Runs'), 3);
    for (const [name, kind] of RUNS) {
      const dir = runFolder(runsDir, name);
      assert.ok(dir, `no ${name} run folder`);
      const status = folderStatus(dir);
      assert.equal(status.state, 'finished');
      assert.ok(status.acc !== undefined && status.asr !== undefined, `${name} has no ACC/ASR in status.json`);
      const row = rows.find((r) => r.label === name);
      assert.ok(row, `${name} is not listed: ${JSON.stringify(rows)}`);
      assert.equal(row.description, `${kind} · finished · ACC ${status.acc.toFixed(1)}% · ASR ${status.asr.toFixed(1)}%`);
      assert.equal(row.icon, 'pass');
    }
    assert.equal(rows.length, 3, `unexpected rows: ${JSON.stringify(rows)}`);
    await page.mouse.move(900, 780);
    console.log(`  screenshot: ${await wb.screenshot('ui-demo-runs-view')}`);
  }),
);

test('each demo run’s panel, opened from the Runs view, shows its folder’s ACC/ASR table and epochs', { timeout: TEST_TIMEOUT_MS }, () =>
  wb.step('run panels', async () => {
    const page = wb.page;
    for (const [name] of RUNS) {
      const dir = runFolder(runsDir, name);
      assert.ok(dir);
      await runCommand(page, 'View: Close All Editors');
      await viewPane(page, 'Runs')
        .locator('.monaco-list-row', { has: page.locator('.label-name', { hasText: name }) })
        .click();
      const frame = activeWebview(page);
      await frame.locator('#run-title', { hasText: name }).waitFor({ timeout: 30_000 });
      await frame.locator('.state', { hasText: 'Finished' }).waitFor({ timeout: 10_000 });
      assert.deepEqual(await panelTable(frame), folderTable(dir), name);
      assert.deepEqual(
        (await panelEpochRows(frame)).map((r) => r.slice(1, 5)),
        folderEpochs(dir),
        name,
      );
      // Every model of the run has its maps, over the input images (the row above them).
      assert.ok(
        (await frame.locator('table.attention canvas[aria-label="clean input image 1"]').count()) > 0,
        `${name}: no input image row`,
      );
    }
    console.log(`  screenshot: ${await wb.screenshot('ui-demo-nad-panel-from-tree')}`);
  }),
);

test('the demo’s panels ran without a Content Security Policy violation', () => {
  assert.deepEqual(cspViolations, []);
});
