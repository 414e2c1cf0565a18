// The models and the training step against PyTorch on the NAD authors' checkpoints: logits, attention
// maps, and two full NAD steps (loss, updated weights, BN running stats). Fixture made by
// scripts/fixtures/make_model_fixtures.py with torch 1.13.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/engine/backend';
import { inferSpec, readCheckpoint } from '../../src/engine/checkpoint';
import { createModel, modelFromStateDict, type Model } from '../../src/engine/models';
import { attentionMap } from '../../src/engine/attention';
import { loadDataset, selectImages } from '../../src/engine/data';
import { toFloatBatch } from '../../src/engine/data/augment';
import { applyTrigger } from '../../src/engine/triggers';
import { Sgd } from '../../src/engine/optim';
import { trainingStep } from '../../src/engine/train';
import { InputError } from '../../src/engine/types';
import { CIFAR_DIR, SHARED, hasShared } from '../fixtures/data/paths';

const MODELS = join(SHARED, 'models', 'nad-reference');
const STUDENT = join(MODELS, 'wrn16-1_badnets-grid_target5.pth.tar');
const TEACHER = join(MODELS, 'wrn16-1_teacher-finetuned.pth.tar');
const skip = !(hasShared() && existsSync(STUDENT)) && '../shared absent';

interface Fixture {
  testIndices: number[];
  inputs: Record<'clean' | 'triggered', { logits: number[]; attention: number[][]; attentionShapes: number[][] }>;
  nadSteps: {
    trainCount: number;
    lr: number;
    losses: number[];
    params: Record<string, { shape: number[]; sum: number; absSum: number; first: number[] }>;
  };
}
const fixture = JSON.parse(readFileSync(join(__dirname, '..', 'fixtures', 'model', 'wrn16-1-reference.json'), 'utf8')) as Fixture;

async function load(file: string): Promise<Model> {
  const ck = await readCheckpoint(file);
  return modelFromStateDict(ck.spec, ck.stateDict, file);
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

test('WRN-16-1 logits and attention maps equal PyTorch on clean and triggered CIFAR images', { skip }, async () => {
  await initBackend('auto');
  const test = await loadDataset(join(CIFAR_DIR, 'test.bin'), { split: 'test' });
  const clean = selectImages(test, fixture.testIndices);
  const triggered = applyTrigger(clean, { name: 'gridTrigger' });
  const model = await load(STUDENT);
  try {
    for (const [name, ds] of [
      ['clean', clean],
      ['triggered', triggered],
    ] as const) {
      const x = toFloatBatch(
        ds,
        fixture.testIndices.map((_, i) => i),
      );
      const { logits, maps } = tf.tidy(() => {
        const out = model.forward(tf.tensor4d(x, [ds.count, 32, 32, 3]), false);
        return { logits: out.logits.dataSync().slice(), maps: out.groups.map((g) => attentionMap(g).dataSync().slice()) };
      });
      const ref = fixture.inputs[name];
      assert.ok(maxAbsDiff(logits, ref.logits) < 2e-3, `${name} logits differ by ${maxAbsDiff(logits, ref.logits)}`);
      maps.forEach((m, g) =>
        assert.ok(maxAbsDiff(m, ref.attention[g]) < 1e-4, `${name} attention group ${g + 1} differs by ${maxAbsDiff(m, ref.attention[g])}`),
      );
    }
  } finally {
    model.dispose();
  }
});

test(
  'two NAD steps (CE + betas 500/1000/1000, SGD Nesterov, wd 1e-4) equal PyTorch: loss, weights, BN running stats',
  { skip },
  async () => {
    await initBackend('auto');
    const train = await loadDataset(join(CIFAR_DIR, 'train.bin'), { split: 'train' });
    const n = fixture.nadSteps.trainCount;
    const idx = Array.from({ length: n }, (_, i) => i);
    const xs = toFloatBatch(train, idx);
    const ys = Int32Array.from(idx, (i) => train.labels[i]);
    const student = await load(STUDENT);
    const teacher = await load(TEACHER);
    const sgd = new Sgd(student.params.trainable(), { momentum: 0.9, weightDecay: 1e-4, nesterov: true });
    try {
      const before = tf.memory().numTensors;
      const losses = [0, 1].map(() =>
        trainingStep({
          student,
          teacher,
          optimizer: sgd,
          xs,
          ys,
          imageShape: [32, 32, 3],
          numClasses: 10,
          betas: [500, 1000, 1000],
          attentionPower: 2,
          lr: fixture.nadSteps.lr,
        }),
      );
      assert.equal(tf.memory().numTensors, before, 'a step leaves no tensors behind');
      losses.forEach((l, i) =>
        assert.ok(
          Math.abs(l - fixture.nadSteps.losses[i]) < 1e-3 * Math.max(1, fixture.nadSteps.losses[i]),
          `loss ${i}: ${l} vs ${fixture.nadSteps.losses[i]}`,
        ),
      );
      const sd = student.params.toStateDict();
      for (const [key, ref] of Object.entries(fixture.nadSteps.params)) {
        const t = sd.get(key);
        assert.ok(t, key);
        assert.deepEqual([...t.shape], ref.shape, key);
        let sum = 0;
        let abs = 0;
        for (const v of t.data) {
          sum += v;
          abs += Math.abs(v);
        }
        assert.ok(Math.abs(abs - ref.absSum) < 1e-3 * ref.absSum + 1e-4, `${key} |sum| ${abs} vs ${ref.absSum}`);
        assert.ok(Math.abs(sum - ref.sum) < 1e-3 * ref.absSum + 1e-4, `${key} sum ${sum} vs ${ref.sum}`);
        assert.ok(
          maxAbsDiff(t.data.slice(0, ref.first.length), ref.first) < 1e-4 + 1e-3 * Math.max(...ref.first.map(Math.abs)),
          `${key} first values`,
        );
      }
    } finally {
      sgd.dispose();
      student.dispose();
      teacher.dispose();
    }
  },
);

test('state_dict export/import round trip and architecture mismatch errors name the file', async () => {
  await initBackend('auto');
  const a = createModel({ arch: 'wrn', depth: 10, widen: 1, numClasses: 10, inChannels: 3, imageSize: 32 }, 1);
  const sd = a.params.toStateDict();
  const b = modelFromStateDict(a.spec, sd, 'a.safetensors');
  for (const [k, v] of b.params.toStateDict()) assert.equal(maxAbsDiff(v.data, (sd.get(k) as { data: Float32Array }).data), 0, k);
  assert.throws(
    () => modelFromStateDict({ arch: 'wrn', depth: 10, widen: 2, numClasses: 10, inChannels: 3, imageSize: 32 }, sd, 'wrong-arch.pth'),
    (e: unknown) => e instanceof InputError && /wrong-arch\.pth/.test(e.message) && /shape/.test(e.message),
  );
  const cnn = createModel({ arch: 'cnn', numClasses: 10, inChannels: 1, imageSize: 28 }, 0);
  assert.throws(
    () => modelFromStateDict(a.spec, cnn.params.toStateDict(), 'cnn.safetensors'),
    (e: unknown) => e instanceof InputError && /missing|unexpected/.test(e.message),
  );
  // A CNN state_dict without recorded spec (as saved from PyTorch) is recognised by its keys and shapes.
  assert.deepEqual(inferSpec(cnn.params.toStateDict(), 'cnn.pth'), { arch: 'cnn', numClasses: 10, inChannels: 1, imageSize: 28 });
  for (const m of [a, b, cnn]) m.dispose();
  assert.equal(tf.memory().numTensors, 0);
});
