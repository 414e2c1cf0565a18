// Per-epoch progress on a fixed subset of the test set (TrainSettings.epochEvalImages), and `nad demo
// --matrix`, which uses it: the subset is the same images in every call, with their labels and true labels
// aligned; the baseline and the epochs before the last are measured on it, the last epoch (a phase's result)
// on the whole set; training itself does not change.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/engine/backend';
import { cleanSubset, loadDataset } from '../../src/engine/data';
import { epochEvalSubset, evaluate, type EvalSets } from '../../src/engine/evaluate';
import { createModel, type Model } from '../../src/engine/models';
import { train, type TrainSettings } from '../../src/engine/train';
import { backdoorTestSet } from '../../src/engine/triggers';
import { FINETUNE_TRAINING, validateTraining } from '../../src/runs/config';
import { DEMO_MODEL } from '../../src/runs/demo';
import { demoMatrix, matrixCells } from '../../src/runs/matrix/spec';
import { cellConfig } from '../../src/runs/matrix/run';
import { matrixSchema } from '../../src/runs/matrix/schema';
import type { EngineEvent } from '../../src/shared/run-events';

const SPEC = { arch: 'cnn', numClasses: 10, inChannels: 1, imageSize: 28 } as const;

async function sets(): Promise<{ train: ReturnType<typeof cleanSubset>; test: EvalSets }> {
  await initBackend('auto');
  const clean = cleanSubset(await loadDataset('mnist', { split: 'test' }), { count: 200, seed: 2 });
  const backdoor = backdoorTestSet(clean, { trigger: { name: 'gridTrigger' }, targetType: 'all2one', targetLabel: 5 });
  return { train: cleanSubset(await loadDataset('mnist', { split: 'train' }), { count: 128, seed: 1 }), test: { clean, backdoor } };
}

const image = (ds: { images: Uint8Array; height: number; width: number; channels: number }, i: number): string => {
  const size = ds.height * ds.width * ds.channels;
  return Buffer.from(ds.images.subarray(i * size, (i + 1) * size)).toString('base64');
};

test('the subset: the same images every time, labels and true labels aligned; a set no larger is kept whole', async () => {
  const { test: full } = await sets();
  const bd = full.backdoor as NonNullable<EvalSets['backdoor']>;
  const a = epochEvalSubset(full, 40);
  const b = epochEvalSubset(full, 40);
  assert.equal(a.clean.count, 40);
  assert.equal(a.backdoor?.count, 40);
  assert.deepEqual(a.clean.images, b.clean.images);
  assert.deepEqual(a.backdoor?.labels, b.backdoor?.labels);
  // Every picked triggered image is one of the set's, with that image's attack label and true label.
  const where = new Map(Array.from({ length: bd.count }, (_, i) => [image(bd, i), i]));
  const sub = a.backdoor as NonNullable<EvalSets['backdoor']>;
  const picked = new Set<number>();
  for (let k = 0; k < sub.count; k++) {
    const i = where.get(image(sub, k));
    assert.ok(i !== undefined, `subset image ${k} is not in the triggered set`);
    picked.add(i);
    assert.equal(sub.labels[k], bd.labels[i]);
    assert.equal(sub.originalLabels?.[k], bd.originalLabels?.[i]);
  }
  assert.equal(picked.size, 40, 'no image twice');
  assert.ok(new Set(Array.from(sub.originalLabels ?? [])).size > 5, 'the true labels of several classes');
  const whole = epochEvalSubset(full, full.clean.count);
  assert.equal(whole.clean, full.clean);
  assert.equal(whole.backdoor?.count, bd.count);
});

test('epochEvalImages: baseline and early epochs on the subset, the last on all; the weights are those of a full-evaluation run', async () => {
  const { train: ds, test: full } = await sets();
  const settings: TrainSettings = { ...FINETUNE_TRAINING, epochs: 3, augment: false, seed: 4 };
  const run = async (s: TrainSettings): Promise<{ events: EngineEvent[]; model: Model; last: { acc: number; asr: number } }> => {
    const model = createModel(SPEC, 5);
    const events: EngineEvent[] = [];
    const records = await train({ student: model, data: ds, evalSets: full, settings: s, phase: 'train', emit: (e) => events.push(e) });
    return { events, model, last: records[records.length - 1] };
  };
  const start = tf.memory().numTensors;
  const plain = await run(settings);
  const sub = await run({ ...settings, epochEvalImages: 50 });
  const weights = (m: Model): Float32Array[] => [...m.params.toStateDict().values()].map((t) => t.data);
  weights(plain.model).forEach((w, i) => assert.deepEqual(w, weights(sub.model)[i]));

  const log = sub.events.find((e) => e.type === 'log');
  assert.match(log?.type === 'log' ? log.message : '', /on 50 of 200 test images and 50 of \d+ triggered ones .*epoch 3 on all/);
  const subset = epochEvalSubset(full, 50);
  const epochs = sub.events.filter((e) => e.type === 'epoch');
  const baseline = sub.events.find((e) => e.type === 'baseline');
  assert.equal(epochs.length, 3);
  // A share of 50 images is a multiple of 2%; the whole set's of 200 generally is not.
  for (const e of [baseline, ...epochs.slice(0, 2)]) assert.ok(e && Number.isInteger(e.acc / 2) && Number.isInteger(e.asr / 2));
  assert.deepEqual([sub.last.acc, sub.last.asr], [plain.last.acc, plain.last.asr], 'the result is the whole set');
  const all = evaluate(sub.model, full);
  assert.equal(sub.last.acc, all.acc);
  assert.equal(sub.last.asr, all.asr);
  assert.notDeepEqual(evaluate(sub.model, subset), all, 'the subset differs from the whole set here, so the check above can fail');
  plain.model.dispose();
  sub.model.dispose();
  assert.equal(tf.memory().numTensors, start);
  assert.throws(
    () => validateTraining({ ...settings, epochEvalImages: 0 }, 'training'),
    /training: epochEvalImages .* integer >= 1, got 0/,
  );
});

test("nad demo --matrix: 32 runs of the demo model; progress on a subset; NAD's teacher finetuned as the finetuning column", () => {
  const spec = demoMatrix();
  assert.equal(matrixCells(spec).length, 32);
  assert.deepEqual(spec.arch, DEMO_MODEL);
  assert.deepEqual(
    spec.attacks.map((a) => a.name),
    ['badnets', 'blend', 'sig', 'wanet'],
  );
  assert.ok((spec.training.epochEvalImages ?? 0) > 0 && (spec.defenseTraining.epochEvalImages ?? 0) > 0);
  const nad = spec.defenses.find((d) => d.name === 'nad');
  assert.equal(nad?.params['teacherEpochs'], spec.defenseTraining.epochs);
  // The cells' run configs: NAD distils on the columns' schedule (5 epochs, lr 0.1, then 0.01), as finetuning runs.
  const model = '/nowhere/model/model.safetensors';
  const training = (defense: string): Record<string, unknown> =>
    (cellConfig(spec, { attack: 'badnets', defense, seed: 1 }, model, 'id') as unknown as { training: Record<string, unknown> }).training;
  assert.equal(training('nad')['epochs'], 5);
  assert.equal(training('finetune')['epochs'], 5);
  assert.deepEqual(training('nad')['lrSchedule'], training('finetune')['lrSchedule']);
  assert.equal(training('nad')['seed'], 1);
  const schedule = (matrixSchema() as { properties: { training: { properties: Record<string, unknown> } } }).properties.training;
  assert.ok('epochEvalImages' in schedule.properties);
});
