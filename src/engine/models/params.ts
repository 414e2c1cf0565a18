// Model parameters held as tf.Variables named exactly like the PyTorch state_dict keys, stored in
// tfjs layouts (conv HWIO, linear [in, out]); conversion to/from PyTorch layouts happens only at
// import/export, on plain arrays.
import * as tf from '@tensorflow/tfjs-core';
import { InputError, type NamedTensor, type StateDict } from '../types';
import type { Rng } from '../rng';
import { batchNormRunningUpdate } from '../kernels';
import {
  batchNormEval,
  batchNormReluEval,
  batchNormReluTrain,
  batchNormTrain,
  bnReluConv3x3Eval,
  bnReluConv3x3EvalGrad,
  bnReluConv3x3Train,
  type BatchNormParams,
} from '../ops';

type Layout = 'conv' | 'linear' | 'plain';

interface Entry {
  readonly variable: tf.Variable;
  readonly layout: Layout;
  /** Shape in PyTorch's layout. */
  readonly torchShape: readonly number[];
  readonly trainable: boolean;
}

export const BN_MOMENTUM = 0.1;
export const BN_EPS = 1e-5;

/**
 * Replaces a batch norm's scale and shift in the forward pass (ANP's neuron masks and perturbations:
 * weight * (mask + noise), bias * (1 + noiseBias)); `layer` is the state-dict prefix (`block1.layer.0.bn1`).
 * Built from differentiable ops, so in training mode the gradients reach the variables it uses. Return
 * undefined to leave a layer as it is. The stored weights never change.
 */
export type BatchNormModulation = (
  layer: string,
  gamma: tf.Tensor1D,
  beta: tf.Tensor1D,
) => { gamma: tf.Tensor1D; beta: tf.Tensor1D } | undefined;

export class ParamSet {
  private readonly entries = new Map<string, Entry>();
  /** Off (undefined) unless a defense sets it; consulted by every batch norm (batchNormParams). */
  private modulation: BatchNormModulation | undefined;

  /** Set or clear (undefined) the batch-norm modulation; see BatchNormModulation. */
  setBatchNormModulation(m: BatchNormModulation | undefined): void {
    this.modulation = m;
  }

  /** Trainable parameters in creation order (the optimizer's order). */
  trainable(): Array<[string, tf.Variable]> {
    return [...this.entries].filter(([, e]) => e.trainable).map(([n, e]) => [n, e.variable]);
  }

  get(name: string): tf.Variable {
    const e = this.entries.get(name);
    if (!e) throw new Error(`no parameter ${name}`);
    return e.variable;
  }

  /** Kaiming-normal conv weight as in NAD's WideResNet init: N(0, sqrt(2 / (k*k*out))). */
  conv(name: string, k: number, cin: number, cout: number, rng: Rng): void {
    const std = Math.sqrt(2 / (k * k * cout));
    const v = new Float32Array(k * k * cin * cout);
    for (let i = 0; i < v.length; i++) v[i] = rng.normal() * std;
    this.add(name + '.weight', tf.tensor4d(v, [k, k, cin, cout]), 'conv', [cout, cin, k, k], true);
  }

  /** A convolution's bias (VGG's convolutions have one), zero-initialised; call right after `conv` (registration order). */
  convBias(name: string, cout: number): void {
    this.add(name + '.bias', tf.zeros([cout]), 'plain', [cout], true);
  }

  /** PyTorch's default Linear init (uniform +-1/sqrt(in)) for the weight; zero bias as NAD sets it. */
  linear(name: string, inF: number, outF: number, rng: Rng): void {
    const bound = 1 / Math.sqrt(inF);
    const w = new Float32Array(inF * outF);
    for (let i = 0; i < w.length; i++) w[i] = (rng.next() * 2 - 1) * bound;
    this.add(name + '.weight', tf.tensor2d(w, [inF, outF]), 'linear', [outF, inF], true);
    this.add(name + '.bias', tf.zeros([outF]), 'plain', [outF], true);
  }

  batchNorm(name: string, c: number): void {
    this.add(name + '.weight', tf.ones([c]), 'plain', [c], true);
    this.add(name + '.bias', tf.zeros([c]), 'plain', [c], true);
    this.add(name + '.running_mean', tf.zeros([c]), 'plain', [c], false);
    this.add(name + '.running_var', tf.ones([c]), 'plain', [c], false);
  }

  private add(name: string, init: tf.Tensor, layout: Layout, torchShape: number[], trainable: boolean): void {
    this.entries.set(name, { variable: tf.variable(init, trainable, `${name}_${uid++}`), layout, torchShape, trainable });
    init.dispose();
  }

  /**
   * Batch norm (channels last), followed by ReLU when `relu` (one fused kernel on wasm); in training mode
   * it also updates the running statistics as PyTorch does.
   */
  applyBatchNorm(name: string, x: tf.Tensor4D, training: boolean, relu = false): tf.Tensor4D {
    const { p, rm, rv } = this.batchNormParams(name);
    if (!training) return (relu ? batchNormReluEval : batchNormEval)(x, p, rm, rv);
    const { y, mean, variance } = (relu ? batchNormReluTrain : batchNormTrain)(x, p);
    updateRunning(rm, rv, x, mean, variance);
    return y;
  }

  /**
   * conv2d(relu(batch norm `name`(x)), filter, stride 1, pad 1). One fused kernel where it applies: in evaluation
   * mode bnReluConv3x3Eval; in training mode bnReluConv3x3Train (with gradients, and the running statistics updated
   * as applyBatchNorm does), which runs the separate ops elsewhere.
   */
  bnReluConv3x3(name: string, x: tf.Tensor4D, filter: tf.Tensor4D, training: boolean): tf.Tensor4D {
    const { p, rm, rv } = this.batchNormParams(name);
    if (!training) return bnReluConv3x3Eval(x, p, rm, rv, filter);
    const { y, mean, variance } = bnReluConv3x3Train(x, p, filter);
    updateRunning(rm, rv, x, mean, variance);
    return y;
  }

  /** bnReluConv3x3 in evaluation mode with gradients (bnReluConv3x3EvalGrad): models' differentiableFeatures. */
  bnReluConv3x3Grad(name: string, x: tf.Tensor4D, filter: tf.Tensor4D): tf.Tensor4D {
    const { p, rm, rv } = this.batchNormParams(name);
    return bnReluConv3x3EvalGrad(x, p, rm, rv, filter);
  }

  private batchNormParams(name: string): { p: BatchNormParams; rm: tf.Variable<tf.Rank.R1>; rv: tf.Variable<tf.Rank.R1> } {
    const gamma = this.get(name + '.weight') as tf.Tensor1D;
    const beta = this.get(name + '.bias') as tf.Tensor1D;
    const p = { ...(this.modulation?.(name, gamma, beta) ?? { gamma, beta }), eps: BN_EPS };
    return {
      p,
      rm: this.get(name + '.running_mean') as tf.Variable<tf.Rank.R1>,
      rv: this.get(name + '.running_var') as tf.Variable<tf.Rank.R1>,
    };
  }

  /** Expected PyTorch shapes, for validating an imported state_dict. */
  torchShapes(): Map<string, readonly number[]> {
    return new Map([...this.entries].map(([n, e]) => [n, e.torchShape]));
  }

  parameterCount(): number {
    let n = 0;
    for (const e of this.entries.values()) if (e.trainable) n += e.variable.size;
    return n;
  }

  /** Export as a PyTorch-layout state_dict. */
  toStateDict(): StateDict {
    const sd: StateDict = new Map();
    for (const [name, e] of this.entries) {
      const data = e.variable.dataSync() as Float32Array;
      sd.set(name, { shape: e.torchShape, dtype: 'float32', data: fromTfLayout(data, e.layout, e.torchShape) });
    }
    return sd;
  }

  /**
   * Load a PyTorch-layout state_dict. Every parameter must be present with the right shape; extra keys
   * other than BN's num_batches_tracked are an error (a checkpoint of another architecture).
   */
  loadStateDict(sd: StateDict, file: string): void {
    const problems: string[] = [];
    for (const [name, e] of this.entries) {
      const t = sd.get(name);
      if (!t) problems.push(`missing ${name}`);
      else if (!sameShape(t.shape, e.torchShape)) problems.push(`${name} has shape [${t.shape}] but the model needs [${e.torchShape}]`);
    }
    for (const name of sd.keys()) if (!this.entries.has(name) && !name.endsWith('num_batches_tracked')) problems.push(`unexpected ${name}`);
    if (problems.length) {
      const shown = problems.slice(0, 6).join('; ') + (problems.length > 6 ? `; and ${problems.length - 6} more` : '');
      throw new InputError(`checkpoint does not match the model architecture: ${shown}`, file);
    }
    for (const [name, e] of this.entries) {
      const t = sd.get(name) as NamedTensor;
      for (let i = 0; i < t.data.length; i++) {
        if (!Number.isFinite(t.data[i])) throw new InputError(`${name} contains NaN or infinite values`, file);
      }
      tf.tidy(() => e.variable.assign(tf.tensor(toTfLayout(t.data, e.layout, e.torchShape), e.variable.shape)));
    }
  }

  /** Copy all values (weights and running stats) from another ParamSet of the same architecture. */
  copyFrom(other: ParamSet): void {
    for (const [name, e] of this.entries) e.variable.assign(other.get(name));
  }

  dispose(): void {
    for (const e of this.entries.values()) e.variable.dispose();
    this.entries.clear();
  }
}

let uid = 0;

/** PyTorch's running statistics after a training-mode batch norm of x (NadBnRunningUpdate on wasm and native). */
function updateRunning(rm: tf.Variable, rv: tf.Variable, x: tf.Tensor4D, mean: tf.Tensor1D, variance: tf.Tensor1D): void {
  const n = x.shape[0] * x.shape[1] * x.shape[2];
  tf.tidy(() => {
    // Not on the loss's path, so no gradient flows here. PyTorch stores the unbiased variance.
    const next = batchNormRunningUpdate(rm as tf.Tensor1D, rv as tf.Tensor1D, { mean, variance }, BN_MOMENTUM, n / Math.max(n - 1, 1));
    rm.assign(next.mean);
    rv.assign(next.variance);
  });
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** PyTorch layout -> tfjs layout. conv OIHW -> HWIO; linear [out, in] -> [in, out]. */
function toTfLayout(src: Float32Array, layout: Layout, torchShape: readonly number[]): Float32Array {
  return permute(src, layout, torchShape, true);
}

function fromTfLayout(src: Float32Array, layout: Layout, torchShape: readonly number[]): Float32Array {
  return permute(src, layout, torchShape, false);
}

/** Copy between the two layouts; linear weights are the 1x1 case of conv's (O, I) <-> (I, O) swap. */
function permute(src: Float32Array, layout: Layout, torchShape: readonly number[], toTf: boolean): Float32Array {
  if (layout === 'plain') return Float32Array.from(src);
  const out = new Float32Array(src.length);
  const [O, I, H, W] = layout === 'linear' ? [torchShape[0], torchShape[1], 1, 1] : torchShape;
  for (let o = 0; o < O; o++)
    for (let i = 0; i < I; i++)
      for (let h = 0; h < H; h++)
        for (let w = 0; w < W; w++) {
          const torchIdx = ((o * I + i) * H + h) * W + w;
          const tfIdx = ((h * W + w) * I + i) * O + o;
          if (toTf) out[tfIdx] = src[torchIdx];
          else out[torchIdx] = src[tfIdx];
        }
  return out;
}
