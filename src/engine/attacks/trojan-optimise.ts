// TrojanNN's trigger generation (Liu, Ma, Aafer, Lee, Zhai, Wang, Zhang: "Trojaning Attack on Neural
// Networks", NDSS 2018), as BackdoorBench's attack/trojannn.py runs it (after TrojanZoo's trojannn):
//
// Neuron selection, get_most_connected_neuron_idxes: the weight of the layer after the chosen hidden layer
// (BackdoorBench's config/attack/trojannn/preactresnet18.yaml: `linear.weight`, the classifier, whose input
// is the pooled last hidden layer), |W| summed over its outputs, the `num_neuron` inputs with the largest
// sums (argsort, descending; 2 by default). The paper ranks neurons by their connections to the previous
// layer; both reference implementations rank by the weights to the next one, and so does this.
//
// Trigger optimisation, pgd_with_mask_to_selected_neuron: start from the mask image M in [0, 1]; only its
// non-zero values are optimised (keep = M > 0, the forward sees x * keep); the model in evaluation mode; per
// step cost = sum over the selected neurons of (feature - target)^2 (the classifier's input, hooked as
// `linear`'s input), x <- clamp(M + clamp(x - alpha * sign(d cost / d x) - M, -eps, eps), 0, 1), in float32;
// stop after `iters` steps or once the cost (before the step) is below 1e-3. Defaults from that yaml and
// the function: target value 100, 1000 iterations, alpha 0.1, eps 0.3. The trigger is then stored as
// uint8 by ToPILImage ((x * 255).byte(), truncated) and added to the images by TrojanTrigger:
// uint8(trigger + img), wrapping above 255, the NAD paper's trojanTrigger arithmetic (addTrojanMask).
// PyTorch's sign is computed by comparisons (exactSign): sign(0) = 0 keeps the pixels outside the mask.
import * as tf from '@tensorflow/tfjs-core';
import { differentiableFeatures, structureOf, type Model } from '../models';
import { exactSign } from '../ops';
import { RunCancelledError } from '../train';
import { InputError } from '../types';

/** BackdoorBench's defaults (config/attack/trojannn/preactresnet18.yaml and pgd_with_mask_to_selected_neuron). */
export const TROJAN_NN = { neurons: 2, target: 100, steps: 1000, step: 0.1, eps: 0.3, tolerance: 1e-3 } as const;

/** Inputs of the classifier (the last hidden layer's neurons) by the sum of |weight| to the classes, the largest first. */
export function mostConnectedNeurons(model: Model, count: number): Int32Array {
  const name = `${structureOf(model.spec).classifier}.weight`;
  const w = model.params.get(name);
  if (w.rank !== 2) throw new Error(`${name} is not a linear layer's weight`);
  const inputs = w.shape[0];
  if (!Number.isInteger(count) || count < 1 || count > inputs)
    throw new InputError(`trojanNeurons must be a whole number in 1..${inputs} (the last hidden layer's size), got ${count}`);
  const summed = tf.tidy(() => tf.sum(tf.abs(w), 1));
  const sums = Float32Array.from(summed.dataSync());
  summed.dispose();
  const order = Array.from({ length: inputs }, (_, i) => i).sort((a, b) => sums[b] - sums[a] || a - b);
  return Int32Array.from(order.slice(0, count));
}

export interface TrojanOptimiseOptions {
  readonly neurons: Int32Array;
  /** The activation each selected neuron is driven to. */
  readonly target: number;
  readonly steps: number;
  /** Signed-gradient step and bound around the mask image, in [0, 1] units. */
  readonly step: number;
  readonly eps: number;
  /** Stop once the cost is below this (BackdoorBench: 1e-3). */
  readonly tolerance?: number;
  readonly signal?: AbortSignal;
  /** After each step, with the cost before it. */
  readonly onStep?: (step: number, cost: number) => void;
}

export interface OptimisedTrigger {
  /** The optimised image, H x W x C float32 in [0, 1]. */
  readonly image: Float32Array;
  /** Steps run (fewer than asked when the cost fell below the tolerance). */
  readonly steps: number;
  /** The cost before the first step and before the last one. */
  readonly firstCost: number;
  readonly lastCost: number;
}

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** pgd_with_mask_to_selected_neuron on one mask image (H x W x C in [0, 1]; its zeros stay zero). */
export async function optimiseTrojanTrigger(
  model: Model,
  mask: Float32Array,
  shape: { readonly height: number; readonly width: number; readonly channels: number },
  opts: TrojanOptimiseOptions,
): Promise<OptimisedTrigger> {
  const dims: [number, number, number, number] = [1, shape.height, shape.width, shape.channels];
  if (mask.length !== shape.height * shape.width * shape.channels) throw new Error('mask does not fit the shape');
  const start = tf.tensor4d(mask, dims);
  const keep = tf.tidy(() => tf.cast(tf.greater(start, 0), 'float32'));
  // The selected neurons as columns of a 0/1 matrix (exact; gather has no gradient on the wasm backend).
  const width = model.params.get(`${structureOf(model.spec).classifier}.weight`).shape[0];
  const pick = new Float32Array(width * opts.neurons.length);
  opts.neurons.forEach((n, j) => (pick[n * opts.neurons.length + j] = 1));
  const idx = tf.tensor2d(pick, [width, opts.neurons.length]);
  const costOf = (x: tf.Tensor): tf.Scalar =>
    tf.sum(tf.square(tf.sub(tf.matMul(differentiableFeatures(model, tf.mul(x, keep) as tf.Tensor4D), idx), opts.target))) as tf.Scalar;
  const gradient = tf.valueAndGrad(costOf);
  let x: tf.Tensor4D = tf.clone(start);
  let firstCost = NaN;
  let lastCost = NaN;
  let s = 0;
  try {
    while (s < opts.steps) {
      if (opts.signal?.aborted) throw new RunCancelledError();
      const prev = x;
      let cost = NaN;
      x = tf.tidy(() => {
        const { value, grad } = gradient(prev);
        cost = value.dataSync()[0];
        const stepped = tf.sub(prev, tf.mul(exactSign(grad), opts.step));
        const delta = tf.clipByValue(tf.sub(stepped, start), -opts.eps, opts.eps);
        return tf.clipByValue(tf.add(start, delta), 0, 1) as tf.Tensor4D;
      });
      prev.dispose();
      s++;
      if (s === 1) firstCost = cost;
      lastCost = cost;
      opts.onStep?.(s, cost);
      if (cost < (opts.tolerance ?? TROJAN_NN.tolerance)) break;
      if (s % 10 === 0) await yieldToEventLoop();
    }
    return { image: Float32Array.from(x.dataSync()), steps: s, firstCost, lastCost };
  } finally {
    x.dispose();
    start.dispose();
    keep.dispose();
    idx.dispose();
  }
}

/** ToPILImage's uint8 of a [0, 1] float32 image: (x * 255) in float32, truncated. */
export function triggerBytes(image: Float32Array): Uint8Array {
  const out = new Uint8Array(image.length);
  for (let i = 0; i < image.length; i++) {
    const v = Math.fround(image[i] * 255);
    out[i] = v <= 0 ? 0 : v >= 255 ? 255 : Math.trunc(v);
  }
  return out;
}
