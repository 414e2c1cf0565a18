// The history table's pure parts: config flattening, derived columns, "only what differs", multi-column
// sort, CSV/JSON, the value-filter parser, the plot's axes and SVG. Rows are made from real run folders
// (written by the RunStore, read back) where it matters; the rest from plain values.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  cellValue,
  colourSlots,
  columnsOf,
  differingColumns,
  flattenParams,
  moveColumn,
  orderedColumns,
  resultMetrics,
  rowsCsv,
  rowsJson,
  sortRows,
  visibleColumns,
} from '../../src/shared/history-columns';
import { parseFilter, resolveColumn } from '../../src/shared/history-filter';
import { checkMessage, historyViewSchema } from '../../src/shared/message-schemas';
import type { HistoryRow } from '../../src/shared/history-protocol';
import { isStarred, setStarred, STAR_FILE } from '../../src/runs/run-star';
import { RunStore } from '../../src/runs/run-store';
import { niceAxis, scatterSvg } from '../../webview/history/plot-svg';

const ERASE_CONFIG = {
  kind: 'erase',
  name: 'e1',
  backend: 'auto',
  seed: 0,
  backdoor: { trigger: { name: 'gridTrigger' }, targetType: 'all2one', targetLabel: 5, injectPortion: 0.1 },
  cleanCount: 300,
  teacherTraining: {
    epochs: 1,
    betas: [0, 0, 0],
    lrSchedule: [
      [0, 0.1],
      [2, 0.01],
    ],
  },
  training: { epochs: 1, betas: [500, 1000, 1000], augment: true },
  backendUsed: 'wasm',
  provenance: { version: '0.1.0', inputs: [{ role: 'data', path: 'data' }] },
};

function row(id: string, params: Record<string, string | number | boolean>, extra: Partial<HistoryRow> = {}): HistoryRow {
  return {
    dir: `/runs/${id}`,
    id,
    name: id,
    kind: 'erase',
    state: 'finished',
    startedAt: '2026-11-30T10:00:00.000Z',
    hasAttention: false,
    params,
    metrics: {},
    starred: false,
    colour: 0,
    ...extra,
  };
}

test('flattenParams: dotted keys, short lists by index, long or nested lists as JSON, no provenance/name/kind', () => {
  const flat = flattenParams(ERASE_CONFIG);
  assert.equal(flat['training.betas.0'], 500);
  assert.equal(flat['training.betas.2'], 1000);
  assert.equal(flat['teacherTraining.betas.1'], 0);
  assert.equal(flat['teacherTraining.lrSchedule'], '[[0,0.1],[2,0.01]]');
  assert.equal(flat['backdoor.trigger.name'], 'gridTrigger');
  assert.equal(flat['cleanCount'], 300);
  assert.equal(flat['training.augment'], true);
  assert.equal(flat['backend'], 'auto');
  for (const k of Object.keys(flat)) assert.doesNotMatch(k, /^(provenance|name|kind|backendUsed)(\.|$)/);
  assert.equal(
    flattenParams({ images: Array.from({ length: 9 }, (_, i) => `${i}.png`) })['images'],
    JSON.stringify(Array.from({ length: 9 }, (_, i) => `${i}.png`)),
  );
});

test('resultMetrics: every table row as <model>.acc|asr|ra and the report numbers', () => {
  const m = resultMetrics({
    table: [{ model: 'backdoored', acc: 35.5, asr: 3.3, ra: 38.9 }, { model: 'erased', acc: 10, asr: 0 }, { bad: true }],
    report: { anomalyIndex: 2.5, flagged: [1, 2], per: { a: 1, b: 'x' } },
    classes: { numClasses: 10 },
  });
  assert.deepEqual(m, {
    'backdoored.acc': 35.5,
    'backdoored.asr': 3.3,
    'backdoored.ra': 38.9,
    'erased.acc': 10,
    'erased.asr': 0,
    'report.anomalyIndex': 2.5,
    'report.per.a': 1,
  });
  assert.deepEqual(resultMetrics('nonsense'), {});
});

test('columnsOf, differingColumns and visibleColumns: parameters that differ are shown; "only what differs" hides the rest', () => {
  const a = row(
    'a',
    { ...flattenParams(ERASE_CONFIG), 'training.betas.0': 0, cleanCount: 100 },
    { asr: 80, metrics: { 'erased.asr': 80 } },
  );
  const b = row('b', { ...flattenParams(ERASE_CONFIG), 'training.betas.0': 5000, cleanCount: 100 }, { asr: 5 });
  const c = row('c', { ...flattenParams(ERASE_CONFIG), 'training.betas.0': 5000, cleanCount: 300 }, { asr: 2 });
  const rows = [a, b, c];
  const cols = columnsOf(rows);
  const ids = cols.map((x) => x.id);
  assert.ok(ids.includes('params.training.betas.0') && ids.includes('params.cleanCount') && ids.includes('metrics.erased.asr'));
  assert.equal(cols.find((x) => x.id === 'params.training.betas.0')?.numeric, true);
  assert.equal(cols.find((x) => x.id === 'params.backdoor.trigger.name')?.numeric, false);
  const differAll = differingColumns(cols, rows);
  assert.deepEqual([...differAll].filter((id) => id.startsWith('params.')).sort(), ['params.cleanCount', 'params.training.betas.0']);
  const layout = { order: [], visible: {} };
  const shownAll = visibleColumns(cols, layout, { differAcrossAll: differAll, onlyDiffering: false, differAmongShown: differAll });
  assert.ok(
    shownAll.some((x) => x.id === 'params.cleanCount'),
    'a differing parameter is shown by default',
  );
  assert.ok(!shownAll.some((x) => x.id === 'params.seed'), 'a constant derived parameter is hidden by default');
  assert.ok(!shownAll.some((x) => x.id === 'metrics.erased.asr'), 'derived metrics are hidden by default');
  assert.ok(
    shownAll.some((x) => x.id === 'trigger'),
    'friendly columns are shown',
  );
  // Among b and c only cleanCount differs: "only what differs" drops the betas and the friendly parameters that are equal.
  const shown = [b, c];
  const only = visibleColumns(cols, layout, {
    differAcrossAll: differAll,
    onlyDiffering: true,
    differAmongShown: differingColumns(cols, shown),
  });
  assert.ok(only.some((x) => x.id === 'params.cleanCount'));
  assert.ok(!only.some((x) => x.id === 'params.training.betas.0'));
  assert.ok(!only.some((x) => x.id === 'trigger'));
  assert.ok(only.some((x) => x.id === 'asr') && only.some((x) => x.id === 'name'), 'metrics and run columns stay');
  // The user's choices win over the defaults; "name" cannot be hidden.
  const chosen = { order: [], visible: { 'params.seed': true, trigger: false, name: false } };
  const mine = visibleColumns(cols, chosen, { differAcrossAll: differAll, onlyDiffering: false, differAmongShown: differAll });
  assert.ok(mine.some((x) => x.id === 'params.seed') && !mine.some((x) => x.id === 'trigger') && mine[0].id === 'name');
});

test('moveColumn moves a column one visible place; orderedColumns keeps unknown columns at the end', () => {
  const rows = [row('a', { x: 1, y: 2 }), row('b', { x: 2, y: 3 })];
  const cols = columnsOf(rows);
  const vis = visibleColumns(
    cols,
    { order: [], visible: {} },
    { differAcrossAll: differingColumns(cols, rows), onlyDiffering: false, differAmongShown: new Set() },
  );
  const order = moveColumn(cols, vis, 'params.y', -1);
  const after = orderedColumns(cols, { order, visible: {} }).map((c) => c.id);
  assert.ok(after.indexOf('params.y') < after.indexOf('params.x'));
  assert.deepEqual(
    moveColumn(cols, vis, 'name', -1),
    cols.map((c) => c.id),
    'the first column cannot move left',
  );
  assert.deepEqual(orderedColumns(cols, { order: ['asr', 'gone'], visible: {} })[0].id, 'asr');
});

test('sortRows: keys in order, numbers by value, text naturally, missing values last either way', () => {
  const rows = [
    row('r1', { b: 5000 }, { asr: 3, name: 'run10' }),
    row('r2', { b: 500 }, { asr: 3, name: 'run2' }),
    row('r3', { b: 500 }, { asr: 1, name: 'run3' }),
    row('r4', {}, { name: 'run1' }),
  ];
  const ids = (keys: Parameters<typeof sortRows>[1]): string[] => sortRows(rows, keys).map((r) => r.id);
  assert.deepEqual(
    ids([
      { column: 'params.b', descending: false },
      { column: 'asr', descending: true },
    ]),
    ['r2', 'r3', 'r1', 'r4'],
  );
  assert.deepEqual(
    ids([
      { column: 'params.b', descending: true },
      { column: 'asr', descending: false },
    ]),
    ['r1', 'r3', 'r2', 'r4'],
  );
  assert.deepEqual(ids([{ column: 'name', descending: false }]), ['r4', 'r2', 'r3', 'r1']);
});

test('rowsCsv and rowsJson: values as stored, quoted where needed', () => {
  const rows = [row('a', { note: 'x, "y"', b: 0.1 + 0.2 }, { asr: 4.444444444444445 })];
  const cols = columnsOf(rows).filter((c) => ['name', 'asr', 'params.note', 'params.b', 'ra'].includes(c.id));
  const csv = rowsCsv(cols, rows);
  assert.equal(csv, 'id,name,asr,ra,params.note,params.b\r\na,a,4.444444444444445,,"x, ""y""",0.30000000000000004\r\n');
  const json = JSON.parse(rowsJson(cols, rows)) as { runs: Array<Record<string, unknown>> };
  assert.deepEqual(json.runs[0], {
    id: 'a',
    name: 'a',
    asr: 4.444444444444445,
    ra: null,
    'params.note': 'x, "y"',
    'params.b': 0.30000000000000004,
  });
});

test('parseFilter: comparisons, and/or/not, parentheses, names by their end, and clear errors', () => {
  const rows = [
    row('a', { 'training.betas.2': 1000, 'teacherTraining.betas.2': 0, cleanCount: 100 }, { asr: 80, acc: 90, kind: 'erase' }),
    row(
      'b',
      { 'training.betas.2': 5000, 'teacherTraining.betas.2': 0, cleanCount: 300 },
      { asr: 5, acc: 85, kind: 'defend', trigger: 'gridTrigger' },
    ),
    row('c', { cleanCount: 300 }, { asr: 9.99, acc: 70, kind: 'defend' }),
  ];
  const cols = columnsOf(rows);
  const keep = (text: string): string[] => {
    const f = parseFilter(text, cols);
    assert.ok(f.ok, `${text}: ${f.ok ? '' : f.error}`);
    return rows.filter((r) => f.test(r)).map((r) => r.id);
  };
  assert.deepEqual(keep(''), ['a', 'b', 'c']);
  assert.deepEqual(keep('asr < 10'), ['b', 'c']);
  assert.deepEqual(keep('ASR<10'), ['b', 'c']);
  assert.deepEqual(keep('acc >= 80 and kind = defend'), ['b']);
  assert.deepEqual(keep('beta.2 > 500'), ['a', 'b'], 'beta.2 means training.betas.2 (the shortest key ending so)');
  assert.deepEqual(keep('teacherTraining.betas.2 = 0'), ['a', 'b']);
  assert.deepEqual(keep('not (asr < 10) or cleanCount = 300'), ['a', 'b', 'c']);
  assert.deepEqual(keep('asr < 10 && !(kind == "defend")'), []);
  assert.deepEqual(keep("trigger ~ 'grid'"), ['b']);
  assert.deepEqual(keep('trigger != gridTrigger'), ['a', 'c'], 'a run without the value passes !=');
  assert.deepEqual(keep('asr <= 9.99 or asr > 50%'), ['a', 'b', 'c']);
  const bad = (text: string, message: RegExp, at: number): void => {
    const f = parseFilter(text, cols);
    assert.equal(f.ok, false, text);
    if (!f.ok) {
      assert.match(f.error, message);
      assert.equal(f.at, at, `${text}: position`);
    }
  };
  bad('asr <', /expected a value after “<”/, 5);
  bad('asr 10', /expected a comparison/, 4);
  bad('nope > 1', /no column “nope”/, 0);
  bad('(asr < 10', /missing “\)”/, 9);
  bad('asr < 10 acc > 5', /expected “and”, “or” or the end/, 9);
  bad('asr < 10 and', /expected a column name/, 12);
  bad('asr # 3', /unexpected “#”/, 4);
  assert.deepEqual(resolveColumn('betas.2', columnsOf([row('x', { 'a.betas.2': 1, 'b.betas.2': 2 })])), {
    error: '“betas.2” could be a.betas.2 or b.betas.2: write the whole name',
  });
});

test('stars are a star.json in the run folder, written atomically and removed on unstar', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'nad-star-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const run = new RunStore(dir).create('erase', { name: 'starred' }, 'starred');
  assert.equal(isStarred(run.dir), false);
  setStarred(run.dir, true);
  assert.equal(isStarred(run.dir), true);
  const listed = new RunStore(dir).list();
  assert.equal(listed.runs.length, 1, 'the star file does not make the folder unreadable');
  assert.equal(listed.broken.length, 0);
  setStarred(run.dir, false);
  assert.equal(isStarred(run.dir), false);
  setStarred(run.dir, false);
  assert.equal(STAR_FILE, 'star.json');
});

test('colourSlots: runs numbered in order of creation (their ids), whatever the order given', () => {
  const slots = colourSlots(['20261130-1000-b', '20261129-0900-a', '20261130-1100-c']);
  assert.deepEqual(
    [...slots],
    [
      ['20261129-0900-a', 0],
      ['20261130-1000-b', 1],
      ['20261130-1100-c', 2],
    ],
  );
});

test('niceAxis and scatterSvg: round ticks covering the points, one circle per point where the axes put it', () => {
  assert.deepEqual(niceAxis([0, 5000]).ticks, [0, 1000, 2000, 3000, 4000, 5000]);
  assert.deepEqual(niceAxis([3, 40], true).ticks, [0, 20, 40, 60, 80, 100]);
  assert.deepEqual(niceAxis([7, 7]).ticks.length > 1, true);
  const x = niceAxis([0, 5000]);
  const y = niceAxis([2.2, 82.8], true);
  const svg = scatterSvg({
    title: 'ASR against <β>',
    xLabel: 'training.betas.0',
    yLabel: 'ASR',
    x,
    y,
    points: [
      { x: 0, y: 82.8, colour: '#3794ff', label: 'e-b0' },
      { x: 5000, y: 2.2, colour: '#f14c4c', label: 'e-b5000' },
    ],
    foreground: '#ccc',
    grid: '#444',
    background: '#1e1e1e',
    font: 'sans-serif',
    width: 720,
    height: 440,
  });
  assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  assert.match(svg, /ASR against &lt;β&gt;/);
  const circles = [...svg.matchAll(/<circle cx="([\d.]+)" cy="([\d.]+)"[^>]*data-x="([\d.]+)" data-y="([\d.]+)"/g)];
  assert.equal(circles.length, 2);
  // Plot area: x from 70 to 700, y from 40 to 384.
  assert.deepEqual([+circles[0][1], +circles[1][1]], [70, 700]);
  assert.ok(Math.abs(+circles[0][2] - (384 - 0.828 * 344)) < 0.01);
  assert.ok(Math.abs(+circles[1][2] - (384 - 0.022 * 344)) < 0.01);
  assert.doesNotMatch(svg, /https?:\/\/(?!www\.w3\.org\/2000\/svg)/, 'no remote content');
  assert.equal(cellValue(row('z', {}), 'unknown'), undefined);
});

test('historyViewSchema: the page messages pass, malformed ones are refused', () => {
  const ok = (m: unknown): boolean => checkMessage(historyViewSchema, m).ok;
  assert.ok(ok({ type: 'star', dir: '/runs/a', starred: true }));
  assert.ok(ok({ type: 'export', what: 'plot', format: 'png', content: 'iVBORw0KGgo=', base64: true }));
  assert.ok(ok({ type: 'layout', layout: { order: ['asr', 'acc'], visible: { backend: false } } }));
  assert.ok(!ok({ type: 'star', dir: '/runs/a', starred: 'yes' }));
  assert.ok(!ok({ type: 'export', what: 'plot', format: 'exe', content: '', base64: false }));
  assert.ok(!ok({ type: 'layout', layout: { order: 'asr', visible: {} } }));
});
