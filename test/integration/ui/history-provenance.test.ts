// UI: provenance in the experiment history. Real runs made by the `nad` CLI on small digits (a training run,
// a finetune given 60 of the 300 images by count, one given the same share by ratio) beside a run folder
// as an older version wrote it (no provenance, no recorded data size). The provenance columns are hidden
// until chosen in the column picker; then the old run reads "unknown" in each, the new ones their recorded
// versions and shortened hashes (full in the tooltip); the value filter finds runs by backend, Node and
// an abbreviated data hash; "Clean share" is 20% for both new finetunes and "unknown" for the old one.
// Screenshots in three themes.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FrameLocator } from 'playwright-core';
import { PROVENANCE_COLUMNS } from '../../../src/shared/history-columns';
import { RunStore, type RunSummary } from '../../../src/runs/run-store';
import { REPO_ROOT, Workbench } from '../../../scripts/vscode-test/workbench';
import { activeWebview, runCommand, setColorTheme, TEST_TIMEOUT_MS, watchCsp } from '../../../scripts/vscode-test/ui';
import { writeSmallMnist } from '../fixtures/small-mnist';
import { nadRun } from '../fixtures/nad-cli';

let wb: Workbench;
let workspace = '';
let runsDir = '';
let cspViolations: string[] = [];
const OLD = 'made-by-0.0.1';

/** `nad <args>` on the digits, quietly, in the workspace; the run folder it made. */
function nad(args: readonly string[]): string {
  return nadRun(workspace, runsDir, args);
}

const runs = (): RunSummary[] => new RunStore(workspace, runsDir).list().runs;
const byName = (name: string): RunSummary => {
  const run = runs().find((r) => r.config['name'] === name);
  assert.ok(run, `no run ${name}`);
  return run;
};
const provenance = (name: string): Record<string, unknown> => byName(name).config['provenance'] as Record<string, unknown>;

before(
  async () => {
    workspace = mkdtempSync(join(tmpdir(), 'nad-history-provenance-'));
    runsDir = join(workspace, '.nad', 'runs');
    const data = writeSmallMnist(join(workspace, 'data'), { train: 30, test: 10 });
    // On wasm, which every platform has (auto picks native where its addon loads): the filters below name it.
    const common = ['--data', data, '--epochs', '1', '--batch-size', '32', '--backend', 'wasm'];
    const model = join(nad(['train', ...common, '--name', 'trained']), 'model', 'model.safetensors');
    nad(['finetune', ...common, '--model', model, '--clean-count', '60', '--name', 'finetune-count']);
    nad(['finetune', ...common, '--model', model, '--clean-ratio', '0.2', '--name', 'finetune-ratio']);
    // The same finetune as an older version recorded it: no provenance, no backendUsed, no data size.
    const { provenance: _p, backendUsed: _b, ...config } = byName('finetune-count').config;
    const old = new RunStore(workspace, runsDir).create('finetune', { ...config, name: OLD }, OLD);
    old.update({ backend: 'cpu' });
    old.finish({ acc: 70, asr: 4 });
    wb = await Workbench.start({ name: 'ui-history-provenance', workspace, extensionDevelopmentPath: REPO_ROOT });
    cspViolations = watchCsp(wb.page);
  },
  { timeout: 10 * 60_000 },
);

after(async () => {
  await wb?.close();
  if (workspace) rmSync(workspace, { recursive: true, force: true });
});

async function shot(name: string): Promise<void> {
  await runCommand(wb.page, 'Notifications: Clear All Notifications');
  await wb.page.mouse.move(700, 790);
  console.log(`  screenshot: ${await wb.screenshot(name, '.part.editor')}`);
}
async function shownNames(frame: FrameLocator): Promise<string[]> {
  return (await frame.locator('#runs tbody th.name button.link').allInnerTexts()).map((t) => t.trim()).sort();
}
async function headerIds(frame: FrameLocator): Promise<string[]> {
  return frame.locator('#runs thead th[data-column]').evaluateAll((ths) => ths.map((th) => th.getAttribute('data-column') ?? ''));
}
/** A run's cell in a column: its text and tooltip. */
async function cell(frame: FrameLocator, name: string, column: string): Promise<{ text: string; title: string }> {
  const td = frame
    .locator('#runs tbody tr', { has: frame.locator('button.link', { hasText: new RegExp(`^${name}$`) }) })
    .locator(`td[data-column="${column}"]`);
  return { text: (await td.innerText()).trim(), title: (await td.getAttribute('title')) ?? '' };
}
async function filterBy(frame: FrameLocator, where: string, expected: readonly string[]): Promise<void> {
  await frame.locator('#where input').fill(where);
  await frame.locator('#status', { hasText: new RegExp(`^${expected.length} of`) }).waitFor({ timeout: 10_000 });
  assert.equal(await frame.locator('#where-error').innerText(), '', where);
  assert.deepEqual(await shownNames(frame), [...expected].sort(), where);
}

test('provenance columns are hidden until chosen; "Clean share" is the same for a count and a ratio', { timeout: TEST_TIMEOUT_MS }, () =>
  wb.step('defaults, clean share', async () => {
    await runCommand(wb.page, 'NAD: Show Experiment History Table');
    const frame = activeWebview(wb.page);
    await frame.locator('#runs tbody tr[data-dir]').nth(3).waitFor({ timeout: 30_000 });
    const ids = await headerIds(frame);
    assert.ok(ids.includes('cleanShare'), ids.join(', '));
    assert.ok(!ids.some((id) => id.startsWith('provenance.')), `provenance shown by default: ${ids.join(', ')}`);
    assert.equal(byName('finetune-count').status.cleanImages, 60);
    assert.equal(byName('finetune-count').status.dataImages, 300);
    assert.deepEqual(await cell(frame, 'finetune-count', 'cleanShare'), { text: '20.0%', title: '60 of 300 images (cleanCount 60)' });
    assert.deepEqual(await cell(frame, 'finetune-ratio', 'cleanShare'), { text: '20.0%', title: '60 of 300 images (cleanRatio 0.2)' });
    assert.equal((await cell(frame, OLD, 'cleanShare')).text, 'unknown');
    assert.equal((await cell(frame, 'trained', 'cleanShare')).text, '–');
  }),
);

test(
  'chosen in the picker, the provenance columns show versions, short hashes and "unknown" for the old run',
  { timeout: TEST_TIMEOUT_MS },
  () =>
    wb.step('provenance columns', async () => {
      const frame = activeWebview(wb.page);
      await frame.locator('#columns-button').click();
      const group = frame.locator('#column-picker fieldset[data-group="provenance"]');
      assert.match(await group.locator('legend').innerText(), /Provenance.*\(7\)/);
      for (const c of PROVENANCE_COLUMNS) await group.locator(`li[data-column="${c.id}"] input[type="checkbox"]`).check();
      await frame.locator('#columns-button').click();
      const ids = await headerIds(frame);
      for (const c of PROVENANCE_COLUMNS) assert.ok(ids.includes(c.id), `no column ${c.id} in ${ids.join(', ')}`);
      for (const c of PROVENANCE_COLUMNS) assert.equal((await cell(frame, OLD, c.id)).text, 'unknown', c.id);
      const p = provenance('finetune-count');
      for (const key of ['version', 'node', 'tfjs', 'kernels'])
        assert.equal((await cell(frame, 'finetune-count', `provenance.${key}`)).text, p[key], key);
      const inputs = p['inputs'] as Array<{ role: string; sha256: string }>;
      const data = inputs.find((i) => i.role === 'data')?.sha256 ?? '';
      const model = inputs.find((i) => i.role === 'model')?.sha256 ?? '';
      assert.match(data, /^[0-9a-f]{64}$/);
      const dataCell = await cell(frame, 'finetune-count', 'provenance.data_sha256');
      assert.equal(dataCell.text, data.slice(0, 12));
      assert.ok(dataCell.title.includes(data), dataCell.title);
      assert.equal((await cell(frame, 'finetune-ratio', 'provenance.checkpoint_sha256')).text, model.slice(0, 12));
      assert.equal((await cell(frame, 'trained', 'provenance.checkpoint_sha256')).text, '–', 'a training run reads no checkpoint');
      const body = await frame.locator('#runs tbody').innerText();
      assert.doesNotMatch(body, /undefined/);
      await setColorTheme(wb.page, 'Dark Modern');
      await frame.locator('.table-wrap').evaluate((el) => (el.scrollLeft = el.scrollWidth));
      await shot('ui-history-provenance-dark-modern');
    }),
);

test('the value filter finds runs by backend, Node and an abbreviated data hash', { timeout: TEST_TIMEOUT_MS }, () =>
  wb.step('provenance filters', async () => {
    const frame = activeWebview(wb.page);
    const fresh = ['trained', 'finetune-count', 'finetune-ratio'];
    await filterBy(frame, 'backend = wasm', fresh);
    await filterBy(frame, 'node = unknown', [OLD]);
    await filterBy(frame, `node = ${process.version} and engine ~ wasm`, fresh);
    const data = (await cell(frame, 'trained', 'provenance.data_sha256')).text;
    await filterBy(frame, `data_sha256 = ${data}`, fresh);
    await filterBy(frame, 'checkpoint_sha256 = unknown or cleanShare = 20', [OLD, 'finetune-count', 'finetune-ratio']);
    await filterBy(frame, 'kernels ^= 0x', []);
    await frame.locator('#where input').fill('tfjs');
    await frame.locator('#where-error', { hasText: /\^=/ }).waitFor({ timeout: 5_000 });
    await filterBy(frame, 'node = unknown or backend = wasm', [OLD, ...fresh]);
    await frame.locator('.table-wrap').evaluate((el) => (el.scrollLeft = el.scrollWidth));
    for (const [theme, file] of [
      ['Light Modern', 'light-modern'],
      ['Dark High Contrast', 'dark-high-contrast'],
    ] as const) {
      await setColorTheme(wb.page, theme);
      await shot(`ui-history-provenance-${file}`);
    }
    await setColorTheme(wb.page, 'Dark Modern');
  }),
);

test('"Only what differs" keeps the provenance columns that differ among the shown runs', { timeout: TEST_TIMEOUT_MS }, () =>
  wb.step('only what differs', async () => {
    const frame = activeWebview(wb.page);
    await filterBy(frame, 'kind = finetune and backend = wasm', ['finetune-count', 'finetune-ratio']);
    await frame.locator('#only-differing').click();
    await frame.locator('#runs thead th[data-column="provenance.node"]').waitFor({ state: 'detached', timeout: 5_000 });
    const shownProvenance = (await headerIds(frame)).filter((id) => id.startsWith('provenance.'));
    assert.deepEqual(shownProvenance, [], 'both finetunes share their whole provenance');
    await filterBy(frame, 'backend = wasm', ['trained', 'finetune-count', 'finetune-ratio']);
    await frame.locator('#runs thead th[data-column="provenance.checkpoint_sha256"]').waitFor({ timeout: 5_000 });
    assert.deepEqual(
      (await headerIds(frame)).filter((id) => id.startsWith('provenance.')),
      ['provenance.checkpoint_sha256'],
    );
    await frame.locator('#only-differing').click();
  }),
);

test('the history page ran without a Content Security Policy violation', () => {
  assert.deepEqual(cspViolations, []);
});
