// The attention-maps editor inside a real VS Code, on a maps.json the engine wrote (nad CLI): the file's
// checks, "NAD: Show Attention Maps" on a run, maps.json opening in the editor by default, and a
// hand-broken file shown as a message and left untouched.
import * as assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as vscode from 'vscode';
import type { NadApi } from '../../../src/host/api';
import type { AttentionEditorState } from '../../../src/host/attention/editor';
import { parseAttentionMaps } from '../../../src/host/attention/maps-file';
import type { ReviewApi } from '../../../src/host/api';
import { RunStore } from '../../../src/runs/run-store';
import { makeAttentionRun, type AttentionFixture } from '../fixtures/attention-runs';
import type { FixtureWorkspace } from '../fixtures/workspace';

const EXTENSION_ID = 'nad-vscode.nad-vscode';
const ws = (): string => (JSON.parse(process.env.NAD_TEST_FIXTURE ?? '{}') as FixtureWorkspace).dir;

function extension(): vscode.Extension<NadApi & ReviewApi> {
  const ext = vscode.extensions.getExtension<NadApi & ReviewApi>(EXTENSION_ID);
  assert.ok(ext, `extension ${EXTENSION_ID} is not loaded`);
  return ext;
}

async function until<T>(what: string, probe: () => T | undefined, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function activeCustomEditor(): vscode.TabInputCustom | undefined {
  const input = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
  return input instanceof vscode.TabInputCustom ? input : undefined;
}

async function editorState(uri: vscode.Uri): Promise<AttentionEditorState> {
  const { attention } = await extension().activate();
  return until(`the attention editor of ${uri.fsPath} to report`, () => attention.stateOf(uri));
}

suite('Attention maps editor', () => {
  let fx: AttentionFixture;
  let text: string;

  suiteSetup(function () {
    this.timeout(240_000);
    fx = makeAttentionRun(ws(), extension().extensionPath, 'suite-attention');
    text = readFileSync(fx.mapsFile, 'utf8');
  });

  teardown(() => vscode.commands.executeCommand('workbench.action.closeAllEditors'));

  test('accepts the maps.json the engine wrote', () => {
    const parsed = parseAttentionMaps(text);
    assert.ok('maps' in parsed, 'problem' in parsed ? parsed.problem : '');
    assert.deepEqual(
      parsed.maps.snapshots.map((s) => s.model),
      [...fx.models],
    );
    assert.equal(parsed.maps.snapshots[0].groups.length, 3);
  });

  test('names the field and the problem of a hand-edited maps.json', () => {
    const raw = JSON.parse(text) as Record<string, unknown> & {
      snapshots: Array<Record<string, unknown>>;
      image: Record<string, unknown>;
      images: Record<string, string[]>;
    };
    const edit = (f: (m: typeof raw) => void): string => {
      const m = JSON.parse(text) as typeof raw;
      f(m);
      return JSON.stringify(m);
    };
    const problemOf = (t: string): string => {
      const p = parseAttentionMaps(t);
      assert.ok('problem' in p, 'a broken file was accepted');
      return p.problem;
    };
    assert.match(problemOf(text.slice(0, 500)), /not valid JSON/);
    assert.match(problemOf(edit((m) => (m.version = 7))), /version 7 is not one this extension reads/);
    assert.match(problemOf(edit((m) => (m.image.channels = 4))), /image\.channels must be 1 or 3, got 4/);
    assert.match(problemOf(edit((m) => (m.images.clean[1] = 'AAAA'))), /images\.clean\[1\] holds 3 bytes, expected \d+/);
    assert.match(problemOf(edit((m) => (m.snapshots[0].count = 99))), /snapshots\[0\]\.count is 99 but the file has \d+ images/);
    // The last snapshot: the MNIST fallback (no ../shared, as in a user's clone) writes one model, CIFAR two.
    const last = raw.snapshots.length - 1;
    assert.match(
      problemOf(edit((m) => ((m.snapshots[last].clean as number[][])[0][5] = Number.NaN))),
      new RegExp(`snapshots\\[${last}\\]\\.clean\\[0\\]\\[5\\] is not a finite number`),
    );
    assert.match(problemOf(edit((m) => (m.snapshots = []))), /snapshots must list at least one model/);
    assert.equal(raw.version, 1);
  });

  test('"NAD: Show Attention Maps" on a run opens its maps.json in the editor, every model drawn', async () => {
    await vscode.commands.executeCommand('nad.showAttentionMaps', fx.runDir);
    const input = await until('the attention editor tab', activeCustomEditor);
    assert.equal(input.viewType, 'nad.attentionMaps');
    assert.equal(input.uri.fsPath, fx.mapsFile);
    const state = await editorState(input.uri);
    assert.ok('rendered' in state, `the editor shows a problem: ${'problem' in state ? state.problem : ''}`);
    assert.deepEqual(
      state.rendered.panels.map((p) => p.model),
      [...fx.models],
    );
    for (const p of state.rendered.panels) assert.ok(p.min < p.max, `${p.model}: empty colour range`);
    // Same colour range for all models by default, so that they compare fairly.
    assert.equal(new Set(state.rendered.panels.map((p) => `${p.min}:${p.max}`)).size, 1);
  });

  test('a maps.json opened from the Explorer uses the attention editor by default', async () => {
    const uri = vscode.Uri.file(fx.mapsFile);
    await vscode.commands.executeCommand('vscode.open', uri);
    const input = await until('the attention editor tab', activeCustomEditor);
    assert.equal(input.viewType, 'nad.attentionMaps');
    assert.ok('rendered' in (await editorState(uri)));
  });

  test('a hand-broken maps.json shows its problem in the editor and is not changed', async () => {
    const run = new RunStore(ws()).create('attention', { name: 'suite-broken-maps' }, 'suite-broken-maps');
    run.finish({});
    const file = join(run.dir, 'attention', 'maps.json');
    mkdirSync(join(run.dir, 'attention'), { recursive: true });
    const broken = text.replace('"version":1', '"version":"one"');
    writeFileSync(file, broken);
    await vscode.commands.executeCommand('nad.showAttentionMaps', run.dir);
    const state = await editorState(vscode.Uri.file(file));
    assert.ok('problem' in state, 'the broken file was drawn');
    assert.match(state.problem, /version "one" is not one this extension reads/);
    assert.equal(readFileSync(file, 'utf8'), broken);
  });

  test('the editor follows the file: fixed on disk, it draws again', async function () {
    // The file watcher's event can take seconds on a loaded machine (one CI run timed out at 20 s).
    this.timeout(90_000);
    const run = new RunStore(ws()).create('attention', { name: 'suite-fixed-maps' }, 'suite-fixed-maps');
    run.finish({});
    const file = join(run.dir, 'attention', 'maps.json');
    mkdirSync(join(run.dir, 'attention'), { recursive: true });
    writeFileSync(file, '{');
    const uri = vscode.Uri.file(file);
    await vscode.commands.executeCommand('nad.showAttentionMaps', uri);
    assert.ok('problem' in (await editorState(uri)));
    writeFileSync(file, text);
    const { attention } = await extension().activate();
    await until(
      'the editor to draw the fixed file',
      () => {
        const s = attention.stateOf(uri);
        return s && 'rendered' in s ? s : undefined;
      },
      80_000,
    );
  });
});
