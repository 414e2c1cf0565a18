// Attention by epoch: a real erase on digits stores its erased model's maps after every epoch in
// attention/epochs.jsonl, the same snapshots the live panel got, the last one equal to the final maps of
// maps.json; the editor's reader gets them back, and a torn or hand-broken line is reported by file and line
// (and left out) while maps.json still opens; a resumed run's next line starts after a torn one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/engine/backend';
import { cleanSubset, loadDataset } from '../../src/engine/data';
import { appendEpochAttention } from '../../src/runs/attention-files';
import { BADNET_TRAINING, DEFAULT_BACKDOOR, NAD_TRAINING } from '../../src/runs/config';
import { runJob } from '../../src/runs/jobs';
import { RunHandle } from '../../src/runs/run-store';
import { parseAttentionMaps, parseEpochMaps } from '../../src/host/attention/maps-file';
import { EPOCH_MAPS_FILE } from '../../src/shared/attention-protocol';
import type { AttentionSnapshot, RunEvent } from '../../src/shared/run-events';
import { writeIdx } from '../fixtures/data/idx';
import { tempFolder } from '../fixtures/data/paths';

test('an erase stores its maps after every epoch; the reader gets them back and reports a broken line by file and line', async () => {
  await initBackend('auto');
  const tmp = tempFolder('attention-epochs');
  try {
    writeIdx(tmp.dir, 'train', cleanSubset(await loadDataset('mnist', { split: 'train' }), { count: 300, seed: 1 }));
    writeIdx(tmp.dir, 't10k', cleanSubset(await loadDataset('mnist', { split: 'test' }), { count: 100, seed: 1 }));
    const common = { backend: 'auto' as const, seed: 0, test: tmp.dir, backdoor: DEFAULT_BACKDOOR };
    const trained = await runJob(
      {
        ...common,
        kind: 'train',
        name: 'backdoored',
        data: tmp.dir,
        model: 'auto',
        training: { ...BADNET_TRAINING, epochs: 1, batchSize: 32 },
      },
      { cwd: tmp.dir },
    );
    const before = tf.memory().numTensors;
    const live: AttentionSnapshot[] = [];
    const erased = await runJob(
      {
        ...common,
        kind: 'erase',
        name: 'erase',
        student: trained.modelPath as string,
        teacher: trained.modelPath as string,
        data: tmp.dir,
        cleanCount: 64,
        teacherTraining: { ...NAD_TRAINING, epochs: 1, betas: [0, 0, 0] },
        training: { ...NAD_TRAINING, epochs: 3, batchSize: 32, augment: false },
      },
      { cwd: tmp.dir, onEvent: (e: RunEvent) => e.type === 'attention' && live.push(e.snapshot) },
    );
    assert.equal(tf.memory().numTensors, before, 'the run left tensors behind');

    // One line per epoch of the erased model, as the live panel got them.
    const file = join(erased.runDir, EPOCH_MAPS_FILE);
    const text = readFileSync(file, 'utf8');
    const maps = parseAttentionMaps(readFileSync(join(erased.runDir, 'attention', 'maps.json'), 'utf8'));
    assert.ok('maps' in maps, 'maps.json does not parse');
    const count = maps.maps.labels.length;
    const read = parseEpochMaps(text, count, EPOCH_MAPS_FILE);
    assert.equal(read.problem, undefined);
    assert.deepEqual(
      read.snapshots.map((s) => [s.model, s.epoch]),
      [
        ['erased', 1],
        ['erased', 2],
        ['erased', 3],
      ],
    );
    // The live panel also gets the models' maps before the erasure (epoch 0), which maps.json keeps as their final ones.
    assert.deepEqual(
      read.snapshots,
      live.filter((s) => s.epoch > 0),
    );
    // The last epoch's maps are the final maps; the first differ from them (the model changed).
    const final = maps.maps.snapshots.find((s) => s.model === 'erased');
    assert.ok(final, `final maps of ${maps.maps.snapshots.map((s) => s.model).join(', ')}`);
    const last = read.snapshots[2];
    assert.deepEqual([last.clean, last.triggered, last.predictions], [final.clean, final.triggered, final.predictions]);
    assert.notDeepEqual(read.snapshots[0].triggered, final.triggered);
    console.log(
      `epochs.jsonl: ${statSync(file).size} bytes for 3 epochs of ${count} digits (${last.groups.map((g) => `${g.height}x${g.width}`).join(', ')})`,
    );

    // A run killed while writing its last line: that line is reported as cut off, the others stay.
    const lines = text.trimEnd().split('\n');
    const torn = [...lines.slice(0, 2), lines[2].slice(0, 500)].join('\n');
    const cut = parseEpochMaps(torn, count, EPOCH_MAPS_FILE);
    assert.equal(cut.snapshots.length, 2);
    assert.equal(cut.problem, `${EPOCH_MAPS_FILE} line 3: cut off (the run stopped while writing it)`);
    // Resuming after it: the next snapshot goes on a line of its own, so only the torn line is lost.
    writeFileSync(file, torn);
    const run = new RunHandle(erased.runId, erased.runDir, 'erase');
    appendEpochAttention(run, last);
    const resumed = parseEpochMaps(readFileSync(file, 'utf8'), count, EPOCH_MAPS_FILE);
    assert.deepEqual(
      resumed.snapshots.map((s) => s.epoch),
      [1, 2, 3],
    );
    assert.match(resumed.problem ?? '', /^attention\/epochs\.jsonl line 3: cut off/);

    // A hand-edited value: the line is named with the field, the other epochs still read.
    const edited = JSON.parse(lines[1]) as { clean: unknown[][] };
    edited.clean[1][5] = 'x';
    const bad = parseEpochMaps([lines[0], JSON.stringify(edited), lines[2]].join('\n'), count, EPOCH_MAPS_FILE);
    assert.equal(bad.problem, `${EPOCH_MAPS_FILE} line 2: snapshot.clean[1][5] is not a finite number ("x")`);
    assert.deepEqual(
      bad.snapshots.map((s) => s.epoch),
      [1, 3],
    );
    // Maps of another sample count (a file from another run) are refused line by line.
    const other = parseEpochMaps(lines[0], count + 1, EPOCH_MAPS_FILE);
    assert.equal(other.snapshots.length, 0);
    assert.match(other.problem ?? '', /line 1: snapshot\.count is \d+ but the file has \d+ images/);
    // Not JSON at all, with more bad lines after it.
    const garbage = parseEpochMaps(['{"model": oops}', lines[0], 'nonsense'].join('\n'), count, EPOCH_MAPS_FILE);
    assert.equal(garbage.snapshots.length, 1);
    assert.match(garbage.problem ?? '', /^attention\/epochs\.jsonl line 1: not valid JSON \(.+\) \(and 1 more bad line\)$/);
  } finally {
    tmp.remove();
  }
});
