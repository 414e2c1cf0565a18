// UI: "Attention by epoch" in the heatmap editor of a real erase run, made by the nad CLI (the NAD authors'
// backdoored WRN-16-1 and teacher on a CIFAR-10 subset; small MNIST where ../shared is missing). The slider
// is moved with the keyboard and Play: the erased model's canvas and values change between epoch 1 and the
// last, the last epoch draws exactly the final maps, values agree with attention/epochs.jsonl, the chosen
// epoch survives a window reload; three themes; an older run without the file has no slider, and a torn
// file names itself and the line while the other epochs and the final maps still show.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { FrameLocator, Page } from 'playwright-core';
import { REPO_ROOT, Workbench } from '../../../scripts/vscode-test/workbench';
import { activeWebview, runCommand, setColorTheme, TEST_TIMEOUT_MS, watchCsp } from '../../../scripts/vscode-test/ui';
import { makeWorkspace, type FixtureWorkspace } from '../fixtures/workspace';
import { trainSmallModel, writeSmallMnist } from '../fixtures/small-mnist';

interface Snapshot {
  model: string;
  epoch: number;
  groups: Array<{ height: number; width: number }>;
  clean: number[][];
  triggered: number[][];
}

let wb: Workbench;
let ws: FixtureWorkspace;
let runDir = '';
let epochs: Snapshot[] = [];
let finalErased: Snapshot;
const QUICK = '.quick-input-widget';
let cspViolations: string[] = [];

/** An erase run by the CLI: 3 NAD epochs with a given teacher, on CIFAR-10 when ../shared has it. */
function makeEraseRun(workspace: string): string {
  const shared = resolve(REPO_ROOT, '..', 'shared');
  const [student, teacher] = ['wrn16-1_badnets-grid_target5.pth.tar', 'wrn16-1_teacher-finetuned.pth.tar'].map((f) =>
    join(shared, 'models', 'nad-reference', f),
  );
  const cifar = join(shared, 'data', 'cifar10-subset');
  const runsDir = join(workspace, '.nad', 'runs');
  let args: string[];
  if ([student, teacher, join(cifar, 'train.bin'), join(cifar, 'test.bin')].every(existsSync)) {
    args = ['--student', student, '--teacher', teacher, '--data', join(cifar, 'train.bin'), '--test', join(cifar, 'test.bin')];
  } else {
    const data = writeSmallMnist(join(workspace, 'data', 'small-mnist'), { train: 200, test: 40 });
    const model = join(trainSmallModel(data, runsDir, 'backdoored', workspace), 'model', 'model.safetensors');
    args = ['--student', model, '--teacher', model, '--data', data];
  }
  const common = ['--clean-count', '64', '--epochs', '3', '--batch-size', '32', '--name', 'erase-by-epoch', '--runs-dir', runsDir];
  const out = spawnSync(process.execPath, [join(REPO_ROOT, 'dist', 'cli.js'), 'erase', ...args, ...common, '--json', '--quiet'], {
    encoding: 'utf8',
    cwd: workspace,
    timeout: 400_000,
  });
  if (out.status !== 0) throw new Error(`nad erase failed (${out.status ?? out.signal}):\n${out.stderr}`);
  return (JSON.parse(out.stdout) as { runDir: string }).runDir;
}

/** A copy of the run under another name (its folder id and config.json's name), changed by `edit`. */
function copyRun(name: string, edit: (dir: string) => void): void {
  const dir = join(dirname(runDir), basename(runDir).replace('erase-by-epoch', name));
  cpSync(runDir, dir, { recursive: true });
  const configFile = join(dir, 'config.json');
  writeFileSync(configFile, JSON.stringify({ ...JSON.parse(readFileSync(configFile, 'utf8')), name }, null, 2));
  edit(dir);
}

before(
  async () => {
    ws = makeWorkspace();
    runDir = makeEraseRun(ws.dir);
    const lines = readFileSync(join(runDir, 'attention', 'epochs.jsonl'), 'utf8')
      .trimEnd()
      .split('\n');
    epochs = lines.map((l) => JSON.parse(l) as Snapshot);
    const maps = JSON.parse(readFileSync(join(runDir, 'attention', 'maps.json'), 'utf8')) as { snapshots: Snapshot[] };
    const erased = maps.snapshots.find((s) => s.model === 'erased');
    assert.ok(erased, 'the erase run has no final maps of the erased model');
    finalErased = erased;
    // A run from before epochs were stored, and one killed while writing its last epoch.
    copyRun('older-run', (dir) => rmSync(join(dir, 'attention', 'epochs.jsonl')));
    copyRun('torn-epochs', (dir) =>
      writeFileSync(join(dir, 'attention', 'epochs.jsonl'), [lines[0], lines[1], lines[2].slice(0, 300)].join('\n')),
    );
    wb = await Workbench.start({ name: 'ui-attention-epochs', workspace: ws.dir, extensionDevelopmentPath: REPO_ROOT });
    cspViolations = watchCsp(wb.page);
  },
  { timeout: 600_000 },
);

after(async () => {
  await wb?.close();
  if (ws) rmSync(ws.dir, { recursive: true, force: true });
});

/** Open the maps of the run named `label` through the palette (retried: a loading webview can take the focus and close the pick). */
async function openMaps(page: Page, label: string): Promise<FrameLocator> {
  for (let attempt = 1; ; attempt++) {
    await runCommand(page, 'NAD: Show Attention Maps');
    const row = page
      .locator(`${QUICK} .quick-input-list .monaco-list-row`)
      .filter({ has: page.locator('.label-name', { hasText: new RegExp(`^${label}$`) }) })
      .first();
    if (
      await row.click({ timeout: 8_000 }).then(
        () => true,
        () => false,
      )
    )
      break;
    if (attempt === 3) throw new Error(`"${label}" was not offered`);
    await page.keyboard.press('Escape');
  }
  const frame = activeWebview(page);
  await frame.locator('figure.panel canvas.map').first().waitFor({ timeout: 30_000 });
  return frame;
}

const erasedCanvas = (frame: FrameLocator) => frame.locator('figure.panel[data-model="erased"] canvas.map');

function pixelsOf(frame: FrameLocator): Promise<string> {
  return erasedCanvas(frame).evaluate((c) => (c as HTMLCanvasElement).toDataURL());
}

/** The erased panel's value under the cursor: "0.01234 at x 4, y 4" -> [value, x, y]. */
async function erasedValue(frame: FrameLocator): Promise<[number, number, number]> {
  const text = await frame.locator('figure.panel[data-model="erased"] .value').innerText();
  const m = /^(-?[\d.]+(?:e-?\d+)?) at x (\d+), y (\d+)$/.exec(text.trim());
  assert.ok(m, `no value under the cursor: "${text}"`);
  return [Number(m[1]), Number(m[2]), Number(m[3])];
}

/** A snapshot's value (triggered image 1, group 1) at a cell. */
function valueOf(s: Snapshot, x: number, y: number): number {
  return s.triggered[0][y * s.groups[0].width + x];
}

const close = (a: number, b: number): boolean => Math.abs(a - b) <= Math.max(1e-9, Math.abs(b) * 6e-3);

async function epochShown(frame: FrameLocator, epoch: number, final = false): Promise<void> {
  const last = epochs[epochs.length - 1].epoch;
  await frame.locator('#epoch-count', { hasText: final ? 'Final maps' : `Epoch ${epoch} of ${last}` }).waitFor({ timeout: 10_000 });
  assert.equal(await frame.locator('#epoch').inputValue(), String(epoch));
  await frame.locator(`figure.panel[data-model="erased"][data-epoch="${final ? -1 : epoch}"]`).waitFor({ timeout: 10_000 });
}

test('the run stored one map snapshot per epoch of the erasure, the last equal to the final maps', () => {
  assert.deepEqual(
    epochs.map((s) => [s.model, s.epoch]),
    [
      ['erased', 1],
      ['erased', 2],
      ['erased', 3],
    ],
  );
  const last = epochs[2];
  assert.deepEqual([last.clean, last.triggered], [finalErased.clean, finalErased.triggered]);
  assert.notDeepEqual(epochs[0].triggered, finalErased.triggered);
});

test(
  'the slider steps the erased model’s maps through the epochs: epoch 1 differs, the last is the final maps',
  { timeout: TEST_TIMEOUT_MS },
  () =>
    wb.step('slider', async () => {
      const page = wb.page;
      await setColorTheme(page, 'Dark Modern');
      const frame = await openMaps(page, 'erase-by-epoch');
      // Opens on the final maps, with the slider at the last epoch.
      await epochShown(frame, 3, true);
      assert.equal(await frame.locator('#epoch').getAttribute('max'), '3');
      // The erased model beside its teacher (the backdoored one hidden), for the screenshots (before
      // reading pixels: the shared colour range spans the models shown).
      await frame.locator('vscode-checkbox', { hasText: 'backdoored' }).click();
      await frame.locator('figure.panel[data-model="backdoored"]').waitFor({ state: 'detached', timeout: 5_000 });
      const finalPixels = await pixelsOf(frame);
      // The keyboard cursor on the erased map gives its value at a cell of group 1.
      await erasedCanvas(frame).focus();
      const [finalValue, x, y] = await erasedValue(frame);
      assert.ok(close(finalValue, valueOf(finalErased, x, y)), `final: shown ${finalValue}, file ${valueOf(finalErased, x, y)}`);

      // Home: epoch 1, whose maps differ from the final ones and are the file's first line.
      await frame.locator('#epoch').focus();
      await page.keyboard.press('Home');
      await epochShown(frame, 1);
      assert.match(await frame.locator('figure.panel[data-model="erased"] h2').innerText(), /erased · epoch 1/);
      assert.notEqual(await pixelsOf(frame), finalPixels, 'epoch 1 draws the same erased map as the final one');
      const [first] = await erasedValue(frame);
      assert.ok(close(first, valueOf(epochs[0], x, y)), `epoch 1: shown ${first}, file ${valueOf(epochs[0], x, y)}`);
      // The other models keep their final maps.
      assert.equal(await frame.locator('figure.panel[data-model="teacher"]').getAttribute('data-epoch'), '-1');
      console.log(`  screenshot: ${await wb.screenshot('ui-attention-epoch1-dark-modern', '.part.editor')}`);

      // ArrowRight: epoch 2; End: the last epoch, drawn exactly as the final maps.
      await page.keyboard.press('ArrowRight');
      await epochShown(frame, 2);
      const [second] = await erasedValue(frame);
      assert.ok(close(second, valueOf(epochs[1], x, y)));
      await page.keyboard.press('End');
      await epochShown(frame, 3);
      assert.equal(await pixelsOf(frame), finalPixels, 'the last epoch does not draw the final maps');
      const [lastValue] = await erasedValue(frame);
      assert.equal(lastValue, finalValue);
    }),
);

test('Play steps from epoch 1 to the last and stops; Pause stops it', { timeout: TEST_TIMEOUT_MS }, () =>
  wb.step('play', async () => {
    const frame = activeWebview(wb.page);
    const play = frame.locator('#epoch-play');
    await play.click();
    await frame.locator('#epoch-count', { hasText: /^Epoch [12] of 3$/ }).waitFor({ timeout: 5_000 });
    assert.equal((await play.innerText()).trim(), '⏸ Pause');
    await epochShown(frame, 3);
    await frame.locator('#epoch-play', { hasText: '▶ Play' }).waitFor({ timeout: 5_000 });
    // Pause as soon as it starts: it stays on the epoch it was at.
    await play.click();
    await play.click();
    await frame.locator('#epoch-play', { hasText: '▶ Play' }).waitFor({ timeout: 5_000 });
    const at = await frame.locator('#epoch').inputValue();
    await wb.page.waitForTimeout(1_500);
    assert.equal(await frame.locator('#epoch').inputValue(), at);
    // Leave it on epoch 2 for the next tests.
    await frame.locator('#epoch').focus();
    await wb.page.keyboard.press('Home');
    await wb.page.keyboard.press('ArrowRight');
    await epochShown(frame, 2);
  }),
);

test('the slider reads well in Light Modern and Dark High Contrast', { timeout: TEST_TIMEOUT_MS }, () =>
  wb.step('themes', async () => {
    const page = wb.page;
    await page.mouse.move(700, 780);
    console.log(`  screenshot: ${await wb.screenshot('ui-attention-epoch2-dark-modern', '.part.editor')}`);
    for (const [theme, file, cls] of [
      ['Light Modern', 'light-modern', /vscode-light/],
      ['Dark High Contrast', 'dark-high-contrast', /vscode-high-contrast/],
    ] as const) {
      await setColorTheme(page, theme);
      assert.match((await activeWebview(page).locator('body').getAttribute('class')) ?? '', cls);
      await epochShown(activeWebview(page), 2);
      console.log(`  screenshot: ${await wb.screenshot(`ui-attention-epoch2-${file}`, '.part.editor')}`);
    }
    await setColorTheme(page, 'Dark Modern');
  }),
);

test('after "Developer: Reload Window" the editor is back on the chosen epoch', { timeout: TEST_TIMEOUT_MS }, () =>
  wb.step('reload', async () => {
    const page = wb.page;
    await runCommand(page, 'Developer: Reload Window');
    await page.waitForSelector('.monaco-workbench', { timeout: 60_000 });
    const frame = activeWebview(page);
    await frame.locator('figure.panel canvas.map').first().waitFor({ timeout: 60_000 });
    await epochShown(frame, 2);
  }),
);

test('a run without stored epochs opens its final maps with no slider', { timeout: TEST_TIMEOUT_MS }, () =>
  wb.step('older run', async () => {
    const frame = await openMaps(wb.page, 'older-run');
    await frame.locator('figure.panel[data-model="erased"][data-epoch="-1"]').waitFor({ timeout: 10_000 });
    assert.equal(await frame.locator('#epoch').count(), 0);
    assert.equal(await frame.locator('.epoch-problem').count(), 0);
  }),
);

test('a torn epochs file names itself and the line; the epochs before it and the final maps still show', { timeout: TEST_TIMEOUT_MS }, () =>
  wb.step('torn file', async () => {
    const frame = await openMaps(wb.page, 'torn-epochs');
    const problem = frame.locator('.epoch-problem');
    await problem.waitFor({ timeout: 10_000 });
    assert.match(
      await problem.innerText(),
      /epochs\.jsonl line 3: cut off \(the run stopped while writing it\)\. The slider shows the epochs that could be read\./,
    );
    assert.equal(await frame.locator('#epoch').getAttribute('max'), '2');
    await epochShown(frame, 2, true);
    await frame.locator('figure.panel[data-model="erased"][data-epoch="-1"]').waitFor({ timeout: 10_000 });
    await wb.page.mouse.move(700, 780);
    console.log(`  screenshot: ${await wb.screenshot('ui-attention-epochs-torn', '.part.editor')}`);
  }),
);

test('the attention editor ran without a Content Security Policy violation', () => {
  assert.deepEqual(cspViolations, []);
});
