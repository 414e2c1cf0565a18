// The I-BAU defense: the universal perturbation's SGD steps, one outer step's implicit hypergradient (K = 5) and the
// Adam step against PyTorch's exact second-order autograd on the NAD authors' backdoored WRN-16-1 (fixture made by
// test/fixtures/defenses/make_i_bau_fixture.py with torch 1.13, float64), in the authors' regime (perturbation lr 10,
// saturated softmax) and a small one where every second-order term is active; the forward-mode tangent pass
// against finite differences; short runs on embedded digits (events, report, cancellation, no leak). The other
// architectures against PyTorch: defense-i-bau-archs.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/engine/backend';
import { readCheckpoint } from '../../src/engine/checkpoint';
import { cleanSubset, loadDataset, selectImages } from '../../src/engine/data';
import { toFloatBatch } from '../../src/engine/data/augment';
import { iBau } from '../../src/engine/defenses/i-bau';
import { hypergradient, IBAU_ADAM, IBAU_TRAINING, perturbationStep } from '../../src/engine/defenses/i-bau/hypergradient';
import { reluMasks, tangentLogits } from '../../src/engine/defenses/i-bau/linearised';
import { Adam } from '../../src/engine/optim';
import { defenseNamed, type DefenseInput } from '../../src/engine/defenses/registry';
import { createModel, differentiableLogits, modelFromStateDict, type Model } from '../../src/engine/models';
import { checkParams } from '../../src/engine/params';
import { backdoorTestSet } from '../../src/engine/triggers';
import type { ModelSpec } from '../../src/engine/types';
import type { EngineEvent } from '../../src/shared/run-events';
import { CIFAR_DIR, SHARED, hasShared } from '../fixtures/data/paths';

const STUDENT = join(SHARED, 'models', 'nad-reference', 'wrn16-1_badnets-grid_target5.pth.tar');
const skip = !(hasShared() && existsSync(STUDENT)) && '../shared absent';

interface Case {
  perturbationLr: number;
  perturbationLosses: number[];
  delta: number[];
  outerLoss: number;
  vRows: number[];
  subset: Record<string, { hyper: number[]; updated: number[] }>;
  hyperNorms: Record<string, number>;
  secondOrderNorms: Record<string, number>;
  outerLossAfter: number;
  float32DeltaDiff: number;
  float32HyperDiff: number;
}
interface Fixture {
  half: number;
  patched: number[];
  regularisation: number;
  fixedPointLr: number;
  K: number;
  outerLr: number;
  vRows: [number, number];
  cases: { authors: Case; small: Case };
}
const fixture = JSON.parse(readFileSync(join(__dirname, '..', 'fixtures', 'defenses', 'i-bau.json'), 'utf8')) as Fixture;

/** Largest difference relative to the largest reference value. */
function relDiff(got: ArrayLike<number>, want: readonly number[]): number {
  assert.equal(got.length, want.length);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < want.length; i++) {
    diff = Math.max(diff, Math.abs(got[i] - want[i]));
    scale = Math.max(scale, Math.abs(want[i]));
  }
  return diff / scale;
}

test('WRN-16-1: perturbation steps, hypergradient (K = 5) and the Adam step equal PyTorch', { skip }, async () => {
  await initBackend('auto');
  const trainSet = await loadDataset(join(CIFAR_DIR, 'train.bin'), { split: 'train' });
  const ck = await readCheckpoint(STUDENT);
  const n = fixture.half;
  const batch = (from: number): { x: tf.Tensor4D; y: tf.Tensor2D } => {
    const idx = Array.from({ length: n }, (_, i) => from + i);
    return tf.tidy(() => ({
      x: tf.tensor4d(toFloatBatch(trainSet, idx), [n, 32, 32, 3]),
      y: tf.oneHot(
        tf.tensor1d(
          Array.from(idx, (i) => trainSet.labels[i]),
          'int32',
        ),
        10,
      ) as tf.Tensor2D,
    }));
  };
  const before = tf.memory().numTensors;
  const a = batch(0);
  const b = batch(n);
  const mask = new Float32Array(n);
  for (const i of fixture.patched) mask[i] = 1;
  const patch = tf.tensor4d(mask, [n, 1, 1, 1]);
  const settings = { fixedPointSteps: fixture.K, fixedPointLr: fixture.fixedPointLr, regularisation: fixture.regularisation };
  try {
    for (const [name, c] of Object.entries(fixture.cases) as Array<[string, Case]>) {
      const model = modelFromStateDict(ck.spec, ck.stateDict, STUDENT);
      const delta = tf.tidy(() => tf.variable(tf.zeros([1, 32, 32, 3])));
      try {
        // 1. Two SGD steps of the perturbation (argmax labels), on the first then the second 16 images.
        const losses = [a, b].map((s) => perturbationStep(model, delta, s.x, c.perturbationLr, fixture.regularisation));
        losses.forEach((l, i) =>
          assert.ok(Math.abs(l - c.perturbationLosses[i]) < 1e-4 * Math.max(1, Math.abs(l)), `${name} loss ${i}: ${l}`),
        );
        // At lr 10 the second step amplifies rounding: torch's own float32 run is 8e-4 off, ours 6e-3.
        const dDelta = relDiff(delta.dataSync(), c.delta);
        assert.ok(dDelta < (name === 'authors' ? 2e-2 : 1e-4), `${name} delta ${dDelta} (torch float32: ${c.float32DeltaDiff})`);

        // 2. The hypergradient from torch's delta.
        tf.tidy(() => delta.assign(tf.tensor4d(c.delta, [1, 32, 32, 3])));
        const h = hypergradient(model, delta, a, { ...b, patch }, settings);
        const vars = new Map(model.params.trainable());
        try {
          assert.ok(Math.abs(h.outerLoss - c.outerLoss) < 5e-5 * c.outerLoss, `${name} outer loss ${h.outerLoss} vs ${c.outerLoss}`);
          const [from, to] = fixture.vRows;
          const dv = relDiff(h.v.dataSync().subarray(from * 32 * 3, to * 32 * 3), c.vRows);
          assert.ok(dv < 1e-3, `${name} v_K ${dv}`);
          for (const [param, want] of Object.entries(c.subset)) {
            const d = relDiff(h.grads[(vars.get(param) as tf.Variable).name].dataSync(), want.hyper);
            assert.ok(d < 2e-3, `${name} ${param} hypergradient ${d} (torch float32: ${c.float32HyperDiff})`);
          }
          for (const [param, norm] of Object.entries(c.hyperNorms)) {
            const got = tf.tidy(() => tf.norm(h.grads[(vars.get(param) as tf.Variable).name]).dataSync()[0]);
            assert.ok(Math.abs(got - norm) <= 1e-3 * norm + 1e-7, `${name} |hypergradient| of ${param}: ${got} vs ${norm}`);
          }
          // 3. Adam's first step moves each weight by lr * g / (|g| + eps): the same weights as torch's.
          const adam = new Adam([...vars.values()], IBAU_ADAM);
          adam.step(h.grads, fixture.outerLr);
          adam.dispose();
        } finally {
          tf.dispose([h.v, ...Object.values(h.grads)]);
        }
        for (const [param, want] of Object.entries(c.subset)) {
          const d = relDiff((vars.get(param) as tf.Variable).dataSync(), want.updated);
          assert.ok(d < 1e-6, `${name} ${param} after the Adam step: ${d}`);
        }
        const after = tf.tidy(() => {
          const logits = differentiableLogits(model, tf.add(b.x, tf.mul(patch, delta)) as tf.Tensor4D);
          return tf.neg(tf.mean(tf.sum(tf.mul(b.y, tf.logSoftmax(logits)), 1))).dataSync()[0];
        });
        assert.ok(
          Math.abs(after - c.outerLossAfter) < 1e-3 * c.outerLossAfter,
          `${name} outer loss after the step ${after} vs ${c.outerLossAfter}`,
        );
      } finally {
        delta.dispose();
        model.dispose();
      }
    }
  } finally {
    tf.dispose([a.x, a.y, b.x, b.y, patch]);
  }
  assert.equal(tf.memory().numTensors, before, 'tensors leaked');
});

test('the tangent pass is the derivative of the logits along t (WRN and CNN): finite differences, linearity, masks', async () => {
  await initBackend('auto');
  const specs: Array<[ModelSpec, number]> = [
    [{ arch: 'wrn', depth: 10, widen: 1, numClasses: 10, inChannels: 3, imageSize: 16 }, 3 * 2 + 1],
    [{ arch: 'cnn', numClasses: 10, inChannels: 1, imageSize: 28 }, 3],
  ];
  const before = tf.memory().numTensors;
  for (const [spec, maskCount] of specs) {
    const model = createModel(spec, 7);
    const s = spec.imageSize;
    const c = spec.inChannels;
    const [fd, jv, twice, same, count] = tf.tidy(() => {
      const x = tf.randomUniform([4, s, s, c], 0, 1, 'float32', 1) as tf.Tensor4D;
      const t = tf.randomNormal([1, s, s, c], 0, 1, 'float32', 2) as tf.Tensor4D;
      const { logits, masks } = reluMasks(model, x);
      const e = 1e-4;
      const diff = tf.div(
        tf.sub(
          differentiableLogits(model, tf.add(x, tf.mul(t, e)) as tf.Tensor4D),
          differentiableLogits(model, tf.sub(x, tf.mul(t, e)) as tf.Tensor4D),
        ),
        2 * e,
      );
      const tangent = tangentLogits(model, t, masks);
      return [
        diff.dataSync(),
        tangent.dataSync(),
        tangentLogits(model, tf.mul(t, 2) as tf.Tensor4D, masks).dataSync(),
        tf.max(tf.abs(tf.sub(logits, differentiableLogits(model, x)))).dataSync()[0],
        masks.length,
      ];
    });
    const label = spec.arch;
    assert.equal(count, maskCount, `${label} ReLU masks`);
    assert.ok(same < 1e-5, `${label} logits of the masked pass differ by ${same}`);
    const d = relDiff(jv, Array.from(fd));
    // A ReLU crossing its kink inside +- e changes the difference quotient a little; the rest is float32 rounding.
    assert.ok(d < 2e-2, `${label} J t vs central differences: ${d}`);
    assert.ok(
      relDiff(
        twice,
        Array.from(jv, (v) => 2 * v),
      ) < 1e-5,
      `${label} not linear in t`,
    );
    model.dispose();
  }
  assert.equal(tf.memory().numTensors, before, 'tensors leaked');
});

interface DigitsRun {
  readonly input: DefenseInput;
  readonly events: EngineEvent[];
  readonly made: Model[];
}

async function digitsRun(given: Record<string, unknown>, rounds: number, signal?: AbortSignal): Promise<DigitsRun> {
  const clean = cleanSubset(await loadDataset('mnist', { split: 'train' }), { count: 60, seed: 0 });
  const testClean = cleanSubset(await loadDataset('mnist', { split: 'test' }), { count: 50, seed: 0 });
  const evalSets = { clean: testClean, backdoor: backdoorTestSet(testClean, { trigger: { name: 'gridTrigger' }, targetLabel: 5 }) };
  const spec: ModelSpec = { arch: 'cnn', numClasses: 10, inChannels: 1, imageSize: 28 };
  const seed0 = createModel(spec, 3);
  const sd = seed0.params.toStateDict();
  seed0.dispose();
  const made: Model[] = [];
  const events: EngineEvent[] = [];
  const input: DefenseInput = {
    mode: 'repair',
    suspect: () => {
      const m = modelFromStateDict(spec, sd, 'suspect');
      made.push(m);
      return m;
    },
    loadModel: () => Promise.reject(new Error('not used')),
    clean,
    test: evalSets,
    samples: { clean: selectImages(testClean, [0]), triggered: selectImages(testClean, [0]) },
    training: { ...IBAU_TRAINING, epochs: rounds, batchSize: 30, hflip: false, lrSchedule: [[0, 1e-3]] },
    params: checkParams(iBau.params, { patchedShare: 0.1, ...given }, 'defense i-bau'),
    seed: 0,
    emit: (e) => void events.push(e),
    signal,
    trainPhase: () => Promise.reject(new Error('I-BAU trains with its own loop')),
  };
  return { input, events, made };
}

test('two rounds on 60 embedded digits: events, rows, report, a changed and reproducible model, no leak', async () => {
  await initBackend('auto');
  const before = tf.memory().numTensors;
  const first = await digitsRun({}, 2);
  const again = await digitsRun({}, 2);
  try {
    const out = await iBau.run(first.input);
    const { events } = first;
    assert.deepEqual(
      out.rows.map((r) => r.model),
      ['backdoored', 'i-bau'],
    );
    assert.ok(out.model && first.made.includes(out.model));
    const phase = events.find((e) => e.type === 'phase');
    assert.ok(phase && phase.type === 'phase' && phase.phase === 'unlearn' && phase.epochs === 2);
    const steps = events.filter((e) => e.type === 'step');
    assert.equal(steps.length, 4);
    assert.ok(steps.every((e) => e.type === 'step' && e.phase === 'unlearn' && e.steps === 2 && Number.isFinite(e.loss)));
    const epochs = events.filter((e) => e.type === 'epoch');
    assert.deepEqual(
      epochs.map((e) => e.type === 'epoch' && e.epoch),
      [1, 2],
    );
    const lastEpoch = epochs[1];
    assert.ok(lastEpoch.type === 'epoch' && lastEpoch.acc === out.rows[1].acc && lastEpoch.asr === out.rows[1].asr);
    const series = events.filter((e) => e.type === 'series');
    const lastSeries = series[series.length - 1];
    assert.ok(lastSeries.type === 'series' && lastSeries.id === 'rounds');
    assert.deepEqual(
      lastSeries.points.map((p) => p.x),
      [0, 1, 2],
    );
    assert.equal(lastSeries.points[0].acc, out.rows[0].acc);
    const charts = events.filter((e) => e.type === 'chart');
    const chart = charts[charts.length - 1];
    assert.ok(chart.type === 'chart' && chart.id === 'losses' && chart.chart.kind === 'xy');
    assert.ok(chart.chart.kind === 'xy' && chart.chart.series.length === 2 && chart.chart.series.every((s) => s.points.length === 2));
    const images = events.filter((e) => e.type === 'images');
    const pictures = images[images.length - 1];
    assert.ok(pictures.type === 'images' && pictures.images.length === 2);
    assert.equal(Buffer.from(pictures.images[0].pixels, 'base64').length, 28 * 28);
    const report = out.report as {
      rounds: Array<{ round: number; acc: number; asr: number; outerLoss: number; perturbationNorm: number }>;
      batchesPerRound: number;
      patchedPerBatch: number;
    };
    assert.equal(report.batchesPerRound, 2);
    assert.equal(report.patchedPerBatch, 3);
    assert.deepEqual(
      report.rounds.map((r) => r.round),
      [1, 2],
    );
    assert.ok(report.rounds.every((r) => r.perturbationNorm > 0 && Number.isFinite(r.outerLoss)));
    // The weights moved from the suspect's.
    const suspect = first.input.suspect();
    const moved = tf.tidy(
      () => tf.max(tf.abs(tf.sub(suspect.params.get('conv1.weight'), out.model?.params.get('conv1.weight') as tf.Tensor))).dataSync()[0],
    );
    assert.ok(moved > 1e-5, `conv1 moved by ${moved}`);
    // Same seed, same run.
    const out2 = await iBau.run(again.input);
    assert.deepEqual(out2.report?.['rounds'], out.report?.['rounds']);
    assert.deepEqual(
      out.attention.map(([name]) => name),
      ['backdoored', 'i-bau'],
    );
  } finally {
    for (const m of [...first.made, ...again.made]) m.dispose();
  }
  assert.equal(tf.memory().numTensors, before, 'tensors leaked');
});

test('declarations, bad input, an L2 bound, and cancellation', async () => {
  await initBackend('auto');
  const params = checkParams(iBau.params, {}, 'defense i-bau');
  assert.deepEqual(params, {
    fixedPointSteps: 5,
    fixedPointLr: 0.1,
    perturbationLr: 10,
    regularisation: 0.001,
    patchedShare: 0.01,
    maxNorm: 0,
  });
  assert.deepEqual(iBau.modes, ['repair']);
  assert.deepEqual(iBau.phases(params, IBAU_TRAINING, 'repair'), [{ phase: 'unlearn', epochs: 5 }]);
  assert.equal(IBAU_TRAINING.batchSize, 256);
  assert.deepEqual(IBAU_TRAINING.lrSchedule, [[0, 1e-4]]);
  assert.throws(() => checkParams(iBau.params, { patchedShare: 2 }, 'defense i-bau'), /patchedShare must be <= 1/);
  assert.throws(() => checkParams(iBau.params, { fixedPointSteps: 0 }, 'defense i-bau'), /fixedPointSteps/);
  assert.equal(defenseNamed('i-bau'), iBau);

  const before = tf.memory().numTensors;
  const bad = await digitsRun({}, 1);
  await assert.rejects(
    iBau.run({ ...bad.input, clean: { ...bad.input.clean, count: 0 } }),
    (e: unknown) => e instanceof Error && e.name === 'InputError' && /clean images/.test(e.message),
  );
  for (const m of bad.made) m.dispose();

  // The authors' commented-out projection, when asked for: |delta| ends at most at the bound.
  const bounded = await digitsRun({ maxNorm: 0.5 }, 1);
  try {
    const out = await iBau.run(bounded.input);
    const norm = (out.report as { rounds: Array<{ perturbationNorm: number }> }).rounds[0].perturbationNorm;
    assert.ok(norm <= 0.5 + 1e-3, `|delta| ${norm}`);
  } finally {
    for (const m of bounded.made) m.dispose();
  }

  const controller = new AbortController();
  const run = await digitsRun({}, 2, controller.signal);
  const input: DefenseInput = {
    ...run.input,
    emit: (e) => {
      if (e.type === 'step') controller.abort();
    },
  };
  try {
    await assert.rejects(iBau.run(input), (e: unknown) => e instanceof Error && e.name === 'RunCancelledError');
  } finally {
    for (const m of run.made) m.dispose();
  }
  assert.equal(tf.memory().numTensors, before, 'tensors leaked');
});
