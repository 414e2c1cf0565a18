// UI: the experiment history as a researcher's table, on real runs made by the `nad` CLI on the embedded
// digits (one backdoored model, NAD erase runs that differ in β and in the clean subset): columns derived
// from the runs' configs, "Only what differs", multi-column sort, the value filter `asr < 10` (and its
// error), a star that survives "Developer: Reload Window" (star.json in the run folder), the column layout
// after the reload, the ASR-against-β plot whose points are the runs' results, and the CSV export (through
// VS Code's save dialog) checked against the run folders. Screenshots of table and plot in three themes.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FrameLocator, Page } from 'playwright-core';
import { RunStore, type RunSummary } from '../../../src/runs/run-store';
import { REPO_ROOT, Workbench } from '../../../scripts/vscode-test/workbench';
import { activeWebview, runCommand, setColorTheme, TEST_TIMEOUT_MS, watchCsp } from '../../../scripts/vscode-test/ui';
import { writeSmallMnist } from '../fixtures/small-mnist';
import { nadRun } from '../fixtures/nad-cli';

let wb: Workbench;
let workspace = '';
let runsDir = '';
let cspViolations: string[] = [];
/** The erase runs: β (all three groups) and the clean subset size. */
const ERASES: ReadonlyArray<readonly [number, number]> = [
  [0, 100],
  [500, 100],
  [5000, 100],
  [5000, 300],
];

/** `nad <args>` on the digits, quietly, in the workspace; the run folder it made. */
function nad(args: readonly string[]): string {
  return nadRun(workspace, runsDir, args);
}

function runs(): RunSummary[] {
  return new RunStore(workspace, runsDir).list().runs;
}
const erases = (): RunSummary[] => runs().filter((r) => r.status.kind === 'erase');
const label = (r: RunSummary): string => String(r.config['name']);
const betas = (r: RunSummary): number[] => (r.config['training'] as { betas: number[] }).betas;

before(
  async () => {
    workspace = mkdtempSync(join(tmpdir(), 'nad-history-columns-'));
    runsDir = join(workspace, '.nad', 'runs');
    const data = writeSmallMnist(join(workspace, 'data'), { train: 60, test: 20 });
    const student = join(
      nad(['train', '--data', data, '--epochs', '1', '--batch-size', '32', '--name', 'backdoored']),
      'model',
      'model.safetensors',
    );
    for (const [beta, clean] of ERASES)
      nad([
        'erase',
        '--data',
        data,
        '--student',
        student,
        '--teacher-epochs',
        '1',
        '--epochs',
        '1',
        '--batch-size',
        '32',
        '--clean-count',
        String(clean),
        '--betas',
        `${beta},${beta},${beta}`,
        '--name',
        `erase-b${beta}-c${clean}`,
      ]);
    wb = await Workbench.start({ name: 'ui-history-columns', workspace, extensionDevelopmentPath: REPO_ROOT });
    cspViolations = watchCsp(wb.page);
  },
  { timeout: 10 * 60_000 },
);

after(async () => {
  await wb?.close();
  if (workspace) rmSync(workspace, { recursive: true, force: true });
});

/** RFC 4180 CSV (quoted fields may hold commas, quotes and line breaks). */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      row.push(field);
      field = '';
    } else if (ch === '\r' && text[i + 1] === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      i++;
    } else field += ch;
  }
  if (field || row.length) rows.push([...row, field]);
  return rows;
}

/** A screenshot of the editor area without the notifications the server shows (forwarded ports...). */
async function shot(name: string): Promise<void> {
  await runCommand(wb.page, 'Notifications: Clear All Notifications');
  await wb.page.mouse.move(700, 790);
  console.log(`  screenshot: ${await wb.screenshot(name, '.part.editor')}`);
}

/** Clicks an export button and answers VS Code's save dialog with `file`; waits for the page to report it saved. */
async function exportTo(frame: FrameLocator, button: string, file: string): Promise<void> {
  const input = wb.page.locator('.quick-input-widget .quick-input-box input');
  await input.waitFor({ state: 'hidden', timeout: 15_000 });
  await frame.locator(button).click();
  await input.waitFor({ state: 'visible', timeout: 15_000 });
  // The dialog opens on the default file name (nad-runs.csv, nad-plot.svg...): answer once it is there.
  const ext = file.slice(file.lastIndexOf('.'));
  for (let i = 0; !(await input.inputValue()).endsWith(ext); i++) {
    assert.ok(i < 100, `the save dialog did not offer a ${ext} file: ${await input.inputValue()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  await input.fill(file);
  await wb.page.keyboard.press('Enter');
  await frame.locator('#exported', { hasText: `Saved ${file}` }).waitFor({ timeout: 15_000 });
}

async function shownNames(frame: FrameLocator): Promise<string[]> {
  return (await frame.locator('#runs tbody th.name button.link').allInnerTexts()).map((t) => t.trim());
}
async function headerIds(frame: FrameLocator): Promise<string[]> {
  return frame.locator('#runs thead th[data-column]').evaluateAll((ths) => ths.map((th) => th.getAttribute('data-column') ?? ''));
}
async function setWhere(frame: FrameLocator, text: string): Promise<void> {
  await frame.locator('#where input').fill(text);
}
async function waitForCount(frame: FrameLocator, n: number, timeout = 10_000): Promise<void> {
  await frame.locator('#status', { hasText: new RegExp(`^${n} of`) }).waitFor({ timeout });
}
async function openTable(page: Page): Promise<FrameLocator> {
  await runCommand(page, 'NAD: Show Experiment History Table');
  const frame = activeWebview(page);
  await frame.locator('#runs tbody tr[data-dir]').first().waitFor({ timeout: 30_000 });
  return frame;
}

/** Each shown run's value in a column, as the cells' data-value (the stored value, not the formatted text). */
async function columnValues(frame: FrameLocator, column: string): Promise<Record<string, string>> {
  const pairs = await frame
    .locator('#runs tbody tr[data-id]')
    .evaluateAll(
      (trs, col) =>
        trs.map((tr) => [tr.getAttribute('data-id') ?? '', tr.querySelector(`td[data-column="${col}"]`)?.getAttribute('data-value') ?? '']),
      column,
    );
  return Object.fromEntries(pairs);
}

test('columns come from the runs: β and the clean subset are columns with the config values', { timeout: TEST_TIMEOUT_MS }, () =>
  wb.step('derived columns', async () => {
    const frame = await openTable(wb.page);
    assert.deepEqual((await shownNames(frame)).sort(), runs().map(label).sort());
    const ids = await headerIds(frame);
    for (const id of ['name', 'asr', 'params.training.betas.0', 'params.training.betas.2', 'params.cleanCount'])
      assert.ok(ids.includes(id), `no column ${id} in ${ids.join(', ')}`);
    assert.ok(!ids.includes('params.seed'), 'the seed is the same in every run: hidden by default');
    const beta = await columnValues(frame, 'params.training.betas.0');
    const clean = await columnValues(frame, 'params.cleanCount');
    for (const r of runs()) {
      assert.equal(beta[r.id], String(betas(r)[0]), `${label(r)}: β`);
      assert.equal(clean[r.id], r.config['cleanCount'] === undefined ? '' : String(r.config['cleanCount']), `${label(r)}: clean count`);
    }
    // Shift-click adds a sort key: clean count ascending, then β descending.
    await frame.locator('th[data-column="params.cleanCount"] button.sort').click();
    await frame.locator('th[data-column="params.cleanCount"] button.sort').click();
    await frame.locator('th[data-column="params.training.betas.0"] button.sort').click({ modifiers: ['Shift'] });
    assert.equal(await frame.locator('th[data-column="params.cleanCount"]').getAttribute('data-sort-index'), '1');
    assert.equal(await frame.locator('th[data-column="params.training.betas.0"]').getAttribute('data-sort-index'), '2');
    assert.equal(await frame.locator('th[data-column="params.cleanCount"]').getAttribute('aria-sort'), 'ascending');
    const expected = [...runs()]
      .sort((a, b) => {
        const ca = a.config['cleanCount'] as number | undefined;
        const cb = b.config['cleanCount'] as number | undefined;
        if (ca !== cb) return ca === undefined ? 1 : cb === undefined ? -1 : ca - cb;
        return betas(b)[0] - betas(a)[0];
      })
      .map(label);
    assert.deepEqual(await shownNames(frame), expected);
    await setColorTheme(wb.page, 'Dark Modern');
    await shot('ui-history-columns-dark-modern');
  }),
);

test(
  '"Only what differs" leaves the parameters that differ among the shown runs; asr < 10 keeps those runs',
  { timeout: TEST_TIMEOUT_MS },
  () =>
    wb.step('only what differs, value filter', async () => {
      const frame = activeWebview(wb.page);
      await setWhere(frame, 'kind = erase');
      await waitForCount(frame, ERASES.length);
      await frame.locator('#only-differing').click();
      const params = (await headerIds(frame)).filter(
        (id) => id.startsWith('params.') || ['dataset', 'trigger', 'target', 'epochs'].includes(id),
      );
      // What differs among the erase runs' config.json files, computed here from the folders.
      const configs = erases().map((r) => r.config);
      const flatten = (v: unknown, key: string, out: Map<string, string>): Map<string, string> => {
        if (key === 'name' || key === 'provenance' || key === 'backendUsed') return out;
        if (Array.isArray(v) && v.length <= 8 && v.every((x) => typeof x !== 'object'))
          v.forEach((x, i) => out.set(`${key}.${i}`, String(x)));
        else if (typeof v === 'object' && v !== null && !Array.isArray(v))
          for (const [k, x] of Object.entries(v)) flatten(x, key ? `${key}.${k}` : k, out);
        else out.set(key, JSON.stringify(v));
        return out;
      };
      const flat = configs.map((c) => flatten(c, '', new Map()));
      const keys = [...new Set(flat.flatMap((f) => [...f.keys()]))];
      const differing = keys.filter((k) => new Set(flat.map((f) => f.get(k))).size > 1).map((k) => `params.${k}`);
      assert.deepEqual([...params].sort(), [...differing].sort());
      assert.deepEqual([...differing].sort(), [
        'params.cleanCount',
        'params.training.betas.0',
        'params.training.betas.1',
        'params.training.betas.2',
      ]);
      await wb.page.mouse.move(700, 790);
      console.log(`  screenshot: ${await wb.screenshot('ui-history-only-differs', '.part.editor')}`);
      await frame.locator('#only-differing').click();

      await setWhere(frame, 'asr <');
      await frame.locator('#where-error', { hasText: /expected a value after “<”/ }).waitFor({ timeout: 5_000 });
      await setWhere(frame, 'asr < 10');
      const low = runs().filter((r) => (r.status.asr ?? Infinity) < 10);
      await waitForCount(frame, low.length);
      assert.ok(
        low.length > 0 && low.length < runs().length,
        `the runs should straddle ASR 10: ${runs()
          .map((r) => r.status.asr)
          .join(', ')}`,
      );
      assert.deepEqual((await shownNames(frame)).sort(), low.map(label).sort());
      assert.equal(await frame.locator('#where-error').innerText(), '');
      await shot('ui-history-filter-asr');
      await setWhere(frame, '');
    }),
);

test('a star and the column layout survive "Developer: Reload Window"', { timeout: 2 * TEST_TIMEOUT_MS }, () =>
  wb.step('star, layout, reload', async () => {
    let frame = activeWebview(wb.page);
    const target = erases().find((r) => betas(r)[0] === 500);
    assert.ok(target);
    const row = (f: FrameLocator) => f.locator(`#runs tbody tr[data-id="${target.id}"]`);
    await row(frame).locator('button.star-toggle').click();
    await row(frame).locator('button.star-toggle[aria-pressed="true"]').waitFor({ timeout: 10_000 });
    assert.ok(existsSync(join(target.dir, 'star.json')), 'star.json in the run folder');
    // Hide the Backend column through the column chooser.
    await frame.locator('#columns-button').click();
    await frame.locator('#column-picker li[data-column="backend"] input').uncheck();
    await frame.locator('#runs thead th[data-column="backend"]').waitFor({ state: 'detached', timeout: 5_000 });
    // Move ASR left of ACC.
    await frame.locator('#column-picker li[data-column="asr"] button.move').first().click();
    let ids = await headerIds(frame);
    assert.ok(ids.indexOf('asr') < ids.indexOf('acc'), ids.join(', '));
    await shot('ui-history-column-picker');
    await frame.locator('#columns-button').click();

    await runCommand(wb.page, 'Developer: Reload Window');
    await wb.page.waitForSelector('.monaco-workbench', { timeout: 60_000 });
    frame = activeWebview(wb.page);
    await row(frame).waitFor({ timeout: 60_000 });
    assert.equal(await row(frame).locator('button.star-toggle').getAttribute('aria-pressed'), 'true');
    ids = await headerIds(frame);
    assert.ok(!ids.includes('backend'), 'Backend stays hidden after the reload');
    assert.ok(ids.indexOf('asr') < ids.indexOf('acc'), 'ASR stays left of ACC after the reload');
    // A page opened anew (no webview state) takes the layout the workspace remembers.
    await runCommand(wb.page, 'View: Close Editor');
    frame = await openTable(wb.page);
    ids = await headerIds(frame);
    assert.ok(!ids.includes('backend') && ids.indexOf('asr') < ids.indexOf('acc'), `layout after reopening: ${ids.join(', ')}`);
    await frame.locator('#starred-only').click();
    await waitForCount(frame, 1);
    assert.deepEqual(await shownNames(frame), [label(target)]);
    await frame.locator('#starred-only').click();
    await waitForCount(frame, runs().length);
  }),
);

test('the ASR-against-β plot shows one point per run, equal to its results', { timeout: TEST_TIMEOUT_MS }, () =>
  wb.step('plot', async () => {
    const frame = activeWebview(wb.page);
    await setWhere(frame, 'kind = erase');
    await waitForCount(frame, ERASES.length);
    await frame.locator('#plot-y').selectOption('asr');
    await frame.locator('#plot-x').selectOption('params.training.betas.0');
    await frame
      .locator('#plot-data tbody tr')
      .nth(ERASES.length - 1)
      .waitFor({ state: 'attached', timeout: 10_000 });
    const points = await frame
      .locator('#plot-data tbody tr')
      .evaluateAll((trs) =>
        trs.map((tr) => [tr.getAttribute('data-id'), Number(tr.getAttribute('data-x')), Number(tr.getAttribute('data-y'))] as const),
      );
    const expected = erases().map((r) => [r.id, betas(r)[0], r.status.asr] as const);
    assert.deepEqual([...points].sort(), [...expected].sort());
    assert.equal(await frame.locator('#plot canvas').count(), 1);
    // Each run keeps its colour on Compare Runs.
    const swatches = async (f: FrameLocator, rows: string): Promise<Record<string, string>> =>
      Object.fromEntries(
        await f
          .locator(rows)
          .evaluateAll((trs) =>
            trs.map((tr) => [tr.textContent?.trim() ?? '', (tr.querySelector('.swatch') as HTMLElement).style.background]),
          ),
      );
    const plotColours = await swatches(frame, '#plot-data tbody th');
    assert.equal(new Set(Object.values(plotColours)).size, ERASES.length, `a colour per run: ${JSON.stringify(plotColours)}`);
    for (const name of ['erase-b0-c100', 'erase-b5000-c300'])
      await frame
        .locator('#runs tr', { has: frame.locator('button.link', { hasText: new RegExp(`^${name}$`) }) })
        .locator('vscode-checkbox')
        .click();
    await frame.locator('#compare').click();
    const compare = activeWebview(wb.page);
    await compare.locator('#results tbody tr').nth(1).waitFor({ timeout: 30_000 });
    const compareColours = await swatches(compare, '#results tbody th');
    assert.deepEqual(compareColours, {
      'erase-b0-c100': plotColours['erase-b0-c100'],
      'erase-b5000-c300': plotColours['erase-b5000-c300'],
    });
    await runCommand(wb.page, 'View: Close Editor');
    await frame
      .locator('#plot-data tbody tr')
      .nth(ERASES.length - 1)
      .waitFor({ state: 'attached', timeout: 30_000 });
    for (const [theme, file] of [
      ['Dark Modern', 'dark-modern'],
      ['Light Modern', 'light-modern'],
      ['Dark High Contrast', 'dark-high-contrast'],
    ] as const) {
      await setColorTheme(wb.page, theme);
      await frame.locator('#plot').evaluate((el) => el.scrollIntoView({ block: 'end' }));
      await shot(`ui-history-plot-${file}`);
      await frame.locator('body').evaluate(() => window.scrollTo(0, 0));
      await shot(`ui-history-table-${file}`);
    }
    await setColorTheme(wb.page, 'Dark Modern');
  }),
);

test('"Export CSV" saves the shown runs through the save dialog; the file matches the run folders', { timeout: TEST_TIMEOUT_MS }, () =>
  wb.step('export', async () => {
    const frame = activeWebview(wb.page);
    const file = join(workspace, 'exported-runs.csv');
    await exportTo(frame, '#export-csv', file);
    const [head, ...lines] = parseCsv(readFileSync(file, 'utf8'));
    const at = (name: string): number => head.indexOf(name);
    for (const col of ['id', 'asr', 'acc', 'params.training.betas.0', 'params.cleanCount'])
      assert.ok(at(col) >= 0, `no ${col} in ${head.join(',')}`);
    const byId = new Map(erases().map((r) => [r.id, r]));
    assert.equal(lines.length, byId.size, 'one line per shown (erase) run');
    for (const cells of lines) {
      assert.equal(cells.length, head.length);
      const run = byId.get(cells[at('id')]);
      assert.ok(run, `unknown run ${cells[at('id')]}`);
      assert.equal(Number(cells[at('asr')]), run.status.asr);
      assert.equal(Number(cells[at('acc')]), run.status.acc);
      assert.equal(Number(cells[at('params.training.betas.0')]), betas(run)[0]);
      assert.equal(Number(cells[at('params.cleanCount')]), run.config['cleanCount']);
    }
    // The plot as SVG (a circle per run at its β and ASR) and as PNG.
    const svgFile = join(workspace, 'asr-vs-beta.svg');
    await exportTo(frame, '#plot-svg', svgFile);
    const svg = readFileSync(svgFile, 'utf8');
    const circles = [...svg.matchAll(/<circle [^>]*data-x="([^"]+)" data-y="([^"]+)"/g)].map((m) => [Number(m[1]), Number(m[2])]);
    assert.deepEqual(
      circles.sort(),
      erases()
        .map((r) => [betas(r)[0], r.status.asr])
        .sort(),
    );
    const pngFile = join(workspace, 'asr-vs-beta.png');
    await exportTo(frame, '#plot-png', pngFile);
    const png = readFileSync(pngFile);
    assert.equal(png.subarray(0, 8).toString('hex'), '89504e470d0a1a0a');
    assert.ok(png.readUInt32BE(16) > 300 && png.readUInt32BE(20) > 200, 'a plot-sized image');
  }),
);

test('200 runs: the table draws in well under a second', { timeout: TEST_TIMEOUT_MS }, () =>
  wb.step('200 runs', async () => {
    const frame = activeWebview(wb.page);
    await setWhere(frame, '');
    const store = new RunStore(workspace, runsDir);
    const template = erases()[0];
    for (let i = runs().length; i < 200; i++) {
      const run = store.create(
        'erase',
        { ...template.config, name: `synthetic-${i}`, training: { ...(template.config['training'] as object), betas: [i, i, i] } },
        `synthetic-${i}`,
      );
      run.finish({ acc: 50 + (i % 40), asr: i % 100 });
    }
    await frame.locator('#refresh').click();
    // The Runs view's watcher sees 200 new folders: the page is sent the runs again as they settle.
    await waitForCount(frame, 200, 60_000);
    const times: number[] = [];
    for (let k = 0; k < 3; k++) {
      await frame.locator('th[data-column="asr"] button.sort').click();
      times.push(Number(await frame.locator('#runs').getAttribute('data-render-ms')));
    }
    console.log(`  200 runs: table drawn in ${times.map((t) => t.toFixed(1)).join(', ')} ms (sort clicks)`);
    assert.ok(Math.max(...times) < 1000, times.join(', '));
  }),
);

test('the history page ran without a Content Security Policy violation', () => {
  assert.deepEqual(cspViolations, []);
});
