// Channel Lipschitzness-based Pruning, CLP (Zheng, Tang, Li, Liu: "Data-free Backdoor Removal based on
// Channel Lipschitzness", ECCV 2022; the authors' rkteddy/channel-Lipschitzness-based-pruning defense.py
// `CLP`, and BackdoorBench's defense/clp.py `CLP_prune`, the same function). Data-free: no image is used,
// nothing is trained. For each batch norm, each channel k gets an upper bound of its Lipschitz constant,
//   UCLC_k = sigma_max(W_k) * |gamma_k / sqrt(running_var_k)|,
// W_k the weight of output channel k of the paired convolution reshaped [cin, kh*kw] (sigma_max: its
// largest singular value) and gamma the batch norm's scale; no eps under the square root, as the code. In
// each layer the channels whose bound is above mean + u * std of that layer's bounds (torch's unbiased std)
// are pruned by setting the batch norm's weight and bias to 0, as the code does (the channel is then 0
// after the batch norm for any input). u = 3 is the default of both sources (the authors' test.py -u 3); BackdoorBench sweeps u over
// linspace(0, 10, 21) (u_min 0, u_max 10, u_num 21) and reports the model at u = 3.
//
// The pairing is the code's, not the forward graph's: it walks net.named_modules() and pairs every
// BatchNorm2d with the last Conv2d registered before it. The ParamSet keeps PyTorch's registration order
// (its state_dict order), so the same walk over its names gives the same pairs:
//  - CNN (conv -> bn -> ReLU per stage): (conv1, bn1), (conv2, bn2), (conv3, bn3), each conv's own BN.
//  - NAD's WideResNet is pre-activation (bn1 -> relu -> conv1 -> bn2 -> relu -> conv2, plus the shortcut),
//    registered bn1, conv1, bn2, conv2, convShortcut in each block. For WRN-16-1 that makes 13 pairs:
//    7 where the BN reads that conv's output directly: (conv1, block1.layer.0.bn1) and
//    (block{g}.layer.{j}.conv1, block{g}.layer.{j}.bn2) for the 6 blocks; and 6 where the BN reads a
//    residual sum and is paired with one of its terms: the previous block's conv2 where its shortcut is
//    the identity (block1.layer.1.bn1, block2.layer.0.bn1, block3.layer.0.bn1, the final bn1), and its
//    convShortcut (a 1x1 conv, registered after conv2, so W_k is [cin, 1]) where it has one
//    (block2.layer.1.bn1, block3.layer.1.bn1). The other term of the sum is not in the bound.
//  The bounds come from the suspect's weights alone, so pruning one layer does not change another's.
//
// Numerics: sigma_max in float64 (the largest eigenvalue of the smaller Gram matrix by cyclic Jacobi) from
// the float32 weights; the reference runs torch.svd in float32. On the NAD authors' backdoored WRN-16-1 the
// two differ by < 1e-6 relative and every channel is >= 1% of the threshold away from it at u = 3
// (test/fixtures/defenses/make_clp_fixture.py). The ACC/ASR of the pruned model for a sweep of u (one
// evaluation of the test sets per distinct set of pruned channels; ~1.5 s for 700 + 629 CIFAR images on
// wasm) is shown as a curve, for display only: u is never chosen from the test sets.
import * as tf from '@tensorflow/tfjs-core';
import { evaluate, type EvalResult, type EvalSets } from '../evaluate';
import { describeSpec, type Model } from '../models';
import { FINETUNE_TRAINING } from '../schedules';
import { RunCancelledError } from '../train';
import { InputError } from '../types';
import type { EventSink, Fact, SeriesPoint } from '../../shared/run-events';
import type { Defense } from './types';

/** u of the curve (BackdoorBench's grid, 0 to 10 by 0.5, cut at 5: above that nothing is pruned on our models). */
export const SWEEP_US: readonly number[] = Array.from({ length: 11 }, (_, i) => i / 2);

/** A convolution and the batch norm CLP pairs with it (state-dict names, without `.weight`). */
export interface ConvBnPair {
  readonly conv: string;
  readonly bn: string;
  readonly channels: number;
}

/** The bounds of one pair: per channel, and their mean and unbiased standard deviation. */
export interface LayerBounds extends ConvBnPair {
  readonly bounds: Float64Array;
  readonly mean: number;
  readonly std: number;
}

/** Every batch norm with the last convolution before it in registration (state-dict) order, as CLP_prune pairs them. */
export function convBnPairs(model: Model): ConvBnPair[] {
  const name = describeSpec(model.spec);
  const shapes = model.params.torchShapes();
  let conv: { name: string; out: number } | undefined;
  let convs = 0;
  const pairs: ConvBnPair[] = [];
  for (const [key, shape] of shapes) {
    if (key.endsWith('.weight') && shape.length === 4) {
      conv = { name: key.slice(0, -'.weight'.length), out: shape[0] };
      convs++;
    } else if (key.endsWith('.running_var')) {
      const bn = key.slice(0, -'.running_var'.length);
      // CLP_prune would fail here (no conv yet): a batch norm before any convolution has nothing to bound it with.
      if (!conv) continue;
      if (shape[0] !== conv.out)
        throw new InputError(
          `${name}: batch norm ${bn} has ${shape[0]} channels but the convolution before it, ${conv.name}, has ${conv.out}; CLP cannot pair them`,
        );
      pairs.push({ conv: conv.name, bn, channels: shape[0] });
    }
  }
  if (convs === 0)
    throw new InputError(`${name} has no convolutional layer: CLP bounds the channels of a convolution followed by a batch norm`);
  if (pairs.length === 0)
    throw new InputError(
      `${name} has no batch norm after a convolutional layer: CLP bounds a channel by its convolution and batch norm together`,
    );
  return pairs;
}

/**
 * Largest singular value of the row-major rows x cols matrix `a`: the square root of the largest eigenvalue
 * of the smaller of A^T A and A A^T, by cyclic Jacobi rotations (float64).
 */
export function largestSingularValue(a: Float64Array, rows: number, cols: number): number {
  const n = Math.min(rows, cols);
  const g = new Float64Array(n * n);
  for (let i = 0; i < n; i++)
    for (let j = i; j < n; j++) {
      let s = 0;
      if (cols <= rows) for (let r = 0; r < rows; r++) s += a[r * cols + i] * a[r * cols + j];
      else for (let c = 0; c < cols; c++) s += a[i * cols + c] * a[j * cols + c];
      g[i * n + j] = s;
      g[j * n + i] = s;
    }
  return Math.sqrt(Math.max(0, largestEigenvalue(g, n)));
}

/** Largest eigenvalue of the symmetric n x n matrix `g` (overwritten). */
function largestEigenvalue(g: Float64Array, n: number): number {
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    let diag = 0;
    for (let i = 0; i < n; i++) {
      diag += g[i * n + i] * g[i * n + i];
      for (let j = i + 1; j < n; j++) off += g[i * n + j] * g[i * n + j];
    }
    if (off <= 1e-30 * diag || off === 0) break;
    for (let p = 0; p < n; p++)
      for (let q = p + 1; q < n; q++) {
        const apq = g[p * n + q];
        if (apq === 0) continue;
        const theta = (g[q * n + q] - g[p * n + p]) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const gkp = g[k * n + p];
          const gkq = g[k * n + q];
          g[k * n + p] = c * gkp - s * gkq;
          g[k * n + q] = s * gkp + c * gkq;
        }
        for (let k = 0; k < n; k++) {
          const gpk = g[p * n + k];
          const gqk = g[q * n + k];
          g[p * n + k] = c * gpk - s * gqk;
          g[q * n + k] = s * gpk + c * gqk;
        }
      }
  }
  let max = -Infinity;
  for (let i = 0; i < n; i++) max = Math.max(max, g[i * n + i]);
  return max;
}

function meanAndStd(v: Float64Array): { mean: number; std: number } {
  let sum = 0;
  for (const x of v) sum += x;
  const mean = sum / v.length;
  let ss = 0;
  for (const x of v) ss += (x - mean) * (x - mean);
  // torch.std: unbiased; NaN for a single value (then nothing is above the threshold, as in torch).
  return { mean, std: Math.sqrt(ss / (v.length - 1)) };
}

/** Per pair, the upper bound of each channel's Lipschitz constant (UCLC) from the model's weights, in float64. */
export function channelLipschitz(model: Model, signal?: AbortSignal): LayerBounds[] {
  return convBnPairs(model).map((pair) => {
    if (signal?.aborted) throw new RunCancelledError();
    const w = model.params.get(`${pair.conv}.weight`);
    const [kh, kw, cin, cout] = w.shape as [number, number, number, number];
    const data = w.dataSync();
    const gamma = model.params.get(`${pair.bn}.weight`).dataSync();
    const variance = model.params.get(`${pair.bn}.running_var`).dataSync();
    const taps = kh * kw;
    const m = new Float64Array(cin * taps);
    const bounds = new Float64Array(pair.channels);
    for (let k = 0; k < pair.channels; k++) {
      // Conv weights are HWIO: PyTorch's weight[k] as [cin, kh*kw] is m[c * taps + p] = w[p][c][k].
      for (let p = 0; p < taps; p++) for (let c = 0; c < cin; c++) m[c * taps + p] = data[(p * cin + c) * cout + k];
      bounds[k] = largestSingularValue(m, cin, taps) * Math.abs(gamma[k] / Math.sqrt(variance[k]));
    }
    return { ...pair, bounds, ...meanAndStd(bounds) };
  });
}

/** The channels CLP prunes in a layer: bound > mean + u * std. */
export function channelsAbove(layer: LayerBounds, u: number): number[] {
  const threshold = layer.mean + u * layer.std;
  const out: number[] = [];
  layer.bounds.forEach((b, k) => {
    if (b > threshold) out.push(k);
  });
  return out;
}

/** Prune in place: zero the batch norm weight and bias of `channels[i]` in `layers[i]`'s batch norm. */
export function pruneBatchNorms(model: Model, layers: readonly ConvBnPair[], channels: ReadonlyArray<readonly number[]>): void {
  tf.tidy(() => {
    layers.forEach((layer, i) => {
      if (channels[i].length === 0) return;
      const keep = new Float32Array(layer.channels).fill(1);
      for (const c of channels[i]) keep[c] = 0;
      const mask = tf.tensor1d(keep);
      for (const part of ['weight', 'bias']) {
        const v = model.params.get(`${layer.bn}.${part}`);
        // where(), not a multiply: exact +0 whatever the sign.
        v.assign(tf.where(tf.cast(mask, 'bool'), v, tf.zerosLike(v)));
      }
    });
  });
}

/** Set the batch norm weights and biases of `layers` in `into` back to `from`'s. */
function restoreBatchNorms(into: Model, from: Model, layers: readonly ConvBnPair[]): void {
  for (const layer of layers)
    for (const part of ['weight', 'bias']) into.params.get(`${layer.bn}.${part}`).assign(from.params.get(`${layer.bn}.${part}`));
}

export interface SweepPoint extends EvalResult {
  readonly u: number;
  readonly pruned: number;
}

/** ACC/ASR/RA of the model pruned at each u (one evaluation per distinct set of pruned channels), on `scratch`. */
export async function sweepU(
  scratch: Model,
  original: Model,
  layers: readonly LayerBounds[],
  us: readonly number[],
  test: EvalSets,
  signal?: AbortSignal,
): Promise<SweepPoint[]> {
  const seen = new Map<string, EvalResult>();
  const points: SweepPoint[] = [];
  for (const u of us) {
    // Let a cancel request arrive between evaluations (each takes seconds on a full test set).
    await new Promise((resolve) => setImmediate(resolve));
    if (signal?.aborted) throw new RunCancelledError();
    const channels = layers.map((l) => channelsAbove(l, u));
    const key = JSON.stringify(channels);
    let r = seen.get(key);
    if (!r) {
      restoreBatchNorms(scratch, original, layers);
      pruneBatchNorms(scratch, layers, channels);
      r = evaluate(scratch, test);
      seen.set(key, r);
    }
    points.push({ u, pruned: channels.reduce((s, c) => s + c.length, 0), ...r });
  }
  return points;
}

const fmt = (v: number, digits = 3): string => (Number.isFinite(v) ? v.toFixed(digits) : String(v));

function emitFindings(emit: EventSink, layers: readonly LayerBounds[], channels: ReadonlyArray<readonly number[]>, u: number): void {
  // In units of the layer's std above its mean, the bars above the line at u are exactly the pruned layers.
  const z = layers.map((l) => (Math.max(...l.bounds) - l.mean) / l.std);
  emit({
    type: 'chart',
    id: 'clp-layers',
    title: 'Largest channel bound per layer, in standard deviations above the layer mean',
    xLabel: 'batch norm',
    yLabel: '(max UCLC - mean) / std',
    chart: {
      kind: 'bar',
      labels: layers.map((l) => l.bn),
      series: [{ name: 'largest bound', values: z.map((v) => (Number.isFinite(v) ? v : 0)) }],
    },
    threshold: { value: u, label: `pruned above u = ${u}` },
  });
  // The layer with the most pruned channels; among equals, the one whose largest bound stands out most.
  let top = 0;
  layers.forEach((_, i) => {
    if (channels[i].length > channels[top].length || (channels[i].length === channels[top].length && z[i] > z[top])) top = i;
  });
  const l = layers[top];
  emit({
    type: 'chart',
    id: 'clp-bounds',
    title: `Channel bounds of ${l.bn} (after ${l.conv})`,
    xLabel: 'channel',
    yLabel: 'UCLC',
    chart: { kind: 'bar', labels: Array.from(l.bounds, (_, k) => String(k)), series: [{ name: 'UCLC', values: Array.from(l.bounds) }] },
    threshold: { value: l.mean + u * l.std, label: `mean + ${u} std` },
  });
  const total = channels.reduce((s, c) => s + c.length, 0);
  const all = layers.reduce((s, x) => s + x.channels, 0);
  const facts: Fact[] = [
    { label: 'Threshold', value: `UCLC > mean + ${u} x std, per layer` },
    { label: 'Pruned', value: `${total} of ${all} channels in ${layers.length} batch norms` },
  ];
  layers.forEach((x, i) => {
    if (channels[i].length)
      facts.push({
        label: x.bn,
        value: `channel${channels[i].length > 1 ? 's' : ''} ${channels[i].join(', ')} (after ${x.conv}; UCLC ${channels[i].map((c) => fmt(x.bounds[c])).join(', ')}; mean ${fmt(x.mean)}, std ${fmt(x.std)})`,
      });
  });
  emit({ type: 'facts', title: 'CLP', facts });
}

export const clp: Defense = {
  name: 'clp',
  title: 'Channel Lipschitzness-based Pruning (CLP)',
  description: 'Data-free: prune the channels whose upper Lipschitz bound (conv and batch norm) stands out in their layer; no training.',
  needs: 'no data (data-free; the clean data is not used)',
  citation:
    'Zheng, Tang, Li, Liu: Data-free Backdoor Removal based on Channel Lipschitzness, ECCV 2022 (rkteddy/channel-Lipschitzness-based-pruning); defaults of BackdoorBench defense/clp.py (Wu et al., NeurIPS 2022 Datasets and Benchmarks)',
  modes: ['repair'],
  params: [
    {
      key: 'u',
      type: 'number',
      min: 0,
      default: 3,
      label: 'Threshold u',
      description:
        "prune a channel whose bound exceeds its layer's mean + u x std; smaller prunes more (the paper and BackdoorBench: 3; BackdoorBench sweeps 0 to 10)",
    },
    {
      key: 'sweep',
      type: 'boolean',
      default: true,
      label: 'Show ACC/ASR against u',
      description:
        'for display only: evaluate the test sets pruned at u = 0, 0.5, ..., 5 (one evaluation per distinct set of pruned channels: 8 on the NAD WRN-16-1)',
    },
  ],
  training: FINETUNE_TRAINING,
  phases: () => [],
  async run(input) {
    const { test, emit, signal } = input;
    const u = input.params['u'] as number;
    const backdoored = input.suspect();
    const rows = [{ model: 'backdoored', ...evaluate(backdoored, test) }];
    emit({ type: 'table', rows: [...rows] });
    const t0 = performance.now();
    const layers = channelLipschitz(backdoored, signal);
    const channels = layers.map((l) => channelsAbove(l, u));
    const boundSeconds = (performance.now() - t0) / 1000;
    const total = channels.reduce((s, c) => s + c.length, 0);
    emit({
      type: 'log',
      message: `CLP: ${layers.length} conv/batch-norm pairs bounded in ${boundSeconds.toFixed(2)} s; ${total} channels above mean + ${u} x std pruned`,
    });
    emitFindings(emit, layers, channels, u);

    const model = input.suspect();
    pruneBatchNorms(model, layers, channels);
    rows.push({ model: 'clp', ...evaluate(model, test) });
    emit({ type: 'table', rows: [...rows] });

    let sweep: SweepPoint[] | undefined;
    if (input.params['sweep'] as boolean) {
      const t1 = performance.now();
      const us = [...new Set([...SWEEP_US, u])].sort((a, b) => a - b);
      sweep = await sweepU(input.suspect(), backdoored, layers, us, test, signal);
      const points: SeriesPoint[] = sweep.map((p) => ({ x: p.u, acc: p.acc, asr: p.asr }));
      emit({ type: 'series', id: 'clp-u', title: 'ACC/ASR against the threshold u', xLabel: 'u', points });
      emit({ type: 'log', message: `CLP: ACC/ASR for ${us.length} values of u in ${((performance.now() - t1) / 1000).toFixed(1)} s` });
    }
    return {
      model,
      rows,
      report: {
        u,
        totalPruned: total,
        totalChannels: layers.reduce((s, l) => s + l.channels, 0),
        pruned: layers.map((l, i) => ({
          layer: l.bn,
          conv: l.conv,
          channels: channels[i],
          boundMean: l.mean,
          boundStd: l.std,
          threshold: l.mean + u * l.std,
          maxBound: Math.max(...l.bounds),
        })),
        ...(sweep ? { sweep } : {}),
      },
      attention: [
        ['backdoored', backdoored],
        ['clp', model],
      ],
    };
  },
};
