// The experiment history page and "Compare Runs" inside a real VS Code: rows derived from real run
// folders (the fixture's and hand-made configs), the page's table as the webview reports it, following
// new and deleted folders; config flattening and diff, curves per phase, the compare page's charts.
import * as assert from 'node:assert/strict';
import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as vscode from 'vscode';
import type { NadApi } from '../../../src/host/api';
import { configDiff, flattenConfig, readCurves, type CompareRendered } from '../../../src/host/history/compare-page';
import { historyRow, type HistoryRendered } from '../../../src/host/history/table-page';
import type { ReviewApi } from '../../../src/host/api';
import { RunStore, type RunSummary } from '../../../src/runs/run-store';
import { FINISHED_ACC, FINISHED_ASR, type FixtureWorkspace } from '../fixtures/workspace';

const EXTENSION_ID = 'nad-vscode.nad-vscode';
const fixture = (): FixtureWorkspace => JSON.parse(process.env.NAD_TEST_FIXTURE ?? '{}') as FixtureWorkspace;

async function api(): Promise<NadApi & ReviewApi> {
  const ext = vscode.extensions.getExtension<NadApi & ReviewApi>(EXTENSION_ID);
  assert.ok(ext, `extension ${EXTENSION_ID} is not loaded`);
  return ext.activate();
}

function store(): RunStore {
  return new RunStore(fixture().dir);
}

function runNamed(name: string): RunSummary {
  const run = store()
    .list()
    .runs.find((r) => r.config['name'] === name);
  assert.ok(run, `no run named ${name}`);
  return run;
}

/** Resolves with the first report that satisfies `ok`. */
function nextReport<T>(event: vscode.Event<T>, ok: (r: T) => boolean, what: string, timeoutMs = 20_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      sub.dispose();
      reject(new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`));
    }, timeoutMs);
    const sub = event((r) => {
      if (!ok(r)) return;
      clearTimeout(timer);
      sub.dispose();
      resolve(r);
    });
  });
}

/** A finished run with epoch metrics, written by the real RunStore. */
function trainedRun(
  name: string,
  config: Record<string, unknown>,
  epochs: Array<[number, number, number, number]>,
  phases?: readonly string[],
): RunSummary {
  const run = store().create((config['kind'] as 'train' | undefined) ?? 'train', { name, ...config }, name);
  for (const [i, [epoch, loss, acc, asr]] of epochs.entries())
    run.appendMetric({
      type: 'epoch',
      phase: phases?.[i] ?? 'train',
      epochs: epochs.length,
      epoch,
      loss,
      acc,
      asr,
      lr: 0.1,
      seconds: 1,
      imagesPerSecond: 100,
    });
  const last = epochs[epochs.length - 1];
  run.update({ lastEpoch: last[0] });
  run.finish({ acc: last[2], asr: last[3] });
  return runNamed(name);
}

suite('Experiment history page', () => {
  teardown(() => vscode.commands.executeCommand('workbench.action.closeAllEditors'));

  test('rows: the fixture runs (flat hand-made configs) and an engine-style config', () => {
    const failed = historyRow({ folder: undefined, run: runNamed(fixture().failedLabel) });
    assert.equal(failed.kind, 'train');
    assert.equal(failed.state, 'failed');
    assert.equal(failed.dataset, 'cifar10');
    assert.equal(failed.trigger, 'badnets');
    assert.equal(failed.target, '0');
    assert.equal(failed.epochs, 2);
    assert.equal(failed.error, 'out of memory at epoch 2');
    const finished = historyRow({ folder: undefined, run: runNamed(fixture().finishedLabel) });
    assert.equal(finished.acc, FINISHED_ACC);
    assert.equal(finished.asr, FINISHED_ASR);
    assert.ok(finished.durationMs !== undefined && finished.durationMs >= 0);
    const engine = trainedRun(
      'suite-engine-config',
      {
        data: '/data/cifar-10-batches-bin',
        backdoor: { trigger: { name: 'squareTrigger' }, targetType: 'all2all', targetLabel: 3, injectPortion: 0.1 },
        training: { epochs: 20 },
        backendUsed: 'wasm',
      },
      [[1, 2.1, 40, 90]],
    );
    const row = historyRow({ folder: undefined, run: engine });
    assert.deepEqual(
      [row.dataset, row.trigger, row.target, row.epochs, row.epochsDone, row.backend, row.hasAttention],
      ['cifar-10-batches-bin', 'squareTrigger', 'all2all', 20, 1, 'wasm', false],
    );
  });

  test('"NAD: Show Experiment History Table" lists every run and the unreadable folder', async () => {
    const { historyPage } = await api();
    const rendered = nextReport(historyPage.onDidRender, () => true, 'the history page to render');
    await vscode.commands.executeCommand('nad.showHistoryPage');
    const r = await rendered;
    const { runs, broken } = store().list();
    assert.deepEqual([...r.shown].sort(), runs.map((x) => x.id).sort());
    assert.equal(r.broken, broken.length);
    assert.ok(r.broken >= 1, 'the fixture has a hand-broken run folder');
    // Newest first by default.
    assert.equal(r.state.sort[0]?.column, 'startedAt');
    assert.equal(r.shown[0], runs[0].id);
  });

  test('the open page follows run folders written and deleted by other processes', async () => {
    const { historyPage } = await api();
    const first = nextReport(historyPage.onDidRender, () => true, 'the history page to render');
    await vscode.commands.executeCommand('nad.showHistoryPage');
    await first;
    const handle = store().create('eval', { name: 'suite-history-probe' }, 'suite-history-probe');
    handle.finish({ acc: 50, asr: 10 });
    await nextReport<HistoryRendered>(historyPage.onDidRender, (r) => r.shown.includes(handle.id), 'the new run on the page');
    await store().delete(handle.id);
    await nextReport<HistoryRendered>(historyPage.onDidRender, (r) => !r.shown.includes(handle.id), 'the deleted run to leave the page');
  });
});

suite('Compare runs', () => {
  teardown(() => vscode.commands.executeCommand('workbench.action.closeAllEditors'));

  test('configs flatten to dotted keys; the diff marks what differs or is missing', () => {
    const a = {
      kind: 'erase',
      backdoor: { trigger: { name: 'gridTrigger' }, targetLabel: 5 },
      training: {
        lrSchedule: [
          [0, 0.1],
          [2, 0.01],
        ],
        betas: [500, 1000, 1000],
      },
    };
    const b = {
      kind: 'erase',
      backdoor: { trigger: { name: 'gridTrigger' }, targetLabel: 3 },
      training: {
        lrSchedule: [
          [0, 0.1],
          [2, 0.01],
        ],
        betas: [0, 0, 0],
      },
      teacher: 't.pth',
    };
    assert.deepEqual(
      [...flattenConfig(a)],
      [
        ['kind', 'erase'],
        ['backdoor.trigger.name', 'gridTrigger'],
        ['backdoor.targetLabel', '5'],
        ['training.lrSchedule', '[[0,0.1],[2,0.01]]'],
        ['training.betas', '[500,1000,1000]'],
      ],
    );
    const diff = configDiff([a, b]);
    assert.deepEqual(
      diff.filter((r) => r.differs).map((r) => r.key),
      ['backdoor.targetLabel', 'training.betas', 'teacher'],
    );
    assert.deepEqual(diff.find((r) => r.key === 'teacher')?.values, [undefined, 't.pth']);
  });

  test('curves: an erase run that finetuned its teacher first has two phases; bad lines are reported', () => {
    const run = trainedRun(
      'suite-two-phases',
      { kind: 'erase' },
      [
        [1, 2, 30, 90],
        [2, 1.5, 40, 80],
        [1, 3, 35, 60],
        [2, 2, 45, 10],
      ],
      ['teacher', 'teacher', 'nad', 'nad'],
    );
    appendFileSync(join(run.dir, 'metrics.jsonl'), 'not json\n{"type":"epoch","epoch":3}\n');
    const { segments, problems } = readCurves(run);
    assert.deepEqual(
      segments.map((s) => s.phase),
      ['Teacher', 'NAD'],
    );
    assert.deepEqual(segments[1].asr, [60, 10]);
    assert.equal(problems.length, 2);
    assert.match(problems[0], /metrics\.jsonl line 5: not valid JSON/);
    assert.match(problems[1], /line 6: not a valid run event \(loss is missing; acc is missing; asr is missing\)/);
  });

  test('"NAD: Compare Runs" on two runs shows three charts and the differing config keys', async () => {
    const a = trainedRun('suite-compare-a', { backdoor: { targetLabel: 5 }, training: { epochs: 3 } }, [
      [1, 2, 30, 90],
      [2, 1.5, 40, 95],
      [3, 1.2, 50, 99],
    ]);
    const b = trainedRun('suite-compare-b', { backdoor: { targetLabel: 5 }, training: { epochs: 2 } }, [
      [1, 2.2, 20, 80],
      [2, 1.9, 35, 97],
    ]);
    const { compare } = await api();
    const rendered = nextReport<CompareRendered>(compare.onDidRender, (r) => r.runs === 2, 'the compare page to render');
    await vscode.commands.executeCommand('nad.compareRuns', [a.dir, b.dir]);
    const r = await rendered;
    assert.equal(r.charts, 3);
    assert.deepEqual([...r.differing].sort(), ['name', 'training.epochs']);
  });

  test('from the Runs view, the selected rows are compared', async () => {
    const { compare, runs } = await api();
    const nodes = runs
      .getChildren()
      .filter((n) => n.type === 'run')
      .slice(0, 3);
    assert.equal(nodes.length, 3);
    const rendered = nextReport<CompareRendered>(compare.onDidRender, (r) => r.runs === 3, 'the compare page for three runs');
    await vscode.commands.executeCommand('nad.compareRuns', nodes[0], nodes);
    await rendered;
  });

  test('a run folder broken by hand is not compared; the reason is given', async () => {
    const bad = store().create('train', { name: 'suite-compare-broken' }, 'suite-compare-broken');
    writeFileSync(join(bad.dir, 'config.json'), '[1, 2');
    const { runs } = await api();
    runs.refresh();
    const broken = runs.getChildren().find((n) => n.type === 'broken' && n.broken.id === bad.id);
    assert.ok(broken);
    await assert.rejects(
      Promise.resolve(vscode.commands.executeCommand('nad.compareRuns', broken, [broken, runs.getChildren()[0]])),
      /config\.json: invalid JSON/,
    );
  });
});
