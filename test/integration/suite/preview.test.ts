// "NAD: Preview Attack" in a real VS Code: a train config from the Explorer runs in a worker, the preview page
// draws the trigger gallery (clean | poisoned | difference for 4 training images, then 4 test images), nothing
// is written to the runs folder, and a config of another kind is refused with a message.
import * as assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as vscode from 'vscode';
import type { NadApi, ReviewApi } from '../../../src/host/api';
import type { PreviewPage } from '../../../src/host/preview/page';
import type { FixtureWorkspace } from '../fixtures/workspace';
import { writeSmallMnist } from '../fixtures/small-mnist';

const EXTENSION_ID = 'nad-vscode.nad-vscode';
const ws = (): string => (JSON.parse(process.env.NAD_TEST_FIXTURE ?? '{}') as FixtureWorkspace).dir;

async function api(): Promise<NadApi & ReviewApi> {
  const ext = vscode.extensions.getExtension<NadApi & ReviewApi>(EXTENSION_ID);
  assert.ok(ext, `extension ${EXTENSION_ID} is not loaded`);
  return ext.activate();
}

const runCount = (): number => {
  const dir = join(ws(), '.nad', 'runs');
  return existsSync(dir) ? readdirSync(dir).length : 0;
};

suite('Attack preview', () => {
  suiteSetup(() => {
    writeSmallMnist(join(ws(), 'data', 'preview-mnist'), {
      train: 60,
      test: 20,
      repoRoot: vscode.extensions.getExtension(EXTENSION_ID)?.extensionPath,
    });
    mkdirSync(join(ws(), 'configs'), { recursive: true });
  });

  suiteTeardown(async () => {
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  });

  test('a train config previews its attack: the gallery is drawn and no run folder is made', async function () {
    this.timeout(120_000);
    const a = await api();
    const file = join(ws(), 'configs', 'preview-blend.nad.json');
    writeFileSync(
      file,
      JSON.stringify({
        kind: 'train',
        name: 'preview-blend',
        data: '../data/preview-mnist',
        attack: { name: 'blend', params: {} },
        backdoor: { targetLabel: 1, injectPortion: 0.2 },
        training: { epochs: 1 },
      }),
    );
    const before = runCount();
    const page = (await vscode.commands.executeCommand('nad.previewAttack', vscode.Uri.file(file))) as PreviewPage | undefined;
    assert.ok(page, 'no preview page');
    assert.equal(a.previews.latest(), page);
    const end = await page.ended;
    assert.equal(end.status, 'done', end.error);
    assert.match(end.summary ?? '', /\d+ of 600 sampled training images poisoned \(relabelled to 1\)/);
    const shown = await page.probe();
    assert.equal(shown.status, 'done');
    assert.equal(shown.images, 2 * 4 * 3, shown.captions.join(' / '));
    assert.match(shown.captions[0], /^#\d+ clean: /);
    assert.equal(shown.captions[1], 'poisoned, label 1');
    assert.match(shown.captions[2], /^difference x\d/);
    assert.match(shown.captions[13], /^with the trigger \(target 1\)$/);
    assert.equal(runCount(), before, 'a preview wrote to the runs folder');
  });

  test('a config of another kind is refused, naming the file', async function () {
    this.timeout(30_000);
    const file = join(ws(), 'configs', 'preview-eval.nad.json');
    writeFileSync(file, JSON.stringify({ kind: 'eval', name: 'x', model: 'm.safetensors', data: 'mnist' }));
    const page = await vscode.commands.executeCommand('nad.previewAttack', vscode.Uri.file(file));
    assert.equal(page, undefined);
  });
});
