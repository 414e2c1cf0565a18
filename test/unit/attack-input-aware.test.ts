// The input-aware attack against PyTorch (test/fixtures/attacks/make_input_aware_fixture.py, torch 1.13, on
// weights given by a formula both sides compute): the generators' outputs in evaluation and training mode,
// the poisoned and cross-triggered images and their uint8, the diversity loss, one mask-generator step and
// one joint step of the classifier and G (losses and updated weights). Then the trigger file round trip,
// its errors, and a short poison-and-train on embedded digits with no tensor leak.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { inputAware, saveInputAwareNets, INPUT_AWARE_FILE } from '../../src/engine/attacks/input-aware';
import { jointTraining, patternDiversity } from '../../src/engine/attacks/input-aware/joint';
import { INPUT_AWARE, maskStep } from '../../src/engine/attacks/input-aware/mask';
import { attackNamed } from '../../src/engine/attacks/registry';
import { initBackend } from '../../src/engine/backend';
import { loadDataset, selectImages } from '../../src/engine/data';
import { createModel } from '../../src/engine/models';
import {
  generatorConfigFor,
  inputAwareNetsFrom,
  normalizeImages,
  triggerBatch,
  type InputAwareNets,
} from '../../src/engine/models/input-aware-generator';
import { Adam, Sgd } from '../../src/engine/optim';
import { checkParams } from '../../src/engine/params';
import { BADNET_TRAINING } from '../../src/engine/schedules';
import { train, trainingStep } from '../../src/engine/train';
import { backdoorTestSet, createTrigger, resolveTriggerSpec } from '../../src/engine/triggers';
import { stampInputAware } from '../../src/engine/triggers/input-aware';
import { InputError, type ImageDataset, type StateDict } from '../../src/engine/types';
import { tempFolder } from '../fixtures/data/paths';

interface ParamRow {
  key: string;
  shape: number[];
  a: number;
  b: number;
  j: number;
}
interface Case {
  name: string;
  channels: number;
  side: number;
  count: number;
  images: string;
  evalPattern: string;
  evalMask: string;
  bd01: string;
  bdUint8: string;
  cross01: string;
  diversity: number;
  trainPattern: string;
  trainRunning: Record<string, number[]>;
  maskStep: { total: number; norm: number; div: number; weights: Record<string, number[]> };
  jointStep: {
    labels: number[];
    target: number;
    numBd: number;
    numCross: number;
    crossSources: number[];
    ce: number;
    div: number;
    total: number;
    classifierParams: ParamRow[];
    bdInputs: string;
    generator: Record<string, number[]>;
    classifier: Record<string, number[]>;
  };
  params: ParamRow[];
}
const fixture = JSON.parse(readFileSync(join(__dirname, '..', 'fixtures', 'attacks', 'input-aware.json'), 'utf8')) as { cases: Case[] };

const f32 = (b64: string): Float32Array => {
  const buf = Buffer.from(b64, 'base64');
  return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
};
const u8 = (b64: string): Uint8Array => new Uint8Array(Buffer.from(b64, 'base64'));
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
};
const close = (actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void => {
  const d = maxDiff(actual, expected);
  assert.ok(d <= tol, `${what}: max |diff| ${d.toExponential(2)} > ${tol}`);
};

/** The fixture's weights: a + b (2 frac(43758.5453 sin(0.7 i + 1.1 j + 0.3)) - 1) in PyTorch's layout, float32. */
function stateDictOf(rows: readonly ParamRow[], strip = ''): StateDict {
  const sd: StateDict = new Map();
  for (const r of rows) {
    const n = r.shape.reduce((p, v) => p * v, 1);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const h = Math.sin(0.7 * i + 1.1 * r.j + 0.3) * 43758.5453;
      data[i] = r.a + r.b * (2 * (h - Math.floor(h)) - 1);
    }
    sd.set(r.key.slice(strip.length), { shape: r.shape, dtype: 'float32', data });
  }
  return sd;
}

function netsOf(c: Case): InputAwareNets {
  const cfg = generatorConfigFor({ height: c.side, width: c.side, channels: c.channels });
  return inputAwareNetsFrom(stateDictOf(c.params), { inputAware: JSON.stringify(cfg) }, 'fixture');
}

function datasetOf(c: Case): ImageDataset {
  return {
    images: u8(c.images),
    labels: Int32Array.from(c.jointStep.labels),
    count: c.count,
    height: c.side,
    width: c.side,
    channels: c.channels,
    numClasses: 4,
    source: `fixture ${c.name}`,
  };
}

/** Images i..j of the case as NHWC floats in [0, 1]. */
function batchOf(c: Case, from: number, to: number): tf.Tensor4D {
  const size = c.side * c.side * c.channels;
  const px = u8(c.images).subarray(from * size, to * size);
  return tf.tensor4d(
    Float32Array.from(px, (v) => v / 255),
    [to - from, c.side, c.side, c.channels],
  );
}

/** First values of a parameter in PyTorch's layout. */
function torchValues(nets: InputAwareNets['pattern'], key: string, n: number): number[] {
  const t = nets.params.toStateDict().get(key);
  assert.ok(t, `no ${key}`);
  return Array.from(t.data.subarray(0, n));
}

test('input-aware: generators, triggers, diversity and one step of each stage match PyTorch', async () => {
  await initBackend('auto');
  const before = tf.memory().numTensors;
  for (const c of fixture.cases) {
    const nets = netsOf(c);
    try {
      // Evaluation mode: G, threshold(M), create_bd and create_cross (in [0, 1]).
      tf.tidy(() => {
        const x4 = batchOf(c, 0, 4);
        const bd = triggerBatch(nets, x4, x4, false);
        close(bd.patterns.dataSync(), f32(c.evalPattern), 2e-5, `${c.name} G`);
        close(bd.masks.dataSync(), f32(c.evalMask), 2e-4, `${c.name} threshold(M)`);
        close(bd.images.dataSync(), f32(c.bd01), 5e-5, `${c.name} poisoned images`);
        const cross = triggerBatch(nets, x4, batchOf(c, 4, 8), false);
        close(cross.images.dataSync(), f32(c.cross01), 5e-5, `${c.name} cross images`);
        // The formula on PyTorch's patterns (an untrained G gives nearly equal patterns: the ratio would
        // magnify float32 rounding of G itself).
        const p = tf.tensor4d(f32(c.evalPattern), x4.shape);
        const half = (t: tf.Tensor4D, from: number): tf.Tensor4D => tf.slice(t, [from, 0, 0, 0], [2, -1, -1, -1]);
        const d = patternDiversity(nets, half(x4, 0), half(x4, 2), half(p, 0), half(p, 2)).dataSync()[0];
        assert.ok(Math.abs(d - c.diversity) <= 1e-4 * Math.abs(c.diversity), `${c.name} diversity ${d} vs ${c.diversity}`);
      });
      // Stored as uint8 by truncation: equal but where float rounding straddles an integer.
      const size = c.side * c.side * c.channels;
      const stamped = u8(c.images).slice(0, 4 * size);
      stampInputAware(nets, stamped, 4, { height: c.side, width: c.side, channels: c.channels });
      const expected = u8(c.bdUint8);
      let off = 0;
      for (let i = 0; i < expected.length; i++) {
        assert.ok(Math.abs(stamped[i] - expected[i]) <= 1, `${c.name} uint8 pixel ${i}: ${stamped[i]} vs ${expected[i]}`);
        if (stamped[i] !== expected[i]) off++;
      }
      assert.ok(off <= expected.length / 100, `${c.name}: ${off} of ${expected.length} uint8 values off by one`);

      // Training mode: batch statistics, and the running statistics moved with momentum 0.05.
      tf.tidy(() => {
        const out = nets.pattern.forward(normalizeImages(batchOf(c, 0, 4), nets.config), true);
        close(out.dataSync(), f32(c.trainPattern), 1e-4, `${c.name} G in training mode`);
      });
      for (const [key, values] of Object.entries(c.trainRunning))
        close(torchValues(nets.pattern, key, values.length), values, 2e-5, `${c.name} G ${key}`);
    } finally {
      nets.dispose();
    }

    // One train_mask_step.
    const masked = netsOf(c);
    try {
      const adam = new Adam(
        masked.mask.params.trainable().map(([, v]) => v),
        INPUT_AWARE.adam,
      );
      const [x1, x2] = [batchOf(c, 0, 5), batchOf(c, 5, 10)];
      const losses = maskStep(masked, adam, x1, x2, { lambdaDiv: 1, lambdaNorm: 100, maskDensity: 0.032 }, 0.01);
      tf.dispose([x1, x2]);
      adam.dispose();
      const m = c.maskStep;
      for (const k of ['total', 'norm', 'div'] as const)
        assert.ok(Math.abs(losses[k] - m[k]) <= 1e-4 * Math.max(1, Math.abs(m[k])), `${c.name} mask ${k}: ${losses[k]} vs ${m[k]}`);
      for (const [key, values] of Object.entries(m.weights))
        close(torchValues(masked.mask, key, values.length), values, 1e-4, `${c.name} mask step ${key}`);
    } finally {
      masked.dispose();
    }

    // One train_step of C and G: num_bd = num_cross = 2 in a batch of 10, cross sources images 5 and 6.
    const j = c.jointStep;
    const data = datasetOf(c);
    const hook = jointTraining(netsOf(c), data, {
      pAttack: 0.2,
      pCross: 0.2,
      lambdaDiv: 1,
      lrG: 0.01,
      targetType: 'all2one',
      targetLabel: j.target,
      seed: 0,
      secondImages: (_at, first, count) => {
        assert.deepEqual([first, count], [j.numBd, j.numCross]);
        return j.crossSources;
      },
      // G's weights after its Adam step (and its running statistics after the two training-mode calls).
      onEpochEnd: (nets) => {
        for (const [key, values] of Object.entries(j.generator))
          close(torchValues(nets.pattern, key, values.length), values, 1e-4, `${c.name} G ${key} after the joint step`);
        checkedG = true;
      },
    });
    let checkedG = false;
    const model = createModel({ arch: 'cnn', numClasses: 4, inChannels: c.channels, imageSize: c.side }, 0);
    try {
      model.params.loadStateDict(stateDictOf(j.classifierParams), 'fixture classifier');
      // The batch the classifier sees (a fresh copy of G: the call moves its running statistics).
      const probe = netsOf(c);
      const probeHook = jointTraining(probe, data, { ...hookOptions(j), secondImages: () => j.crossSources });
      tf.tidy(() => {
        const b = probeHook.batch(batchOf(c, 0, 10), data.labels, { epoch: 0, step: 0 });
        const changed = tf.slice(b.x, [0, 0, 0, 0], [j.numBd + j.numCross, -1, -1, -1]);
        close(changed.dataSync(), f32(j.bdInputs), 5e-5, `${c.name} triggered and cross images of the batch`);
        assert.deepEqual(Array.from(b.labels), [j.target, j.target, ...j.labels.slice(2)]);
        assert.ok(b.loss && Math.abs(b.loss.dataSync()[0] - j.div) <= 1e-4 * j.div, `${c.name} diversity loss`);
      });
      probeHook.dispose();

      const sgd = new Sgd(model.params.trainable(), { momentum: 0.9, weightDecay: 5e-4, nesterov: false });
      const xs = Float32Array.from(u8(c.images), (v) => v / 255);
      const loss = trainingStep({
        student: model,
        optimizer: sgd,
        xs,
        ys: data.labels,
        imageShape: [c.side, c.side, c.channels],
        numClasses: 4,
        betas: [],
        attentionPower: 2,
        lr: 0.01,
        hook,
        at: { epoch: 0, step: 0 },
      });
      sgd.dispose();
      assert.ok(Math.abs(loss - j.total) <= 1e-4 * j.total, `${c.name} joint loss ${loss} vs ${j.total} (ce ${j.ce}, div ${j.div})`);
      const sd = model.params.toStateDict();
      for (const [key, values] of Object.entries(j.classifier))
        close(Array.from((sd.get(key)?.data ?? new Float32Array()).subarray(0, values.length)), values, 2e-5, `${c.name} C ${key}`);
      await hook.onEpochEnd?.(1);
      assert.ok(checkedG);
    } finally {
      model.dispose();
      hook.dispose();
    }
  }
  assert.equal(tf.memory().numTensors, before, 'tensors leaked');
});

function hookOptions(j: Case['jointStep']): Parameters<typeof jointTraining>[2] {
  return { pAttack: 0.2, pCross: 0.2, lambdaDiv: 1, lrG: 0.01, targetType: 'all2one', targetLabel: j.target, seed: 0 };
}

test('input-aware: the trigger file stamps what the networks stamp; bad files and shapes are InputErrors', async () => {
  await initBackend('auto');
  const before = tf.memory().numTensors;
  const c = fixture.cases[1];
  const shape = { height: c.side, width: c.side, channels: c.channels };
  const { dir, remove } = tempFolder('input-aware-file');
  try {
    const nets = netsOf(c);
    const file = join(dir, INPUT_AWARE_FILE);
    await saveInputAwareNets(file, nets, 3);
    const direct = u8(c.images);
    stampInputAware(nets, direct, c.count, shape);
    nets.dispose();
    const trigger = createTrigger({ name: 'input-aware', maskFile: file }, shape);
    assert.equal(trigger.spec.name, 'inputAware');
    const viaFile = u8(c.images);
    trigger.stampMany?.(viaFile, c.count);
    assert.deepEqual(viaFile, direct);
    const one = u8(c.images).slice(0, c.side * c.side * c.channels);
    trigger.stamp(one);
    assert.deepEqual(one, direct.subarray(0, one.length));
    // The backdoor test set goes through stampMany: non-target images, triggered, attack labels.
    const ds = datasetOf(c);
    const bd = backdoorTestSet(ds, { trigger, targetType: 'all2one', targetLabel: 3 });
    assert.equal(bd.count, ds.labels.filter((l) => l !== 3).length);
    const size = one.length;
    const k = bd.sourceIndices[1];
    assert.deepEqual(bd.images.subarray(size, 2 * size), direct.subarray(k * size, (k + 1) * size));

    assert.deepEqual(resolveTriggerSpec({ name: 'inputAware' }), { name: 'inputAware', maskFile: '' });
    assert.throws(
      () => createTrigger({ name: 'inputAware' }, shape),
      (e: unknown) => e instanceof InputError && /generator file/.test(e.message),
    );
    assert.throws(() => createTrigger({ name: 'inputAware', maskFile: join(dir, 'none.safetensors') }, shape), InputError);
    assert.throws(
      () => createTrigger({ name: 'inputAware', maskFile: file }, { height: 8, width: 8, channels: 3 }),
      (e: unknown) => e instanceof InputError && /16x16x3/.test(e.message),
    );
    assert.throws(
      () => generatorConfigFor({ height: 28, width: 28, channels: 3 }),
      (e: unknown) => e instanceof InputError && /multiples of 8/.test(e.message),
    );
  } finally {
    remove();
  }
  assert.equal(tf.memory().numTensors, before, 'tensors leaked');
});

test('input-aware: poison then train on digits, the generators saved per epoch, no leak', async () => {
  await initBackend('auto');
  const attack = attackNamed('input-aware');
  assert.equal(attack, inputAware);
  const params = checkParams(inputAware.params, { inputAwareMaskEpochs: 1 }, 'attack input-aware');
  const full = await loadDataset('mnist', { split: 'train' });
  const trainSet = selectImages(
    full,
    Array.from({ length: 256 }, (_, i) => i),
  );
  const testSet = selectImages(
    await loadDataset('mnist', { split: 'test' }),
    Array.from({ length: 200 }, (_, i) => i),
  );
  const before = tf.memory().numTensors;
  const { dir, remove } = tempFolder('input-aware-run');
  try {
    await assert.rejects(
      inputAware.poison({ train: trainSet, params, targetType: 'cleanLabel', targetLabel: 0, injectPortion: 0.1, seed: 1 }),
      InputError,
    );
    const logs: string[] = [];
    const poisoned = await inputAware.poison({
      train: trainSet,
      params,
      targetType: 'all2one',
      targetLabel: 0,
      injectPortion: 0.1,
      seed: 1,
      outputDir: dir,
      emit: (e) => (e.type === 'log' ? logs.push(e.message) : undefined),
    });
    assert.ok(poisoned.training, 'a training hook');
    assert.ok(logs.some((l) => /mask epoch 1\/1/.test(l)));
    const file = join(dir, INPUT_AWARE_FILE);
    assert.deepEqual(poisoned.trigger, { name: 'inputAware', maskFile: file });
    assert.ok(existsSync(file));
    const initial = readFileSync(file);
    const model = createModel({ arch: 'cnn', numClasses: 10, inChannels: 1, imageSize: 28 }, 1);
    try {
      const records = await train({
        student: model,
        data: poisoned,
        evalSets: { clean: testSet },
        settings: { ...BADNET_TRAINING, epochs: 1, lrSchedule: [[0, 0.01]], seed: 1 },
        phase: 'train',
        hook: poisoned.training,
      });
      assert.equal(records.length, 1);
      assert.ok(records[0].asr !== undefined && records[0].ra !== undefined, 'ASR and RA measured with the live trigger');
      assert.ok(Number.isFinite(records[0].loss));
      assert.notDeepEqual(readFileSync(file), initial, 'generators saved after the epoch');
    } finally {
      model.dispose();
      poisoned.training.dispose();
    }
  } finally {
    remove();
  }
  assert.equal(tf.memory().numTensors, before, 'tensors leaked');
});
