// The one event stream: what a job emits live, folded by the one reducer, equals what its folder
// replays (metrics.jsonl + maps.json); epoch events carry their phase; older runs' phase-less epoch
// lines get theirs from the job's plan; the registry's `defend nad` is the `erase` job to the digit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BADNET_TRAINING, DEFAULT_BACKDOOR, FINETUNE_TRAINING, NAD_TRAINING } from '../../src/runs/config';
import { buildJobConfig, runConfigOf } from '../../src/runs/config-file';
import { phasesOf, runJob } from '../../src/runs/jobs';
import { readRunSnapshot } from '../../src/runs/run-folder';
import { readRunEvents, RunStore } from '../../src/runs/run-store';
import type { RunEvent } from '../../src/shared/run-events';
import { writeSmallMnist } from '../integration/fixtures/small-mnist';
import { EMPTY_RUN_VIEW, reduceRun, type RunView } from '../../src/shared/run-state';

const quick = { ...BADNET_TRAINING, epochs: 1, batchSize: 32, augment: false };
const ROOT = join(__dirname, '..', '..');

function tmp(): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'nad-events-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A small IDX folder of real digits (train and t10k splits), and the job fields that use it. */
function smallDigits(dir: string): {
  data: string;
  common: { backend: 'auto'; seed: number; test: string; backdoor: typeof DEFAULT_BACKDOOR };
} {
  const data = writeSmallMnist(join(dir, 'digits'), { train: 300, test: 100, repoRoot: ROOT });
  return { data, common: { backend: 'auto', seed: 0, test: data, backdoor: DEFAULT_BACKDOOR } };
}

async function trainSmall(dir: string): Promise<{ model: string; data: string; common: ReturnType<typeof smallDigits>['common'] }> {
  const { data, common } = smallDigits(dir);
  const r = await runJob({ ...common, kind: 'train', name: 'small', data, model: 'auto', training: quick }, { cwd: dir });
  return { model: r.modelPath as string, data, common };
}

test('live events folded by the reducer equal the folder replayed; epochs carry their phase', async () => {
  const t = tmp();
  try {
    const { model, data, common } = await trainSmall(t.dir);
    const events: RunEvent[] = [];
    const r = await runJob(
      {
        ...common,
        kind: 'erase',
        student: model,
        data,
        cleanCount: 200,
        teacherTraining: { ...FINETUNE_TRAINING, epochs: 1, augment: false },
        training: { ...NAD_TRAINING, epochs: 2, augment: false },
      },
      { cwd: t.dir, onEvent: (e) => events.push(e) },
    );
    const live = events.reduce<RunView>(reduceRun, EMPTY_RUN_VIEW);
    const replay = readRunSnapshot(r.runDir);
    assert.ok(!('problem' in replay), JSON.stringify(replay));
    assert.deepEqual(replay.epochs, live.epochs);
    assert.deepEqual(replay.table, live.table);
    assert.deepEqual(replay.log, live.log);
    assert.deepEqual(
      live.epochs.map((e) => `${e.phase}${e.epoch}`),
      ['teacher1', 'nad1', 'nad2'],
    );
    // The stored stream is the live one without the live-only kinds (steps, maps, images).
    const stored = readRunEvents(r.runDir).events;
    const kinds = (es: readonly RunEvent[]): string => es.map((e) => e.type).join(' ');
    assert.equal(kinds(stored), kinds(events.filter((e) => e.type !== 'step' && e.type !== 'attention' && e.type !== 'samples')));
    assert.deepEqual(
      stored,
      events.filter((e) => e.type !== 'step' && e.type !== 'attention' && e.type !== 'samples'),
    );
    assert.equal(stored[0].type, 'started');
    assert.deepEqual(stored[stored.length - 1], { type: 'ended', state: 'finished' });
    // Every epoch and step says how long the whole run has left once there is a pace.
    assert.ok(events.some((e) => e.type === 'step' && e.etaSeconds !== undefined));
  } finally {
    t.remove();
  }
});

test("older runs' epoch lines (no phase) get the phases of their job's plan; a torn last line is skipped, a bad middle line reported", () => {
  const t = tmp();
  try {
    const store = new RunStore(t.dir);
    const run = store.create('erase', { kind: 'erase', name: 'old', teacherTraining: { epochs: 2 } });
    const line = (epoch: number): string =>
      JSON.stringify({ type: 'epoch', epoch, loss: 1, acc: 50 + epoch, asr: 10, lr: 0.1, seconds: 1, imagesPerSecond: 9 }) + '\n';
    writeFileSync(
      join(run.dir, 'metrics.jsonl'),
      line(1) + line(2) + '{"type":"eval","label":"x","acc":1,"asr":2}\n' + line(1) + line(2) + line(3),
    );
    run.finish({ acc: 53, asr: 10 });
    const snap = readRunSnapshot(run.dir);
    assert.ok(!('problem' in snap));
    assert.deepEqual(
      snap.epochs.map((e) => `${e.phase}${e.epoch}`),
      ['teacher1', 'teacher2', 'nad1', 'nad2', 'nad3'],
    );
    appendFileSync(join(run.dir, 'metrics.jsonl'), '{"type":"ep');
    assert.deepEqual(readRunEvents(run.dir).problems, []);
    writeFileSync(join(run.dir, 'metrics.jsonl'), line(1) + 'not json\n' + line(2));
    assert.deepEqual(readRunEvents(run.dir).problems, ['metrics.jsonl line 2: not valid JSON']);
  } finally {
    t.remove();
  }
});

test("the registry's `defend nad` gives the `erase` job's numbers to the digit; its config.json holds the complete schedule", async () => {
  const t = tmp();
  try {
    const { model, data, common } = await trainSmall(t.dir);
    const training = { ...NAD_TRAINING, epochs: 2, augment: false };
    const teacherTraining = { ...training, epochs: 1, betas: [0, 0, 0] };
    const erase = await runJob(
      { ...common, kind: 'erase', student: model, data, cleanCount: 200, teacherTraining, training },
      { cwd: t.dir },
    );
    const defend = await runJob(
      {
        ...common,
        kind: 'defend',
        method: 'nad',
        model,
        data,
        cleanCount: 200,
        training: { epochs: 2, augment: false },
        params: { teacherEpochs: 1 },
      },
      { cwd: t.dir },
    );
    assert.deepEqual(defend.table, erase.table);
    const stored = JSON.parse(readFileSync(join(defend.runDir, 'config.json'), 'utf8')) as {
      training: Record<string, unknown>;
      params: Record<string, unknown>;
    };
    assert.deepEqual(stored.training.betas, NAD_TRAINING.betas);
    assert.deepEqual(stored.params, { teacher: '', teacherEpochs: 1 });
    assert.deepEqual(phasesOf(runConfigOf(stored, 'config.json')), [
      { phase: 'teacher', epochs: 1 },
      { phase: 'nad', epochs: 2 },
    ]);
  } finally {
    t.remove();
  }
});

test('the builder refuses a defense it does not know, or a parameter the defense does not declare, naming it', async () => {
  const t = tmp();
  try {
    const base = {
      backend: 'auto',
      seed: 0,
      test: 'mnist',
      kind: 'defend',
      model: 'm.safetensors',
      data: 'mnist',
      training: {},
      params: {},
    };
    await assert.rejects(runJob(buildJobConfig({ ...base, method: 'no-such' }, 'x'), { cwd: t.dir }), /unknown defense 'no-such'/);
    await assert.rejects(
      runJob(buildJobConfig({ ...base, method: 'nad', params: { betaz: 1 } }, 'x'), { cwd: t.dir }),
      /unknown parameter 'betaz' \(known: teacher, teacherEpochs\)/,
    );
    await assert.rejects(
      runJob(buildJobConfig({ ...base, method: 'nad', params: { teacherEpochs: 0 } }, 'x'), { cwd: t.dir }),
      /teacherEpochs must be >= 1/,
    );
    assert.throws(
      () => buildJobConfig({ ...base, method: 'nad', params: [] }, 'cfg.nad.json'),
      /cfg\.nad\.json: "params" must be an object/,
    );
    assert.throws(
      () => buildJobConfig({ ...base, method: 'nad', mode: 'scan' }, 'cfg.nad.json'),
      /"mode" must be "repair" or "detect", got "scan"/,
    );
    await assert.rejects(
      runJob(buildJobConfig({ ...base, method: 'fine-pruning', mode: 'detect' }, 'x'), { cwd: t.dir }),
      /Fine-Pruning does not detect; it repairs a model: run it with "nad defend fine-pruning"/,
    );
    // Nothing was started: no run folder for a config that cannot run.
    assert.equal(new RunStore(t.dir).list().runs.length, 0);
  } finally {
    t.remove();
  }
});

test("a defense's charts, images and facts fold to the latest per id, and replay from metrics.jsonl as they were", () => {
  const t = tmp();
  try {
    const run = new RunStore(t.dir).create('defend', { kind: 'defend', method: 'x' }, 'figures');
    const chart = (values: number[]): RunEvent => ({
      type: 'chart',
      id: 'anomaly',
      title: 'Anomaly index per class',
      xLabel: 'class',
      yLabel: 'anomaly index',
      chart: { kind: 'bar', labels: ['0', '1', '2'], series: [{ name: 'index', values }] },
      threshold: { value: 2, label: 'flagged above 2' },
    });
    const events: RunEvent[] = [
      chart([0, 0, 0]),
      {
        type: 'chart',
        id: 'roc',
        title: 'ROC',
        xLabel: 'FPR %',
        yLabel: 'TPR %',
        chart: {
          kind: 'xy',
          series: [
            {
              name: 'STRIP',
              points: [
                { x: 0, y: 0 },
                { x: 5, y: 90 },
                { x: 100, y: 100 },
              ],
            },
          ],
        },
      },
      chart([0.4, 3.1, 0.9]),
      {
        type: 'images',
        id: 'triggers',
        title: 'Recovered triggers',
        images: [{ caption: 'class 1', height: 1, width: 2, channels: 1, pixels: 'AP8=', marked: true }],
      },
      { type: 'facts', title: 'Neural Cleanse', facts: [{ label: 'Flagged', value: 'class 1 (index 3.10)' }] },
    ];
    for (const e of events) run.appendMetric(e);
    run.finish({});
    const live = events.reduce<RunView>(reduceRun, EMPTY_RUN_VIEW);
    assert.deepEqual(
      live.charts.map((c) => c.id),
      ['roc', 'anomaly'],
    );
    const anomaly = live.charts.find((c) => c.id === 'anomaly');
    assert.ok(anomaly?.chart.kind === 'bar');
    assert.deepEqual(anomaly.chart.series[0].values, [0.4, 3.1, 0.9]);
    assert.equal(live.images[0].images[0].marked, true);
    assert.deepEqual(live.facts, { title: 'Neural Cleanse', facts: [{ label: 'Flagged', value: 'class 1 (index 3.10)' }] });
    assert.match(live.log[live.log.length - 1], /Neural Cleanse: Flagged class 1 \(index 3\.10\)/);
    const replayed = readRunSnapshot(run.dir);
    assert.ok(!('problem' in replayed));
    assert.deepEqual(replayed.charts, live.charts);
    assert.deepEqual(replayed.images, live.images);
    assert.deepEqual(replayed.facts, live.facts);
  } finally {
    t.remove();
  }
});
