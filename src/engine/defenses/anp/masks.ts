// ANP's numerics: a mask and a perturbation per batch-norm neuron, one mask iteration, pruning (the method and
// its sources are described in ./index.ts).
import * as tf from '@tensorflow/tfjs-core';
import { describeSpec, type Model } from '../../models';
import { exactSign } from '../../ops';
import { Sgd } from '../../optim';
import { Rng } from '../../rng';
import { FINETUNE_TRAINING } from '../../schedules';
import { type TrainSettings } from '../../train';
import { InputError } from '../../types';

/** Iterations per reported round (the run's "epoch"): 20 rounds = the authors' 2000 iterations. */
export const ROUND_ITERATIONS = 100;
export const MASK_PHASE = 'mask';
/** The thresholds of the curve: the authors' np.arange(0, 0.9 + 0.05, 0.05). */
export const CURVE_THRESHOLDS: readonly number[] = Array.from({ length: 19 }, (_, i) => i * 0.05);

/** The mask optimisation's schedule: the authors' mask optimizer (SGD, lr 0.2, momentum 0.9) and batch 128. */
export const ANP_TRAINING: TrainSettings = {
  ...FINETUNE_TRAINING,
  epochs: 2000 / ROUND_ITERATIONS,
  batchSize: 128,
  lrSchedule: [[0, 0.2]],
  momentum: 0.9,
  weightDecay: 0,
  nesterov: false,
};

/** A batch norm whose channels are neurons (its state-dict prefix). */
export interface NeuronLayer {
  readonly name: string;
  readonly channels: number;
}

/** Every batch norm of the model, in state-dict order (the authors' mask file order). */
export function neuronLayers(model: Model): NeuronLayer[] {
  const layers: NeuronLayer[] = [];
  for (const [key, shape] of model.params.torchShapes())
    if (key.endsWith('.running_mean')) layers.push({ name: key.slice(0, -'.running_mean'.length), channels: shape[0] });
  if (layers.length === 0)
    throw new InputError(`${describeSpec(model.spec)} has no batch norm: ANP masks and perturbs the neurons of batch norm layers`);
  return layers;
}

/** ANP's per-neuron variables of one model: masks and the perturbations of weight and bias, per layer. */
export class NeuronMasks {
  readonly masks: tf.Variable[];
  readonly noise: tf.Variable[];
  readonly noiseBias: tf.Variable[];
  /** Whether the forward pass uses the perturbations (include_noise / exclude_noise). */
  perturbed = false;
  private readonly index: Map<string, number>;

  constructor(
    private readonly model: Model,
    readonly layers: readonly NeuronLayer[],
  ) {
    const make = (value: number): tf.Variable[] =>
      layers.map((l) => {
        const init = tf.fill([l.channels], value);
        const v = tf.variable(init, true);
        init.dispose();
        return v;
      });
    this.masks = make(1);
    this.noise = make(0);
    this.noiseBias = make(0);
    this.index = new Map(layers.map((l, i) => [l.name, i]));
    model.params.setBatchNormModulation((name, gamma, beta) => {
      const i = this.index.get(name);
      if (i === undefined) return undefined;
      if (!this.perturbed) return { gamma: tf.mul(gamma, this.masks[i]), beta };
      return {
        gamma: tf.mul(gamma, tf.add(this.masks[i], this.noise[i])),
        beta: tf.mul(beta, tf.add(this.noiseBias[i], 1)),
      };
    });
  }

  /** The masks, one array per layer. */
  values(): Float32Array[] {
    return this.masks.map((m) => m.dataSync() as Float32Array);
  }

  setNoise(noise: ReadonlyArray<ArrayLike<number>>, noiseBias: ReadonlyArray<ArrayLike<number>>): void {
    tf.tidy(() =>
      this.layers.forEach((l, i) => {
        this.noise[i].assign(tf.tensor1d(Float32Array.from(noise[i])));
        this.noiseBias[i].assign(tf.tensor1d(Float32Array.from(noiseBias[i])));
      }),
    );
  }

  /** reset(rand_init=True): d, d_b ~ U(-eps, eps), per layer the weight's then the bias's. */
  randomNoise(eps: number, rng: Rng): void {
    const draw = (n: number): Float32Array => Float32Array.from({ length: n }, () => (rng.next() * 2 - 1) * eps);
    const noise: Float32Array[] = [];
    const bias: Float32Array[] = [];
    for (const l of this.layers) {
      noise.push(draw(l.channels));
      bias.push(draw(l.channels));
    }
    this.setNoise(noise, bias);
  }

  /** Detach from the model (its batch norms are plain again) and free the variables. */
  dispose(): void {
    this.model.params.setBatchNormModulation(undefined);
    for (const v of [...this.masks, ...this.noise, ...this.noiseBias]) v.dispose();
  }
}

function crossEntropy(model: Model, x: tf.Tensor4D, y: tf.Tensor2D): tf.Scalar {
  return tf.neg(tf.mean(tf.sum(tf.mul(y, tf.logSoftmax(model.forward(x, true).logits)), 1))) as tf.Scalar;
}

export interface AnpOptions {
  readonly eps: number;
  readonly steps: number;
  readonly alpha: number;
  readonly lr: number;
}

export interface MaskStepLosses {
  /** CE of the unperturbed (masked) model and of the perturbed one, before the mask step. */
  readonly nat: number;
  readonly rob: number;
  readonly loss: number;
}

/** A batch of clean images for the mask optimisation: xs NHWC in [0, 1]. */
export interface MaskBatch {
  readonly xs: Float32Array;
  readonly ys: Int32Array;
  readonly shape: readonly [number, number, number];
  readonly numClasses: number;
}

function batchTensors(batch: MaskBatch): { x: tf.Tensor4D; y: tf.Tensor2D } {
  const x = tf.tensor4d(batch.xs, [batch.ys.length, ...batch.shape]);
  const y = tf.cast(tf.oneHot(tf.tensor1d(batch.ys, 'int32'), batch.numClasses), 'float32') as tf.Tensor2D;
  return { x, y };
}

/** Step 1 after the noise is drawn: `steps` ascent steps d += (eps / steps) * sign(dCE/dd) on d and d_b. */
export function perturbNeurons(model: Model, state: NeuronMasks, batch: MaskBatch, opts: Pick<AnpOptions, 'eps' | 'steps'>): void {
  if (opts.eps <= 0) return;
  const noiseVars = [...state.noise, ...state.noiseBias];
  tf.tidy(() => {
    const { x, y } = batchTensors(batch);
    state.perturbed = true;
    for (let s = 0; s < opts.steps; s++) {
      const { grads } = tf.variableGrads(() => crossEntropy(model, x, y), noiseVars);
      for (const v of noiseVars) if (grads[v.name]) v.assign(tf.add(v, tf.mul(exactSign(grads[v.name]), opts.eps / opts.steps)));
    }
  });
}

/**
 * Step 2: alpha * CE(masked) + (1 - alpha) * CE(masked and perturbed) (no perturbed term when eps is 0),
 * one step of `optimizer` (SGD over `state.masks`), masks clamped to [0, 1]. Losses from before the step.
 */
export function maskStep(model: Model, state: NeuronMasks, optimizer: Sgd, batch: MaskBatch, opts: AnpOptions): MaskStepLosses {
  return tf.tidy(() => {
    const { x, y } = batchTensors(batch);
    let nat = 0;
    let rob = 0;
    const { value, grads } = tf.variableGrads(() => {
      state.perturbed = true;
      const lossRob = opts.eps > 0 ? crossEntropy(model, x, y) : tf.scalar(0);
      state.perturbed = false;
      const lossNat = crossEntropy(model, x, y);
      rob = lossRob.dataSync()[0];
      nat = lossNat.dataSync()[0];
      return tf.add(tf.mul(lossNat, opts.alpha), tf.mul(lossRob, 1 - opts.alpha)) as tf.Scalar;
    }, state.masks);
    optimizer.step(grads, opts.lr);
    for (const m of state.masks) m.assign(tf.clipByValue(m, 0, 1));
    return { nat, rob, loss: value.dataSync()[0] };
  });
}

/** One iteration of mask_train: random noise, the ascent steps, the mask step. */
export function anpIteration(
  model: Model,
  state: NeuronMasks,
  optimizer: Sgd,
  batch: MaskBatch,
  opts: AnpOptions,
  rng: Rng,
): MaskStepLosses {
  if (opts.eps > 0) state.randomNoise(opts.eps, rng);
  perturbNeurons(model, state, batch, opts);
  return maskStep(model, state, optimizer, batch, opts);
}

/** A neuron: its batch norm, its channel, its mask. */
export interface Neuron {
  readonly layer: string;
  readonly channel: number;
  readonly mask: number;
}

/** All neurons sorted by mask, smallest first; ties keep layer then channel order (Python's stable sort). */
export function neuronsByMask(layers: readonly NeuronLayer[], masks: ReadonlyArray<ArrayLike<number>>): Neuron[] {
  const all: Neuron[] = [];
  layers.forEach((l, i) => {
    for (let c = 0; c < l.channels; c++) all.push({ layer: l.name, channel: c, mask: masks[i][c] });
  });
  return all.sort((a, b) => a.mask - b.mask);
}

/** How many of `sorted` have mask <= threshold (prune_neuron_cifar.py's test). */
export const prunedCount = (sorted: readonly Neuron[], threshold: number): number => {
  let k = 0;
  while (k < sorted.length && sorted[k].mask <= threshold) k++;
  return k;
};

/** Prune in place as the authors' `pruning`: the batch norm weight of each neuron set to 0, its bias kept. */
export function pruneNeurons(model: Model, neurons: readonly Neuron[]): void {
  const byLayer = new Map<string, number[]>();
  for (const n of neurons) byLayer.set(n.layer, [...(byLayer.get(n.layer) ?? []), n.channel]);
  tf.tidy(() => {
    for (const [layer, channels] of byLayer) {
      const v = model.params.get(`${layer}.weight`);
      const keep = new Float32Array(v.size).fill(1);
      for (const c of channels) keep[c] = 0;
      // where(), not a multiply: exact +0 whatever the sign.
      v.assign(tf.where(tf.cast(tf.tensor1d(keep), 'bool'), v, tf.zerosLike(v)));
    }
  });
}
