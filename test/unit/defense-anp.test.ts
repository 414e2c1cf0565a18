// The ANP defense: the noise ascent and the mask step against the authors' mask_train in PyTorch (float64)
// on the NAD authors' backdoored WRN-16-1, three iterations from fixed initial noise; the pruning (which
// neurons for given masks, the pruned model's logits and ACC/ASR/RA) against prune_neuron_cifar.py (fixture
// made by test/fixtures/defenses/make_anp_fixture.py with torch 1.13); then a short run on a small CNN,
// cancellation and bad input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/engine/backend';
import { readCheckpoint } from '../../src/engine/checkpoint';
import { loadDataset, selectImages } from '../../src/engine/data';
import { toFloatBatch } from '../../src/engine/data/augment';
import { anp } from '../../src/engine/defenses/anp';
import {
  CURVE_THRESHOLDS,
  maskStep,
  neuronLayers,
  neuronsByMask,
  NeuronMasks,
  perturbNeurons,
  prunedCount,
  ROUND_ITERATIONS,
  type MaskBatch,
} from '../../src/engine/defenses/anp/masks';
import { pruningCurve, type CurvePoint } from '../../src/engine/defenses/anp/optimize';
import { createModel, modelFromStateDict, type Model } from '../../src/engine/models';
import { ParamSet } from '../../src/engine/models/params';
import { Sgd } from '../../src/engine/optim';
import { checkParams } from '../../src/engine/params';
import { Rng } from '../../src/engine/rng';
import { RunCancelledError } from '../../src/engine/train';
import { backdoorTestSet } from '../../src/engine/triggers';
import { InputError, type ImageDataset, type ModelSpec } from '../../src/engine/types';
import type { EngineEvent } from '../../src/shared/run-events';
import { CIFAR_DIR, SHARED, hasShared } from '../fixtures/data/paths';

const STUDENT = join(SHARED, 'models', 'nad-reference', 'wrn16-1_badnets-grid_target5.pth.tar');
const skip = !(hasShared() && existsSync(STUDENT)) && '../shared absent';

type PerLayer = Record<string, number[]>;
interface Result {
  acc: number;
  asr: number;
  ra: number;
}
interface Fixture {
  eps: number;
  steps: number;
  alpha: number;
  lr: number;
  momentum: number;
  batch: number;
  layers: string[];
  sizes: number[];
  iterations: Array<{
    from: number;
    init: Record<string, { noise: number[]; noiseBias: number[] }>;
    noise: PerLayer;
    noiseBias: PerLayer;
    lossNat: number;
    lossRob: number;
    masks: PerLayer;
    /** Noise values whose gradient is below 1e-3 of their layer's largest: their sign is fragile. */
    weak: Record<string, { noise?: number[]; noiseBias?: number[] }>;
  }>;
  target: number;
  testCount: number;
  backdoorCount: number;
  backdoored: Result;
  synthetic: PerLayer;
  curve: Array<{ threshold: number; pruned: number } & Result>;
  at02: { threshold: number; neurons: Array<[string, number]>; logits: number[] };
}
const fixture = JSON.parse(readFileSync(join(__dirname, '..', 'fixtures', 'defenses', 'anp.json'), 'utf8')) as Fixture;

async function loadStudent(): Promise<Model> {
  const ck = await readCheckpoint(STUDENT);
  return modelFromStateDict(ck.spec, ck.stateDict, STUDENT);
}

function maxAbsDiff(got: ArrayLike<number>, want: readonly number[]): number {
  assert.equal(got.length, want.length);
  let d = 0;
  for (let i = 0; i < want.length; i++) d = Math.max(d, Math.abs(got[i] - want[i]));
  return d;
}

test('WRN-16-1: three mask_train iterations from fixed noise equal PyTorch (noise after the ascent, losses, masks)', { skip }, async () => {
  await initBackend('auto');
  const model = await loadStudent();
  const train = await loadDataset(join(CIFAR_DIR, 'train.bin'), { split: 'train' });
  const layers = neuronLayers(model);
  assert.deepEqual(
    layers.map((l) => [l.name, l.channels]),
    fixture.layers.map((n, i) => [n, fixture.sizes[i]]),
  );
  const before = tf.memory().numTensors;
  const state = new NeuronMasks(model, layers);
  const optimizer = new Sgd(
    state.masks.map((m, i) => [layers[i].name, m] as const),
    { momentum: fixture.momentum, weightDecay: 0, nesterov: false },
  );
  const opts = { eps: fixture.eps, steps: fixture.steps, alpha: fixture.alpha, lr: fixture.lr };
  const perLayer = (p: PerLayer): number[][] => fixture.layers.map((n) => p[n]);
  try {
    for (const [k, it] of fixture.iterations.entries()) {
      const idx = Int32Array.from({ length: fixture.batch }, (_, i) => it.from + i);
      const batch: MaskBatch = {
        xs: toFloatBatch(train, idx),
        ys: Int32Array.from(idx, (i) => train.labels[i]),
        shape: [32, 32, 3],
        numClasses: 10,
      };
      // Each iteration starts from PyTorch's masks (the first from 1): float32 rounding of the masks would
      // otherwise decide the sign of a few noise gradients further on (the momentum buffer is the engine's).
      if (k > 0) tf.tidy(() => state.masks.forEach((m, i) => m.assign(tf.tensor1d(perLayer(fixture.iterations[k - 1].masks)[i]))));
      state.setNoise(
        fixture.layers.map((n) => it.init[n].noise),
        fixture.layers.map((n) => it.init[n].noiseBias),
      );
      perturbNeurons(model, state, batch, opts);
      // Each noise value moved by +-eps from its start: the sign of its gradient. A gradient within rounding of
      // 0 can take the other sign (float32 here, float64 there): only values the fixture lists as weak
      // (|gradient| < 1e-3 of the layer's largest) may, and every other value is the start +- 0.4 to float32
      // precision.
      const flips: string[] = [];
      let noiseDiff = 0;
      for (const kind of ['noise', 'noiseBias'] as const)
        state[kind].forEach((v, i) => {
          const g = v.dataSync();
          const want = it[kind][fixture.layers[i]];
          for (let j = 0; j < g.length; j++) {
            const d = Math.abs(g[j] - want[j]);
            if (d > 0.1) {
              flips.push(`${fixture.layers[i]}.${kind}[${j}]`);
              assert.ok(it.weak[fixture.layers[i]]?.[kind]?.includes(j), `iteration ${k + 1}: ${flips.at(-1)} took the other sign`);
            } else noiseDiff = Math.max(noiseDiff, d);
          }
        });
      assert.ok(flips.length <= 4, `iteration ${k + 1}: ${flips.length} signs differ: ${flips.join(', ')}`);
      assert.ok(noiseDiff < 1e-6, `iteration ${k + 1}: noise differs by ${noiseDiff}`);
      // The mask step from PyTorch's noise, so that a sign decided by rounding could not carry over.
      state.setNoise(perLayer(it.noise), perLayer(it.noiseBias));
      const losses = maskStep(model, state, optimizer, batch, opts);
      assert.ok(Math.abs(losses.nat - it.lossNat) < 1e-4 * it.lossNat, `iteration ${k + 1}: natural loss ${losses.nat} vs ${it.lossNat}`);
      assert.ok(Math.abs(losses.rob - it.lossRob) < 1e-4 * it.lossRob, `iteration ${k + 1}: perturbed loss ${losses.rob} vs ${it.lossRob}`);
      const masks = state.values();
      const d = Math.max(...masks.map((m, i) => maxAbsDiff(m, perLayer(it.masks)[i])));
      // Float32 against the float64 reference, whose steps move masks by up to 0.66: torch's own float32 run,
      // started each iteration from the reference's masks and noise as here, is 1.0e-4, 2.2e-4, 2.1e-4 from it
      // (make_anp_fixture.py with ANP_FLOAT32_CHECK=1); the engine was 1.0e-4, ~3e-4, 7.8e-4 on 2026-11-30.
      assert.ok(d < 1e-3, `iteration ${k + 1}: masks differ from PyTorch's by ${d}`);
      // The step did something: masks moved below 1, and after two steps some reached 0.
      const flat = masks.flatMap((m) => Array.from(m));
      assert.ok(flat.some((v) => v < 0.99));
      if (k > 0) assert.ok(flat.some((v) => v === 0));
    }
    optimizer.dispose();
    state.dispose();
    assert.equal(tf.memory().numTensors, before, 'tensors leaked');
  } finally {
    model.dispose();
  }
});

test('WRN-16-1: neurons pruned for given masks at every threshold, logits and ACC/ASR/RA equal PyTorch', { skip }, async () => {
  await initBackend('auto');
  const model = await loadStudent();
  const clean = await loadDataset(join(CIFAR_DIR, 'test.bin'), { split: 'test' });
  const sets = { clean, backdoor: backdoorTestSet(clean, { trigger: { name: 'gridTrigger' }, targetLabel: fixture.target }) };
  assert.equal(sets.backdoor.count, fixture.backdoorCount);
  const layers = neuronLayers(model);
  const sorted = neuronsByMask(
    layers,
    fixture.layers.map((n) => fixture.synthetic[n]),
  );
  assert.deepEqual(
    fixture.curve.map((c) => c.threshold),
    CURVE_THRESHOLDS,
  );
  assert.deepEqual(
    CURVE_THRESHOLDS.map((t) => prunedCount(sorted, t)),
    fixture.curve.map((c) => c.pruned),
  );
  const k = prunedCount(sorted, 0.2);
  assert.deepEqual(
    sorted.slice(0, k).map((n) => [n.layer, n.channel]),
    fixture.at02.neurons,
  );
  const before = tf.memory().numTensors;
  try {
    // The curve up to 0.2 on a copy, pruned step by step; then the pruned model's logits.
    const curve = await pruningCurve(model, sorted, [0.1, 0.2], sets);
    for (const p of curve) {
      const want = fixture.curve.find((c) => Math.abs(c.threshold - p.threshold) < 1e-12);
      assert.ok(want);
      assert.equal(p.pruned, want.pruned);
      for (const key of ['acc', 'asr', 'ra'] as const)
        assert.ok(Math.abs((p[key] ?? NaN) - want[key]) < 1e-3, `${key} at ${p.threshold}: ${p[key]} vs ${want[key]}`);
    }
    for (const n of sorted.slice(0, k)) assert.equal(model.params.get(`${n.layer}.weight`).dataSync()[n.channel], 0);
    const x = toFloatBatch(
      clean,
      Array.from({ length: 8 }, (_, i) => i),
    );
    const logits = tf.tidy(() => model.forward(tf.tensor4d(x, [8, 32, 32, 3]), false).logits.dataSync());
    const scale = Math.max(...fixture.at02.logits.map(Math.abs));
    const d = maxAbsDiff(logits, fixture.at02.logits);
    assert.ok(d < 1e-4 * scale, `logits differ by ${d} (largest ${scale})`);
    assert.equal(tf.memory().numTensors, before, 'tensors leaked');
  } finally {
    model.dispose();
  }
});

/** Random 16x16 grey images whose class is the brightest quadrant (plus noise): a CNN learns it fast. */
function quadrants(count: number, seed: number): ImageDataset {
  const rng = new Rng(seed);
  const images = new Uint8Array(count * 256);
  const labels = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    labels[i] = rng.int(4);
    for (let p = 0; p < 256; p++) {
      const q = (Math.floor(p / 16) < 8 ? 0 : 2) + (p % 16 < 8 ? 0 : 1);
      images[i * 256 + p] = Math.min(255, Math.floor(rng.next() * 120) + (q === labels[i] ? 120 : 0));
    }
  }
  return { images, labels, count, height: 16, width: 16, channels: 1, numClasses: 4, source: 'quadrants' };
}

test('anp.run on a small CNN: phase/step/epoch events, pruned neurons exactly 0, charts, facts, report; cancellation', async () => {
  await initBackend('auto');
  const spec: ModelSpec = { arch: 'cnn', numClasses: 4, inChannels: 1, imageSize: 16 };
  const clean = quadrants(96, 1);
  const testSet = quadrants(64, 2);
  const before = tf.memory().numTensors;
  const reference = createModel(spec, 3);
  const made: Model[] = [];
  const events: EngineEvent[] = [];
  const params = checkParams(anp.params, {}, 'defense anp');
  const training = { ...anp.training, epochs: 1, batchSize: 16 };
  const input = (signal?: AbortSignal) => ({
    mode: 'repair' as const,
    suspect: () => {
      const m = createModel(spec, 0);
      m.params.copyFrom(reference.params);
      made.push(m);
      return m;
    },
    loadModel: () => Promise.reject(new Error('not used')),
    clean,
    test: { clean: testSet },
    samples: { clean: selectImages(testSet, [0]), triggered: selectImages(testSet, [0]) },
    training,
    params,
    seed: 0,
    emit: (e: EngineEvent) => void events.push(e),
    signal,
    trainPhase: () => Promise.reject(new Error('ANP trains no phase')),
  });
  try {
    assert.deepEqual(anp.phases(params, training, 'repair'), [{ phase: 'mask', epochs: 1 }]);
    const out = await anp.run(input());
    const repaired = out.model;
    assert.ok(repaired);
    assert.deepEqual(
      out.rows.map((r) => r.model),
      ['backdoored', 'anp (mask <= 0.2)'],
    );
    const types = events.map((e) => (e.type === 'chart' ? `chart:${e.id}` : e.type));
    for (const t of ['phase', 'baseline', 'step', 'epoch', 'table', 'chart:anp-pruning', 'chart:anp-masks', 'facts', 'log'])
      assert.ok(types.includes(t), `no ${t} event`);
    const steps = events.filter((e) => e.type === 'step');
    assert.ok(steps.every((e) => e.type === 'step' && e.phase === 'mask' && e.steps === ROUND_ITERATIONS));
    assert.ok(steps.some((e) => e.type === 'step' && e.step === ROUND_ITERATIONS));
    const report = out.report as {
      threshold: number;
      prunedNeurons: number;
      totalNeurons: number;
      pruned: Array<{ layer: string; channel: number; mask: number }>;
      masks: Record<string, number>;
      iterations: number;
      curve: CurvePoint[];
    };
    assert.equal(report.threshold, 0.2);
    assert.equal(report.totalNeurons, 32 + 64 + 64);
    assert.equal(report.iterations, ROUND_ITERATIONS);
    assert.equal(report.pruned.length, report.prunedNeurons);
    // 100 steps of lr 0.2 under eps 0.4 move masks: some go down, the summary is consistent.
    assert.ok(report.masks.min < 1 && report.masks.min <= report.masks.median && report.masks.median <= report.masks.max);
    assert.equal(report.masks.below02, report.pruned.filter((n) => n.mask < 0.2).length);
    for (const n of report.pruned) {
      assert.ok(n.mask <= 0.2);
      assert.equal(repaired.params.get(`${n.layer}.weight`).dataSync()[n.channel], 0);
    }
    // Nothing else changed: the other weights and every bias are the suspect's.
    for (const layer of ['bn1', 'bn2', 'bn3']) {
      const got: ArrayLike<number> = repaired.params.get(`${layer}.weight`).dataSync();
      const want = reference.params.get(`${layer}.weight`).dataSync();
      for (let c = 0; c < got.length; c++)
        if (!report.pruned.some((n) => n.layer === layer && n.channel === c)) assert.equal(got[c], want[c]);
      assert.deepEqual(repaired.params.get(`${layer}.bias`).dataSync(), reference.params.get(`${layer}.bias`).dataSync());
    }
    // The curve: one point per threshold, pruned counts ascending, the chosen threshold's point is the anp row.
    assert.deepEqual(
      report.curve.map((p) => p.threshold),
      CURVE_THRESHOLDS,
    );
    const at = report.curve.find((p) => p.threshold === 0.2);
    assert.ok(at && at.pruned === report.prunedNeurons && at.acc === out.rows[1].acc);
    const chart = events.find((e) => e.type === 'chart' && e.id === 'anp-pruning');
    assert.ok(chart?.type === 'chart' && chart.threshold?.value === 0.2 && chart.threshold.axis === 'x');
    // The modulation is gone from every model: the suspects forward as plain models.
    for (const m of made)
      tf.tidy(() => {
        m.forward(tf.zeros([1, 16, 16, 1]), false);
      });

    await assert.rejects(anp.run(input(AbortSignal.abort())), RunCancelledError);
  } finally {
    for (const m of made) m.dispose();
  }
  reference.dispose();
  assert.equal(tf.memory().numTensors, before, 'tensors leaked');
});

test('bad input: a model without batch norm, parameters out of range', async () => {
  await initBackend('auto');
  const p = new ParamSet();
  p.linear('fc', 16, 4, new Rng(0));
  const noBn: Model = {
    spec: { arch: 'cnn', numClasses: 4, inChannels: 1, imageSize: 4 },
    params: p,
    forward: () => assert.fail('not called'),
    dispose: () => p.dispose(),
  };
  try {
    assert.throws(
      () => neuronLayers(noBn),
      (e: unknown) => e instanceof InputError && /has no batch norm/.test(e.message),
    );
  } finally {
    noBn.dispose();
  }
  for (const [given, pattern] of [
    [{ anpAlpha: 1.5 }, /anpAlpha must be <= 1/],
    [{ anpEps: -0.1 }, /anpEps must be >= 0/],
    [{ anpSteps: 0 }, /anpSteps must be >= 1/],
    [{ threshold: 2 }, /threshold must be <= 1/],
  ] as const)
    assert.throws(
      () => checkParams(anp.params, given, 'defense anp'),
      (e: unknown) => e instanceof InputError && pattern.test(e.message),
      JSON.stringify(given),
    );
  assert.deepEqual(checkParams(anp.params, {}, 'defense anp'), { anpEps: 0.4, anpSteps: 1, anpAlpha: 0.2, threshold: 0.2, sweep: true });
});
