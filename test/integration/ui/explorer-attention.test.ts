// UI: "Show Attention Maps" from the Explorer's context menu of a PNG (a real test digit), answered as a
// person does: the model quick pick (a run's model, whose trigger is known, and a bare model file), and
// the trigger when no picked model records one. The worker computes the maps and the heatmap editor opens
// on them: the editor's canvases show the PNG's pixels under the maps (read back at opacity 0) and the
// trigger stamped on the triggered copy; maps.json in the new run folder holds the same.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FrameLocator, Page } from 'playwright-core';
import { PNG } from 'pngjs';
import { REPO_ROOT, Workbench } from '../../../scripts/vscode-test/workbench';
import {
  activeWebview,
  pickItem,
  runCommand,
  TEST_TIMEOUT_MS,
  useDarkTheme,
  waitForQuestion,
  watchCsp,
} from '../../../scripts/vscode-test/ui';
import { writeSmallMnist } from '../fixtures/small-mnist';
import { canvasPixels, folderStatus, imageAtCentres, quickPickRow, readMapsFile, runFolder } from './run-checks';

const SIDE = 28;
const DIGIT = 7;

let wb: Workbench;
let workspace = '';
let runsDir = '';
let pngFile = '';
/** The PNG's grey levels, row by row. */
let digit: number[] = [];
let cspViolations: string[] = [];

/** `nad train` on the small MNIST: a model in a run folder, in a few seconds. */
function trainModel(data: string, name: string, extra: readonly string[]): string {
  const args = [
    'train',
    '--data',
    data,
    '--epochs',
    '1',
    '--batch-size',
    '32',
    '--name',
    name,
    '--runs-dir',
    runsDir,
    '--quiet',
    '--json',
    ...extra,
  ];
  const out = spawnSync(process.execPath, [join(REPO_ROOT, 'dist', 'cli.js'), ...args], { encoding: 'utf8', cwd: workspace });
  assert.equal(out.status, 0, `nad train failed:\n${out.stderr}`);
  return (JSON.parse(out.stdout) as { runDir: string }).runDir;
}

before(
  async () => {
    workspace = mkdtempSync(join(tmpdir(), 'nad-explorer-workspace-'));
    runsDir = join(workspace, '.nad', 'runs');
    const data = writeSmallMnist(join(workspace, 'data', 'small-mnist'), { train: 60, test: 20 });
    // A backdoored model (grid trigger, target 5) in its run folder, and a clean one as a bare file.
    trainModel(data, 'ui-digits', []);
    const clean = trainModel(data, 'clean-digits', ['--inject-portion', '0', '--seed', '1']);
    mkdirSync(join(workspace, 'models'));
    copyFileSync(join(clean, 'model', 'model.safetensors'), join(workspace, 'models', 'clean-cnn.safetensors'));
    // A test digit as a PNG: the test images interleave the digits 0..9, so image 7 is a 7.
    const idx = readFileSync(join(data, 't10k-images-idx3-ubyte'));
    const labels = readFileSync(join(data, 't10k-labels-idx1-ubyte'));
    assert.equal(labels[8 + DIGIT], DIGIT);
    digit = Array.from(idx.subarray(16 + DIGIT * SIDE * SIDE, 16 + (DIGIT + 1) * SIDE * SIDE));
    const png = new PNG({ width: SIDE, height: SIDE });
    digit.forEach((v, p) => png.data.set([v, v, v, 255], 4 * p));
    mkdirSync(join(workspace, 'images'));
    pngFile = join(workspace, 'images', `digit-${DIGIT}.png`);
    writeFileSync(pngFile, PNG.sync.write(png));
    useDarkTheme(workspace);
    wb = await Workbench.start({ name: 'ui-explorer-attention', workspace, extensionDevelopmentPath: REPO_ROOT });
    cspViolations = watchCsp(wb.page);
  },
  { timeout: TEST_TIMEOUT_MS },
);

after(async () => {
  await wb?.close();
  if (workspace) rmSync(workspace, { recursive: true, force: true });
});

/** Right-click the PNG in the Explorer and choose "Show Attention Maps". */
async function showAttentionFromExplorer(page: Page): Promise<void> {
  await runCommand(page, 'View: Show Explorer');
  const row = (label: string) =>
    page.locator('.explorer-folders-view .monaco-list-row', { has: page.locator('.label-name', { hasText: label }) }).first();
  if (!(await row(`digit-${DIGIT}.png`).isVisible())) await row('images').click();
  const item = page.locator('.context-view .action-label', { hasText: 'Show Attention Maps' });
  // Right after start the menu can open before the extension's contributions are in: open it again then.
  for (let attempt = 1; ; attempt++) {
    await row(`digit-${DIGIT}.png`).click({ button: 'right' });
    if (
      await item.waitFor({ state: 'visible', timeout: 3_000 }).then(
        () => true,
        () => false,
      )
    )
      break;
    await page.keyboard.press('Escape');
    if (attempt === 10) throw new Error('"Show Attention Maps" is not in the context menu of the PNG');
    await page.waitForTimeout(1_000);
  }
  // Menu items act on mouse-up after hover in the browser workbench; the keyboard is reliable.
  await item.hover();
  await page.keyboard.press('Enter');
}

/** Tick rows of the open multi-select quick pick, then accept with its OK button. */
async function pickMany(page: Page, labels: readonly string[]): Promise<void> {
  for (const label of labels) {
    await pickItem(page, label);
    await quickPickRow(page, label).locator('.monaco-checkbox.checked, input[type="checkbox"]:checked').first().waitFor({ timeout: 5_000 });
  }
  await page.locator('.quick-input-widget .monaco-button', { hasText: /^OK$/ }).click();
}

/** The heatmap editor's canvases, one per model, read at the current settings. */
async function mapCanvases(frame: FrameLocator): Promise<Array<{ width: number; height: number; data: number[] }>> {
  const canvases = frame.locator('figure.panel canvas.map');
  const out: Array<{ width: number; height: number; data: number[] }> = [];
  for (let i = 0; i < (await canvases.count()); i++) out.push(await canvasPixels(canvases.nth(i)));
  return out;
}

/** Set the heatmap opacity with the keyboard (Home = 0, each ArrowRight +5%), and wait for the redraw. */
async function setOpacity(page: Page, frame: FrameLocator, percent: number): Promise<void> {
  await frame.locator('#opacity').focus();
  await page.keyboard.press('Home');
  for (let p = 0; p < percent; p += 5) await page.keyboard.press('ArrowRight');
  assert.equal(Math.round(Number(await frame.locator('#opacity').inputValue()) * 100), percent);
  await page.waitForTimeout(300);
}

/** Share of the canvas's pixels that are not grey: the colour map drawn over a grey digit. */
function colouredShare(px: { data: number[] }): number {
  let coloured = 0;
  for (let q = 0; q < px.data.length; q += 4)
    if (Math.max(px.data[q], px.data[q + 1], px.data[q + 2]) - Math.min(px.data[q], px.data[q + 1], px.data[q + 2]) > 8) coloured++;
  return coloured / (px.data.length / 4);
}

/** Pixels (index y * SIDE + x) where two images differ. */
function changedPixels(a: readonly number[], b: readonly number[]): number[] {
  return a.flatMap((v, p) => (v !== b[p] ? [p] : []));
}

test(
  'Explorer → "Show Attention Maps" on a PNG under a run’s model and a model file: the heatmap editor shows the digit under both models’ maps',
  { timeout: TEST_TIMEOUT_MS },
  () =>
    wb.step('explorer, two models', async () => {
      const page = wb.page;
      await showAttentionFromExplorer(page);
      await waitForQuestion(page, /Attention maps of digit-7\.png: under which model/);
      await quickPickRow(page, 'clean-cnn.safetensors').waitFor({ timeout: 20_000 });
      console.log(`  screenshot: ${await wb.screenshot('ui-explorer-attention-pick')}`);
      // The run's model brings its trigger (config.json): no trigger question follows.
      await pickMany(page, ['ui-digits ·', 'clean-cnn.safetensors']);
      const frame = activeWebview(page);
      await frame.locator('figure.panel canvas.map').first().waitFor({ timeout: 90_000 });
      assert.match(await page.locator('.tabs-container .tab.active').innerText(), /maps\.json/);
      assert.deepEqual(
        (await frame.locator('figure.panel h2').allInnerTexts()).map((t) => t.trim()),
        ['ui-digits', 'clean-cnn'],
      );
      assert.equal((await frame.locator('#image-count').innerText()).trim(), 'Image 1 of 1');
      assert.equal(await frame.locator('figure.panel .prediction').count(), 2);
      // The command reported its run itself: no second progress notification, no "finished" message
      // offering a run panel (the workbench shows messages in the order they are sent, before the editor).
      const notes = (await page.locator('.notifications-toasts, .notifications-center').allInnerTexts()).join('\n');
      assert.doesNotMatch(notes, /Attention maps \(digit-7\.png\)/);

      // The run folder the worker wrote: the PNG under both models, with the run's grid trigger.
      const dir = runFolder(runsDir, `attention-digit-${DIGIT}`);
      assert.ok(dir, 'no attention run folder');
      assert.equal(folderStatus(dir).state, 'finished');
      const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as {
        images: string[];
        models: string[];
        trigger: { name: string };
      };
      assert.deepEqual(config.images, [pngFile]);
      assert.equal(config.trigger.name, 'gridTrigger');
      const maps = readMapsFile(dir);
      assert.deepEqual(
        maps.snapshots.map((s) => s.model),
        ['ui-digits', 'clean-cnn'],
      );
      assert.deepEqual(Array.from(Buffer.from(maps.images.clean[0], 'base64')), digit);
      const triggered = Array.from(Buffer.from(maps.images.triggered[0], 'base64'));

      // As drawn: heatmaps in colour over the digit (the triggered copy first, the editor's default).
      await frame.locator('vscode-radio[value="triggered"][checked]').waitFor({ timeout: 5_000 });
      for (const px of await mapCanvases(frame))
        assert.ok(colouredShare(px) > 0.5, `only ${(colouredShare(px) * 100).toFixed(0)}% of the map is coloured`);
      await page.mouse.move(640, 790);
      console.log(`  screenshot: ${await wb.screenshot('ui-explorer-attention', '.part.editor')}`);
      // At opacity 0 only the image is left: the triggered digit, then (Clean) the PNG itself.
      await setOpacity(page, frame, 0);
      for (const px of await mapCanvases(frame)) assert.deepEqual(imageAtCentres(px, SIDE, SIDE), triggered);
      const stamped = changedPixels(digit, triggered);
      assert.ok(
        stamped.length > 0 && stamped.every((p) => p % SIDE >= SIDE - 4 && Math.floor(p / SIDE) >= SIDE - 4),
        `the grid trigger is not in the bottom-right corner: ${stamped.join(', ')}`,
      );
      await frame.locator('vscode-radio', { hasText: 'Clean' }).click();
      await frame.locator('vscode-radio[value="clean"][checked]').waitFor({ timeout: 5_000 });
      await page.waitForTimeout(300);
      for (const px of await mapCanvases(frame)) assert.deepEqual(imageAtCentres(px, SIDE, SIDE), digit);
      await setOpacity(page, frame, 100);
      for (const px of await mapCanvases(frame)) assert.ok(colouredShare(px) > 0.9, 'the map at full opacity is not in colour');
    }),
);

test('with only a bare model file, the trigger is asked for, and the triggered copy has the one chosen', { timeout: TEST_TIMEOUT_MS }, () =>
  wb.step('explorer, trigger question', async () => {
    const page = wb.page;
    await runCommand(page, 'View: Close All Editors');
    const before = runFolder(runsDir, `attention-digit-${DIGIT}`);
    await showAttentionFromExplorer(page);
    await waitForQuestion(page, /under which model/);
    await pickMany(page, ['clean-cnn.safetensors']);
    await waitForQuestion(page, /Which trigger to stamp/);
    console.log(`  screenshot: ${await wb.screenshot('ui-explorer-attention-trigger')}`);
    await pickItem(page, 'squareTrigger');
    const frame = activeWebview(page);
    await frame.locator('figure.panel canvas.map').first().waitFor({ timeout: 90_000 });
    assert.deepEqual(
      (await frame.locator('figure.panel h2').allInnerTexts()).map((t) => t.trim()),
      ['clean-cnn'],
    );
    const dir = runFolder(runsDir, `attention-digit-${DIGIT}`);
    assert.ok(dir && dir !== before, 'no new attention run folder');
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as { trigger: { name: string } };
    assert.equal(config.trigger.name, 'squareTrigger');
    const triggered = Array.from(Buffer.from(readMapsFile(dir).images.triggered[0], 'base64'));
    const stamped = changedPixels(digit, triggered);
    assert.ok(stamped.length > 0, 'the square trigger changed nothing');
    await setOpacity(page, frame, 0);
    const [px] = await mapCanvases(frame);
    assert.deepEqual(imageAtCentres(px, SIDE, SIDE), triggered);
    await setOpacity(page, frame, 60);
    await page.mouse.move(640, 790);
    console.log(`  screenshot: ${await wb.screenshot('ui-explorer-attention-square', '.part.editor')}`);
  }),
);

test('the heatmap editor ran without a Content Security Policy violation', () => {
  assert.deepEqual(cspViolations, []);
});
