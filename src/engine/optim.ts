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

export interface AdamOptions {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
}

/** torch.optim.Adam (no weight decay, no amsgrad) over a few variables (Neural Cleanse's trigger, I-BAU's model). */
export class Adam {
  private readonly m: tf.Variable[];
  private readonly v: tf.Variable[];
  private t = 0;

  constructor(
    private readonly vars: readonly tf.Variable[],
    private readonly opts: AdamOptions,
  ) {
    const zeros = (x: tf.Variable): tf.Variable => {
      const z = tf.zerosLike(x);
      const v = tf.variable(z, false);
      z.dispose();
      return v;
    };
    this.m = vars.map(zeros);
    this.v = vars.map(zeros);
  }

  /** One step; `grads` keyed by the variables' tfjs names (as tf.variableGrads returns them). */
  step(grads: tf.NamedTensorMap, lr: number): void {
    this.t++;
    const { beta1, beta2, eps } = this.opts;
    const bc1 = 1 - beta1 ** this.t;
    const bc2 = 1 - beta2 ** this.t;
    tf.tidy(() => {
      this.vars.forEach((x, i) => {
        const g = grads[x.name];
        if (!g) return;
        const m = tf.add(tf.mul(this.m[i], beta1), tf.mul(g, 1 - beta1));
        const v = tf.add(tf.mul(this.v[i], beta2), tf.mul(tf.square(g), 1 - beta2));
        this.m[i].assign(m);
        this.v[i].assign(v);
        const denom = tf.add(tf.div(tf.sqrt(v), Math.sqrt(bc2)), eps);
        x.assign(tf.sub(x, tf.mul(tf.div(m, denom), lr / bc1)));
      });
    });
  }

  dispose(): void {
    for (const x of [...this.m, ...this.v]) x.dispose();
  }
}
