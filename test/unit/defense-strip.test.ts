// The STRIP defense: per-image entropies against PyTorch on the NAD authors' backdoored WRN-16-1 and its
// finetuned teacher (fixture made by test/fixtures/defenses/make_strip_fixture.py with torch 1.13), the
// threshold/ROC numerics, a short detection run on the shared CIFAR subset (clean vs grid-triggered),
// and runs on embedded digits for the events, bad input, cancellation and tensor leaks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/engine/backend';
import { readCheckpoint } from '../../src/engine/checkpoint';
import { cleanSubset, loadDataset, selectImages } from '../../src/engine/data';
import type { DefenseInput } from '../../src/engine/defenses/registry';
import {
  drawOverlays,
  entropyHistograms,
  entropyOfLogits,
  rocAuc,
  rocCurve,
  strip,
  stripEntropies,
  stripImage,
  thresholdAt,
} from '../../src/engine/defenses/strip';
import type { EvalSets } from '../../src/engine/evaluate';
import { createModel, modelFromStateDict, type Model } from '../../src/engine/models';
import { checkParams } from '../../src/engine/params';
import { Rng } from '../../src/engine/rng';
import { FINETUNE_TRAINING } from '../../src/engine/schedules';
import { backdoorTestSet } from '../../src/engine/triggers';
import { InputError, type ImageDataset, type ModelSpec } from '../../src/engine/types';
import type { EngineEvent } from '../../src/shared/run-events';
import { CIFAR_DIR, SHARED, hasShared } from '../fixtures/data/paths';

const MODELS = join(SHARED, 'models', 'nad-reference');
const STUDENT = join(MODELS, 'wrn16-1_badnets-grid_target5.pth.tar');
const TEACHER = join(MODELS, 'wrn16-1_teacher-finetuned.pth.tar');
const skip = !(hasShared() && existsSync(STUDENT) && existsSync(TEACHER)) && '../shared absent';
const GRID = { trigger: { name: 'gridTrigger' as const }, targetLabel: 5 };

interface Fixture {
  target: number;
  testIndices: number[];
  overlayPool: number;
  overlays: number;
  indices: number[];
  entropy: Record<string, number[]>;
  teacherEntropy: number[];
}
const fixture = JSON.parse(readFileSync(join(__dirname, '..', 'fixtures', 'defenses', 'strip.json'), 'utf8')) as Fixture;

async function load(file: string): Promise<Model> {
  const ck = await readCheckpoint(file);
  return modelFromStateDict(ck.spec, ck.stateDict, file);
}

function concat(a: ImageDataset, b: ImageDataset): ImageDataset {
  const images = new Uint8Array(a.images.length + b.images.length);
  images.set(a.images);
  images.set(b.images, a.images.length);
  const labels = Int32Array.from([...a.labels, ...b.labels]);
  return { ...a, images, labels, count: a.count + b.count };
}

const maxRelDiff = (got: ArrayLike<number>, want: readonly number[]): number =>
  Math.max(...want.map((w, i) => Math.abs(got[i] - w) / Math.abs(w)));

test('WRN-16-1: per-image STRIP entropies with fixed overlays equal PyTorch (student, alpha 0.5 and 1; teacher)', { skip }, async (t) => {
  await initBackend('auto');
  const testSet = await loadDataset(join(CIFAR_DIR, 'test.bin'), { split: 'test' });
  const trainSet = await loadDataset(join(CIFAR_DIR, 'train.bin'), { split: 'train' });
  const clean = selectImages(testSet, fixture.testIndices);
  const triggered = backdoorTestSet(clean, GRID);
  assert.equal(triggered.count, clean.count, 'the picked images are all non-target');
  const inputs = concat(clean, triggered);
  const pool = selectImages(
    trainSet,
    Array.from({ length: fixture.overlayPool }, (_, i) => i),
  );
  const indices = Int32Array.from(fixture.indices);
  const [student, teacher] = await Promise.all([load(STUDENT), load(TEACHER)]);
  try {
    const before = tf.memory().numTensors;
    const diffs: string[] = [];
    for (const [alpha, want] of Object.entries(fixture.entropy)) {
      // A batch size that splits one image's overlays over two forward passes.
      const got = await stripEntropies(student, inputs, pool, { overlays: fixture.overlays, alpha: Number(alpha), indices, batchSize: 40 });
      const d = maxRelDiff(got, want);
      diffs.push(`student alpha ${alpha}: ${d.toExponential(2)}`);
      assert.ok(d < 1e-4, `entropies at alpha ${alpha} differ from PyTorch's by ${d} (relative): ${[...got]} vs ${want}`);
    }
    const got = await stripEntropies(teacher, inputs, pool, { overlays: fixture.overlays, alpha: 0.5, indices });
    const d = maxRelDiff(got, fixture.teacherEntropy);
    diffs.push(`teacher alpha 0.5: ${d.toExponential(2)}`);
    assert.ok(d < 1e-4, `teacher entropies differ from PyTorch's by ${d} (relative)`);
    t.diagnostic(`max relative difference to PyTorch (float64): ${diffs.join(', ')}`);
    assert.equal(tf.memory().numTensors, before, 'tensors leaked');
  } finally {
    student.dispose();
    teacher.dispose();
  }
});

test('numerics: entropy, overlay draws, threshold, ROC AUC and curve, histograms', () => {
  // Uniform logits: ln(10) (plus the 1e-8 of BackdoorBench); one-hot-ish: the 1e-8 floor.
  assert.ok(Math.abs(entropyOfLogits([0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 0, 10) - Math.log(10)) < 1e-6);
  assert.ok(entropyOfLogits([100, 0, 0], 0, 3) < 1e-6);
  const draws = drawOverlays(50, 20, 20, new Rng(1));
  for (let i = 0; i < 50; i++) assert.equal(new Set(draws.subarray(i * 20, (i + 1) * 20)).size, 20, 'N distinct overlays per image');
  assert.deepEqual(drawOverlays(3, 100, 8, new Rng(7)), drawOverlays(3, 100, 8, new Rng(7)));
  // BackdoorBench: sorted[int(frr * n)].
  const clean = Float64Array.from({ length: 100 }, (_, i) => 1 + i / 100);
  assert.equal(thresholdAt(clean, 0.05), 1.05);
  assert.equal(thresholdAt(clean, 0), 1);
  assert.equal(rocAuc([2, 3, 4], [0, 1]), 1);
  assert.equal(rocAuc([0, 1], [2, 3]), 0);
  assert.equal(rocAuc([1, 2], [1, 2]), 0.5);
  const c = Float64Array.from({ length: 500 }, (_, i) => i);
  const tr = Float64Array.from({ length: 500 }, (_, i) => i - 250.5);
  const curve = rocCurve(c, tr);
  assert.ok(curve.length <= 200);
  assert.deepEqual(curve[0], { x: 0, y: 0 });
  assert.deepEqual(curve[curve.length - 1], { x: 100, y: 100 });
  assert.ok(curve.every((p, i) => i === 0 || (p.x >= curve[i - 1].x && p.y >= curve[i - 1].y)));
  const hist = entropyHistograms(
    [
      { name: 'clean', values: Float64Array.from([0.5, 1, 1.5, 2]) },
      { name: 'triggered', values: Float64Array.from([0.01, 0.02, 0.03, 0.9]) },
    ],
    0.3,
  );
  assert.equal(hist.series.length, 2);
  for (const s of hist.series) {
    assert.equal(s.values.length, hist.labels.length);
    assert.ok(Math.abs(s.values.reduce((a, v) => a + v, 0) - 100) < 0.05, 'percent of each set, rounded to 0.01');
  }
  // The threshold is a bin edge: a bin ends at 0.3 and the next starts there.
  const k = hist.labels.findIndex((l) => l.endsWith('–0.300'));
  assert.ok(k >= 0 && hist.labels[k + 1].startsWith('0.300–'), hist.labels.join(' '));
  assert.deepEqual(hist.series[1].values.slice(0, k + 1), [75, 0, 0, 0, 0], 'the three below the threshold left of it');
});

test('declarations: detect only, no phases, params and their defaults', () => {
  assert.deepEqual(strip.modes, ['detect']);
  const params = checkParams(strip.params, {}, 'defense strip');
  assert.deepEqual(params, { overlays: 64, alpha: 0.5, frr: 0.05, thresholdCount: 1000, detectCount: 1000 });
  assert.deepEqual(strip.phases(params, FINETUNE_TRAINING, 'detect'), []);
  assert.throws(() => checkParams(strip.params, { overlays: 0 }, 'defense strip'), /overlays must be >= 1/);
});

function inputFor(
  clean: ImageDataset,
  testSets: EvalSets,
  made: Model[],
  make: () => Model,
  params: Record<string, unknown>,
  emit: (e: EngineEvent) => void,
  signal?: AbortSignal,
): DefenseInput {
  return {
    mode: 'detect',
    suspect: () => {
      const m = make();
      made.push(m);
      return m;
    },
    loadModel: () => Promise.reject(new Error('not used')),
    clean,
    test: testSets,
    samples: { clean: selectImages(testSets.clean, [0]), triggered: selectImages(testSets.clean, [0]) },
    training: FINETUNE_TRAINING,
    params: checkParams(strip.params, params, 'defense strip'),
    seed: 0,
    emit,
    signal,
    trainPhase: () => Promise.reject(new Error('STRIP trains nothing')),
  };
}

test('strip.run on the shared CIFAR student: triggered images separated (ROC AUC >= 0.9), no tensor leak', { skip }, async () => {
  await initBackend('auto');
  const clean = cleanSubset(await loadDataset(join(CIFAR_DIR, 'train.bin'), { split: 'train' }), { count: 2500, seed: 0 });
  const testClean = cleanSubset(await loadDataset(join(CIFAR_DIR, 'test.bin'), { split: 'test' }), { count: 200, seed: 0 });
  const evalSets = { clean: testClean, backdoor: backdoorTestSet(testClean, GRID) };
  const ck = await readCheckpoint(STUDENT);
  const made: Model[] = [];
  const events: EngineEvent[] = [];
  const before = tf.memory().numTensors;
  try {
    const params = { overlays: 8, thresholdCount: 60, detectCount: 60 };
    const out = await strip.run(
      inputFor(
        clean,
        evalSets,
        made,
        () => modelFromStateDict(ck.spec, ck.stateDict, STUDENT),
        params,
        (e) => void events.push(e),
      ),
    );
    const r = out.report as { auc: number; frr: number; far: number; tpr: number; threshold: number; counts: Record<string, number> };
    assert.ok(r.auc >= 0.9, `ROC AUC ${r.auc}`);
    assert.deepEqual(r.counts, { thresholdImages: 60, overlayPool: 2500, clean: 60, triggered: 60 });
    assert.ok(r.tpr >= 90 && r.frr <= 20, `TPR ${r.tpr}%, FRR ${r.frr}%`);
    assert.equal(out.rows[0].model, 'backdoored');
    assert.ok(out.rows[0].asr > 90, 'the student is backdoored');
    // The one-image helper with the run's threshold: a triggered test image is flagged.
    const verdict = await stripImage(made[0], selectImages(evalSets.backdoor, [0]), clean, {
      overlays: 8,
      alpha: 0.5,
      frr: 0.05,
      thresholdCount: 60,
      seed: 0,
      threshold: r.threshold,
    });
    assert.equal(verdict.threshold, r.threshold);
    assert.ok(verdict.triggered && verdict.entropy < r.threshold);
  } finally {
    for (const m of made) m.dispose();
  }
  assert.equal(tf.memory().numTensors, before, 'tensors leaked');
});

const DIGITS: ModelSpec = { arch: 'cnn', numClasses: 10, inChannels: 1, imageSize: 28 };

test('strip.run on embedded digits: rows, report, facts, histogram and ROC charts, progress; no tensor leak', async () => {
  await initBackend('auto');
  const clean = cleanSubset(await loadDataset('mnist', { split: 'train' }), { count: 40, seed: 0 });
  const testClean = cleanSubset(await loadDataset('mnist', { split: 'test' }), { count: 30, seed: 0 });
  const evalSets = { clean: testClean, backdoor: backdoorTestSet(testClean, GRID) };
  const made: Model[] = [];
  const events: EngineEvent[] = [];
  const before = tf.memory().numTensors;
  try {
    const params = { overlays: 8, thresholdCount: 20, detectCount: 25 };
    const out = await strip.run(
      inputFor(
        clean,
        evalSets,
        made,
        () => createModel(DIGITS, 3),
        params,
        (e) => void events.push(e),
      ),
    );
    assert.equal(out.model, undefined);
    assert.deepEqual(
      out.rows.map((r) => r.model),
      ['backdoored'],
    );
    assert.deepEqual(
      out.attention.map(([name]) => name),
      ['backdoored'],
    );
    const r = out.report as Record<string, unknown> & { counts: Record<string, number>; n: number; alpha: number };
    assert.deepEqual(r.counts, { thresholdImages: 20, overlayPool: 40, clean: 25, triggered: 25 });
    assert.equal(r.n, 8);
    assert.equal(r.alpha, 0.5);
    for (const k of ['threshold', 'frr', 'far', 'tpr', 'auc']) assert.equal(typeof r[k], 'number', k);
    const facts = events.find((e) => e.type === 'facts');
    assert.ok(facts && facts.type === 'facts');
    assert.deepEqual(
      facts.facts.map((f) => f.label),
      ['Threshold', 'FRR', 'FAR', 'TPR', 'ROC AUC'],
    );
    const charts = events.filter((e) => e.type === 'chart');
    assert.deepEqual(
      charts.map((c) => c.type === 'chart' && c.chart.kind),
      ['bar', 'xy'],
    );
    const hist = charts[0];
    // The threshold is drawn as a vertical line on the bin edge it sits on.
    assert.ok(hist.type === 'chart' && hist.chart.kind === 'bar' && hist.threshold?.axis === 'x');
    const edge = hist.threshold.value + 0.5;
    assert.ok(Number.isInteger(edge) && edge >= 0 && edge <= hist.chart.labels.length, `edge at ${edge}`);
    if (edge > 0)
      assert.ok(
        Math.abs(Number(hist.chart.labels[edge - 1].split('–')[1]) - (r.threshold as number)) < 1e-2 * Math.max(1, r.threshold as number),
      );
    const steps = events.filter((e) => e.type === 'step');
    const last = steps[steps.length - 1];
    assert.ok(last && last.type === 'step' && last.step === last.steps, 'progress reaches the end');
    assert.ok(events.some((e) => e.type === 'table'));
  } finally {
    for (const m of made) m.dispose();
  }
  assert.equal(tf.memory().numTensors, before, 'tensors leaked');
});

test('strip.run: too few clean images is an InputError; an aborted signal stops it', async () => {
  await initBackend('auto');
  const clean = cleanSubset(await loadDataset('mnist', { split: 'train' }), { count: 10, seed: 0 });
  const evalSets = { clean, backdoor: backdoorTestSet(clean, GRID) };
  const made: Model[] = [];
  const before = tf.memory().numTensors;
  try {
    await assert.rejects(
      strip.run(
        inputFor(
          clean,
          evalSets,
          made,
          () => createModel(DIGITS, 1),
          {},
          () => undefined,
        ),
      ),
      (e: unknown) => e instanceof InputError && /STRIP needs at least 64 clean images/.test(e.message) && /has 10/.test(e.message),
    );
    const model = createModel(DIGITS, 1);
    made.push(model);
    await assert.rejects(
      stripEntropies(model, clean, clean, { overlays: 11, alpha: 0.5 }),
      (e: unknown) => e instanceof InputError && /at least 11 clean images/.test(e.message),
    );
    const controller = new AbortController();
    await assert.rejects(
      strip.run(
        inputFor(
          clean,
          evalSets,
          made,
          () => createModel(DIGITS, 1),
          { overlays: 4 },
          (e) => {
            if (e.type === 'step') controller.abort();
          },
          controller.signal,
        ),
      ),
      (e: unknown) => e instanceof Error && e.name === 'RunCancelledError',
    );
  } finally {
    for (const m of made) m.dispose();
  }
  assert.equal(tf.memory().numTensors, before, 'tensors leaked');
});
