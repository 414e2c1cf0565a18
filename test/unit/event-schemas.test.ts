// The run-time schema of the event stream (src/shared/event-schemas.ts), used where events arrive untyped:
// metrics.jsonl lines (readRunEvents) and the worker's messages. Every kind the engine writes passes, NaN
// survives JSON as null, 0.1.0's epoch lines still read, hand-edited lines are reported with the line and
// the field, and no input makes the check throw (fast-check, seeded).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { parseHostMessage, parseRunEvent, parseStoredEvent, parseWorkerMessage } from '../../src/shared/event-schemas';
import { readRunEvents } from '../../src/runs/run-store';
import type { RunEvent } from '../../src/shared/run-events';

const EVENTS: RunEvent[] = [
  { type: 'started', runId: 'r', runDir: '/w/.nad/runs/r', kind: 'erase', backend: 'wasm', resumed: false },
  { type: 'phase', phase: 'nad', label: 'NAD', epochs: 20 },
  { type: 'baseline', phase: 'nad', acc: 86.29, asr: 100 },
  { type: 'step', phase: 'nad', epoch: 1, step: 3, steps: 40, loss: 1.2, etaSeconds: 30 },
  { type: 'step', phase: 'strip', epoch: 1, step: 3, steps: 40 },
  {
    type: 'epoch',
    phase: 'nad',
    epoch: 1,
    epochs: 20,
    loss: 1.1,
    acc: 80,
    asr: 3,
    ra: 79,
    lr: 0.1,
    seconds: 12,
    imagesPerSecond: 200,
    etaSeconds: 200,
  },
  {
    type: 'table',
    rows: [
      { model: 'backdoored', acc: 86.29, asr: 100 },
      { model: 'erased', acc: 84.57, asr: 2.23, ra: 84.9 },
    ],
  },
  { type: 'series', id: 'pruning', title: 'Pruning curve', xLabel: 'channels pruned', points: [{ x: 0, acc: 86, asr: 100 }] },
  {
    type: 'chart',
    id: 'anomaly',
    title: 'Anomaly index',
    xLabel: 'class',
    yLabel: 'index',
    chart: { kind: 'bar', labels: ['0', '1'], series: [{ name: 'index', values: [0.3, 7.4] }] },
    threshold: { value: 2, label: 'flagged above 2' },
  },
  {
    type: 'chart',
    id: 'roc',
    title: 'ROC',
    xLabel: 'FAR',
    yLabel: 'TPR',
    chart: { kind: 'xy', series: [{ name: 'ROC', points: [{ x: 0, y: 0.9 }] }] },
    threshold: { value: 0.5, label: 't', axis: 'x' },
  },
  {
    type: 'chart',
    id: 'confusion',
    title: 'Confusion',
    xLabel: 'predicted',
    yLabel: 'true',
    group: 'classes',
    chart: { kind: 'matrix', rowLabels: ['a'], colLabels: ['a'], values: [[3]] },
  },
  {
    type: 'images',
    id: 'triggers',
    title: 'Recovered triggers',
    images: [{ caption: 'class 5', height: 2, width: 2, channels: 1, pixels: 'AAAAAA==', marked: true }],
    group: 'attack',
    columns: 3,
  },
  { type: 'facts', title: 'STRIP', facts: [{ label: 'AUC', value: '0.99998' }] },
  {
    type: 'attention',
    snapshot: {
      model: 'erased',
      epoch: -1,
      count: 1,
      groups: [{ height: 2, width: 2 }],
      clean: [[0.1, 0.2, 0.3, 0.4]],
      triggered: [[0.4, 0.3, 0.2, 0.1]],
      predictions: { clean: [3], triggered: [5] },
    },
  },
  {
    type: 'samples',
    samples: {
      height: 2,
      width: 2,
      channels: 1,
      clean: ['AAAA'],
      triggered: ['AAAA'],
      labels: [3],
      attackLabels: [5],
      classNames: ['three'],
    },
  },
  { type: 'log', message: 'pruned 24 of 64 channels' },
  { type: 'ended', state: 'failed', error: 'out of memory' },
];

test('every kind of event passes unchanged, also after a JSON round trip', () => {
  for (const e of EVENTS) {
    for (const raw of [e, JSON.parse(JSON.stringify(e)) as unknown]) {
      const p = parseRunEvent(raw);
      assert.ok('event' in p, `${e.type} refused: ${'reason' in p ? p.reason : ''}`);
      assert.deepEqual(p.event, e);
      const w = parseWorkerMessage(raw);
      assert.ok('message' in w);
    }
  }
  assert.equal(new Set(EVENTS.map((e) => e.type)).size, 14, 'one sample per kind');
});

test('NaN (no backdoor test set) goes through JSON as null and comes back as NaN; Infinity is refused', () => {
  const row = { type: 'baseline', phase: 'train', acc: 90, asr: NaN };
  const p = parseRunEvent(JSON.parse(JSON.stringify(row)));
  assert.ok('event' in p && p.event.type === 'baseline' && Number.isNaN(p.event.asr));
  const inf = parseRunEvent({ ...row, asr: Infinity });
  assert.ok('reason' in inf && /asr/.test(inf.reason));
});

test("0.1.0's epoch lines (no phase, no epochs) read as they were; a current line must have both", () => {
  const old = { type: 'epoch', epoch: 1, loss: 2.3, acc: 71.7, asr: 0.79, lr: 0.1, seconds: 8.7, imagesPerSecond: 290 };
  const p = parseStoredEvent(old);
  assert.ok('event' in p);
  assert.deepEqual(p.event, old);
  const current = parseRunEvent(old);
  assert.ok('reason' in current && /phase is missing/.test(current.reason));
});

test('the worker: its final messages pass, anything else is refused with a reason', () => {
  const ok: unknown[] = [
    { type: 'done' },
    { type: 'cancelled' },
    { type: 'failed', message: 'bad file', kind: 'input', file: '/x.pth' },
    {
      type: 'runDone',
      result: { runId: 'r', runDir: '/d', backend: 'wasm', acc: 84, asr: 2, der: 0.98, table: [{ model: 'erased', acc: 84, asr: 2 }] },
    },
  ];
  for (const m of ok) assert.ok('message' in parseWorkerMessage(m), JSON.stringify(m));
  const bad = parseWorkerMessage({ type: 'failed', message: 'x', kind: 'weird' });
  assert.ok('reason' in bad && /kind/.test(bad.reason));
  assert.ok('reason' in parseWorkerMessage({ type: 'runDone', result: { runId: 'r' } }));
});

test("the host's requests to the worker: every job kind passes, with or without Slurm settings; malformed ones are refused", () => {
  const request = { cwd: '/w', runsDir: '/w/.nad/runs' };
  const jobs = [
    { kind: 'job', config: { kind: 'erase', student: 's.pth' } },
    { kind: 'demo', quick: true, backend: 'auto', seed: 0 },
    { kind: 'resume', runDir: '/w/.nad/runs/r' },
    { kind: 'matrix', file: 'a.nad-matrix.json' },
    { kind: 'preview', config: { kind: 'train' }, samples: 8 },
  ];
  for (const job of jobs) {
    const m = {
      type: 'start',
      request: { ...request, job, slurm: { partition: 'gpu', gpus: 1, time: '2:00:00', extraArgs: ['--mem=8G'] } },
    };
    const p = parseHostMessage(m);
    assert.ok('message' in p, `${job.kind}: ${'reason' in p ? p.reason : ''}`);
    assert.deepEqual(p.message, m);
  }
  assert.ok('message' in parseHostMessage({ type: 'cancel' }));
  const bad: Array<[unknown, RegExp]> = [
    [{ type: 'start', request: { job: jobs[0], runsDir: '/r' } }, /request\.cwd is missing/],
    [{ type: 'start', request: { ...request, job: { kind: 'format-disk' } } }, /request\.job\.kind/],
    [{ type: 'start', request: { ...request, job: { kind: 'job', config: [1, 2] } } }, /config: must be an object/],
    [{ type: 'start', request: { ...request, job: jobs[1], slurm: { gpus: -1 } } }, /slurm\.gpus/],
    [{ type: 'stop' }, /type/],
  ];
  for (const [m, why] of bad) {
    const p = parseHostMessage(m);
    assert.ok('reason' in p && why.test(p.reason), `${JSON.stringify(m)}: ${'reason' in p ? p.reason : 'accepted'}`);
  }
});

test('1,000 arbitrary values (fast-check, seed 2): refused or a valid event, never a throw', () => {
  const kinds = [...new Set(EVENTS.map((e) => e.type))];
  let accepted = 0;
  fc.assert(
    fc.property(
      fc.oneof(
        fc.anything(),
        fc.record(
          { type: fc.constantFrom(...kinds), epoch: fc.anything(), acc: fc.anything(), rows: fc.anything() },
          { requiredKeys: ['type'] },
        ),
        // A valid event with one field replaced by anything.
        fc.tuple(fc.constantFrom(...EVENTS), fc.string(), fc.anything()).map(([e, k, x]) => ({ ...e, [k]: x })),
      ),
      (raw) => {
        const p = parseStoredEvent(raw);
        if ('event' in p) accepted++;
        else assert.ok(p.reason.length > 0);
      },
    ),
    { numRuns: 1000, seed: 2 },
  );
  assert.ok(accepted > 0 && accepted < 1000, `accepted ${accepted}`);
});

test('readRunEvents: hand-edited lines are reported with their line and field; the others are kept', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nad-events-'));
  try {
    writeFileSync(
      join(dir, 'metrics.jsonl'),
      EVENTS.slice(1, 4)
        .map((e) => JSON.stringify(e) + '\n')
        .join(''),
    );
    appendFileSync(
      join(dir, 'metrics.jsonl'),
      [
        JSON.stringify({ ...EVENTS[5], acc: 'high' }),
        JSON.stringify({ type: 'table', rows: [{ model: 'x', acc: 1 }] }),
        JSON.stringify({ type: 'unheard-of' }),
        '{"type":"eval","acc":1}',
        JSON.stringify(EVENTS[15]),
        '{"type":"log","mess',
      ].join('\n'),
    );
    const { events, problems } = readRunEvents(dir);
    assert.deepEqual(
      events.map((e) => e.type),
      ['phase', 'baseline', 'step', 'log'],
    );
    assert.equal(problems.length, 3);
    assert.match(problems[0], /^metrics\.jsonl line 4: not a valid run event \(acc: expected .*number.*, got "high"\)/);
    assert.match(problems[1], /^metrics\.jsonl line 5: not a valid run event \(rows\.0\.asr is missing\)/);
    assert.match(problems[2], /^metrics\.jsonl line 6: not a valid run event \(type: /);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
