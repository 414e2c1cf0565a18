// SGD with momentum, Nesterov and L2 weight decay, with PyTorch's update rule (torch.optim.SGD):
//   g = grad + wd * p;  buf = momentum * buf + g;  step = nesterov ? g + momentum * buf : buf;  p -= lr * step
import * as tf from '@tensorflow/tfjs-core';
import { sgdUpdate } from './kernels';

export interface SgdOptions {
  readonly momentum: number;
  readonly weightDecay: number;
  readonly nesterov: boolean;
}

export class Sgd {
  private readonly buffers = new Map<string, tf.Variable>();

  constructor(
    private readonly vars: ReadonlyArray<readonly [string, tf.Variable]>,
    private readonly opts: SgdOptions,
  ) {
    for (const [name, v] of vars) {
      const zeros = tf.zerosLike(v);
      this.buffers.set(name, tf.variable(zeros, false));
      zeros.dispose();
    }
  }

  /** Apply one update; `grads` is keyed by the variables' tfjs names (as tf.variableGrads returns). */
  step(grads: tf.NamedTensorMap, lr: number): void {
    tf.tidy(() => {
      for (const [name, v] of this.vars) {
        const grad = grads[v.name];
        if (!grad) continue;
        const buf = this.buffers.get(name) as tf.Variable;
        // One fused kernel per parameter on wasm (PyTorch's rule; see kernels/index.ts).
        const next = sgdUpdate(v, grad, buf, { ...this.opts, lr });
        if (this.opts.momentum) buf.assign(next.buffer);
        v.assign(next.param);
      }
    });
  }

  dispose(): void {
    for (const b of this.buffers.values()) b.dispose();
    this.buffers.clear();
  }
}

/** Learning rate for a 0-based epoch from a step schedule [[fromEpoch, lr], ...] sorted by epoch. */
export function learningRateAt(schedule: ReadonlyArray<readonly [number, number]>, epoch: number): number {
  let lr = schedule[0][1];
  for (const [from, value] of schedule) if (epoch >= from) lr = value;
  return lr;
}
