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
import { createModel, type Model } from '../../src/engine/models';
import { Sgd } from '../../src/engine/optim';
import { trainingStep } from '../../src/engine/train';
import type { ModelSpec } from '../../src/engine/types';
import { DEMO_MODEL } from '../../src/runs/demo';
import { fill, uniform } from '../fixtures/model/archs';
import { assertForwardEqualsTwin, assertInputGradientEqualsTwin, assertSummary, type TwinReference } from '../fixtures/model/twin-checks';

const ref = JSON.parse(readFileSync(join(__dirname, '..', 'fixtures', 'model', 'wrn10-1-digits-reference.json'), 'utf8')) as TwinReference;

const SIDE = 28;
const N = 4;
const spec: ModelSpec = { ...DEMO_MODEL, numClasses: 10, inChannels: 1, imageSize: SIDE };
const images = (): Float32Array => uniform(1_000_000, N * SIDE * SIDE, 7);

function filled(salt: number): Model {
  const m = createModel(spec, 0);
  m.params.loadStateDict(fill(m, salt), `wrn10-1-salt${salt}`);
  return m;
}

test('the demo model is WRN-10-1, and on 28x28 digits it equals PyTorch', async (t) => {
  await initBackend('auto');
  const student = filled(0);
  const teacher = filled(1);
  const x = tf.tensor4d(images(), [N, SIDE, SIDE, 1]);
  try {
    await t.test("keys and shapes in PyTorch's order; logits, the three groups' attention maps, the pooled classifier input", () => {
      const groups = assertForwardEqualsTwin(student, x, ref, 2e-5);
      assert.deepEqual(
        groups.map((g) => g.slice(1, 3)),
        [
          [28, 28],
          [14, 14],
          [7, 7],
        ],
      );
    });

    await t.test("differentiableLogits gives PyTorch's input gradient of the labelled logits", () => {
      assertInputGradientEqualsTwin(student, x, ref);
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
