// The CLP defense: conv/batch-norm pairs, channel bounds and pruned channels against PyTorch (the reference's
// CLP_prune, float32, and float64 bounds) on the NAD authors' backdoored WRN-16-1, and ACC/ASR/RA of the pruned
// model on the CIFAR test subset (fixture made by test/fixtures/defenses/make_clp_fixture.py with torch 1.13);
// the singular values, the CNN's pairs and exact pruning, bad input, and one run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/engine/backend';
import { readCheckpoint } from '../../src/engine/checkpoint';
import { loadDataset, selectImages } from '../../src/engine/data';
import {
  channelLipschitz,
  channelsAbove,
  clp,
  convBnPairs,
  largestSingularValue,
  pruneBatchNorms,
  SWEEP_US,
  sweepU,
  type SweepPoint,
} from '../../src/engine/defenses/clp';
import { evaluate } from '../../src/engine/evaluate';
import { createModel, modelFromStateDict, type Model } from '../../src/engine/models';
import { ParamSet } from '../../src/engine/models/params';
import { checkParams } from '../../src/engine/params';
import { Rng } from '../../src/engine/rng';
import { FINETUNE_TRAINING } from '../../src/engine/schedules';
import { RunCancelledError } from '../../src/engine/train';
import { applyTrigger, backdoorTestSet } from '../../src/engine/triggers';
import { InputError, type ModelSpec } from '../../src/engine/types';
import type { EngineEvent } from '../../src/shared/run-events';
import { CIFAR_DIR, SHARED, hasShared } from '../fixtures/data/paths';

const STUDENT = join(SHARED, 'models', 'nad-reference', 'wrn16-1_badnets-grid_target5.pth.tar');
const skip = !(hasShared() && existsSync(STUDENT)) && '../shared absent';

interface Result {
  acc: number;
  asr: number;
  ra: number;
}
interface Fixture {
  target: number;
  testCount: number;
  backdoorCount: number;
  backdoored: Result;
  pairs: Array<{ bn: string; conv: string; bounds32: number[]; bounds64: number[]; pruned: number[] }>;
  sweep: Array<{ u: number; pruned: number[][]; total: number } & Result>;
}
const fixture = JSON.parse(readFileSync(join(__dirname, '..', 'fixtures', 'defenses', 'clp.json'), 'utf8')) as Fixture;

async function loadStudent(): Promise<Model> {
  const ck = await readCheckpoint(STUDENT);
  return modelFromStateDict(ck.spec, ck.stateDict, STUDENT);
}

async function cifarTest(): Promise<{ clean: Awaited<ReturnType<typeof loadDataset>>; backdoor: ReturnType<typeof backdoorTestSet> }> {
  const clean = await loadDataset(join(CIFAR_DIR, 'test.bin'), { split: 'test' });
  return { clean, backdoor: backdoorTestSet(clean, { trigger: { name: 'gridTrigger' }, targetLabel: fixture.target }) };
}

/** Largest |a - b| / |b|. */
function maxRelDiff(got: ArrayLike<number>, want: readonly number[]): number {
  assert.equal(got.length, want.length);
  let d = 0;
  for (let i = 0; i < want.length; i++) d = Math.max(d, Math.abs(got[i] - want[i]) / Math.abs(want[i]));
  return d;
}

test('WRN-16-1: conv/BN pairs, channel bounds, pruned channels for every u, and ACC/ASR/RA at u = 3 equal PyTorch', { skip }, async () => {
  await initBackend('auto');
  const model = await loadStudent();
  const sets = await cifarTest();
  try {
    const before = tf.memory().numTensors;
    const layers = channelLipschitz(model);
    assert.deepEqual(
      layers.map((l) => [l.conv, l.bn]),
      fixture.pairs.map((p) => [p.conv, p.bn]),
    );
    let rel64 = 0;
    let rel32 = 0;
    layers.forEach((l, i) => {
      rel64 = Math.max(rel64, maxRelDiff(l.bounds, fixture.pairs[i].bounds64));
      rel32 = Math.max(rel32, maxRelDiff(l.bounds, fixture.pairs[i].bounds32));
      assert.deepEqual(channelsAbove(l, 3), fixture.pairs[i].pruned, `${l.bn} at u = 3`);
    });
    // float64 from the same float32 weights: only the JSON's 12 digits; the reference's float32 SVD: ~1e-7.
    assert.ok(rel64 < 1e-10, `bounds differ from PyTorch's float64 ones by ${rel64} (relative)`);
    assert.ok(rel32 < 2e-6, `bounds differ from the reference's float32 ones by ${rel32} (relative)`);
    for (const s of fixture.sweep)
      assert.deepEqual(
        layers.map((l) => channelsAbove(l, s.u)),
        s.pruned,
        `pruned channels at u = ${s.u}`,
      );
    // The backdoored model as given, and pruned at u = 3.
    const at3 = fixture.sweep.find((s) => s.u === 3);
    assert.ok(at3);
    assert.equal(sets.clean.count, fixture.testCount);
    assert.equal(sets.backdoor.count, fixture.backdoorCount);
    const r0 = evaluate(model, sets);
    pruneBatchNorms(
      model,
      layers,
      layers.map((l) => channelsAbove(l, 3)),
    );
    const r3 = evaluate(model, sets);
    for (const [got, want] of [
      [r0, fixture.backdoored],
      [r3, at3],
    ] as const) {
      assert.ok(Math.abs(got.acc - want.acc) < 1e-3, `ACC ${got.acc} vs ${want.acc}`);
      assert.ok(Math.abs(got.asr - want.asr) < 1e-3, `ASR ${got.asr} vs ${want.asr}`);
      assert.ok(Math.abs((got.ra ?? NaN) - want.ra) < 1e-3, `RA ${got.ra} vs ${want.ra}`);
    }
    assert.equal(tf.memory().numTensors, before, 'tensors leaked');
  } finally {
    model.dispose();
  }
});

test('largestSingularValue: rank one, diagonal, and random matrices against power iteration', () => {
  // u v^T: sigma = |u| |v|.
  const u = [1, -2, 3];
  const v = [0.5, 4, -1, 2];
  const outer = Float64Array.from({ length: 12 }, (_, i) => u[Math.floor(i / 4)] * v[i % 4]);
  const norm = (x: number[]): number => Math.hypot(...x);
  assert.ok(Math.abs(largestSingularValue(outer, 3, 4) - norm(u) * norm(v)) < 1e-12);
  assert.ok(Math.abs(largestSingularValue(outer.slice(0, 4), 1, 4) - norm(v)) < 1e-12);
  assert.ok(Math.abs(largestSingularValue(Float64Array.from([3, -4]), 2, 1) - 5) < 1e-12);
  assert.equal(largestSingularValue(Float64Array.from([2, 0, 0, 0, -7, 0]), 2, 3), 7);
  assert.equal(largestSingularValue(new Float64Array(9), 3, 3), 0);
  const rng = new Rng(5);
  for (const [rows, cols] of [
    [16, 9],
    [3, 9],
    [64, 1],
    [9, 9],
  ]) {
    const a = Float64Array.from({ length: rows * cols }, () => rng.normal());
    // Power iteration on A^T A, many steps.
    let x = Float64Array.from({ length: cols }, () => 1 + rng.next());
    let lambda = 0;
    for (let it = 0; it < 5000; it++) {
      const ax = Float64Array.from({ length: rows }, (_, r) => {
        let s = 0;
        for (let c = 0; c < cols; c++) s += a[r * cols + c] * x[c];
        return s;
      });
      const y = Float64Array.from({ length: cols }, (_, c) => {
        let s = 0;
        for (let r = 0; r < rows; r++) s += a[r * cols + c] * ax[r];
        return s;
      });
      lambda = Math.hypot(...y);
      x = y.map((t) => t / lambda);
    }
    const got = largestSingularValue(a, rows, cols);
    assert.ok(Math.abs(got - Math.sqrt(lambda)) < 1e-10 * got, `${rows}x${cols}: ${got} vs ${Math.sqrt(lambda)}`);
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

test('CNN: each conv with its own batch norm, bounds from PyTorch-layout weights, pruned channels exactly 0 after their batch norm', async () => {
  await initBackend('auto');
  const spec: ModelSpec = { arch: 'cnn', numClasses: 10, inChannels: 1, imageSize: 28 };
  const model = createModel(spec, 1);
  try {
    randomizeVectors(model, new Rng(2));
    assert.deepEqual(convBnPairs(model), [
      { conv: 'conv1', bn: 'bn1', channels: 32 },
      { conv: 'conv2', bn: 'bn2', channels: 64 },
      { conv: 'conv3', bn: 'bn3', channels: 64 },
    ]);
    const before = tf.memory().numTensors;
    const layers = channelLipschitz(model);
    // Independently, from the exported state dict (PyTorch layout [cout, cin, kh, kw]).
    const sd = model.params.toStateDict();
    for (const l of layers) {
      const w = sd.get(`${l.conv}.weight`);
      const gamma = sd.get(`${l.bn}.weight`);
      const variance = sd.get(`${l.bn}.running_var`);
      assert.ok(w && gamma && variance);
      const [cout, cin, kh, kw] = w.shape;
      assert.equal(cout, l.channels);
      for (let k = 0; k < cout; k++) {
        const m = Float64Array.from(w.data.subarray(k * cin * kh * kw, (k + 1) * cin * kh * kw));
        const want = largestSingularValue(m, cin, kh * kw) * Math.abs(gamma.data[k] / Math.sqrt(variance.data[k]));
        assert.ok(Math.abs(l.bounds[k] - want) <= 1e-12 * want, `${l.bn}[${k}]`);
      }
      const mean = l.bounds.reduce((s, b) => s + b, 0) / l.channels;
      const std = Math.sqrt(l.bounds.reduce((s, b) => s + (b - mean) ** 2, 0) / (l.channels - 1));
      assert.ok(Math.abs(l.mean - mean) < 1e-12 * mean && Math.abs(l.std - std) < 1e-12 * std);
    }
    // u = 0 prunes every channel above its layer's mean: about half.
    const cut = layers.map((l) => channelsAbove(l, 0));
    for (const [i, c] of cut.entries()) assert.ok(c.length > 0 && c.length < layers[i].channels);
    pruneBatchNorms(model, layers, cut);
    const rng = new Rng(3);
    const x = tf.tensor4d(
      Float32Array.from({ length: 4 * 784 }, () => rng.next()),
      [4, 28, 28, 1],
    );
    const groups = tf.tidy(() => model.forward(x, false).groups.map((g) => g.dataSync()));
    x.dispose();
    for (const [i, l] of layers.entries()) {
      const gamma = model.params.get(`${l.bn}.weight`).dataSync();
      const beta = model.params.get(`${l.bn}.bias`).dataSync();
      for (let k = 0; k < l.channels; k++) {
        const pruned = cut[i].includes(k);
        assert.equal(gamma[k] === 0 && beta[k] === 0, pruned, `${l.bn}[${k}]`);
      }
      // Group i is relu(bn_i(conv_i(...))), NHWC: the pruned channels are 0 everywhere.
      for (let j = 0; j < groups[i].length; j++) if (cut[i].includes(j % l.channels)) assert.equal(groups[i][j], 0);
    }
    // A cancelled run stops before the sweep's first evaluation.
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
    await assert.rejects(sweepU(model, model, layers, [0, 1], { clean: digits }, AbortSignal.abort()), RunCancelledError);
    assert.equal(tf.memory().numTensors, before, 'tensors leaked');
  } finally {
    model.dispose();
  }
});

test('bad input: no convolutional layer, a convolution without batch norm, u below 0', async () => {
  await initBackend('auto');
  const fake = (build: (p: ParamSet, rng: Rng) => void): Model => {
    const p = new ParamSet();
    build(p, new Rng(0));
    return {
      spec: { arch: 'cnn', numClasses: 10, inChannels: 1, imageSize: 28 },
      params: p,
      forward: () => assert.fail('not called'),
      dispose: () => p.dispose(),
    };
  };
  const linearOnly = fake((p, rng) => p.linear('fc', 784, 10, rng));
  const convOnly = fake((p, rng) => {
    p.conv('conv1', 3, 1, 8, rng);
    p.linear('fc', 8, 10, rng);
  });
  try {
    assert.throws(
      () => channelLipschitz(linearOnly),
      (e: unknown) => e instanceof InputError && /has no convolutional layer/.test(e.message),
    );
    assert.throws(
      () => convBnPairs(convOnly),
      (e: unknown) => e instanceof InputError && /no batch norm after a convolutional layer/.test(e.message),
    );
  } finally {
    linearOnly.dispose();
    convOnly.dispose();
  }
  assert.throws(
    () => checkParams(clp.params, { u: -1 }, 'defense clp'),
    (e: unknown) => e instanceof InputError && /u must be >= 0/.test(e.message),
  );
  assert.deepEqual(checkParams(clp.params, {}, 'defense clp'), { u: 3, sweep: true });
  assert.deepEqual(clp.phases({ u: 3, sweep: true }, FINETUNE_TRAINING, 'repair'), []);
});

test(
  'clp.run on 120 CIFAR test images: rows, report, chart/facts/series events, the u sweep consistent with the rows',
  { skip },
  async () => {
    await initBackend('auto');
    const all = await cifarTest();
    const clean = selectImages(
      all.clean,
      Array.from({ length: 120 }, (_, i) => i),
    );
    const sets = { clean, backdoor: backdoorTestSet(clean, { trigger: { name: 'gridTrigger' }, targetLabel: fixture.target }) };
    const few = selectImages(clean, [0, 1]);
    const samples = { clean: few, triggered: applyTrigger(few, { name: 'gridTrigger' }) };
    const ck = await readCheckpoint(STUDENT);
    const made: Model[] = [];
    const events: EngineEvent[] = [];
    const before = tf.memory().numTensors;
    try {
      const out = await clp.run({
        mode: 'repair',
        suspect: () => {
          const m = modelFromStateDict(ck.spec, ck.stateDict, STUDENT);
          made.push(m);
          return m;
        },
        loadModel: () => Promise.reject(new Error('not used')),
        clean,
        test: sets,
        samples,
        training: FINETUNE_TRAINING,
        params: checkParams(clp.params, {}, 'defense clp'),
        seed: 0,
        emit: (e) => void events.push(e),
        trainPhase: () => Promise.reject(new Error('CLP trains nothing')),
      });
      assert.deepEqual(
        out.rows.map((r) => r.model),
        ['backdoored', 'clp'],
      );
      const at3 = fixture.sweep.find((s) => s.u === 3);
      assert.ok(at3 && out.model);
      const report = out.report as {
        u: number;
        totalPruned: number;
        pruned: Array<{ layer: string; conv: string; channels: number[] }>;
        sweep: SweepPoint[];
      };
      assert.equal(report.u, 3);
      assert.equal(report.totalPruned, at3.total);
      assert.deepEqual(
        report.pruned.map((p) => p.channels),
        at3.pruned,
      );
      // The sweep prunes as PyTorch does at each u; its u = 3 point is the clp row, from 3.5 on nothing is pruned.
      assert.deepEqual(
        report.sweep.map((p) => [p.u, p.pruned]),
        fixture.sweep.map((s) => [s.u, s.total]),
      );
      const row = (r: { acc: number; asr: number; ra?: number }): number[] => [r.acc, r.asr, r.ra ?? NaN];
      for (const p of report.sweep) {
        if (p.u === 3) assert.deepEqual(row(p), row(out.rows[1]));
        if (p.u >= 3.5) assert.deepEqual(row(p), row(out.rows[0]));
      }
      const kinds = events.map((e) => (e.type === 'chart' || e.type === 'series' ? `${e.type}:${e.id}` : e.type));
      for (const k of ['table', 'facts', 'chart:clp-layers', 'chart:clp-bounds', 'series:clp-u'])
        assert.ok(kinds.includes(k), `no ${k} event`);
      const series = events.find((e) => e.type === 'series');
      assert.ok(series?.type === 'series' && series.points.length === SWEEP_US.length);
      // The pruned model is what the run layer saves: its state dict alone holds the pruning.
      const reloaded = modelFromStateDict(ck.spec, out.model.params.toStateDict(), 'saved');
      made.push(reloaded);
      for (const [i, p] of report.pruned.entries())
        for (const c of at3.pruned[i]) {
          assert.equal(reloaded.params.get(`${p.layer}.weight`).dataSync()[c], 0);
          assert.equal(reloaded.params.get(`${p.layer}.bias`).dataSync()[c], 0);
        }
    } finally {
      for (const m of made) m.dispose();
    }
    assert.equal(tf.memory().numTensors, before, 'tensors leaked');
  },
);
