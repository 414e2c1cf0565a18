// WRN-10-1 on 28x28 grayscale digits, the demo's model (src/runs/demo.ts), against PyTorch: state_dict keys in
// PyTorch's order, evaluation logits, the three residual groups' attention maps (28, 14, 7), the pooled classifier
// input, the input gradient of differentiableLogits (its own WideResNet path), two NAD steps, and the checkpoint
// recogniser. Weights and inputs are filled from the integer hash of test/fixtures/model/archs.ts, as
// test/fixtures/model/make_wrn_digits_fixture.py did to make wrn10-1-digits-reference.json with torch 1.13.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/engine/backend';
import { inferSpec, specMetadata } from '../../src/engine/checkpoint';
import { attentionMap } from '../../src/engine/attention';
import { createModel, differentiableLogits, type Model } from '../../src/engine/models';
import { Sgd } from '../../src/engine/optim';
import { trainingStep } from '../../src/engine/train';
import type { ModelSpec } from '../../src/engine/types';
import { DEMO_MODEL } from '../../src/runs/demo';
import { fill, uniform } from '../fixtures/model/archs';

interface Summary {
  shape: number[];
  sum: number;
  absSum: number;
  first: number[];
}
interface Reference {
  keys: [string, number[]][];
  labels: number[];
  logits: number[];
  groups: { shape: number[]; summary: Summary; attention: number[] }[];
  features: Summary;
  inputGradient: Summary;
  nadSteps: { lr: number; losses: number[]; params: Record<string, Summary> };
}
const ref = JSON.parse(readFileSync(join(__dirname, '..', 'fixtures', 'model', 'wrn10-1-digits-reference.json'), 'utf8')) as Reference;

const SIDE = 28;
const N = 4;
const spec: ModelSpec = { ...DEMO_MODEL, numClasses: 10, inChannels: 1, imageSize: SIDE };
const images = (): Float32Array => uniform(1_000_000, N * SIDE * SIDE, 7);

function filled(salt: number): Model {
  const m = createModel(spec, 0);
  m.params.loadStateDict(fill(m, salt), `wrn10-1-salt${salt}`);
  return m;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** sum and |sum| within `rel` of the reference's |sum|; the first values within 50 rel of its mean magnitude. */
function assertSummary(data: ArrayLike<number>, shape: readonly number[], r: Summary, rel: number, what: string): void {
  assert.deepEqual([...shape], r.shape, `${what} shape`);
  let sum = 0;
  let abs = 0;
  for (let i = 0; i < data.length; i++) {
    sum += data[i];
    abs += Math.abs(data[i]);
  }
  assert.ok(Math.abs(abs - r.absSum) <= rel * r.absSum + 1e-6, `${what} |sum| ${abs} vs ${r.absSum}`);
  assert.ok(Math.abs(sum - r.sum) <= rel * r.absSum + 1e-6, `${what} sum ${sum} vs ${r.sum}`);
  const first = Array.from({ length: r.first.length }, (_, i) => data[i]);
  assert.ok(maxAbsDiff(first, r.first) <= 50 * rel * (r.absSum / data.length) + 1e-6, `${what} first values ${first} vs ${r.first}`);
}

test('the demo model is WRN-10-1, and on 28x28 digits it equals PyTorch', async (t) => {
  await initBackend('auto');
  const student = filled(0);
  const teacher = filled(1);
  const x = tf.tensor4d(images(), [N, SIDE, SIDE, 1]);
  try {
    await t.test("keys and shapes in PyTorch's order; logits, the three groups' attention maps, the pooled classifier input", () => {
      assert.deepEqual(
        [...student.params.torchShapes()].map(([k, sh]) => [k, [...sh]]),
        ref.keys,
      );
      const before = tf.memory().numTensors;
      const out = tf.tidy(() => {
        const r = student.forward(x, false);
        return {
          logits: r.logits.dataSync().slice(),
          groups: r.groups.map((g) => ({ shape: g.shape, data: g.dataSync().slice(), maps: attentionMap(g).dataSync().slice() })),
          features: { shape: r.features.shape, data: r.features.dataSync().slice() },
        };
      });
      assert.equal(tf.memory().numTensors, before, 'the forward pass leaves no tensors behind');
      assert.ok(maxAbsDiff(out.logits, ref.logits) < 2e-5, `logits differ by ${maxAbsDiff(out.logits, ref.logits)}`);
      assert.deepEqual(
        out.groups.map((g) => g.shape.slice(1, 3)),
        [
          [28, 28],
          [14, 14],
          [7, 7],
        ],
      );
      out.groups.forEach((g, i) => {
        const r = ref.groups[i];
        assert.deepEqual(g.shape.slice(1, 3), r.shape, `group ${i + 1} size`);
        // PyTorch's summary is over NCHW: the sums do not depend on the order, its first values do (not compared).
        assertSummary(g.data, [g.shape[0], g.shape[3], g.shape[1], g.shape[2]], { ...r.summary, first: [] }, 1e-4, `group ${i + 1}`);
        const maps = g.maps.slice(0, 2 * r.shape[0] * r.shape[1]);
        assert.ok(maxAbsDiff(maps, r.attention) < 1e-4, `group ${i + 1} attention differs by ${maxAbsDiff(maps, r.attention)}`);
      });
      assertSummary(out.features.data, out.features.shape, ref.features, 1e-4, 'classifier input');
    });

    await t.test("differentiableLogits gives PyTorch's input gradient of the labelled logits", () => {
      const before = tf.memory().numTensors;
      const grad = tf.tidy(() => {
        const mask = tf.oneHot(tf.tensor1d(ref.labels, 'int32'), 10);
        const g = tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(differentiableLogits(student, xx as tf.Tensor4D), mask)))(x);
        return { shape: g.shape, data: g.dataSync().slice() };
      });
      assert.equal(tf.memory().numTensors, before);
      assertSummary(grad.data, grad.shape, ref.inputGradient, 2e-3, 'input gradient');
    });

    await t.test('its state_dict is recognised as WRN-10-1 from the keys, with the image size our files record', () => {
      const sd = student.params.toStateDict();
      assert.deepEqual(inferSpec(sd, 'wrn10-1.pth', { imageSize: '28' }), spec);
      assert.deepEqual(inferSpec(sd, 'wrn10-1.safetensors', specMetadata(spec)), spec);
    });

    await t.test('two NAD steps (CE + betas 500/1000/1000, SGD momentum 0.9, wd 5e-4): loss, weights, BN statistics', () => {
      const sgd = new Sgd(student.params.trainable(), { momentum: 0.9, weightDecay: 5e-4, nesterov: false });
      try {
        const before = tf.memory().numTensors;
        const losses = [0, 1].map(() =>
          trainingStep({
            student,
            teacher,
            optimizer: sgd,
            xs: images(),
            ys: Int32Array.from(ref.labels),
            imageShape: [SIDE, SIDE, 1],
            numClasses: 10,
            betas: [500, 1000, 1000],
            attentionPower: 2,
            lr: ref.nadSteps.lr,
          }),
        );
        assert.equal(tf.memory().numTensors, before, 'a step leaves no tensors behind');
        losses.forEach((l, i) =>
          assert.ok(Math.abs(l - ref.nadSteps.losses[i]) < 2e-3 * ref.nadSteps.losses[i], `loss ${i}: ${l} vs ${ref.nadSteps.losses[i]}`),
        );
        const sd = student.params.toStateDict();
        for (const [key, r] of Object.entries(ref.nadSteps.params)) {
          const v = sd.get(key);
          assert.ok(v, key);
          assertSummary(v.data, v.shape, r, 2e-3, key);
        }
      } finally {
        sgd.dispose();
      }
    });
  } finally {
    x.dispose();
    student.dispose();
    teacher.dispose();
  }
});
