// Attack x defense matrices in a real VS Code: "NAD: Run Matrix File" runs a *.nad-matrix.json through the
// worker, the matrix page opens and fills in as the cells finish, its table equals the runs' own numbers,
// and "NAD: Open Matrix" reopens it. Data: a small MNIST in IDX files, so each cell takes seconds.
import * as assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as vscode from 'vscode';
import type { NadApi, ReviewApi } from '../../../src/host/api';
import type { MatrixRendered } from '../../../src/host/matrix/page';
import type { RunTask } from '../../../src/host/runs/manager';
import type { FixtureWorkspace } from '../fixtures/workspace';
import { writeSmallMnist } from '../fixtures/small-mnist';

const EXTENSION_ID = 'nad-vscode.nad-vscode';
const ws = (): string => (JSON.parse(process.env.NAD_TEST_FIXTURE ?? '{}') as FixtureWorkspace).dir;

async function api(): Promise<NadApi & ReviewApi> {
  const ext = vscode.extensions.getExtension<NadApi & ReviewApi>(EXTENSION_ID);
  assert.ok(ext, `extension ${EXTENSION_ID} is not loaded`);
  return ext.activate();
}

async function until<T>(
  what: string,
  probe: () => T | undefined | Promise<T | undefined>,
  timeoutMs: number,
  seen: () => string = () => '',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}${seen() ? `; last seen: ${seen()}` : ''}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

suite('Attack x defense matrices', () => {
  let matrixDir: string | undefined;

  suiteSetup(() => {
    writeSmallMnist(join(ws(), 'data', 'matrix-mnist'), {
      train: 60,
      test: 20,
      repoRoot: vscode.extensions.getExtension(EXTENSION_ID)?.extensionPath,
    });
  });

  suiteTeardown(async () => {
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  });

  test('"NAD: Run Matrix File" runs every cell in a worker; the matrix page shows the runs\' numbers and marks the best defense', async function () {
    this.timeout(240_000);
    const a = await api();
    mkdirSync(join(ws(), 'configs'), { recursive: true });
    const file = join(ws(), 'configs', 'small.nad-matrix.json');
    writeFileSync(
      file,
      JSON.stringify({
        name: 'it-matrix',
        data: '../data/matrix-mnist',
        attacks: ['badnets', 'blend'],
        defenses: ['none', 'finetune'],
        cleanCount: 40,
        training: { epochs: 1, batchSize: 32, augment: false },
        defenseTraining: { epochs: 1, batchSize: 32, augment: false },
      }),
    );
    const task = await vscode.commands.executeCommand<RunTask | undefined>('nad.runMatrixFile', vscode.Uri.file(file));
    assert.ok(task, 'no task started');
    const ended = await task.ended;
    assert.equal(ended.state, 'finished', ended.failure?.message);
    // The page opens as soon as the matrix folder exists, and follows the cells.
    const done = await until(
      'the matrix page to show every cell finished',
      () => {
        for (const r of a.matrices.lastRendered.values()) if (r.rows.length === 2 && r.rows.flat().every((t) => / \/ /.test(t))) return r;
        return undefined;
      },
      220_000,
      () =>
        JSON.stringify({
          pages: [...a.matrices.lastRendered.values()],
          tasks: a.manager.active().map((t) => [t.request.title, t.state]),
          matrices: existsSync(join(ws(), '.nad', 'matrices')) ? readdirSync(join(ws(), '.nad', 'matrices')) : 'none',
        }),
    );
    matrixDir = done.dir;
    const outcomes = JSON.parse(readFileSync(join(done.dir, 'outcomes.json'), 'utf8')) as {
      outcomes: Array<{ cell: { attack: string; defense?: string }; state: string; acc: number; asr: number; runId: string }>;
    };
    assert.equal(outcomes.outcomes.length, 4);
    // No run panel took the editor: the matrix page stays the view of the matrix.
    for (const o of outcomes.outcomes)
      assert.equal(a.panels.find(join(ws(), '.nad', 'runs', o.runId)), undefined, `${o.runId} opened a panel`);
    assert.ok(outcomes.outcomes.every((o) => o.state === 'finished'));
    // Each cell's text is its run's ACC / ASR, two decimals (one seed).
    const text = (attack: string, defense?: string): string => {
      const o = outcomes.outcomes.find((x) => x.cell.attack === attack && x.cell.defense === defense);
      assert.ok(o);
      return `${o.acc.toFixed(2)} / ${o.asr.toFixed(2)}`;
    };
    assert.deepEqual(done.rows, [
      [text('badnets'), text('badnets', 'finetune')],
      [text('blend'), text('blend', 'finetune')],
    ]);
    // With one defense besides "none", it is the best of each row.
    assert.deepEqual(done.best, ['badnets/finetune', 'blend/finetune']);
    assert.match(done.legend, /Shading: the ASR left/);
  });

  test('"NAD: Open Matrix" reopens the matrix from its folder with the same table', async function () {
    this.timeout(60_000);
    assert.ok(matrixDir, 'needs the matrix of the previous test');
    const a = await api();
    const before = a.matrices.lastRendered.get(matrixDir) as MatrixRendered;
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    a.matrices.lastRendered.clear();
    await vscode.commands.executeCommand('nad.openMatrix', matrixDir);
    const again = await until('the reopened matrix page', () => a.matrices.lastRendered.get(matrixDir as string), 30_000);
    assert.deepEqual(again.rows, before.rows);
    assert.deepEqual(again.best, before.best);
  });
});
