// BackdoorBench's CIFAR architectures (PreAct-ResNet-18, ResNet-18, VGG-16-BN) against PyTorch: state_dict
// keys in PyTorch's order, evaluation logits, the three attention groups, the classifier's input, the
// input gradient of differentiableLogits, and two NAD steps (loss, weights, BN running statistics). The
// weights are full width but not stored: both sides fill them from an integer hash (`fill`, as
// test/fixtures/model/make_archs_fixture.py, which made archs-reference.json with torch 1.13). Also: the
// checkpoint recognisers, spec checks, and what Fine-Pruning and CLP find in each architecture.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/engine/backend';
import { inferSpec, specMetadata } from '../../src/engine/checkpoint';
import { createModel, specFor, structureOf, validateSpec } from '../../src/engine/models';
import { pruneChannels, prunedNonZeros, pruneTarget } from '../../src/engine/defenses/fine-pruning';
import { convBnPairs } from '../../src/engine/defenses/clp';
import { Sgd } from '../../src/engine/optim';
import { trainingStep } from '../../src/engine/train';
import { FIXED_ARCHS, InputError, type FixedArch, type StateDict } from '../../src/engine/types';
import { N, fill, filledModel, images, specOf } from '../fixtures/model/archs';
import {
  assertForwardEqualsTwin,
  assertInputGradientEqualsTwin,
  assertSummary,
  maxAbsDiff,
  type TwinReference,
} from '../fixtures/model/twin-checks';

const fixture = JSON.parse(readFileSync(join(__dirname, '..', 'fixtures', 'model', 'archs-reference.json'), 'utf8')) as Record<
  FixedArch,
  TwinReference
>;

/** Each architecture's state_dict with the generator's weights (salt 0), for the recogniser tests. */
const stateDicts = new Map<FixedArch, StateDict>();

// One test per architecture: its subtests share the two models (building 11-15M weights costs more CPU
// than the forward passes), in order: evaluation, gradients and checkpoints before the NAD steps change the student.
for (const arch of FIXED_ARCHS) {
  const ref = fixture[arch];
  test(`${arch} against PyTorch`, async (t) => {
    await initBackend('auto');
    const spec = specOf(arch);
    const student = filledModel(arch, 0);
    const teacher = filledModel(arch, 1);
    const x = tf.tensor4d(images(), [N, 32, 32, 3]);
    try {
      await t.test("state_dict keys and shapes in PyTorch's order; logits, attention groups and classifier input", () => {
        assert.equal(assertForwardEqualsTwin(student, x, ref, 2e-4).length, 3);
      });

      await t.test("differentiableLogits gives PyTorch's input gradient of the labelled logits", () => {
        assertInputGradientEqualsTwin(student, x, ref);
      });

      await t.test('its state_dict is recognised from the keys, loads back exactly, and a damaged one names the problem', () => {
        const sd = student.params.toStateDict();
        stateDicts.set(arch, sd);
        assert.deepEqual(inferSpec(sd, `${arch}.pth`), spec);
        assert.deepEqual(inferSpec(sd, `${arch}.safetensors`, specMetadata(spec)), spec, 'the spec our model files record');
        if (arch === 'vgg16-bn')
          assert.throws(
            () => inferSpec(sd, `${arch}.pth`, { imageSize: '64' }),
            (e: unknown) => e instanceof InputError && /reads 512 values, which fits 32x32 images, not 64x64/.test(e.message),
          );
        else assert.equal(inferSpec(sd, `${arch}.pth`, { imageSize: '64' }).imageSize, 64, 'the stated image size');
        // Into the teacher (its weights are reloaded below): the same logits as the student's.
        teacher.params.loadStateDict(sd, `${arch}.pth`);
        const diff = tf.tidy(() => maxAbsDiff(student.forward(x, false).logits.dataSync(), teacher.forward(x, false).logits.dataSync()));
        assert.equal(diff, 0);
        const damaged: StateDict = new Map([...sd].filter(([k]) => !k.endsWith('.bias') || k.startsWith('features')));
        assert.throws(
          () => teacher.params.loadStateDict(damaged, 'damaged.pth'),
          (e: unknown) => e instanceof InputError && /damaged\.pth: .*missing .*\.bias/.test(e.message),
        );
        teacher.params.loadStateDict(fill(teacher, 1), `${arch}-salt1`);
      });

      await t.test('every batch norm goes through ParamSet.applyBatchNorm (where ANP modulates them)', () => {
        const seen = new Set<string>();
        student.params.setBatchNormModulation((layer) => {
          seen.add(layer);
          return undefined;
        });
        tf.tidy(() => student.forward(x, false).logits);
        student.params.setBatchNormModulation(undefined);
        const bns = [...student.params.torchShapes().keys()].filter((k) => k.endsWith('.running_mean')).map((k) => k.slice(0, -13));
        assert.deepEqual([...seen].sort(), bns.sort());
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
              imageShape: [32, 32, 3],
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
}

test('recognisers refuse near-miss layouts with the reason: torchvision ResNet, VGG-19, a 7x7 stem', () => {
  const sd = stateDicts.get('resnet18');
  const vsd = stateDicts.get('vgg16-bn');
  assert.ok(sd && vsd, 'the architecture tests ran first');
  const torchvision: StateDict = new Map([...sd].map(([k, v]) => [k.replace('linear.', 'fc.').replace('shortcut.', 'downsample.'), v]));
  assert.throws(
    () => inferSpec(torchvision, 'tv.pth'),
    (e: unknown) => e instanceof InputError && /tv\.pth: looks like a ResNet-18 but its keys are torchvision's/.test(e.message),
  );
  const conv1 = sd.get('conv1.weight');
  assert.ok(conv1);
  const stem7: StateDict = new Map(sd);
  stem7.set('conv1.weight', { ...conv1, shape: [64, 3, 7, 7], data: new Float32Array(64 * 3 * 49) });
  assert.throws(
    () => inferSpec(stem7, 'stem.pth'),
    (e: unknown) => e instanceof InputError && /conv1\.weight has shape \[64, 3, 7, 7\]/.test(e.message),
  );
  const f0 = vsd.get('features.0.weight');
  assert.ok(f0);
  const vgg19: StateDict = new Map(vsd);
  vgg19.set('features.50.weight', f0);
  assert.throws(
    () => inferSpec(vgg19, 'vgg19.pth'),
    (e: unknown) => e instanceof InputError && /vgg19\.pth: .*14 convolutions .*supported is VGG-16-BN/.test(e.message),
  );
});

test('specs: sizes come from the data; VGG needs a side that is a multiple of 32', () => {
  const data = { height: 32, width: 32, channels: 3, numClasses: 43 };
  assert.deepEqual(specFor('preact-resnet18', data), { arch: 'preact-resnet18', numClasses: 43, inChannels: 3, imageSize: 32 });
  assert.deepEqual(specFor(specOf('vgg16-bn'), data), { arch: 'vgg16-bn', numClasses: 43, inChannels: 3, imageSize: 32 });
  assert.throws(
    () => validateSpec({ arch: 'vgg16-bn', numClasses: 10, inChannels: 1, imageSize: 28 }),
    (e: unknown) => e instanceof InputError && /multiple of 32; got 28/.test(e.message),
  );
  validateSpec({ arch: 'resnet18', numClasses: 10, inChannels: 1, imageSize: 28 });
});

test("Fine-Pruning: VGG-16-BN prunes features.40 through features.41, and the channels stay 0 through SGD; the ResNets prune the classifier's columns", async () => {
  await initBackend('auto');
  const vgg = createModel(specOf('vgg16-bn'), 0);
  try {
    const t = pruneTarget(vgg);
    assert.deepEqual([t.layer, t.bn, t.classifier, t.channels, t.positions], ['features.40', 'features.41', 'classifier', 512, 1]);
    pruneChannels(vgg, t, [3, 100]);
    // Through SGD steps (momentum, Nesterov, weight decay) the pruned scale, shift and classifier rows stay 0.
    const sgd = new Sgd(vgg.params.trainable(), { momentum: 0.9, weightDecay: 5e-4, nesterov: true });
    const ys = Int32Array.from({ length: N }, (_, i) => i);
    for (let s = 0; s < 2; s++)
      trainingStep({
        student: vgg,
        optimizer: sgd,
        xs: images(),
        ys,
        imageShape: [32, 32, 3],
        numClasses: 10,
        betas: [0, 0, 0],
        attentionPower: 2,
        lr: 0.1,
      });
    sgd.dispose();
    assert.equal(prunedNonZeros(vgg, t, [3, 100]), 0);
    const f = tf.tidy(() =>
      vgg
        .forward(tf.tensor4d(images(), [N, 32, 32, 3]), false)
        .features.dataSync()
        .slice(),
    );
    for (let i = 0; i < N; i++) {
      assert.equal(f[i * 512 + 3], 0);
      assert.equal(f[i * 512 + 100], 0);
    }
  } finally {
    vgg.dispose();
  }
  for (const arch of ['preact-resnet18', 'resnet18'] as const) {
    // No batch norm zeroes what their classifier reads: the classifier's columns are the pruned unit
    // (checked against fp.py in defense-fine-pruning.test.ts).
    const m = createModel(specOf(arch), 0);
    const t = pruneTarget(m);
    assert.deepEqual([t.layer, t.bn, t.classifier, t.channels, t.positions], ['layer4.1.conv2', undefined, 'linear', 512, 1]);
    const s = structureOf(m.spec).lastConv;
    assert.ok('columnsOnly' in s && /shortcut|identity/.test(s.columnsOnly));
    m.dispose();
  }
});

test("CLP pairs every batch norm with the convolution registered before it, as CLP_prune's walk", async () => {
  await initBackend('auto');
  const counts: Record<FixedArch, number> = { 'preact-resnet18': 16, resnet18: 20, 'vgg16-bn': 13 };
  for (const arch of FIXED_ARCHS) {
    const m = createModel(specOf(arch), 0);
    const pairs = convBnPairs(m);
    m.dispose();
    assert.equal(pairs.length, counts[arch], arch);
    if (arch === 'resnet18') assert.deepEqual(pairs[pairs.length - 1], { conv: 'layer4.1.conv2', bn: 'layer4.1.bn2', channels: 512 });
    if (arch === 'preact-resnet18') assert.deepEqual(pairs[0], { conv: 'conv1', bn: 'layer1.0.bn1', channels: 64 });
  }
});
