// The extension inside a real VS Code: activation, commands, and the Runs view over real run folders.
import * as assert from 'node:assert/strict';
import * as vscode from 'vscode';
import type { NadExtensionApi, RunsNode } from '../../../src/host/history/runs-tree';
import { RunStore } from '../../../src/runs/run-store';
import { FINISHED_ACC, FINISHED_ASR, type FixtureWorkspace } from '../fixtures/workspace';

const EXTENSION_ID = 'nad-vscode.nad-vscode';

function fixture(): FixtureWorkspace {
  const raw = process.env.NAD_TEST_FIXTURE;
  assert.ok(raw, 'NAD_TEST_FIXTURE is not set: run this suite through test/integration/run-vscode.ts');
  return JSON.parse(raw) as FixtureWorkspace;
}

async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function extension(): vscode.Extension<NadExtensionApi> {
  const ext = vscode.extensions.getExtension<NadExtensionApi>(EXTENSION_ID);
  assert.ok(ext, `extension ${EXTENSION_ID} is not loaded`);
  return ext;
}

async function api(): Promise<NadExtensionApi> {
  return extension().activate();
}

function labelOf(node: RunsNode, tree: NadExtensionApi['runs']): string {
  const label = tree.getTreeItem(node).label;
  return typeof label === 'string' ? label : (label?.label ?? '');
}

suite('Extension in a real VS Code', () => {
  test('opens the fixture workspace', () => {
    const folders = vscode.workspace.workspaceFolders ?? [];
    assert.equal(folders.length, 1);
    assert.equal(folders[0].uri.fsPath, fixture().dir);
  });

  test('activates by itself on a workspace with .nad/runs', async () => {
    // No command has run yet: activation must come from the manifest's activation events.
    await until('the extension to activate', () => (extension().isActive ? true : undefined), 15_000);
  });

  test('registers every command its manifest contributes', async () => {
    const contributed = (extension().packageJSON as { contributes?: { commands?: { command: string }[] } }).contributes?.commands ?? [];
    assert.ok(contributed.length >= 2, 'the manifest contributes no commands');
    const registered = new Set(await vscode.commands.getCommands(true));
    const missing = contributed.map((c) => c.command).filter((c) => !registered.has(c));
    assert.deepEqual(missing, [], `contributed but not registered: ${missing.join(', ')}`);
  });

  test('"NAD: Show Experiment History" reveals the Runs view', async () => {
    const { runsView } = await api();
    await vscode.commands.executeCommand('nad.showHistory');
    await until('the Runs view to be visible', () => (runsView.visible ? true : undefined));
  });
});

suite('Runs view', () => {
  test('lists the finished run with its kind, state, ACC and ASR', async () => {
    const { runs } = await api();
    const nodes = runs.getChildren();
    const finished = nodes.find((n) => labelOf(n, runs) === fixture().finishedLabel);
    assert.ok(finished, `no row "${fixture().finishedLabel}" in ${nodes.map((n) => labelOf(n, runs)).join(', ')}`);
    const item = runs.getTreeItem(finished);
    assert.equal(item.description, `erase · finished · ACC ${FINISHED_ACC.toFixed(1)}% · ASR ${FINISHED_ASR.toFixed(1)}%`);
    assert.equal((item.iconPath as vscode.ThemeIcon).id, 'pass');
  });

  test('lists the failed run with an error icon', async () => {
    const { runs } = await api();
    const failed = runs.getChildren().find((n) => labelOf(n, runs) === fixture().failedLabel);
    assert.ok(failed);
    assert.equal((runs.getTreeItem(failed).iconPath as vscode.ThemeIcon).id, 'error');
  });

  test('shows the hand-broken folder with a warning and its problem, not hidden', async () => {
    const { runs } = await api();
    const broken = runs.getChildren().find((n) => n.type === 'broken');
    assert.ok(broken && broken.type === 'broken', 'the broken run folder is not listed');
    assert.equal(broken.broken.id, fixture().brokenId);
    const item = runs.getTreeItem(broken);
    assert.equal((item.iconPath as vscode.ThemeIcon).id, 'warning');
    assert.match(String(item.tooltip), /status\.json: invalid JSON/);
  });

  test('picks up a run folder written by another process, without a refresh', async () => {
    const { runs } = await api();
    const changed = new Promise<void>((resolve) => {
      const sub = runs.onDidChangeTreeData(() => {
        sub.dispose();
        resolve();
      });
    });
    const handle = new RunStore(fixture().dir).create('finetune', { name: 'watcher-probe' }, 'watcher-probe');
    try {
      await Promise.race([
        changed,
        new Promise((_, reject) => setTimeout(() => reject(new Error('the file watcher did not refresh the view within 10 s')), 10_000)),
      ]);
      const probe = runs.getChildren().find((n) => labelOf(n, runs) === 'watcher-probe');
      assert.ok(probe && probe.type === 'run');
      assert.equal(probe.run.status.state, 'running');
      assert.equal((runs.getTreeItem(probe).iconPath as vscode.ThemeIcon).id, 'sync~spin');
    } finally {
      handle.cancel();
      await new RunStore(fixture().dir).delete(handle.id);
    }
  });

  test('"NAD: Refresh Runs" re-reads the folders', async () => {
    const { runs } = await api();
    let fired = 0;
    const sub = runs.onDidChangeTreeData(() => fired++);
    try {
      await vscode.commands.executeCommand('nad.refreshRuns');
      assert.ok(fired >= 1, 'refresh did not fire onDidChangeTreeData');
    } finally {
      sub.dispose();
    }
  });
});
