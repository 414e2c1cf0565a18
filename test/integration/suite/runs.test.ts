// Runs through the real worker inside a real VS Code: config files run from the command, the run
// folder ends finished and the panel's table equals the folder's; cancel, queue, a crashed worker,
// resume, errors that name the file. Data: a small MNIST in IDX files, so that each run takes seconds.
import * as assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import * as vscode from 'vscode';
import type { NadApi } from '../../../src/host/api';
import type { RunTask } from '../../../src/host/runs/manager';
import type { RenderedPanel } from '../../../src/shared/panel-protocol';
import type { FixtureWorkspace } from '../fixtures/workspace';
import { writeSmallMnist } from '../fixtures/small-mnist';
import { ended, note } from '../fixtures/host-runs';
import { RunStore } from '../../../src/runs/run-store';

const EXTENSION_ID = 'nad-vscode.nad-vscode';
const ws = (): string => (JSON.parse(process.env.NAD_TEST_FIXTURE ?? '{}') as FixtureWorkspace).dir;

async function api(): Promise<NadApi> {
  const ext = vscode.extensions.getExtension<NadApi>(EXTENSION_ID);
  assert.ok(ext, `extension ${EXTENSION_ID} is not loaded`);
  return ext.activate();
}

async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function writeConfig(name: string, config: Record<string, unknown>): vscode.Uri {
  const file = join(ws(), 'configs', `${name}.nad.json`);
  mkdirSync(join(ws(), 'configs'), { recursive: true });
  writeFileSync(file, JSON.stringify(config, null, 2));
  return vscode.Uri.file(file);
}

const small = { batchSize: 32 };
const DATA = '../data/small-mnist';

async function runConfig(uri: vscode.Uri): Promise<RunTask> {
  const task = await vscode.commands.executeCommand<RunTask | undefined>('nad.runConfigFile', uri);
  assert.ok(task, `"NAD: Run Config File" did not start ${uri.fsPath}`);
  return task;
}

function readJson<T>(file: string): T {
  return JSON.parse(readFileSync(file, 'utf8')) as T;
}

/** The table as the panel must show it: results.json's rows, two decimals. */
function folderTable(runDir: string): string[][] {
  const labels: Record<string, string> = {
    backdoored: 'Backdoored',
    teacher: 'Teacher',
    erased: 'After NAD',
    trained: 'Trained (backdoored)',
    finetuned: 'Finetuned',
    evaluated: 'Evaluated',
  };
  const { table } = readJson<{ table: Array<{ model: string; acc: number; asr: number; ra: number }> }>(join(runDir, 'results.json'));
  return [['Model', 'ACC %', 'ASR %', 'RA %'], ...table.map((r) => [labels[r.model], r.acc.toFixed(2), r.asr.toFixed(2), r.ra.toFixed(2)])];
}

async function panelOf(a: NadApi, runDir: string): Promise<RenderedPanel> {
  const panel = await until('the run panel', () => a.panels.find(runDir), 10_000);
  return panel.probe();
}

let trainedModel = '';
const created: string[] = [];

suite('Runs in worker processes', () => {
  suiteSetup(async () => {
    writeSmallMnist(join(ws(), 'data', 'small-mnist'), {
      train: 60,
      test: 20,
      repoRoot: vscode.extensions.getExtension(EXTENSION_ID)?.extensionPath,
    });
    await vscode.workspace.getConfiguration('nad').update('maxConcurrentRuns', 1, vscode.ConfigurationTarget.Workspace);
  });

  suiteTeardown(async () => {
    const a = await api();
    for (const t of a.manager.active()) a.manager.cancel(t);
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  });

  test('activation is fast and does not load the engine (tfjs runs in the worker)', async () => {
    const a = await api();
    const bundle = readFileSync(join(vscode.extensions.getExtension(EXTENSION_ID)?.extensionPath ?? '', 'dist', 'extension.js'), 'utf8');
    assert.doesNotMatch(bundle, /node_modules\/@tensorflow/, 'dist/extension.js bundles TensorFlow.js');
    const total = a.activation.loadMs + a.activation.activateMs;
    note(
      `      activation: ${a.activation.loadMs.toFixed(1)} ms evaluating the bundle + ${a.activation.activateMs.toFixed(1)} ms in activate() = ${total.toFixed(1)} ms`,
    );
    // The target is 100 ms; CI machines are shared and slow, so only a gross regression fails.
    assert.ok(total < 300, `activation took ${total.toFixed(0)} ms`);
  });

  test('"NAD: Run Config File" trains a model in a worker; the folder ends finished and the panel shows its table', async function () {
    this.timeout(120_000);
    const a = await api();
    const task = await runConfig(
      writeConfig('train', {
        kind: 'train',
        name: 'it-train',
        data: DATA,
        backdoor: { injectPortion: 0.2 },
        training: { ...small, epochs: 2 },
      }),
    );
    const done = await ended(task, 100_000);
    assert.equal(done.state, 'finished', done.failure?.message);
    const runDir = done.runDir as string;
    created.push(runDir);
    const status = readJson<{ state: string; backend: string; acc: number }>(join(runDir, 'status.json'));
    assert.equal(status.state, 'finished');
    // Where the extension ships the native addon for this platform (linux-x64), the worker that VS Code's
    // Electron forks loads it (Node-API) and auto picks it; elsewhere wasm runs.
    const addon = join(
      vscode.extensions.getExtension(EXTENSION_ID)?.extensionPath ?? '',
      'dist',
      `nad-kernels-${process.platform}-${process.arch}.node`,
    );
    assert.match(status.backend, existsSync(addon) ? /^native/ : /wasm|tensorflow|cpu/);
    trainedModel = join(runDir, 'model', 'model.safetensors');
    assert.ok(existsSync(trainedModel), 'no model file');
    const shown = await panelOf(a, runDir);
    assert.deepEqual(shown.table, folderTable(runDir));
    assert.equal(shown.state, 'Finished');
    assert.equal(shown.epochRows, 2);
    assert.ok(shown.chartPoints >= 6, `charts show ${shown.chartPoints} points`);
    // The trigger gallery: 4 poisoned training images and 4 triggered test images, each clean | poisoned | difference.
    assert.equal(shown.gallery.images, 2 * 4 * 3, `gallery captions: ${shown.gallery.captions.join(' / ')}`);
    assert.match(shown.gallery.captions[0], /^#\d+ clean: /);
    assert.match(shown.gallery.captions[1], /^poisoned, label /);
    assert.match(shown.gallery.captions[2], /^difference x\d/);
    assert.match(shown.gallery.captions[13], /^with the trigger \(target /);
    // What made the run: version, engine, and the data's SHA-256.
    const labels = shown.provenance.map((p) => p.slice(0, p.indexOf(': ')));
    assert.deepEqual(labels.slice(0, 7), ['Version', 'Engine', 'Kernels', 'Node', 'tfjs', 'Platform', 'CPU']);
    assert.ok(
      shown.provenance.some((p) => /^SHA-256 data: [0-9a-f]{64} \(/.test(p)),
      shown.provenance.join(' | '),
    );
  });

  test('erasing with a teacher finetuned first: results.json has backdoored, teacher and after-NAD rows, all in the panel', async function () {
    this.timeout(150_000);
    assert.ok(trainedModel, 'needs the trained model of the previous test');
    const a = await api();
    const task = await runConfig(
      writeConfig('erase', {
        kind: 'erase',
        name: 'it-erase',
        student: trainedModel,
        data: DATA,
        cleanCount: 200,
        teacherTraining: { ...small, epochs: 1 },
        training: { ...small, epochs: 2 },
      }),
    );
    const runDir = await until('the erase run to start', () => task.runDir, 60_000);
    // Live: the panel opens when the run starts and follows it.
    assert.ok(a.panels.find(runDir), 'the panel did not open when the run started');
    const done = await ended(task, 140_000);
    assert.equal(done.state, 'finished', done.failure?.message);
    created.push(runDir);
    const rows = folderTable(runDir);
    assert.deepEqual(
      rows.slice(1).map((r) => r[0]),
      ['Backdoored', 'Teacher', 'After NAD'],
    );
    const shown = await panelOf(a, runDir);
    assert.deepEqual(shown.table, rows);
    assert.equal(shown.epochRows, 3, 'one teacher epoch and two NAD epochs');
    assert.ok(shown.attentionMaps >= 3 * 2 * 3, `only ${shown.attentionMaps} attention maps drawn`);
    assert.ok(existsSync(join(runDir, 'attention', 'maps.json')));
    // The erased model per class: one bar chart (ACC, ASR, RA of 10 classes) and two confusion matrices.
    assert.deepEqual({ charts: shown.classes.charts, matrices: shown.classes.matrices }, { charts: 1, matrices: 2 });
    assert.equal(shown.classes.chartBars, 3 * 10);
    const results = readJson<{ classes: { clean: number[][] }; table: Array<{ acc: number }> }>(join(runDir, 'results.json'));
    const tested = results.classes.clean.flat().reduce((x, y) => x + y, 0);
    const correct = results.classes.clean.reduce((x, row, i) => x + row[i], 0);
    assert.ok(
      Math.abs((100 * correct) / tested - results.table[results.table.length - 1].acc) < 1e-9,
      'the confusion matrix disagrees with ACC',
    );
  });

  test('a panel reopened from the folder shows the same numbers', async function () {
    this.timeout(30_000);
    const a = await api();
    const runDir = created[created.length - 1];
    assert.ok(runDir);
    a.panels.find(runDir)?.panel.dispose();
    await vscode.commands.executeCommand('nad.openRun', runDir);
    const shown = await panelOf(a, runDir);
    assert.deepEqual(shown.table, folderTable(runDir));
    assert.equal(shown.epochRows, 3);
  });

  test('Cancel stops a run within seconds; its folder stays, marked cancelled', async function () {
    this.timeout(90_000);
    const task = await runConfig(
      writeConfig('long', { kind: 'train', name: 'it-cancel', data: DATA, training: { ...small, epochs: 200 } }),
    );
    await until('the first training steps', () => (task.snapshot?.progress?.step ?? 0) > 0 || undefined, 60_000);
    const runDir = task.runDir as string;
    created.push(runDir);
    const asked = Date.now();
    await vscode.commands.executeCommand('nad.cancelRun', runDir);
    const done = await ended(task, 15_000);
    const seconds = (Date.now() - asked) / 1000;
    note(`      cancelled in ${seconds.toFixed(2)} s`);
    assert.equal(done.state, 'cancelled');
    assert.ok(seconds < 10, `cancelling took ${seconds} s`);
    assert.equal(readJson<{ state: string }>(join(runDir, 'status.json')).state, 'cancelled');
    for (const f of ['config.json', 'status.json', 'metrics.jsonl']) assert.ok(existsSync(join(runDir, f)), `${f} is gone`);
  });

  test('beyond nad.maxConcurrentRuns runs wait in a queue; a queued run can be cancelled', async function () {
    this.timeout(90_000);
    const a = await api();
    const uri = writeConfig('queue', { kind: 'train', name: 'it-queue', data: DATA, training: { ...small, epochs: 200 } });
    const first = await runConfig(uri);
    const second = await runConfig(uri);
    assert.equal(second.state, 'queued');
    a.manager.cancel(second);
    assert.equal((await ended(second, 1000)).state, 'cancelled');
    assert.equal(second.runDir, undefined, 'a queued run has no folder');
    await until('the first run to start', () => first.runDir, 60_000);
    created.push(first.runDir as string);
    a.manager.cancel(first);
    assert.equal((await ended(first, 15_000)).state, 'cancelled');
  });

  test('a crashed worker fails its task with its last words, its run reads as interrupted; Resume continues it to the end', async function () {
    this.timeout(180_000);
    const a = await api();
    const task = await runConfig(writeConfig('crash', { kind: 'train', name: 'it-crash', data: DATA, training: { ...small, epochs: 3 } }));
    const runDir = await until('the run to start', () => task.runDir, 60_000);
    created.push(runDir);
    // Kill it once epoch 1's model file is saved (the worker saves it right after the epoch's result).
    await until('epoch 1 to be saved', () => (existsSync(join(runDir, 'model', 'model.safetensors')) ? true : undefined), 90_000);
    process.kill(task.worker?.pid ?? 0, 'SIGKILL');
    const crashed = await ended(task, 15_000);
    assert.equal(crashed.state, 'failed');
    assert.equal(crashed.failure?.kind, 'crash');
    assert.match(crashed.failure?.message ?? '', /killed \(SIGKILL\)/);
    // The worker is status.json's only writer: its killed run reads as interrupted (owner gone), resumable.
    const read = new RunStore('', dirname(runDir)).read(basename(runDir));
    assert.ok(!('problem' in read) && read.status.state === 'interrupted', JSON.stringify(read));

    const resumed = await vscode.commands.executeCommand<RunTask | undefined>('nad.resumeRun', runDir);
    assert.ok(resumed, 'Resume did not start');
    const done = await ended(resumed, 150_000);
    assert.equal(done.state, 'finished', done.failure?.message);
    assert.equal(done.runDir, runDir, 'resumed into another folder');
    const epochs = readFileSync(join(runDir, 'metrics.jsonl'), 'utf8')
      .split('\n')
      .filter((l) => l.includes('"type":"epoch"'))
      .map((l) => (JSON.parse(l) as { epoch: number }).epoch);
    assert.deepEqual(epochs, [1, 2, 3], 'each epoch once, in order');
    assert.match(readFileSync(join(runDir, 'metrics.jsonl'), 'utf8'), /resumed \(epochs done: model [12]\)/);
    const shown = await panelOf(a, runDir);
    assert.equal(shown.state, 'Finished');
    assert.deepEqual(shown.table, folderTable(runDir));
  });

  test('a run made before provenance was recorded opens and reads "unknown" there', async function () {
    this.timeout(30_000);
    const a = await api();
    const runsDir = join(ws(), '.nad', 'runs');
    const old = readdirSync(runsDir).find((d) => d.endsWith('badnets-erase') || d.includes('-badnets-erase-'));
    assert.ok(old, 'the fixture workspace has its finished erase run');
    await vscode.commands.executeCommand('nad.openRun', join(runsDir, old));
    const shown = await panelOf(a, join(runsDir, old));
    assert.equal(shown.state, 'Finished');
    assert.deepEqual(shown.provenance.slice(0, 2), ['Version: unknown', 'Engine: unknown']);
  });

  test('a wrong model file fails with a message that names the file', async function () {
    this.timeout(60_000);
    const missing = join(ws(), 'models', 'no-such-model.pth');
    const task = await runConfig(writeConfig('missing', { kind: 'eval', name: 'it-missing', model: missing, test: DATA }));
    const done = await ended(task, 50_000);
    assert.equal(done.state, 'failed');
    assert.equal(done.failure?.kind, 'input');
    assert.ok(done.failure?.message.includes(missing), done.failure?.message);
    if (done.runDir) created.push(done.runDir);
  });

  test('a broken config file is refused before any run, naming the field', async () => {
    const a = await api();
    const before = a.manager.all().length;
    const task = await vscode.commands.executeCommand<RunTask | undefined>(
      'nad.runConfigFile',
      writeConfig('broken', { kind: 'erase', data: DATA }),
    );
    assert.equal(task, undefined);
    assert.equal(a.manager.all().length, before, 'a run was queued for a broken config');
  });
});
