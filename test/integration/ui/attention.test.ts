// UI: the attention-maps editor opened from the Runs view's context menu on a real attention run (the
// NAD authors' backdoored WRN-16-1 and its teacher on CIFAR-10); layer, model, clean/triggered and image
// switched as a person does; values read under the pointer and the keyboard cursor and checked against
// maps.json; screenshots in three themes; a hand-broken maps.json shown as a message; restored after reload.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FrameLocator, Page } from 'playwright-core';
import { RunStore } from '../../../src/runs/run-store';
import { REPO_ROOT, Workbench } from '../../../scripts/vscode-test/workbench';
import { activeWebview, runCommand, setColorTheme, TEST_TIMEOUT_MS, viewPane, watchCsp } from '../../../scripts/vscode-test/ui';
import { makeWorkspace, type FixtureWorkspace } from '../fixtures/workspace';
import { makeAttentionRun, type AttentionFixture } from '../fixtures/attention-runs';

interface MapsFile {
  labels: number[];
  snapshots: Array<{
    model: string;
    groups: Array<{ height: number; width: number }>;
    clean: number[][];
    triggered: number[][];
    predictions: { clean: number[]; triggered: number[] };
  }>;
}

let wb: Workbench;
let ws: FixtureWorkspace;
let fx: AttentionFixture;
let maps: MapsFile;
let brokenText = '';
const QUICK = '.quick-input-widget';
/** Messages of the browser about blocked content: a webview breaking its own CSP shows up here. */
let cspViolations: string[] = [];

before(
  async () => {
    ws = makeWorkspace();
    fx = makeAttentionRun(ws.dir, REPO_ROOT);
    maps = JSON.parse(readFileSync(fx.mapsFile, 'utf8')) as MapsFile;
    // A run whose maps.json someone edited by hand: one map lost values.
    const broken = new RunStore(ws.dir).create('attention', { name: 'hand-edited-maps' }, 'hand-edited-maps');
    broken.finish({});
    const bad = JSON.parse(readFileSync(fx.mapsFile, 'utf8')) as MapsFile;
    bad.snapshots[1].triggered[2] = bad.snapshots[1].triggered[2].slice(0, 10);
    brokenText = JSON.stringify(bad);
    mkdirSync(join(broken.dir, 'attention'), { recursive: true });
    writeFileSync(join(broken.dir, 'attention', 'maps.json'), brokenText);
    wb = await Workbench.start({ name: 'ui-attention', workspace: ws.dir, extensionDevelopmentPath: REPO_ROOT });
    cspViolations = watchCsp(wb.page);
  },
  { timeout: TEST_TIMEOUT_MS },
);

after(async () => {
  await wb?.close();
  if (ws) rmSync(ws.dir, { recursive: true, force: true });
});

function editor(page: Page): FrameLocator {
  return activeWebview(page);
}

/** Run a command that asks for a run, and pick `label`; retried because a webview that finishes loading can take the focus and close the pick. */
async function commandWithPick(page: Page, title: string, label: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    await runCommand(page, title);
    const row = page
      .locator(`${QUICK} .quick-input-list .monaco-list-row`)
      .filter({ has: page.locator('.label-name', { hasText: label }) })
      .first();
    if (
      await row.click({ timeout: 8_000 }).then(
        () => true,
        () => false,
      )
    )
      return;
    if (attempt === 3) throw new Error(`"${label}" was not offered by "${title}"`);
    await page.keyboard.press('Escape');
  }
}

async function panelTitles(frame: FrameLocator): Promise<string[]> {
  return (await frame.locator('figure.panel h2').allInnerTexts()).map((t) => t.trim());
}

/** "… cell x 3, y 5 …: model 0.0123 (…); …" -> the cell and each model's value. */
function parseReadout(text: string): { x: number; y: number; values: number[] } {
  const cell = /cell x (\d+), y (\d+)/.exec(text);
  assert.ok(cell, `no cell in the readout: ${text}`);
  const values = [...text.matchAll(/ (-?[\d.]+(?:e-?\d+)?) \(predicts/g)].map((m) => Number(m[1]));
  return { x: Number(cell[1]), y: Number(cell[2]), values };
}

/** The value maps.json holds for a model, input, group, image and cell. */
function fileValue(model: number, input: 'clean' | 'triggered', group: number, image: number, x: number, y: number): number {
  const s = maps.snapshots[model];
  const g = s.groups[group];
  return s[input][group][image * g.height * g.width + y * g.width + x];
}

function close(a: number, b: number): boolean {
  return Math.abs(a - b) <= Math.max(1e-9, Math.abs(b) * 6e-3);
}

test('"Show Attention Maps" from the Runs view opens the editor with every model side by side', { timeout: TEST_TIMEOUT_MS }, () =>
  wb.step('open from the tree', async () => {
    const page = wb.page;
    await runCommand(page, 'NAD: Show Experiment History');
    const row = viewPane(page, 'Runs').locator('.monaco-list-row', { has: page.locator('.label-name', { hasText: fx.name }) });
    await row.click({ button: 'right' });
    const item = page.locator('.context-view .action-label', { hasText: 'Show Attention Maps' });
    await item.click();
    // A click landing while the menu still animates in only highlights the item: Enter runs it then.
    if (await item.isVisible()) await page.keyboard.press('Enter');
    const frame = editor(page);
    await frame.locator('figure.panel canvas.map').first().waitFor({ timeout: 30_000 });
    assert.deepEqual(await panelTitles(frame), fx.models);
    assert.match(await page.locator('.tabs-container .tab.active').innerText(), /maps\.json/);
    assert.equal((await frame.locator('#image-count').innerText()).trim(), `Image 1 of ${maps.labels.length}`);
    await setColorTheme(page, 'Dark Modern');
    await page.mouse.move(700, 780); // away from the tree, whose hover would cover the editor
    console.log(`  screenshot: ${await wb.screenshot('ui-attention-dark-modern', '.part.editor')}`);
  }),
);

test('layer, pointer and keyboard: the values shown are the file’s', { timeout: TEST_TIMEOUT_MS }, () =>
  wb.step('group and values', async () => {
    const page = wb.page;
    const frame = editor(page);
    const last = maps.snapshots[0].groups.length - 1;
    const g = maps.snapshots[0].groups[last];
    await frame.locator('vscode-radio', { hasText: `Group ${last + 1}` }).click();
    const canvas = frame.locator('figure.panel canvas.map').first();
    const box = await canvas.boundingBox();
    assert.ok(box);
    // Point at the bottom-right cell (where the grid trigger sits) and read both models' values there.
    await canvas.hover({ position: { x: box.width * ((g.width - 0.5) / g.width), y: box.height * ((g.height - 0.5) / g.height) } });
    const readout = frame.locator('#readout');
    await readout.filter({ hasText: `Group ${last + 1}` }).waitFor({ timeout: 5_000 });
    let r = parseReadout(await readout.innerText());
    assert.deepEqual([r.x, r.y], [g.width - 1, g.height - 1]);
    r.values.forEach((v, m) =>
      assert.ok(
        close(v, fileValue(m, 'triggered', last, 0, r.x, r.y)),
        `model ${m}: shown ${v}, file ${fileValue(m, 'triggered', last, 0, r.x, r.y)}`,
      ),
    );
    // The keyboard moves the same cursor.
    await canvas.focus();
    await page.keyboard.press('ArrowLeft');
    await page.keyboard.press('ArrowUp');
    r = parseReadout(await readout.innerText());
    assert.deepEqual([r.x, r.y], [g.width - 2, g.height - 2]);
    r.values.forEach((v, m) => assert.ok(close(v, fileValue(m, 'triggered', last, 0, r.x, r.y))));
    console.log(`  screenshot: ${await wb.screenshot('ui-attention-group3-cursor', '.part.editor')}`);
  }),
);

test('clean vs triggered, models and images switch what is drawn and predicted', { timeout: TEST_TIMEOUT_MS }, () =>
  wb.step('switch', async () => {
    const page = wb.page;
    const frame = editor(page);
    const predictions = async (): Promise<string[]> =>
      (await frame.locator('figure.panel .prediction').allInnerTexts()).map((t) => t.trim());
    const triggered = await predictions();
    // The backdoored model sends the triggered image to the target class; its teacher does not.
    assert.match(triggered[0], /the backdoor’s target/);
    await frame.locator('vscode-radio', { hasText: 'Clean' }).click();
    await frame
      .locator('figure.panel .prediction', { hasText: `Predicts ${maps.snapshots[0].predictions.clean[0]}` })
      .first()
      .waitFor({ timeout: 5_000 });
    const clean = await predictions();
    assert.notDeepEqual(clean, triggered);
    assert.doesNotMatch(clean[0], /backdoor/);
    await frame.locator('#next-image').click();
    assert.equal((await frame.locator('#image-count').innerText()).trim(), `Image 2 of ${maps.labels.length}`);
    await frame.locator('vscode-checkbox', { hasText: fx.models[1] }).click();
    assert.deepEqual(await panelTitles(frame), [fx.models[0]]);
    await frame.locator('vscode-checkbox', { hasText: fx.models[1] }).click();
    assert.deepEqual(await panelTitles(frame), fx.models);
    // T toggles back to the triggered image.
    await frame.locator('figure.panel canvas.map').first().focus();
    await page.keyboard.press('t');
    await frame.locator('vscode-radio[value="triggered"][checked]').waitFor({ timeout: 5_000 });
    console.log(`  screenshot: ${await wb.screenshot('ui-attention-image2', '.part.editor')}`);
  }),
);

test('the editor reads well in Light Modern and Dark High Contrast', { timeout: TEST_TIMEOUT_MS }, () =>
  wb.step('themes', async () => {
    const page = wb.page;
    for (const [theme, file, cls] of [
      ['Light Modern', 'light-modern', /vscode-light/],
      ['Dark High Contrast', 'dark-high-contrast', /vscode-high-contrast/],
    ] as const) {
      await setColorTheme(page, theme);
      assert.match((await editor(page).locator('body').getAttribute('class')) ?? '', cls);
      await editor(page).locator('vscode-single-select#scale').waitFor();
      console.log(`  screenshot: ${await wb.screenshot(`ui-attention-${file}`, '.part.editor')}`);
    }
    // The theme colour scale follows the theme's chart colours (here: high contrast).
    const frame = editor(page);
    await frame.locator('vscode-single-select#scale').click();
    await frame.locator('vscode-single-select#scale').getByRole('option', { name: 'Theme colours' }).click();
    await frame.locator('figure.panel canvas.map').first().waitFor();
    console.log(`  screenshot: ${await wb.screenshot('ui-attention-dark-high-contrast-theme-scale', '.part.editor')}`);
    await frame.locator('vscode-single-select#scale').click();
    await frame.locator('vscode-single-select#scale').getByRole('option', { name: 'Viridis' }).click();
    await setColorTheme(page, 'Dark Modern');
  }),
);

test('after "Developer: Reload Window" the editor is back on the same layer and image', { timeout: TEST_TIMEOUT_MS }, () =>
  wb.step('reload', async () => {
    const page = wb.page;
    await runCommand(page, 'Developer: Reload Window');
    await page.waitForSelector('.monaco-workbench', { timeout: 60_000 });
    const frame = editor(page);
    await frame.locator('figure.panel canvas.map').first().waitFor({ timeout: 60_000 });
    const last = maps.snapshots[0].groups.length;
    await frame.locator(`vscode-radio[value="${last - 1}"][checked]`).waitFor({ timeout: 5_000 });
    assert.equal((await frame.locator('#image-count').innerText()).trim(), `Image 2 of ${maps.labels.length}`);
  }),
);

test('a hand-broken maps.json shows what is wrong, names the file, and is left as it was', { timeout: TEST_TIMEOUT_MS }, () =>
  wb.step('broken file', async () => {
    const page = wb.page;
    await commandWithPick(page, 'NAD: Show Attention Maps', 'hand-edited-maps');
    const problem = editor(page).locator('.problem');
    await problem.waitFor({ timeout: 30_000 });
    const text = await problem.innerText();
    assert.match(text, /maps\.json/);
    assert.match(text, /snapshots\[1\]\.triggered\[2\] has 10 values, expected/);
    console.log(`  screenshot: ${await wb.screenshot('ui-attention-broken', '.part.editor')}`);
    const dir = new RunStore(ws.dir).list().runs.find((r) => r.config['name'] === 'hand-edited-maps')?.dir;
    assert.ok(dir);
    assert.equal(readFileSync(join(dir, 'attention', 'maps.json'), 'utf8'), brokenText);
  }),
);

test('the attention editor ran without a Content Security Policy violation', () => {
  assert.deepEqual(cspViolations, []);
});
