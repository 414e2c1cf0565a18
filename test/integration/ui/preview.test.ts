// UI: "NAD: Preview Attack…" from the palette: the Train wizard's attack questions (WaNet, its parameters with
// their defaults, target and share), then the preview page in an editor tab draws the trigger gallery (clean |
// poisoned | amplified difference, for training and test images); screenshots in three themes; no CSP
// violation; nothing is written to the runs folder.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
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
import { makeWorkspace, type FixtureWorkspace } from '../fixtures/workspace';
import { writeSmallMnist } from '../fixtures/small-mnist';

let wb: Workbench;
let ws: FixtureWorkspace;
let cspViolations: string[] = [];

before(
  async () => {
    ws = makeWorkspace();
    writeSmallMnist(join(ws.dir, 'data', 'small-mnist'), { train: 300, test: 50 });
    wb = await Workbench.start({ name: 'ui-preview', workspace: ws.dir, extensionDevelopmentPath: REPO_ROOT });
    cspViolations = watchCsp(wb.page);
  },
  { timeout: TEST_TIMEOUT_MS },
);

after(async () => {
  await wb?.close();
  if (ws) rmSync(ws.dir, { recursive: true, force: true });
});

test('"NAD: Preview Attack…" asks the attack\'s questions and draws the WaNet gallery', { timeout: 240_000 }, () =>
  wb.step('preview wizard', async () => {
    const page = wb.page;
    const runsDir = join(ws.dir, '.nad', 'runs');
    const runs = (): number => (existsSync(runsDir) ? readdirSync(runsDir).length : 0);
    const before = runs();
    await setColorTheme(page, 'Dark Modern');
    await runCommand(page, 'NAD: Preview Attack…');
    await waitForQuestion(page, /Data to poison/);
    await pickItem(page, 'small-mnist');
    await waitForQuestion(page, /Attack to preview/);
    await pickItem(page, 'WaNet');
    assert.equal(await answerInput(page, /Control grid size k/), '4');
    assert.equal(await answerInput(page, /Warp strength s/), '0.5');
    await answerInput(page, /Grid rescale/);
    await answerInput(page, /Noise-mode ratio/);
    await waitForQuestion(page, /Warp anew every epoch/);
    await pickItem(page, /^No$/);
    await answerInput(page, /Warp seed/);
    await answerInput(page, /Target label/, '3');
    await answerInput(page, /Share of training images poisoned/);

    const frame = activeWebview(page);
    await frame.locator('.state', { hasText: /Done|Failed/ }).waitFor({ timeout: 120_000 });
    assert.equal(
      (await frame.locator('.state').innerText()).trim(),
      'Done',
      await frame
        .locator('.error')
        .allInnerTexts()
        .then((t) => t.join(' ')),
    );
    assert.equal(await frame.locator('canvas.figure-image').count(), 24);
    const captions = await frame.locator('.image-caption').allInnerTexts();
    assert.match(captions[0], /^#\d+ clean: /);
    assert.match(captions[1], /^poisoned, label (kept: \d|3)$/);
    assert.match(captions[2], /^difference x\d/);
    assert.match(captions[13], /^with the trigger \(target 3\)$/);
    assert.match(
      await frame.locator('.summary').innerText(),
      /^A smooth random warp .* \d+ of 1000 sampled training images poisoned \(relabelled to 3\)/,
    );
    assert.equal(runs(), before, 'a preview made a run');
    for (const [theme, file] of [
      ['Dark Modern', 'dark-modern'],
      ['Light Modern', 'light-modern'],
      ['Dark High Contrast', 'dark-high-contrast'],
    ] as const) {
      await setColorTheme(page, theme);
      await activeWebview(page).locator('canvas.figure-image').first().waitFor({ timeout: 10_000 });
      console.log(`  screenshot: ${await wb.screenshot(`ui-preview-${file}`, '.part.editor')}`);
    }
    await setColorTheme(page, 'Dark Modern');
    assert.deepEqual(cspViolations, []);
  }),
);
