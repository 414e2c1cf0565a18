// I-BAU's forward-mode second-order terms on BackdoorBench's PreAct-ResNet-18, ResNet-18 and VGG-16-BN against
// PyTorch (test/fixtures/defenses/make_i_bau_archs_fixture.py, torch 1.13, float64): full-width networks with the
// hashed weights of test/fixtures/model/archs.ts (classifier scaled so the softmax is not uniform), one inner and
// two outer images. The masks (count, 0/1), the recorded pass's logits, tangentLogits against torch's jvp (and linear in t), the
// hypergradient's outer loss, v_K, a few parameters' hypergradients and every parameter's hypergradient norm
// against create_graph autograd, with second-order terms a few percent of the whole (the fixture's shares).
// WideResNet and the digits CNN: defense-i-bau.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/engine/backend';
import { hypergradient } from '../../src/engine/defenses/i-bau/hypergradient';
import { reluMasks, tangentLogits } from '../../src/engine/defenses/i-bau/linearised';
import { differentiableLogits, structureOf } from '../../src/engine/models';
import { FIXED_ARCHS, type FixedArch } from '../../src/engine/types';
import { filledModel, uniform } from '../fixtures/model/archs';

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

interface ArchCase {
  classifierScale: number;
  fixedPointLr: number;
  logits: number[];
  jt: number[];
  outerLoss: number;
  v: number[];
  subset: Record<string, number[]>;
  hyperNorms: Record<string, number>;
  secondOrderShare: number;
  vHessianShare: number;
  float32JtDiff: number;
  float32VDiff: number;
  float32HyperDiff: number;
}
const archFixture = JSON.parse(readFileSync(join(__dirname, '..', 'fixtures', 'defenses', 'i-bau-archs.json'), 'utf8')) as {
  inner: number;
  outer: number;
  labels: number[];
  deltaIndex: number;
  patched: number[];
  regularisation: number;
  K: number;
  archs: Record<FixedArch, ArchCase>;
};
const MASKS: Record<FixedArch, number> = { 'preact-resnet18': 16, resnet18: 17, 'vgg16-bn': 13 + 5 };
// Differences relative to the largest reference value (norms: to the norm). Measured 5e-7 to 5e-6 (torch's own
// float32 run, the fixture's float32*: ~1e-6); the WRN test's 1e-3 and 2e-3 are for a trained network on real images.
const TOL = { jt: 1e-4, v: 5e-4, hyper: 5e-4, norm: 5e-4 };

/** |x|_2, summed in float64 (tf.norm's float32 sum of layer4's 2.4M squares is 1e-3 short). */
function norm64(x: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < x.length; i++) sum += x[i] * x[i];
  return Math.sqrt(sum);
}

/** `count` 32x32x3 images of the generator's hash, uniform in [lo, hi). */
const hashedImages = (index: number, count: number, lo: number, hi: number): tf.Tensor4D =>
  tf.tensor4d(
    uniform(index, count * 32 * 32 * 3, 7, (u) => lo + (hi - lo) * u),
    [count, 32, 32, 3],
  );

for (const arch of FIXED_ARCHS) {
  test(`${arch}: the linearised pass is torch's jvp, the hypergradient (K = 5) its create_graph autograd`, async (t) => {
    await initBackend('auto');
    const c = archFixture.archs[arch];
    const { inner, outer } = archFixture;
    // The fixture's second-order terms are large enough for the tolerances to see them.
    assert.ok(c.secondOrderShare > 4 * TOL.hyper && c.vHessianShare > 4 * TOL.v, `${arch}: second-order terms too small to test`);
    const before = tf.memory().numTensors;
    const model = filledModel(arch, 0);
    const x = hashedImages(1_000_000, inner + outer, 0, 1);
    const start = hashedImages(archFixture.deltaIndex, 1, -0.1, 0.1);
    const delta = tf.variable(start);
    start.dispose();
    const dir = hashedImages(3_000_000, 1, -1, 1);
    const labels = tf.tidy(() => tf.oneHot(tf.tensor1d(archFixture.labels, 'int32'), 10) as tf.Tensor2D);
    const [xA, xB] = tf.split(x, [inner, outer]);
    const [yA, yB] = tf.split(labels, [inner, outer]);
    const mask = new Float32Array(outer);
    for (const i of archFixture.patched) mask[i] = 1;
    const patch = tf.tensor4d(mask, [outer, 1, 1, 1]);
    try {
      const classifier = model.params.get(`${structureOf(model.spec).classifier}.weight`);
      tf.tidy(() => classifier.assign(tf.mul(classifier, c.classifierScale)));

      // 1. The masks, the logits of the recorded pass, and J t.
      const got = tf.tidy(() => {
        const xd = tf.add(xA, delta) as tf.Tensor4D;
        const { logits, masks } = reluMasks(model, xd);
        const jt = tangentLogits(model, dir, masks);
        const twice = tangentLogits(model, tf.mul(dir, 2) as tf.Tensor4D, masks);
        assert.throws(
          () => tangentLogits(model, dir, masks.slice(0, -1)),
          (e: unknown) => e instanceof Error && e.name === 'InputError' && /masks/.test(e.message),
        );
        return {
          count: masks.length,
          binary: masks.every((m) => tf.all(tf.logicalOr(tf.equal(m, 0), tf.equal(m, 1))).dataSync()[0] === 1),
          logits: logits.dataSync(),
          same: tf.max(tf.abs(tf.sub(logits, differentiableLogits(model, xd)))).dataSync()[0],
          jt: jt.dataSync(),
          linear: relDiff(
            twice.dataSync(),
            Array.from(jt.dataSync(), (v) => 2 * v),
          ),
        };
      });
      assert.equal(got.count, MASKS[arch], 'masks');
      assert.ok(got.binary, 'the masks are 0/1');
      assert.ok(got.same < 1e-5, `the recorded pass's logits differ from differentiableLogits' by ${got.same}`);
      const dz = relDiff(got.logits, c.logits);
      assert.ok(dz < 1e-4, `logits ${dz}`);
      const djt = relDiff(got.jt, c.jt);
      assert.ok(djt < TOL.jt, `J t ${djt} (torch float32: ${c.float32JtDiff})`);
      assert.ok(got.linear < 1e-5, `not linear in t: ${got.linear}`);

      // 2. The hypergradient.
      const settings = { fixedPointSteps: archFixture.K, fixedPointLr: c.fixedPointLr, regularisation: archFixture.regularisation };
      const h = hypergradient(
        model,
        delta,
        { x: xA as tf.Tensor4D, y: yA as tf.Tensor2D },
        { x: xB as tf.Tensor4D, y: yB as tf.Tensor2D, patch },
        settings,
      );
      try {
        assert.ok(Math.abs(h.outerLoss - c.outerLoss) < 5e-5 * c.outerLoss, `outer loss ${h.outerLoss} vs ${c.outerLoss}`);
        const dv = relDiff(h.v.dataSync(), c.v);
        assert.ok(dv < TOL.v, `v_K ${dv} (torch float32: ${c.float32VDiff})`);
        const vars = new Map(model.params.trainable());
        const worst = { hyper: 0, norm: 0 };
        const grad = (param: string): tf.Tensor => h.grads[(vars.get(param) as tf.Variable).name];
        for (const [param, want] of Object.entries(c.subset)) {
          const d = relDiff(grad(param).dataSync(), want);
          worst.hyper = Math.max(worst.hyper, d);
          assert.ok(d < TOL.hyper, `${param} hypergradient ${d} (torch float32: ${c.float32HyperDiff})`);
        }
        assert.deepEqual(Object.keys(c.hyperNorms), [...vars.keys()], 'every parameter, in order');
        for (const [param, norm] of Object.entries(c.hyperNorms)) {
          const got = norm64(grad(param).dataSync());
          const d = Math.abs(got - norm) / norm;
          worst.norm = Math.max(worst.norm, d);
          assert.ok(d <= TOL.norm, `|hypergradient| of ${param}: ${got} vs ${norm}`);
        }
        t.diagnostic(
          `differences / largest reference value: J t ${djt.toExponential(1)}, v_K ${dv.toExponential(1)}, ` +
            `hypergradients ${worst.hyper.toExponential(1)}, norms ${worst.norm.toExponential(1)} (relative)`,
        );
      } finally {
        tf.dispose([h.v, ...Object.values(h.grads)]);
      }
    } finally {
      tf.dispose([x, delta, dir, labels, xA, xB, yA, yB, patch]);
      model.dispose();
    }
    assert.equal(tf.memory().numTensors, before, 'tensors leaked');
  });
}
