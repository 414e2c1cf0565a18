// I-BAU, implicit backdoor adversarial unlearning (Zeng, Chen, Park, Mao, Jin, Jia: "Adversarial Unlearning of
// Backdoors via Implicit Hypergradient", ICLR 2022; the authors' YiZeng623/I-BAU, defense.py and hypergrad.py,
// whose fixed-point hypergradient comes from Grazzi et al.'s hypertorch), with the defaults of BackdoorBench's
// defense/i-bau.py (SCLBD/BackdoorBench, config/defense/i-bau/config.yaml). A minimax: the inner maximisation finds
// one universal perturbation delta (an image added to every input) that fools the model; the outer minimisation
// updates the model so that delta no longer matters, with the hypergradient through the inner problem's solution.
// Model in evaluation mode throughout (both codes call model.eval(): frozen batch-norm statistics); images in [0, 1]
// as the authors' code (BackdoorBench normalises them first: its delta lives in normalised units).
//
// Data: the defender's clean images in batches of `training.batchSize` (256), shuffled, with the run schedule's
// augmentation (random crop, flip; BackdoorBench's train transform; the authors use the test images as they are).
// One pass fixes the outer batches for the whole run, as BackdoorBench collects images_list once; its first batch,
// with its true labels, is the inner problem's data in every hypergradient (loss_inner reads images_list[0]).
// Each of `training.epochs` rounds (n_rounds 5):
//  1. Inner maximisation: delta = 0, then one SGD step (lr `perturbationLr`, 10) per batch of a fresh shuffled
//     pass, minimising -CE(f(x + delta), argmax f(x)) + `regularisation` (0.001) |delta|_2^2. The norm is bounded
//     by that penalty only: both codes leave the L2-ball projection pert * min(1, 10 / |pert|) and the clamp to
//     [0, 1] commented out. `maxNorm` > 0 applies the projection (once, after the pass, as that line would).
//     Units: the defaults are the authors', for images in [0, 1]. BackdoorBench runs the same numbers on normalised
//     images x_n = (x - mean) / s (CIFAR-10 s ~0.25): in pixel units its perturbation lr 10 is 10 s^2 ~0.6, its
//     penalty 0.001 / s^2 ~0.016, and its fixed-point step 0.1 s^2 ~0.006 (--perturbation-lr 0.625 --regularisation
//     0.016 --fixed-point-lr 0.00625 here). On the NAD student the authors' lr 10 grows |delta| past 2,000.
//  2. Outer minimisation, per fixed batch B: P adds delta to floor(`patchedShare` x |B|) images drawn at random
//     (portion 0.01: 2 of 256); L_out = CE(f(x_B + P delta), y_B). The inner problem's fixed-point map is one
//     gradient step Phi(delta, theta) = delta - a grad_delta L_in, a = `fixedPointLr` (0.1), with
//     L_in = -CE(f(x_A + delta), y_A) + 0.001 |delta|^2 on the first batch A. hypergrad.fixed_point with K
//     (`fixedPointSteps`, 5): v_1 = g = dL_out/ddelta, v_{k+1} = (dPhi/ddelta)^T v_k + g = v_k - a H v_k + g
//     (H = d2 L_in/ddelta2) up to v_K; hypergradient = dL_out/dtheta + (dPhi/dtheta)^T v_K
//     = dL_out/dtheta - a d/dtheta (v_K . grad_delta L_in). Adam (BackdoorBench client_optimizer adam, betas
//     (0.9, 0.999), weight decay `training.weightDecay`, 0) at `training`'s learning rate (1e-4; the authors 1e-3)
//     over every trainable parameter (BN weights and biases too). Its cosine scheduler is never stepped in
//     i-bau.py, so the rate is constant; `training.momentum` is not used.
//
// Second-order terms, exactly as autograd computes them, without nested gradients. tfjs differentiates its stock ops
// twice (nested tf.grad of sin(x) x^2 works), but not through this engine's convolution and batch-norm ops, whose
// hand-written backward passes run kernels without gradients: nested tf.grad fails with "Kernel
// 'Conv2DBackpropFilter' not registered for backend 'wasm'" (parameters) and "Cannot compute gradient of y=f(x) with
// respect to x" (input). Finite differences of gradients are no substitute: a ReLU network's gradient jumps at every
// ReLU that changes sign, and over 16 images (2M ReLUs) the central differences of the hypergradient missed PyTorch's
// by 1.3 to 2.9 times its largest entry for |e v| from 1 down to 0.01, and by far more below (float32 rounding).
// Instead, forward mode. The network is piecewise linear in its input (convolutions, evaluation-mode batch norm, ReLU,
// max and mean pooling, linear), and autograd treats each ReLU as its fixed 0/1 mask and each max pool as the fixed
// choice of its window's maximum (their second derivatives are 0). So J t, the logits' derivative along an input
// direction t, is the linearised network on t (tangentLogits in i-bau-linearised.ts: the same convolutions, each
// batch norm's scale gamma / sqrt(var + eps), the masks that reluMasks recorded in the forward pass on x_A + delta,
// the classifier's weight), differentiable in the parameters. With p = softmax(z_A) on the n images of the first
// batch:
//    H v = -J^T u + 2 reg v, u = (p * Jv - p (p . Jv)) / n (the softmax cross-entropy's Hessian times Jv), J^T u by
//          one backward pass through the linearised network;
//    d/dtheta (v . grad_delta L_in) = -d/dtheta G, G = sum_i (p_i - y_i) . J_i v / n, by one backward pass of G
//          through the network and its linearisation (masks held constant, as autograd does).
// Against PyTorch's create_graph autograd in float64 on the NAD student (test/fixtures/defenses/make_i_bau_fixture.py):
// hypergradient within 1.6e-4 of its largest entry (torch's own float32 run: 8.9e-4), v_K within 5e-5. Every
// architecture of the engine has its linearised pass (WRN, the digits CNN, PreAct-ResNet-18, ResNet-18, VGG-16-BN);
// on the last three, full width with hashed weights (make_i_bau_archs_fixture.py), J t is within 4e-6 of torch's jvp
// and v_K, the hypergradient and every parameter's hypergradient norm within 5e-6 of its create_graph autograd.
// Cost per outer step: the outer forward-backward, one forward on the first batch, K - 1 linearised
// forward-backward passes and one forward-backward through both: ~7x a finetuning step on the same batch size.
//
// Files: hypergradient.ts (inner steps, hypergradient), linearised.ts (the network linearised at its ReLU
// pattern), this file (the rounds, the defense).
import * as tf from '@tensorflow/tfjs-core';
import { augmentBatch, toFloatBatch } from '../../data/augment';
import { epochEvent, evaluate, yieldToEventLoop, type EvalResult } from '../../evaluate';
import { learningRateAt } from '../../optim';
import { Rng } from '../../rng';
import { DivergedError, RunCancelledError } from '../../train';
import { InputError, type ImageDataset } from '../../types';
import type { FigureImage, ResultRow, SeriesPoint } from '../../../shared/run-events';
import { Adam } from '../../optim';
import type { Defense } from '../types';
import {
  hypergradient,
  IBAU_ADAM,
  IBAU_PHASE,
  IBAU_TRAINING,
  normOf,
  perturbationStep,
  projectToBall,
  type IbauSettings,
  type LabelledBatch,
} from './hypergradient';

interface HostBatch {
  readonly xs: Float32Array;
  readonly labels: Int32Array;
}

function batchesOf(data: ImageDataset, batchSize: number, rng: Rng, augment: { flip: boolean } | undefined): HostBatch[] {
  const order = rng.permutation(data.count);
  const out: HostBatch[] = [];
  for (let start = 0; start < data.count; start += batchSize) {
    const idx = order.subarray(start, Math.min(start + batchSize, data.count));
    const xs = augment ? augmentBatch(data, idx, rng, undefined, { flip: augment.flip, cutoutHoles: 0 }) : toFloatBatch(data, idx);
    out.push({ xs, labels: Int32Array.from(idx, (i) => data.labels[i]) });
  }
  return out;
}

function toTensors(b: HostBatch, data: ImageDataset): LabelledBatch {
  const n = b.labels.length;
  return tf.tidy(() => ({
    x: tf.tensor4d(b.xs, [n, data.height, data.width, data.channels]),
    y: tf.oneHot(tf.tensor1d(b.labels, 'int32'), data.numClasses) as tf.Tensor2D,
  }));
}

/** `k` distinct indices of 0..n-1 (random.sample), as a [n, 1, 1, 1] mask. */
function patchMask(n: number, k: number, rng: Rng): tf.Tensor4D {
  const mask = new Float32Array(n);
  for (const i of rng.permutation(n).subarray(0, k)) mask[i] = 1;
  return tf.tensor4d(mask, [n, 1, 1, 1]);
}

/** delta as a picture: its range stretched to 0..255 (uint8 HWC, base64). */
function perturbationImage(delta: tf.Tensor, data: ImageDataset, caption: string): FigureImage {
  const v = delta.dataSync();
  let lo = Infinity;
  let hi = -Infinity;
  for (const a of v) [lo, hi] = [Math.min(lo, a), Math.max(hi, a)];
  const px = Uint8Array.from(v, (a) => (hi > lo ? Math.round((255 * (a - lo)) / (hi - lo)) : 128));
  return { caption, height: data.height, width: data.width, channels: data.channels, pixels: Buffer.from(px).toString('base64') };
}

const round3 = (x: number): number => Math.round(x * 1000) / 1000;

export const iBau: Defense = {
  name: 'i-bau',
  title: 'I-BAU',
  description:
    'Adversarial unlearning: find a universal perturbation that fools the model, then update the model with the implicit hypergradient so that it no longer does; a few rounds.',
  needs: 'clean data (BackdoorBench: 5% of the training set)',
  citation:
    'Zeng, Chen, Park, Mao, Jin, Jia: Adversarial Unlearning of Backdoors via Implicit Hypergradient, ICLR 2022 (YiZeng623/I-BAU); defaults of BackdoorBench defense/i-bau.py (Wu et al., NeurIPS 2022 Datasets and Benchmarks)',
  modes: ['repair'],
  params: [
    {
      key: 'fixedPointSteps',
      type: 'number',
      integer: true,
      min: 1,
      default: 5,
      label: 'Fixed-point iterations (K)',
      description: 'iterations of the fixed-point method for the hypergradient (the authors and BackdoorBench: 5)',
    },
    {
      key: 'fixedPointLr',
      type: 'number',
      min: 0,
      default: 0.1,
      label: 'Inner step size',
      description:
        "step size of the inner problem's gradient map whose fixed point defines the hypergradient (both codes: 0.1; BackdoorBench's on normalised CIFAR images is ~0.006 here)",
    },
    {
      key: 'perturbationLr',
      type: 'number',
      min: 0,
      default: 10,
      label: 'Perturbation learning rate',
      description:
        'SGD learning rate of the universal perturbation, one step per batch each round (the authors, images in [0, 1]: 10; BackdoorBench uses 10 on normalised CIFAR images, ~0.6 here)',
    },
    {
      key: 'regularisation',
      type: 'number',
      min: 0,
      default: 0.001,
      label: 'Perturbation penalty',
      description:
        "weight of the perturbation's squared L2 norm in the inner losses (the authors: 0.001; BackdoorBench's 0.001 on normalised CIFAR images is ~0.016 here)",
    },
    {
      key: 'patchedShare',
      type: 'number',
      min: 0,
      max: 1,
      default: 0.01,
      label: 'Share of perturbed images',
      description: 'share of each unlearning batch the perturbation is added to (both codes: 0.01, 2 of 256)',
    },
    {
      key: 'maxNorm',
      type: 'number',
      min: 0,
      default: 0,
      label: 'Perturbation L2 bound',
      description: 'project the perturbation into this L2 ball after each round; 0 = none (both codes comment the projection to 10 out)',
    },
  ],
  training: IBAU_TRAINING,
  phases: (_params, training) => [{ phase: IBAU_PHASE, epochs: training.epochs }],
  async run(input) {
    const { params, test, emit, clean: data, training, signal } = input;
    const settings: IbauSettings = {
      fixedPointSteps: params['fixedPointSteps'] as number,
      fixedPointLr: params['fixedPointLr'] as number,
      regularisation: params['regularisation'] as number,
    };
    const perturbationLr = params['perturbationLr'] as number;
    const share = params['patchedShare'] as number;
    const maxNorm = params['maxNorm'] as number;
    if (data.count < 1) throw new InputError(`I-BAU needs clean images to unlearn on; got ${data.count}`);
    const batchSize = Math.min(training.batchSize, data.count);
    const augment = training.augment ? { flip: training.hflip ?? true } : undefined;

    const backdoored = input.suspect();
    const rows: ResultRow[] = [{ model: 'backdoored', ...evaluate(backdoored, test) }];
    emit({ type: 'table', rows: [...rows] });
    const model = input.suspect();
    const vars = model.params.trainable().map(([, v]) => v);
    const adam = new Adam(vars, IBAU_ADAM);
    const rng = new Rng((input.seed ^ 0x1ba0) >>> 0);
    const fixed = batchesOf(data, batchSize, rng, augment);
    const inner = toTensors(fixed[0], data);
    const zeros = tf.zeros([1, data.height, data.width, data.channels]);
    const delta = tf.variable(zeros, true);
    zeros.dispose();
    const phase = IBAU_PHASE;
    emit({
      type: 'phase',
      phase,
      label: `Adversarial unlearning (I-BAU) on ${data.count} clean images: ${fixed.length} batches a round`,
      epochs: training.epochs,
    });
    emit({ type: 'baseline', phase, acc: rows[0].acc, asr: rows[0].asr });
    const points: SeriesPoint[] = [{ x: 0, acc: rows[0].acc, asr: rows[0].asr }];
    const history: Array<{ round: number; perturbationLoss: number; perturbationNorm: number; outerLoss: number } & EvalResult> = [];
    const pictures: FigureImage[] = [];
    const t0 = performance.now();
    let result: EvalResult = rows[0];
    try {
      for (let round = 1; round <= training.epochs; round++) {
        const tr = performance.now();
        const lr = learningRateAt(training.lrSchedule, round - 1);
        // 1. The universal perturbation, from zero, one step per batch of a fresh pass.
        tf.tidy(() => delta.assign(tf.zerosLike(delta)));
        let perturbationLoss = 0;
        for (const b of batchesOf(data, batchSize, rng, augment)) {
          if (signal?.aborted) throw new RunCancelledError();
          const x = tf.tensor4d(b.xs, [b.labels.length, data.height, data.width, data.channels]);
          perturbationLoss = perturbationStep(model, delta, x, perturbationLr, settings.regularisation);
          x.dispose();
          await yieldToEventLoop();
        }
        if (maxNorm > 0) projectToBall(delta, maxNorm);
        const perturbationNorm = normOf(delta);
        // 2. Unlearning: one hypergradient step per fixed batch.
        let outerSum = 0;
        for (let s = 0; s < fixed.length; s++) {
          if (signal?.aborted) throw new RunCancelledError();
          const b = toTensors(fixed[s], data);
          const n = fixed[s].labels.length;
          const patch = patchMask(n, Math.floor(n * share), rng);
          const h = hypergradient(model, delta, inner, { ...b, patch }, settings);
          tf.dispose([b.x, b.y, patch, h.v]);
          if (!Number.isFinite(h.outerLoss)) {
            tf.dispose(Object.values(h.grads));
            throw new DivergedError(round, s + 1, lr);
          }
          if (training.weightDecay > 0) {
            // torch.optim.Adam's weight_decay: the L2 term added to the gradient.
            for (const x of vars) {
              const g = h.grads[x.name];
              h.grads[x.name] = tf.tidy(() => tf.add(g, tf.mul(x, training.weightDecay)));
              g.dispose();
            }
          }
          adam.step(h.grads, lr);
          tf.dispose(Object.values(h.grads));
          outerSum += h.outerLoss * n;
          emit({ type: 'step', phase, epoch: round, step: s + 1, steps: fixed.length, loss: h.outerLoss });
          await yieldToEventLoop();
        }
        const seconds = (performance.now() - tr) / 1000;
        result = evaluate(model, test);
        const outerLoss = outerSum / data.count;
        history.push({ round, perturbationLoss, perturbationNorm, outerLoss, ...result });
        points.push({ x: round, acc: result.acc, asr: result.asr });
        pictures.push(perturbationImage(delta, data, `round ${round}: |delta| ${perturbationNorm.toFixed(1)}`));
        emit(epochEvent(phase, { epoch: round, epochs: training.epochs, loss: outerLoss, lr, seconds, images: data.count }, result));
        emit({ type: 'series', id: 'rounds', title: 'ACC/ASR per round', xLabel: 'round', points: [...points] });
        emit({
          type: 'chart',
          id: 'losses',
          title: 'Losses per round',
          xLabel: 'round',
          yLabel: 'loss',
          chart: {
            kind: 'xy',
            series: [
              { name: 'outer (unlearning) CE', points: history.map((r) => ({ x: r.round, y: r.outerLoss })) },
              { name: 'inner (perturbation) objective, last batch', points: history.map((r) => ({ x: r.round, y: r.perturbationLoss })) },
            ],
          },
        });
        emit({ type: 'images', id: 'perturbations', title: 'Universal perturbation per round (range stretched)', images: [...pictures] });
        emit({
          type: 'log',
          message: `I-BAU round ${round}: |delta| ${perturbationNorm.toFixed(2)}, perturbation objective ${perturbationLoss.toFixed(3)}, outer CE ${outerLoss.toFixed(4)}, ACC ${result.acc.toFixed(2)}, ASR ${result.asr.toFixed(2)} (${seconds.toFixed(1)} s)`,
        });
      }
    } finally {
      tf.dispose([inner.x, inner.y, delta]);
      adam.dispose();
    }
    rows.push({ model: 'i-bau', ...result });
    emit({ type: 'table', rows: [...rows] });
    return {
      model,
      rows,
      report: {
        rounds: history.map((r) => ({
          round: r.round,
          acc: r.acc,
          asr: r.asr,
          ...(r.ra !== undefined ? { ra: r.ra } : {}),
          outerLoss: round3(r.outerLoss),
          perturbationLoss: round3(r.perturbationLoss),
          perturbationNorm: round3(r.perturbationNorm),
        })),
        batchesPerRound: fixed.length,
        patchedPerBatch: Math.floor(batchSize * share),
        seconds: Math.round((performance.now() - t0) / 100) / 10,
      },
      attention: [
        ['backdoored', backdoored],
        ['i-bau', model],
      ],
    };
  },
};
