// Adversarial Neuron Pruning, ANP (Wu & Wang: "Adversarial Neuron Pruning Purifies Backdoored Deep Models",
// NeurIPS 2021; the authors' csdongxian/ANP_backdoor optimize_mask_cifar.py, prune_neuron_cifar.py and
// models/anp_batchnorm.py, which BackdoorBench's defense/anp/anp.py repeats). Backdoor neurons are the ones
// whose small perturbation most easily breaks the model; ANP finds them with a mask per neuron learned
// under adversarial neuron perturbations, then prunes the neurons whose mask stays small.
//
// Neurons are the channels of every batch norm (found generically: the state-dict names ending in
// `.running_mean`). Each gets a mask m in [0, 1] (init 1) and perturbations d, d_b of its weight and bias;
// the batch norm computes with weight * (m + d) and bias * (1 + d_b) when perturbed, weight * m and bias
// when not (NoisyBatchNorm2d), through ParamSet's batch-norm modulation, so the gradients reach m, d, d_b.
// One iteration (mask_train's body, the model in training mode: batch statistics):
//  1. d, d_b ~ U(-eps, eps), then `anpSteps` ascent steps d += (eps / steps) * sign(dCE/dd) (the authors'
//     SGD with lr eps / steps on the sign of the gradient of -CE; no projection back to [-eps, eps], as the code);
//  2. loss = alpha * CE(clean) + (1 - alpha) * CE(perturbed), one SGD step on the masks (lr `--lr`,
//     default 0.2, momentum 0.9, no weight decay), masks clamped to [0, 1].
// Batches of `--batch-size` (128) drawn with replacement from the defender's clean data (RandomSampler with
// replacement), augmented as the authors' transform_train (random crop with padding 4, horizontal flip; no
// cutout). The authors use 1% of CIFAR-10's training set (500 images); here all of the run's clean data.
// Defaults: eps 0.4, 1 step, alpha 0.2, lr 0.2, 2000 iterations, batch 128 (the authors' arguments and
// recipe.md; BackdoorBench's config the same). The run layer's `--epochs` counts rounds of 100 iterations
// (20 = the authors' 2000): after each round the masked model's ACC/ASR are reported, as the authors print
// every `print_every` iterations, for display. Theirs keeps the running statistics that the training-mode
// passes (the perturbed ones too) moved; here the suspect's are put back first, so the figure is the masked
// suspect's (with the moved ones the WRN-16-1 showed ACC 15% after 100 iterations).
//
// Pruning (prune_neuron_cifar.py): neurons with mask <= threshold get their batch norm weight set to 0 (the
// bias is kept: the neuron outputs a constant). The threshold is 0.2, the paper's (Section 4.1); the authors'
// script evaluates the thresholds 0, 0.05, ..., 0.9 (pruning_max 0.9, pruning_step 0.05), which the run
// shows as a curve of ACC/ASR on the test sets, for display only (BackdoorBench picks the threshold with the
// lowest test ASR; choosing from the test sets is not done here). The authors' mask file rounds masks to 4
// decimals before pruning; the masks themselves are compared here.
//
// Measured on the NAD authors' WRN-16-1 (464 neurons; 2,500 clean CIFAR images, 2026-11-30): at the default
// eps 0.4 the perturbed model is destroyed (CE ~14 on the first batches, as in PyTorch) and the masks collapse:
// after 200 iterations 187 neurons are <= 0.2 and the pruned model is at chance (ACC 10%). eps 0.1 (100
// iterations) pruned 35 and gave ACC 77.9 / ASR 2.7. The authors' eps is for ResNet-18, with ten times as
// many neurons; a small network may need a smaller one.
//
// Files: masks.ts (masks, perturbations, one iteration, pruning), optimize.ts (the loop, the curve), this file.
import { evaluate } from '../../evaluate';
import type { EventSink, Fact } from '../../../shared/run-events';
import type { Defense } from '../types';
import {
  ANP_TRAINING,
  CURVE_THRESHOLDS,
  MASK_PHASE,
  neuronLayers,
  neuronsByMask,
  NeuronMasks,
  pruneNeurons,
  prunedCount,
  ROUND_ITERATIONS,
  type Neuron,
} from './masks';
import { maskSummary, optimizeMasks, pruningCurve, type CurvePoint } from './optimize';

const fmt = (v: number, digits = 3): string => (Number.isFinite(v) ? v.toFixed(digits) : String(v));

function emitFindings(
  emit: EventSink,
  masks: readonly Float32Array[],
  curve: readonly CurvePoint[],
  pruned: readonly Neuron[],
  threshold: number,
): void {
  const xy = (pick: (p: CurvePoint) => number | undefined) =>
    curve.filter((p) => pick(p) !== undefined).map((p) => ({ x: p.threshold, y: pick(p) as number }));
  if (curve.length)
    emit({
      type: 'chart',
      id: 'anp-pruning',
      title: 'ACC/ASR of the model pruned at each mask threshold',
      xLabel: 'mask threshold',
      yLabel: '%',
      chart: {
        kind: 'xy',
        series: [
          { name: 'ACC', points: xy((p) => p.acc) },
          { name: 'ASR', points: xy((p) => (Number.isFinite(p.asr) ? p.asr : undefined)) },
          { name: 'RA', points: xy((p) => p.ra) },
        ].filter((s) => s.points.length),
      },
      threshold: { value: threshold, label: `pruned at mask <= ${threshold}`, axis: 'x' },
    });
  const bins = new Array<number>(10).fill(0);
  for (const m of masks) for (const v of m) bins[Math.min(9, Math.floor(v * 10))]++;
  emit({
    type: 'chart',
    id: 'anp-masks',
    title: 'Neuron masks after optimisation',
    xLabel: 'mask',
    yLabel: 'neurons',
    chart: {
      kind: 'bar',
      labels: bins.map((_, i) => `${(i / 10).toFixed(1)}-${((i + 1) / 10).toFixed(1)}`),
      series: [{ name: 'neurons', values: bins }],
    },
    threshold: { value: threshold * 10 - 0.5, label: `threshold ${threshold}`, axis: 'x' },
  });
  const perLayer = new Map<string, Neuron[]>();
  for (const n of pruned) perLayer.set(n.layer, [...(perLayer.get(n.layer) ?? []), n]);
  const total = masks.reduce((s, m) => s + m.length, 0);
  const facts: Fact[] = [
    { label: 'Threshold', value: `mask <= ${threshold}` },
    { label: 'Pruned', value: `${pruned.length} of ${total} neurons in ${perLayer.size} of ${masks.length} batch norms` },
  ];
  for (const [layer, ns] of perLayer) facts.push({ label: layer, value: ns.map((n) => `${n.channel} (${fmt(n.mask)})`).join(', ') });
  emit({ type: 'facts', title: 'ANP', facts });
}

export const anp: Defense = {
  name: 'anp',
  title: 'Adversarial Neuron Pruning (ANP)',
  description:
    'Learn a mask per batch-norm neuron on clean data under adversarial neuron perturbations, then prune the neurons whose mask stays small. --epochs counts rounds of 100 mask iterations, --lr is the mask learning rate.',
  needs: 'clean data (the authors: 1% of the training set)',
  citation:
    'Wu, Wang: Adversarial Neuron Pruning Purifies Backdoored Deep Models, NeurIPS 2021 (csdongxian/ANP_backdoor); BackdoorBench defense/anp (Wu et al., NeurIPS 2022 Datasets and Benchmarks)',
  modes: ['repair'],
  params: [
    {
      key: 'anpEps',
      type: 'number',
      min: 0,
      default: 0.4,
      label: 'Perturbation budget',
      description:
        "largest relative perturbation of a neuron's weight and bias, eps (the authors: 0.4; 0 trains the masks without perturbation)",
    },
    {
      key: 'anpSteps',
      type: 'number',
      integer: true,
      min: 1,
      default: 1,
      label: 'Perturbation steps',
      description: 'signed-gradient ascent steps on the perturbation per iteration (the authors: 1)',
    },
    {
      key: 'anpAlpha',
      type: 'number',
      min: 0,
      max: 1,
      default: 0.2,
      label: 'Clean-loss weight',
      description: 'alpha in alpha * natural loss + (1 - alpha) * perturbed loss (the authors: 0.2)',
    },
    {
      key: 'threshold',
      type: 'number',
      min: 0,
      max: 1,
      default: 0.2,
      label: 'Pruning threshold',
      description: 'prune the neurons whose mask is <= this (the paper: 0.2)',
    },
    {
      key: 'sweep',
      type: 'boolean',
      default: true,
      label: 'Show ACC/ASR against the threshold',
      description: "for display only: evaluate the test sets pruned at 0, 0.05, ..., 0.9 (the authors' grid)",
    },
  ],
  training: ANP_TRAINING,
  phases: (_params, training) => [{ phase: MASK_PHASE, epochs: training.epochs }],
  async run(input) {
    const { test, emit, params, signal } = input;
    const threshold = params['threshold'] as number;
    const backdoored = input.suspect();
    const layers = neuronLayers(backdoored);
    const rows = [{ model: 'backdoored', ...evaluate(backdoored, test) }];
    emit({ type: 'table', rows: [...rows] });

    // Masks are learned on a copy: its running statistics move in training mode (the pruned model's do not).
    const scratch = input.suspect();
    const state = new NeuronMasks(scratch, layers);
    const t0 = performance.now();
    let masks: Float32Array[];
    try {
      await optimizeMasks({
        model: scratch,
        state,
        data: input.clean,
        test,
        settings: input.training,
        opts: { eps: params['anpEps'] as number, steps: params['anpSteps'] as number, alpha: params['anpAlpha'] as number },
        seed: input.seed,
        emit,
        signal,
      });
      masks = state.values().map((m) => Float32Array.from(m));
    } finally {
      state.dispose();
    }
    const maskSeconds = (performance.now() - t0) / 1000;

    const sorted = neuronsByMask(layers, masks);
    const pruned = sorted.slice(0, prunedCount(sorted, threshold));
    const curve = params['sweep'] ? await pruningCurve(input.suspect(), sorted, CURVE_THRESHOLDS, test, signal) : [];
    const model = input.suspect();
    pruneNeurons(model, pruned);
    rows.push({ model: `anp (mask <= ${threshold})`, ...evaluate(model, test) });
    emit({ type: 'table', rows: [...rows] });
    emitFindings(emit, masks, curve, pruned, threshold);
    const summary = maskSummary(masks);
    emit({
      type: 'log',
      message: `ANP: pruned ${pruned.length} of ${summary.neurons} neurons at mask <= ${threshold}; masks min ${fmt(summary.min)}, median ${fmt(summary.median)}, ${summary.atOne} at 1 (masks optimised in ${maskSeconds.toFixed(1)} s)`,
    });
    return {
      model,
      rows,
      report: {
        threshold,
        prunedNeurons: pruned.length,
        totalNeurons: summary.neurons,
        pruned: pruned.map((n) => ({ layer: n.layer, channel: n.channel, mask: n.mask })),
        masks: summary,
        iterations: input.training.epochs * ROUND_ITERATIONS,
        maskSeconds,
        curve,
      },
      attention: [
        ['backdoored', backdoored],
        ['anp', model],
      ],
    };
  },
};
