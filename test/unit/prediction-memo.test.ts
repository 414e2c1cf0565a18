// Predictions made once per weights and images (PredictionMemo): the same numbers as without it; a changed
// weight or other images are run again; a progress subset is read off its whole set's predictions; in a
// matrix every finished model goes over the whole test set exactly once, and a defense's "backdoored" row
// reads the attack run's predictions of the same file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/engine/backend';
import { cleanSubset, loadDataset } from '../../src/engine/data';
import { classBreakdown, epochEvalSubset, evaluate, predict, type EvalSets } from '../../src/engine/evaluate';
import { createModel } from '../../src/engine/models';
import { PredictionMemo } from '../../src/engine/prediction-memo';
import { backdoorTestSet } from '../../src/engine/triggers';
import { runMatrix } from '../../src/runs/matrix/run';
import { parseMatrix } from '../../src/runs/matrix/spec';
import { tempFolder } from '../fixtures/data/paths';
import { writeSmallMnist } from '../integration/fixtures/small-mnist';

const ROOT = join(__dirname, '..', '..');
const SPEC = { arch: 'cnn', numClasses: 10, inChannels: 1, imageSize: 28 } as const;

async function testSets(): Promise<EvalSets> {
  await initBackend('auto');
  const clean = cleanSubset(await loadDataset('mnist', { split: 'test' }), { count: 150, seed: 3 });
  return { clean, backdoor: backdoorTestSet(clean, { trigger: { name: 'gridTrigger' }, targetType: 'all2one', targetLabel: 5 }) };
}

test('the memo: same predictions and numbers as without it, one pass per weights and images, subsets read off the whole set', async () => {
  const sets = await testSets();
  const bd = sets.backdoor as NonNullable<EvalSets['backdoor']>;
  const start = tf.memory().numTensors;
  const model = createModel(SPEC, 7);
  const memo = new PredictionMemo();
  const direct = predict(model, sets.clean);
  const first = memo.predict(model, sets.clean);
  assert.deepEqual(first, direct);
  assert.deepEqual(memo.counts(), { forwarded: 150, reused: 0 });
  first.fill(-1);
  assert.deepEqual(memo.predict(model, sets.clean), direct, 'a copy is handed out: changing it does not change the memo');
  assert.deepEqual(memo.counts(), { forwarded: 150, reused: 150 });

  // The same weights in another model object, and the same images in other arrays, are the same entry.
  const twin = createModel(SPEC, 7);
  const copy = { ...sets.clean, images: sets.clean.images.slice() };
  assert.deepEqual(memo.predict(twin, copy), direct);
  assert.deepEqual(memo.counts(), { forwarded: 150, reused: 300 });

  // evaluate and classBreakdown give the same numbers with the memo as without; the triggered set is run once.
  assert.deepEqual(evaluate(model, sets, memo), evaluate(model, sets));
  assert.deepEqual(memo.counts(), { forwarded: 150 + bd.count, reused: 450 });
  assert.deepEqual(classBreakdown(model, sets, memo), classBreakdown(model, sets));
  assert.deepEqual(memo.counts(), { forwarded: 150 + bd.count, reused: 600 + bd.count });

  // A progress subset of a set already run is read off it, and equals running it.
  const some = epochEvalSubset(sets, 40);
  assert.deepEqual(evaluate(model, some, memo), evaluate(model, some));
  assert.deepEqual(memo.counts(), { forwarded: 150 + bd.count, reused: 680 + bd.count });

  // One weight changed (a running statistic, not even a trained weight): everything runs again.
  const runningMean = [...model.params.toStateDict().keys()].find((k) => k.endsWith('running_mean')) as string;
  const v = model.params.get(runningMean);
  tf.tidy(() => v.assign(tf.add(v, 0.5)));
  const changed = memo.predict(model, sets.clean);
  assert.deepEqual(changed, predict(model, sets.clean));
  assert.equal(memo.counts().forwarded, 300 + bd.count);
  // Another model's subset with no whole-set predictions known is run (40 images), not guessed.
  const other = createModel(SPEC, 8);
  assert.deepEqual(memo.predict(other, some.clean), predict(other, some.clean));
  assert.equal(memo.counts().forwarded, 340 + bd.count);
  for (const m of [model, twin, other]) m.dispose();
  assert.equal(tf.memory().numTensors, start);
});

test('a matrix: each finished model goes over the whole test set once; the defense reads the attack run’s predictions', async () => {
  const t = tempFolder('memo');
  try {
    const data = writeSmallMnist(join(t.dir, 'digits'), { train: 10, test: 6, repoRoot: ROOT });
    const spec = parseMatrix(
      {
        name: 'memo',
        data,
        attacks: ['badnets'],
        defenses: ['none', 'finetune'],
        cleanCount: 40,
        training: { epochs: 2, batchSize: 50, augment: false, epochEvalImages: 20 },
        defenseTraining: { epochs: 2, batchSize: 20, augment: false, epochEvalImages: 20 },
      },
      'memo.nad-matrix.json',
      t.dir,
    );
    const r = await runMatrix(spec, { cwd: t.dir });
    assert.deepEqual(
      r.outcomes.map((o) => o.state),
      ['finished', 'finished'],
    );
    const counts = (runId: string): { forwarded: number; reused: number; triggered: number } => {
      const dir = join(t.dir, '.nad', 'runs', runId);
      const lines = readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n');
      const log = lines
        .map((l) => JSON.parse(l) as { type: string; message?: string })
        .find((e) => /^test predictions:/.test(e.message ?? ''));
      const m = /(\d+) images run through a model, (\d+) read from an earlier pass/.exec(log?.message ?? '');
      assert.ok(m, `${runId}: the run says how many test images it ran`);
      const results = JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8')) as { classes: { triggered: number[][] } };
      const triggered = results.classes.triggered.flat().reduce((a, b) => a + b, 0);
      return { forwarded: Number(m[1]), reused: Number(m[2]), triggered };
    };
    const trained = counts(r.outcomes[0].runId as string);
    const whole = 60 + trained.triggered; // 6 test digits of each class
    assert.ok(trained.triggered > 20, 'more triggered images than the subset, so the subset is a real one');
    // Training: the baseline and epoch 1 on the subset (20 + 20 each), epoch 2 on all; the per-class results read it.
    assert.deepEqual([trained.forwarded, trained.reused], [40 + 40 + whole, whole]);
    const defended = counts(r.outcomes[1].runId as string);
    assert.equal(defended.triggered, trained.triggered);
    // Finetuning: its "backdoored" row and the baseline (the same weights) are read; epoch 1 on the subset, epoch 2 on all, run;
    // the per-class results read epoch 2's.
    assert.deepEqual([defended.forwarded, defended.reused], [40 + whole, whole + 40 + whole]);
  } finally {
    t.remove();
  }
});
