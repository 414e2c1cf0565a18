// The history's provenance columns and its clean share, on run folders written by the real RunStore and read
// back: a run from before provenance was recorded, one with part of it, and new ones whose provenance is
// collected by the run layer from real files. Cells read "unknown" where a run recorded nothing (never
// "undefined"); the value filter finds runs by backend, versions and (abbreviated) hashes; "only what
// differs" treats provenance like parameters; the clean share is the same number whether a run asked for
// a count or a ratio.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import {
  cellValue,
  cleanShareOf,
  columnsOf,
  differingColumns,
  flattenParams,
  isColumnVisible,
  PROVENANCE_COLUMNS,
  visibleColumns,
} from '../../src/shared/history-columns';
import { parseFilter } from '../../src/shared/history-filter';
import { hashMatches, provenanceCells, shortHash } from '../../src/shared/history-provenance';
import type { HistoryRow } from '../../src/shared/history-protocol';
import { UNKNOWN } from '../../src/shared/provenance';
import type { JobConfig } from '../../src/runs/config';
import { loadCleanData } from '../../src/runs/jobs/inputs';
import { collectProvenance } from '../../src/runs/provenance';
import { RunStore, type RunSummary } from '../../src/runs/run-store';
import { CIFAR_DIR, hasShared, tempFolder } from '../fixtures/data/paths';

const BACKEND = {
  name: 'wasm',
  description: 'wasm (SIMD + FMA, 2 threads, NAD kernels on 2 threads)',
  fallbackReasons: [],
  threads: 2,
} as const;
const backdoor = { trigger: { name: 'gridTrigger' }, targetType: 'all2one', targetLabel: 5, injectPortion: 0.1 };
const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

/** A history row from a run folder, made by the shared functions the host's historyRow uses. */
function rowOf(r: RunSummary): HistoryRow {
  const p = provenanceCells(r.config['provenance']);
  const clean = cleanShareOf(r.config, r.status);
  const used = r.config['backendUsed'];
  return {
    dir: r.dir,
    id: r.id,
    name: String(r.config['name']),
    kind: r.status.kind,
    state: r.status.state,
    startedAt: r.status.startedAt,
    backend: typeof used === 'string' ? used : r.status.backend?.split(' ')[0],
    hasAttention: false,
    params: flattenParams(r.config),
    metrics: {},
    starred: false,
    colour: 0,
    provenance: p.values,
    provenanceNotes: p.notes,
    cleanShare: clean.share,
    cleanShareNote: clean.note,
  };
}

/** Four runs as each version of the product wrote them; the rows read back by name. */
function makeRuns(dir: string): Record<string, HistoryRow> {
  const data = join(dir, 'train.bin');
  const checkpoint = join(dir, 'suspect.safetensors');
  writeFileSync(data, 'abc');
  writeFileSync(checkpoint, 'a checkpoint');
  const store = new RunStore(dir);
  const create = (config: Record<string, unknown>, status: Record<string, unknown>): void => {
    const run = store.create(config['kind'] as 'train', config, String(config['name']));
    run.update(status);
    run.finish({ acc: 90, asr: 5 });
  };
  // Before provenance and backendUsed: the backend is only in status.json; a count and no data size.
  create({ kind: 'erase', name: 'old', data, cleanCount: 50, backdoor }, { backend: 'wasm (SIMD, 1 thread)' });
  // A version that recorded part of it.
  create(
    {
      kind: 'erase',
      name: 'partial',
      data,
      cleanRatio: 0.05,
      backdoor,
      backendUsed: 'cpu',
      provenance: { version: '0.0.9', node: 'v20.1.0' },
    },
    { backend: 'cpu' },
  );
  const train = { kind: 'train', name: 'new-train', data, test: data, backdoor, backend: 'auto', seed: 0 };
  create({ ...train, backendUsed: 'wasm', provenance: collectProvenance(train as unknown as JobConfig, BACKEND) }, {});
  const defend = { kind: 'defend', name: 'new-defend', method: 'fine-pruning', data, test: data, model: checkpoint, cleanCount: 50 };
  create(
    { ...defend, backdoor, backendUsed: 'wasm', provenance: collectProvenance({ ...defend, backdoor } as unknown as JobConfig, BACKEND) },
    { cleanImages: 50, dataImages: 200 },
  );
  const { runs, broken } = store.list();
  assert.deepEqual(broken, []);
  return Object.fromEntries(runs.map((r) => [String(r.config['name']), rowOf(r)]));
}

function shown(rows: Record<string, HistoryRow>, where: string): string[] {
  const all = Object.values(rows);
  const f = parseFilter(where, columnsOf(all));
  assert.ok(f.ok, `${where}: ${f.ok ? '' : f.error}`);
  return all
    .filter(f.test)
    .map((r) => r.name)
    .sort();
}

test('provenance cells: "unknown" for a run without provenance or a missing field, the recorded values otherwise', () => {
  const tmp = tempFolder('history-provenance');
  try {
    const rows = makeRuns(tmp.dir);
    const cell = (name: string, key: string): unknown => cellValue(rows[name], `provenance.${key}`);
    for (const c of PROVENANCE_COLUMNS) {
      assert.equal(cellValue(rows['old'], c.id), UNKNOWN, `old run, ${c.id}`);
      for (const r of Object.values(rows)) {
        const v = cellValue(r, c.id);
        assert.ok(v === undefined || (typeof v === 'string' && v !== '' && v !== 'undefined'), `${r.name}, ${c.id}: ${String(v)}`);
      }
    }
    assert.deepEqual(
      ['version', 'backend', 'kernels', 'node', 'tfjs', 'data_sha256', 'checkpoint_sha256'].map((k) => cell('partial', k)),
      ['0.0.9', UNKNOWN, UNKNOWN, 'v20.1.0', UNKNOWN, UNKNOWN, UNKNOWN],
    );
    assert.equal(cell('new-train', 'backend'), BACKEND.description);
    assert.equal(cell('new-train', 'node'), process.version);
    assert.equal(cell('new-train', 'tfjs'), tf.version_core);
    assert.match(String(cell('new-train', 'kernels')), /^[0-9a-f]{16}$/);
    assert.match(String(cell('new-train', 'version')), /^\d+\.\d+\.\d+/);
    assert.equal(cell('new-train', 'data_sha256'), sha256('abc'));
    // A training run reads no checkpoint: no value (the cell shows "–"), not "unknown".
    assert.equal(cell('new-train', 'checkpoint_sha256'), undefined);
    assert.equal(cell('new-defend', 'checkpoint_sha256'), sha256('a checkpoint'));
    assert.match(rows['new-defend'].provenanceNotes?.['checkpoint_sha256'] ?? '', /^model: .*suspect\.safetensors\nSHA-256 [0-9a-f]{64}$/);
    // A row from a host that sent no provenance at all reads "unknown" too.
    const { provenance: _p, ...bare } = rows['new-train'];
    assert.equal(cellValue(bare, 'provenance.tfjs'), UNKNOWN);
    assert.deepEqual(provenanceCells('not an object').values.checkpoint_sha256, UNKNOWN);
    assert.deepEqual(provenanceCells({ inputs: [null, 3, { role: 'data' }] }).values.data_sha256, UNKNOWN);
  } finally {
    tmp.remove();
  }
});

test('the value filter finds runs by backend, versions and hashes (whole, abbreviated, ^= prefix)', () => {
  const tmp = tempFolder('history-provenance');
  try {
    const rows = makeRuns(tmp.dir);
    assert.deepEqual(shown(rows, 'backend = wasm'), ['new-defend', 'new-train', 'old']);
    assert.deepEqual(shown(rows, 'engine ~ simd'), ['new-defend', 'new-train']);
    assert.deepEqual(shown(rows, 'node = unknown'), ['old']);
    assert.deepEqual(shown(rows, 'kernels = unknown or version = unknown'), ['old', 'partial']);
    assert.deepEqual(shown(rows, `tfjs = ${tf.version_core}`), ['new-defend', 'new-train']);
    assert.deepEqual(shown(rows, 'version = 0.0.9'), ['partial']);
    assert.deepEqual(shown(rows, 'extension = 0.0.9'), ['partial'], 'a column title is a name too');
    assert.deepEqual(shown(rows, 'provenance.node ^= v20'), ['new-defend', 'new-train', 'partial']);
    const abc = sha256('abc');
    assert.deepEqual(shown(rows, `data_sha256 = ${abc}`), ['new-defend', 'new-train']);
    assert.deepEqual(shown(rows, `data_sha256 = ${shortHash(abc)}`), ['new-defend', 'new-train']);
    assert.deepEqual(shown(rows, `data_sha256 = ${abc.slice(0, 7).toUpperCase()}`), ['new-defend', 'new-train']);
    assert.deepEqual(shown(rows, `data_sha256 = ${abc.slice(0, 6)}`), [], 'fewer than 7 digits is not an abbreviation');
    assert.deepEqual(shown(rows, `data_sha256 ^= ${abc.slice(0, 4)}`), ['new-defend', 'new-train']);
    assert.deepEqual(shown(rows, `data_sha256 != ${shortHash(abc)}`), ['old', 'partial']);
    assert.deepEqual(shown(rows, 'checkpoint_sha256 = unknown'), ['old', 'partial']);
    assert.deepEqual(shown(rows, 'checkpoint_sha256 != unknown'), ['new-defend', 'new-train']);
    const bad = parseFilter('tfjs', columnsOf(Object.values(rows)));
    assert.ok(!bad.ok && /\^=/.test(bad.error), 'the error lists ^= among the comparisons');
  } finally {
    tmp.remove();
  }
});

test('hashes whose digits read as a number, or start with one, still filter as text', () => {
  const hash = `9350e81${'a'.repeat(57)}`;
  assert.ok(hashMatches(hash, '9350e81') && hashMatches(hash, hash.toUpperCase()) && !hashMatches(hash, '9350e8'));
  assert.ok(hashMatches('embedded', 'EMBEDDED') && !hashMatches('embedded', 'embed'));
  assert.equal(shortHash(hash), '9350e81aaaaa');
  assert.equal(shortHash('missing'), 'missing');
  const row = (name: string, data: string): HistoryRow => ({
    dir: `/r/${name}`,
    id: name,
    name,
    kind: 'train',
    state: 'finished',
    startedAt: '2026-11-30T10:00:00.000Z',
    hasAttention: false,
    params: {},
    metrics: {},
    starred: false,
    colour: 0,
    provenance: { data_sha256: data },
  });
  const rows = { a: row('a', hash), b: row('b', sha256('abc')) };
  assert.deepEqual(shown(rows, 'data_sha256 = 9350e81'), ['a']);
  assert.deepEqual(shown(rows, 'data_sha256 = 9350e81aaaa'), ['a']);
  assert.deepEqual(shown(rows, 'data_sha256 ~ 0e81'), ['a']);
});

test('provenance columns are offered hidden, shown when chosen, and "only what differs" drops the equal ones', () => {
  const tmp = tempFolder('history-provenance');
  try {
    const rows = makeRuns(tmp.dir);
    const all = Object.values(rows);
    const cols = columnsOf(all);
    const ids = cols.map((c) => c.id);
    for (const c of PROVENANCE_COLUMNS) assert.ok(ids.includes(c.id) && c.group === 'provenance');
    const differAll = differingColumns(cols, all);
    const empty = { order: [], visible: {} };
    assert.ok(!PROVENANCE_COLUMNS.some((c) => isColumnVisible(c, empty, differAll)), 'hidden by default');
    const chosen = { order: [], visible: Object.fromEntries(PROVENANCE_COLUMNS.map((c) => [c.id, true])) };
    const both = [rows['new-train'], rows['new-defend']];
    const draw = (onlyDiffering: boolean): string[] =>
      visibleColumns(cols, chosen, { differAcrossAll: differAll, onlyDiffering, differAmongShown: differingColumns(cols, both) })
        .map((c) => c.id)
        .filter((id) => id.startsWith('provenance.'));
    assert.deepEqual(
      draw(false),
      PROVENANCE_COLUMNS.map((c) => c.id),
    );
    // The two new runs share everything but the checkpoint (the training run read none).
    assert.deepEqual(draw(true), ['provenance.checkpoint_sha256']);
  } finally {
    tmp.remove();
  }
});

test('clean share: the same percent whether a run asked for a count or a ratio; unknown where nothing says', () => {
  const tmp = tempFolder('history-provenance');
  try {
    const rows = makeRuns(tmp.dir);
    assert.equal(rows['new-defend'].cleanShare, 25);
    assert.equal(rows['new-defend'].cleanShareNote, '50 of 200 images (cleanCount 50)');
    assert.equal(rows['partial'].cleanShare, 5);
    assert.equal(rows['old'].cleanShare, undefined);
    assert.match(rows['old'].cleanShareNote ?? '', /cleanCount 50 .*did not record/);
    assert.equal(rows['new-train'].cleanShare, undefined, 'a training run is given no clean data');
    assert.deepEqual(shown(rows, 'cleanShare < 10'), ['partial']);
    assert.deepEqual(shown(rows, 'cleanShare >= 10'), ['new-defend']);
  } finally {
    tmp.remove();
  }
  assert.deepEqual(cleanShareOf({ kind: 'finetune' }, {}), { share: 100, note: 'all the data' });
  assert.deepEqual(cleanShareOf({ kind: 'erase', cleanRatio: 0.05 }, { cleanImages: 3000, dataImages: 60000 }), {
    share: 5,
    note: '3000 of 60000 images (cleanRatio 0.05)',
  });
  assert.deepEqual(cleanShareOf({ kind: 'eval' }, {}), {});
});

test('loadCleanData reports the size of the data the clean subset came from (what status.json records)', async () => {
  const all = await loadCleanData({ data: 'mnist', seed: 0 });
  assert.equal(all.clean.count, all.of);
  const byCount = await loadCleanData({ data: 'mnist', cleanCount: 600, seed: 0 });
  assert.deepEqual([byCount.clean.count, byCount.of], [600, all.of]);
  const byRatio = await loadCleanData({ data: 'mnist', cleanRatio: 0.05, seed: 0 });
  assert.deepEqual([byRatio.clean.count, byRatio.of], [Math.floor(0.05 * all.of), all.of]);
});

test(
  'on the real CIFAR-10 subset the data hash starts with digits and filters unquoted',
  { skip: !hasShared() && 'no ../shared data' },
  () => {
    const tmp = tempFolder('history-provenance');
    try {
      const data = join(CIFAR_DIR, 'train.bin');
      const config = { kind: 'train', name: 'cifar', data, test: join(CIFAR_DIR, 'test.bin'), backdoor, backend: 'auto', seed: 0 };
      const store = new RunStore(tmp.dir);
      store.create('train', { ...config, backendUsed: 'wasm', provenance: collectProvenance(config as unknown as JobConfig, BACKEND) });
      const rows = { cifar: rowOf(store.list().runs[0]) };
      const hash = String(cellValue(rows.cifar, 'provenance.data_sha256'));
      assert.match(hash, /^[0-9a-f]{64}$/);
      assert.deepEqual(shown(rows, `data_sha256 = ${shortHash(hash)}`), ['cifar']);
      assert.deepEqual(shown(rows, `data_sha256 = ${hash}`), ['cifar']);
    } finally {
      tmp.remove();
    }
  },
);
