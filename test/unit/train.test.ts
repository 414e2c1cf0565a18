// The training loop on the embedded MNIST digits: memory stays flat, seeds reproduce, cancel stops within
// a batch, a diverging run is reported, and a run resumed at epoch k equals an uninterrupted one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/engine/backend';
import { FINETUNE_TRAINING } from '../../src/runs/config';
import { cleanSubset, loadDataset } from '../../src/engine/data';
import { createModel, type Model } from '../../src/engine/models';
import { DivergedError, RunCancelledError, train, type TrainSettings } from '../../src/engine/train';
import type { ImageDataset } from '../../src/engine/types';

const SPEC = { arch: 'cnn', numClasses: 10, inChannels: 1, imageSize: 28 } as const;
const settings: TrainSettings = { ...FINETUNE_TRAINING, epochs: 3, seed: 7 };

async function data(): Promise<{ train: ImageDataset; test: ImageDataset }> {
  await initBackend('auto');
  return {
    train: cleanSubset(await loadDataset('mnist', { split: 'train' }), { count: 320, seed: 1 }),
    test: cleanSubset(await loadDataset('mnist', { split: 'test' }), { count: 200, seed: 1 }),
  };
}

function weights(m: Model): Float32Array[] {
  return [...m.params.toStateDict().values()].map((t) => t.data);
}

test('tf.memory().numTensors is flat across epochs and back to the start after a run', async () => {
  const { train: ds, test: t } = await data();
  const start = tf.memory().numTensors;
  const student = createModel(SPEC, 0);
  const teacher = createModel(SPEC, 1);
  const perEpoch: number[] = [];
  const records = await train({
    student,
    teacher,
    data: ds,
    evalSets: { clean: t },
    settings: { ...settings, betas: [500, 1000, 1000] },
    phase: 'nad',
    emit: (e) => e.type === 'epoch' && perEpoch.push(tf.memory().numTensors),
  });
  assert.equal(records.length, 3);
  assert.equal(new Set(perEpoch).size, 1, `tensors per epoch: ${perEpoch.join(', ')}`);
  student.dispose();
  teacher.dispose();
  assert.equal(tf.memory().numTensors, start);
});

test('same seed, same run; a run resumed at epoch 2 ends with the same weights as an uninterrupted one', async () => {
  const { train: ds, test: t } = await data();
  const run = async (resumeAt?: number): Promise<Float32Array[]> => {
    const m = createModel(SPEC, 3);
    if (resumeAt === undefined) {
      await train({ student: m, data: ds, evalSets: { clean: t }, phase: 'train', settings: { ...settings, momentum: 0 } });
    } else {
      await train({
        student: m,
        data: ds,
        evalSets: { clean: t },
        phase: 'train',
        settings: { ...settings, momentum: 0, epochs: resumeAt },
      });
      await train({
        student: m,
        data: ds,
        evalSets: { clean: t },
        phase: 'train',
        settings: { ...settings, momentum: 0 },
        startEpoch: resumeAt,
      });
    }
    const w = weights(m);
    m.dispose();
    return w;
  };
  const a = await run();
  const b = await run();
  const c = await run(2);
  a.forEach((w, i) => assert.deepEqual(w, b[i]));
  // Without momentum the optimizer has no state, so resuming must reproduce the weights exactly.
  a.forEach((w, i) => assert.deepEqual(w, c[i]));
});

test('an aborted signal stops the run within one batch and reports cancellation', async () => {
  const { train: ds, test: t } = await data();
  const m = createModel(SPEC, 0);
  const ctl = new AbortController();
  let abortedAt = 0;
  let stepsAfterAbort = 0;
  await assert.rejects(
    train({
      student: m,
      data: ds,
      evalSets: { clean: t },
      settings,
      signal: ctl.signal,
      phase: 'train',
      emit: (p) => {
        if (p.type !== 'step') return;
        if (abortedAt) stepsAfterAbort++;
        else if (p.step >= 2) {
          abortedAt = p.step;
          ctl.abort();
        }
      },
    }),
    RunCancelledError,
  );
  assert.ok(abortedAt > 0);
  // Progress reports every completed step at most; none may follow the abort (the loop checks before each batch).
  assert.equal(stepsAfterAbort, 0, `steps after the abort at step ${abortedAt}`);
  m.dispose();
});

test('a diverging run (NaN loss) fails with a clear message', async () => {
  const { train: ds, test: t } = await data();
  const m = createModel(SPEC, 0);
  await assert.rejects(
    train({ student: m, data: ds, evalSets: { clean: t }, phase: 'train', settings: { ...settings, lrSchedule: [[0, 1e30]] } }),
    (e: unknown) => e instanceof DivergedError && /NaN|infinite/.test(e.message) && /learning rate/.test(e.message),
  );
  m.dispose();
});
