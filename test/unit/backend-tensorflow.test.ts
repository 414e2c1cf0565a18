// tfjs-node (native libtensorflow), where it is installed: `auto` must pick it, and a NAD training step
// on it must give the cpu backend's loss and updated weights. Its install downloads libtensorflow, which
// machines without internet cannot do; there the suite says so and skips.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, switchBackend } from '../../src/engine/backend';
import { BENCH_SPEC, nadStep } from '../../src/engine/bench';
import { createModel } from '../../src/engine/models';
import { Sgd } from '../../src/engine/optim';

function installed(pkg: string): boolean {
  try {
    require.resolve(pkg);
    return true;
  } catch {
    return false;
  }
}

const present = installed('@tensorflow/tfjs-node') || installed('@tensorflow/tfjs-node-gpu');
const skip = present
  ? false
  : '@tensorflow/tfjs-node is not installed here (its install downloads libtensorflow, which needs the internet)';

/** Loss and every updated weight after two NAD steps from seeded models on random data. */
function twoNadSteps(): { loss: number; weights: Map<string, Float32Array> } {
  const student = createModel(BENCH_SPEC, 11);
  const teacher = createModel(BENCH_SPEC, 12);
  const sgd = new Sgd(student.params.trainable(), { momentum: 0.9, weightDecay: 1e-4, nesterov: true });
  let s = 5;
  const xs = Float32Array.from({ length: 8 * 32 * 32 * 3 }, () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const ys = Int32Array.from({ length: 8 }, (_, i) => i % 10);
  nadStep(student, teacher, sgd, xs, ys, 0.01);
  const loss = nadStep(student, teacher, sgd, xs, ys, 0.01);
  const weights = new Map(student.params.trainable().map(([name, v]) => [name, v.dataSync() as Float32Array]));
  sgd.dispose();
  student.dispose();
  teacher.dispose();
  return { loss, weights };
}

describe('backend (tfjs-node)', { skip }, () => {
  it("is what 'auto' picks, and says so", async () => {
    const info = await initBackend('auto');
    assert.equal(info.name, 'tensorflow');
    assert.equal(tf.getBackend(), 'tensorflow');
    assert.match(info.description, /tfjs-node(-gpu)?, native libtensorflow/);
  });

  it('computes the NAD step as the cpu backend does, with no tensor left behind', async () => {
    await switchBackend('cpu');
    const expected = twoNadSteps();
    await switchBackend('tensorflow');
    const before = tf.memory().numTensors;
    const got = twoNadSteps();
    assert.equal(tf.memory().numTensors, before);
    assert.ok(Math.abs(got.loss - expected.loss) <= 1e-4 * Math.max(1, Math.abs(expected.loss)), `loss ${got.loss} vs ${expected.loss}`);
    for (const [name, want] of expected.weights) {
      const have = got.weights.get(name);
      assert.ok(have, name);
      let worst = 0;
      let scale = 0;
      for (let i = 0; i < want.length; i++) {
        worst = Math.max(worst, Math.abs(have[i] - want[i]));
        scale = Math.max(scale, Math.abs(want[i]));
      }
      // float32 rounding of different kernels: 1e-4 of the tensor's largest value, 1e-5 absolute for
      // tensors near zero (biases start at 0).
      assert.ok(worst <= 1e-5 + 1e-4 * scale, `${name}: max error ${worst} with largest value ${scale}`);
    }
  });
});
