// The Fine-Pruning defense: channel ranking and pruned accuracy against PyTorch on the NAD authors'
// backdoored WRN-16-1 (fixture made by test/fixtures/defenses/make_fine_pruning_fixture.py with torch
// 1.13), pruning that survives SGD steps and a state-dict round trip, its errors, and one short run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/engine/backend';
import { readCheckpoint } from '../../src/engine/checkpoint';
import { cleanSubset, loadDataset, selectImages } from '../../src/engine/data';
import {
  finePruning,
  holdPruned,
  meanActivations,
  planPruning,
  pruneChannels,
  prunedNonZeros,
  pruneTarget,
  pruningOrder,
} from '../../src/engine/defenses/fine-pruning';
import { checkParams } from '../../src/engine/params';
import type { TrainPhase } from '../../src/engine/defenses/registry';
import { accuracy, evaluate } from '../../src/engine/evaluate';
import { createModel, modelFromStateDict, type Model } from '../../src/engine/models';
import { ParamSet } from '../../src/engine/models/params';
import { Sgd } from '../../src/engine/optim';
import { Rng } from '../../src/engine/rng';
import { FINETUNE_TRAINING } from '../../src/engine/schedules';
import { train, trainingStep } from '../../src/engine/train';
import { applyTrigger, backdoorTestSet } from '../../src/engine/triggers';
import { InputError, type ImageDataset, type ModelSpec } from '../../src/engine/types';
import type { EngineEvent } from '../../src/shared/run-events';
import { CIFAR_DIR, SHARED, hasShared } from '../fixtures/data/paths';
import { N, filledModel, images } from '../fixtures/model/archs';

const STUDENT = join(SHARED, 'models', 'nad-reference', 'wrn16-1_badnets-grid_target5.pth.tar');
const skip = !(hasShared() && existsSync(STUDENT)) && '../shared absent';

interface Fixture {
  count: number;
  meanActivation: number[];
  order: number[];
  ks: number[];
  acc: number[];
}
const fixture = JSON.parse(readFileSync(join(__dirname, '..', 'fixtures', 'defenses', 'fine-pruning.json'), 'utf8')) as Fixture;

async function loadStudent(): Promise<Model> {
  const ck = await readCheckpoint(STUDENT);
  return modelFromStateDict(ck.spec, ck.stateDict, STUDENT);
}

test('WRN-16-1: mean activations, channel order and pruned accuracy equal PyTorch', { skip }, async () => {
  await initBackend('auto');
  const trainSet = await loadDataset(join(CIFAR_DIR, 'train.bin'), { split: 'train' });
  const ds = selectImages(
    trainSet,
    Array.from({ length: fixture.count }, (_, i) => i),
  );
  const model = await loadStudent();
  try {
    const before = tf.memory().numTensors;
    const means = meanActivations(model, ds);
    const diff = Math.max(...fixture.meanActivation.map((v, c) => Math.abs(v - means[c])));
    assert.ok(diff < 2e-5, `mean activations differ from PyTorch's by ${diff}`);
    assert.deepEqual(pruningOrder(means), fixture.order);
    assert.equal(pruneTarget(model).layer, 'block3.layer.1.conv2');

    // The fast path the defense decides with (cached classifier inputs, masked) ...
    const plan = planPruning(model, ds, { clean: ds }, { maxAccDrop: 0.1, step: 8 });
    assert.deepEqual(plan.order, fixture.order);
    for (const [i, k] of fixture.ks.entries()) if (k % 8 === 0) assert.equal(plan.curve[k / 8].acc, fixture.acc[i], `curve at k=${k}`);
    // ... and the pruned model itself, at each k.
    for (const [i, k] of fixture.ks.entries()) {
      pruneChannels(model, pruneTarget(model), fixture.order.slice(0, k));
      assert.equal(accuracy(model, ds), fixture.acc[i], `accuracy with ${k} channels pruned`);
    }
    // 97.8% unpruned; 88.2% at 24 (a 9.8% drop) is the last step within 10%.
    assert.equal(plan.pruned, 24);
    assert.equal(plan.cleanAccAfter, 88.2);
    assert.equal(tf.memory().numTensors, before, 'tensors leaked');
  } finally {
    model.dispose();
  }
});

/** A fresh model's batch norms are gamma 1, beta 0 with unit statistics: give every 1-D parameter other values. */
function randomizeVectors(model: Model, rng: Rng): void {
  for (const [name, shape] of model.params.torchShapes()) {
    if (shape.length !== 1) continue;
    const v = Float32Array.from({ length: shape[0] }, () => (name.endsWith('running_var') ? 0.5 + rng.next() : 0.3 + 0.5 * rng.normal()));
    model.params.get(name).assign(tf.tensor1d(v));
  }
}

for (const spec of [
  { arch: 'wrn', depth: 10, widen: 1, numClasses: 10, inChannels: 3, imageSize: 32 },
  { arch: 'cnn', numClasses: 10, inChannels: 1, imageSize: 28 },
] satisfies ModelSpec[]) {
  test(`${spec.arch}: pruned channels stay exactly zero through SGD steps (momentum, Nesterov, weight decay) and a state-dict round trip`, async () => {
    await initBackend('auto');
    const model = createModel(spec, 1);
    randomizeVectors(model, new Rng(2));
    const target = pruneTarget(model);
    const cut = [0, 3, 17, target.channels - 1];
    pruneChannels(model, target, cut);
    assert.equal(prunedNonZeros(model, target, cut), 0);
    const sgd = new Sgd(model.params.trainable(), { momentum: 0.9, weightDecay: 5e-4, nesterov: true });
    const rng = new Rng(3);
    const n = 16;
    const size = spec.imageSize * spec.imageSize * spec.inChannels;
    const xs = Float32Array.from({ length: n * size }, () => rng.next());
    const ys = Int32Array.from({ length: n }, (_, i) => i % 10);
    const fcBefore = model.params.get('fc.weight').dataSync().slice();
    const before = tf.memory().numTensors;
    for (let s = 0; s < 3; s++) {
      const loss = trainingStep({
        student: model,
        optimizer: sgd,
        xs,
        ys,
        imageShape: [spec.imageSize, spec.imageSize, spec.inChannels],
        numClasses: 10,
        betas: [0, 0, 0],
        attentionPower: 2,
        lr: 0.1,
      });
      assert.ok(Number.isFinite(loss));
    }
    assert.equal(tf.memory().numTensors, before, 'tensors leaked');
    sgd.dispose();
    assert.equal(prunedNonZeros(model, target, cut), 0, 'pruned weights moved');
    assert.notDeepEqual(model.params.get('fc.weight').dataSync(), fcBefore, 'the other weights did not train');

    // The state dict alone (no mask) is the pruned model: same logits, pruned activations exactly 0.
    const reloaded = modelFromStateDict(spec, model.params.toStateDict(), 'round trip');
    try {
      const x = tf.tensor4d(xs, [n, spec.imageSize, spec.imageSize, spec.inChannels]);
      const [a, b, feats] = tf.tidy(() => {
        const out = reloaded.forward(x, false);
        return [model.forward(x, false).logits.dataSync(), out.logits.dataSync(), pruneTarget(reloaded).features(out).dataSync()];
      });
      x.dispose();
      assert.deepEqual(b, a);
      const width = target.channels * target.positions;
      for (let i = 0; i < n; i++)
        for (const c of cut) for (let s = 0; s < target.positions; s++) assert.equal(feats[i * width + c * target.positions + s], 0);
    } finally {
      reloaded.dispose();
      model.dispose();
    }
  });
}

test('bad input: a model without a convolutional layer, parameters out of range, a step as large as the layer', async () => {
  await initBackend('auto');
  const p = new ParamSet();
  p.linear('fc', 784, 10, new Rng(0));
  const linearOnly: Model = {
    spec: { arch: 'cnn', numClasses: 10, inChannels: 1, imageSize: 28 },
    params: p,
    forward: () => assert.fail('not called'),
    dispose: () => p.dispose(),
  };
  assert.throws(
    () => pruneTarget(linearOnly),
    (e: unknown) => e instanceof InputError && /no convolutional layer/.test(e.message),
  );
  linearOnly.dispose();
  assert.throws(
    () => checkParams(finePruning.params, { maxAccDrop: 1.5 }, 'defense fine-pruning'),
    (e: unknown) => e instanceof InputError && /maxAccDrop must be <= 1/.test(e.message),
  );
  assert.throws(
    () => checkParams(finePruning.params, { step: 0 }, 'defense fine-pruning'),
    (e: unknown) => e instanceof InputError && /step must be >= 1/.test(e.message),
  );
  assert.throws(
    () => checkParams(finePruning.params, { step: 2.5 }, 'defense fine-pruning'),
    (e: unknown) => e instanceof InputError && /step must be a whole number/.test(e.message),
  );
  assert.deepEqual(checkParams(finePruning.params, {}, 'defense fine-pruning'), { maxAccDrop: 0.1, step: 1 });
  const cnn = createModel({ arch: 'cnn', numClasses: 10, inChannels: 1, imageSize: 28 }, 0);
  const digits = {
    images: new Uint8Array(784),
    labels: new Int32Array(1),
    count: 1,
    height: 28,
    width: 28,
    channels: 1,
    numClasses: 10,
    source: 'zeros',
  };
  assert.throws(
    () => planPruning(cnn, digits, { clean: digits }, { maxAccDrop: 0.1, step: 64 }),
    (e: unknown) => e instanceof InputError && /step must be less than the number of channels of conv3 \(64\)/.test(e.message),
  );
  cnn.dispose();
});

test(
  'finePruning.run end to end: prune, finetune one epoch on 256 clean CIFAR images, pruning kept in the saved state dict',
  { skip },
  async () => {
    await initBackend('auto');
    const trainSet = await loadDataset(join(CIFAR_DIR, 'train.bin'), { split: 'train' });
    const testAll = await loadDataset(join(CIFAR_DIR, 'test.bin'), { split: 'test' });
    const clean = cleanSubset(trainSet, { count: 256, seed: 0 });
    const testClean = selectImages(
      testAll,
      Array.from({ length: 200 }, (_, i) => i),
    );
    const evalSets = { clean: testClean, backdoor: backdoorTestSet(testClean, { trigger: { name: 'gridTrigger' }, targetLabel: 5 }) };
    const samples = {
      clean: selectImages(testClean, [0, 1]),
      triggered: applyTrigger(selectImages(testClean, [0, 1]), { name: 'gridTrigger' }),
    };
    const ck = await readCheckpoint(STUDENT);
    const made: Model[] = [];
    const events: EngineEvent[] = [];
    const saved: Array<{ acc: number; asr: number }> = [];
    const emit = (e: EngineEvent): void => void events.push(e);
    const trainPhase: TrainPhase = async (req) => {
      const records = await train({
        student: req.student,
        data: req.data,
        evalSets,
        settings: req.settings,
        phase: req.phase,
        emit,
        onEpochEnd: () => {
          // What the run layer saves, loaded back with no knowledge of the pruning.
          const m = modelFromStateDict(req.student.spec, req.student.params.toStateDict(), 'saved');
          saved.push(evaluate(m, evalSets));
          m.dispose();
        },
      });
      const last = records[records.length - 1];
      return { acc: last.acc, asr: last.asr, ra: last.ra };
    };
    const params = checkParams(finePruning.params, {}, 'defense fine-pruning');
    const before = tf.memory().numTensors;
    try {
      const out = await finePruning.run({
        mode: 'repair',
        suspect: () => {
          const m = modelFromStateDict(ck.spec, ck.stateDict, STUDENT);
          made.push(m);
          return m;
        },
        loadModel: () => Promise.reject(new Error('not used')),
        clean,
        test: evalSets,
        samples,
        training: { ...FINETUNE_TRAINING, epochs: 1 },
        params,
        seed: 0,
        emit,
        trainPhase,
      });
      assert.deepEqual(
        out.rows.map((r) => r.model),
        ['backdoored', 'pruned', 'fine-pruned'],
      );
      const report = out.report as { prunedChannels: number; totalChannels: number; pruneOrder: number[]; cleanAccAfterPruning: number };
      assert.equal(report.totalChannels, 64);
      assert.ok(report.prunedChannels > 0 && report.prunedChannels < 64, `pruned ${report.prunedChannels}`);
      assert.deepEqual(
        [...report.pruneOrder].sort((a, b) => a - b),
        Array.from({ length: 64 }, (_, i) => i),
      );
      const series = events.find((e) => e.type === 'series');
      assert.ok(series && series.type === 'series' && series.id === 'pruning' && series.points.length === 64 && series.points[0].x === 0);
      assert.equal(series.points[0].acc, out.rows[0].acc);
      assert.equal(series.points[report.prunedChannels].acc, out.rows[1].acc, 'the curve and the pruned model agree');
      assert.ok(out.model, 'no repaired model');
      assert.equal(prunedNonZeros(out.model, pruneTarget(out.model), report.pruneOrder.slice(0, report.prunedChannels)), 0);
      assert.deepEqual(saved[saved.length - 1], { acc: out.rows[2].acc, asr: out.rows[2].asr, ra: out.rows[2].ra });
      assert.deepEqual(finePruning.phases(params, FINETUNE_TRAINING, 'repair'), [{ phase: 'finetune', epochs: 10 }]);
    } finally {
      for (const m of made) m.dispose();
    }
    assert.equal(tf.memory().numTensors, before, 'tensors leaked');
  },
);

interface ResnetFixture {
  activation: number[];
  order: number[];
  k: number;
  prunedLogits: number[];
  sgd: { lr: number; losses: number[]; logits: number[]; linearWeight: { sum: number; absSum: number } };
}
const resnetFixture = JSON.parse(readFileSync(join(__dirname, '..', 'fixtures', 'defenses', 'fine-pruning-resnet.json'), 'utf8')) as Record<
  'preact-resnet18' | 'resnet18',
  ResnetFixture
>;

/** The generator's four images as bytes (floor(u * 256)), a data set labelled 0..3. */
function archImages(): ImageDataset {
  return {
    images: Uint8Array.from(images(), (u) => Math.floor(u * 256)),
    labels: Int32Array.from({ length: N }, (_, i) => i),
    count: N,
    height: 32,
    width: 32,
    channels: 3,
    numClasses: 10,
    source: 'fine-pruning-resnet fixture',
  };
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

for (const arch of ['preact-resnet18', 'resnet18'] as const) {
  test(`${arch}: ranking, pruned logits and two SGD steps with the classifier's columns held at 0 equal fp.py's prune mask in PyTorch`, async () => {
    await initBackend('auto');
    const ref = resnetFixture[arch];
    const ds = archImages();
    const model = filledModel(arch, 0);
    try {
      const before = tf.memory().numTensors;
      const target = pruneTarget(model);
      assert.equal(target.bn, undefined);
      const means = meanActivations(model, ds);
      assert.ok(maxAbsDiff(means, ref.activation) < 1e-4, `activations differ by ${maxAbsDiff(means, ref.activation)}`);
      // The same order, up to channels whose activations PyTorch itself puts within float32 noise of each other
      // (ResNet-18's ReLU leaves exact ties at 0, which torch.argsort orders its own way).
      const ours = pruningOrder(means);
      const sorted = ref.order.map((c) => ref.activation[c]);
      ours.forEach((c, i) => assert.ok(Math.abs(ref.activation[c] - sorted[i]) < 1e-4, `position ${i}: channel ${c}`));
      assert.deepEqual(new Set(ours.slice(0, ref.k)), new Set(ref.order.slice(0, ref.k)), 'the first k channels (no tie at the cut)');

      const cut = ref.order.slice(0, ref.k);
      pruneChannels(model, target, cut);
      const x = tf.tensor4d(
        Float32Array.from(ds.images, (v) => v / 255),
        [N, 32, 32, 3],
      );
      const logits = (): Float32Array => tf.tidy(() => model.forward(x, false).logits.dataSync() as Float32Array);
      assert.ok(maxAbsDiff(logits(), ref.prunedLogits) < 1e-3, `pruned logits differ by ${maxAbsDiff(logits(), ref.prunedLogits)}`);

      // Finetuning under the mask: trainingStep then holdPruned, as train() calls them.
      const hold = holdPruned(model, target, cut);
      assert.ok(hold, 'a columns target needs holding');
      const sgd = new Sgd(model.params.trainable(), { momentum: 0.9, weightDecay: 5e-4, nesterov: false });
      const xs = Float32Array.from(ds.images, (v) => v / 255);
      for (const [s, want] of ref.sgd.losses.entries()) {
        const loss = trainingStep({
          student: model,
          optimizer: sgd,
          xs,
          ys: ds.labels,
          imageShape: [32, 32, 3],
          numClasses: 10,
          betas: [0, 0, 0],
          attentionPower: 2,
          lr: ref.sgd.lr,
        });
        hold();
        assert.ok(Math.abs(loss - want) < 1e-4, `step ${s + 1}: loss ${loss}, PyTorch ${want}`);
      }
      sgd.dispose();
      assert.equal(prunedNonZeros(model, target, cut), 0, 'pruned columns moved');
      assert.ok(maxAbsDiff(logits(), ref.sgd.logits) < 2e-3, `logits after SGD differ by ${maxAbsDiff(logits(), ref.sgd.logits)}`);
      const w = model.params.get('linear.weight').dataSync() as Float32Array;
      const sum = w.reduce((a, v) => a + v, 0);
      const absSum = w.reduce((a, v) => a + Math.abs(v), 0);
      assert.ok(
        Math.abs(sum - ref.sgd.linearWeight.sum) < 1e-3 && Math.abs(absSum - ref.sgd.linearWeight.absSum) < 1e-3,
        `linear.weight ${sum} ${absSum}`,
      );
      x.dispose();
      assert.equal(tf.memory().numTensors, before, 'tensors leaked');
    } finally {
      model.dispose();
    }
  });
}

test('finePruning.run on PreAct-ResNet-18: the pruned classifier columns stay 0 through the finetuning phase (afterStep)', async () => {
  await initBackend('auto');
  const rng = new Rng(5);
  const make = (count: number, source: string): ImageDataset => ({
    images: Uint8Array.from({ length: count * 32 * 32 * 3 }, () => Math.floor(rng.next() * 256)),
    labels: Int32Array.from({ length: count }, (_, i) => i % 10),
    count,
    height: 32,
    width: 32,
    channels: 3,
    numClasses: 10,
    source,
  });
  const clean = make(24, 'clean');
  const testClean = make(12, 'test');
  const evalSets = { clean: testClean, backdoor: backdoorTestSet(testClean, { trigger: { name: 'gridTrigger' }, targetLabel: 5 }) };
  const made: Model[] = [];
  let steps = 0;
  const trainPhase: TrainPhase = async (req) => {
    const records = await train({
      student: req.student,
      data: req.data,
      evalSets,
      settings: req.settings,
      phase: req.phase,
      afterStep: () => {
        steps++;
        req.afterStep?.();
      },
    });
    const last = records[records.length - 1];
    return { acc: last.acc, asr: last.asr, ra: last.ra };
  };
  const before = tf.memory().numTensors;
  try {
    // A huge allowed drop prunes nearly everything: 511 of 512 columns must stay 0 through training.
    const params = checkParams(finePruning.params, { maxAccDrop: 1, step: 64 }, 'defense fine-pruning');
    const out = await finePruning.run({
      mode: 'repair',
      suspect: () => {
        const m = filledModel('preact-resnet18', 0);
        made.push(m);
        return m;
      },
      loadModel: () => Promise.reject(new Error('not used')),
      clean,
      test: evalSets,
      samples: { clean: selectImages(testClean, [0]), triggered: applyTrigger(selectImages(testClean, [0]), { name: 'gridTrigger' }) },
      training: { ...FINETUNE_TRAINING, epochs: 1, batchSize: 12, augment: false },
      params,
      seed: 0,
      emit: () => undefined,
      trainPhase,
    });
    assert.equal(steps, 2, 'afterStep after each of the 2 steps');
    const report = out.report as { prunedChannels: number; layer: string; pruneOrder: number[] };
    assert.equal(report.layer, 'layer4.1.conv2');
    assert.equal(report.prunedChannels, 448);
    assert.ok(out.model);
    const target = pruneTarget(out.model);
    assert.equal(prunedNonZeros(out.model, target, report.pruneOrder.slice(0, report.prunedChannels)), 0);
    const w = out.model.params.get('linear.weight').dataSync();
    const kept = report.pruneOrder.slice(report.prunedChannels);
    assert.ok(
      kept.some((c) => w[c * 10] !== 0),
      'the kept columns are not zero',
    );
  } finally {
    for (const m of made) m.dispose();
  }
  assert.equal(tf.memory().numTensors, before, 'tensors leaked');
});
