// Neural Cleanse (Wang, Yao, Shan, Li, Viswanath, Zheng, Zhao: "Neural Cleanse: Identifying and Mitigating
// Backdoor Attacks in Neural Networks", IEEE S&P 2019; the authors' bolunwang/backdoor, visualizer.py and
// mad_outlier_detection.py), with the defaults of BackdoorBench's defense/nc.py (SCLBD/BackdoorBench,
// config/defense/nc/cifar10.yaml) where the paper is silent. Two modes: `detect` and `repair` (unlearning).
//
// 1. Reverse engineering, for every class y: a mask m (H x W, one channel) and a pattern p (H x W x C), both
//    tanh-parameterised, m = tanh(m')/(2 + 1e-7) + 0.5 and p likewise, so both stay in (0, 1). The
//    triggered image is (1 - m) x + m p in the [0, 1] pixel domain (BackdoorBench mixes normalised images
//    and the normalised pattern, which is the same image: the normalisation is affine per channel). Loss:
//    CE(f((1 - m) x + m p), y) + cost * |m|_1 over mini-batches of the defender's clean data, the model in
//    evaluation mode (frozen batch-norm statistics), only m' and p' optimised. Adam with nc.py's and
//    visualizer.py's lr 0.1 and betas (0.5, 0.9) (torch's eps 1e-8), a fresh optimiser per class; m' and p'
//    start at 1 (nc.py's np.ones, i.e. m = p = 0.881; the authors start from random values).
//    Batches: nc.py's loader over the clean data (batch_size 256, shuffled each epoch, its train
//    transform: random crop with padding 4 and horizontal flip; we use the run schedule's augmentation
//    without cutout, so digits are not flipped), for nc_epoch 80 epochs. After each epoch, nc.py's
//    schedule of the cost (the authors' visualizer.py, counted in epochs instead of 'steps' of mini-batches):
//     - the epoch's attack success = mean over its batches of the share classified as y (percent);
//       reg = mean over its batches of |m|_1;
//     - best mask: when success >= atk_succ_threshold (98%) and reg < the best reg so far, keep m and p;
//     - early stop (early_stop_threshold 0.99, early_stop_patience 25): after a best exists, count epochs
//       whose best reg is not below 0.99 x the best before; stop when the count reaches 25 and the cost
//       has gone both up and down;
//     - cost (init_cost 1e-3, nc.py starts there; visualizer.py starts at 0 and sets init_cost after
//       `patience` successful steps): `patience` (5) successful epochs in a row multiply it by
//       cost_multiplier (2), 5 unsuccessful ones divide it by cost_multiplier^1.5.
//    A class that never reaches the threshold keeps its last mask (visualizer.py; nc.py keeps the first
//    epoch's) and is reported as not reached. Its L1 is |m_best|_1.
// 2. Detection (mad_outlier_detection.py, nc.py's outlier_detection): anomaly index of class y =
//    |L1_y - median| / (1.4826 * MAD), MAD = median |L1 - median|; y is flagged when its index > 2 and
//    L1_y <= median (a small trigger). The median is numpy's (mean of the two middle values for an even
//    count, as the authors' code); nc.py takes torch.median, the lower middle value: with 10 classes the
//    two can differ. Flagged classes are listed by L1, smallest first.
// 3. Repair (unlearning; the paper's Section VI-C, nc.py step d): if nothing is flagged, the suspect is
//    returned unchanged (nc.py: "This is not a backdoor model"). Else a seeded random 80% of the clean
//    data stays as it is and the other 20% (unlearning_ratio 0.2, the paper's 20%) are stamped, for every
//    flagged class (nc.py loops over its flag list; usually one), with that class's recovered trigger,
//    keeping their true labels; the model is finetuned on it (phase `unlearn`, trainPhase, output
//    `model`) on the run's schedule, by default NAD's finetuning (FINETUNE_TRAINING: 10 epochs, lr 0.1 then
//    0.01, batch 64, augmentation). nc.py finetunes 100 epochs at lr 0.01 (cosine, wd 5e-4) with its
//    generic schedule; the paper a single epoch. Stamping rounds to uint8 (nc.py truncates after reading the
//    trigger back from min-max-normalised PNGs; we stamp the recovered mask and pattern themselves).
//
// Progress: the reverse engineering is one phase, `reverse`, of classes x ncEpochs epochs (its own phase
// event: the class count comes from the data, so `phases()` declares ncEpochs, per class); each batch sends a
// step event with the epoch counted over all classes, and a class that stops early skips to the next class's
// first epoch, so the ETA's pace is the time per class. No epoch events: those carry ACC/ASR curves. A log
// line per class gives its L1, success, epochs and time. Cost: an input-gradient step costs ~3.6 forward
// passes; WRN-16-1 on 2,500 images runs ~8.5 s an epoch on 2 cores, so the default 80 epochs x 10 classes
// is up to ~2 h (less with early stops); the report's l1ByEpoch shows what fewer epochs would have found.
//
// Files: reverse.ts (step 1), outliers.ts (step 2), unlearning.ts (step 3), this file (the defense).
import { evaluate } from '../../evaluate';
import { type Model } from '../../models';
import { FINETUNE_TRAINING } from '../../schedules';
import { type TrainSettings } from '../../train';
import { InputError, type ImageDataset } from '../../types';
import type { EventSink, Fact, ResultRow } from '../../../shared/run-events';
import type { Defense, ParamValues } from '../types';

import { DETECT_PHASE, NC_DEFAULTS, reverseEngineer, UNLEARN_PHASE, type RecoveredTrigger, type ReverseSettings } from './reverse';
import { anomalyIndices, flaggedClasses, l1Statistics, type FlaggedClass, type L1Statistics } from './outliers';
import { triggerImages, unlearningSet } from './unlearning';

/** Reverse settings from checked parameters and the run's schedule (its augmentation, without cutout). */
export function reverseSettingsOf(params: ParamValues, training: TrainSettings): ReverseSettings {
  return {
    epochs: params['ncEpochs'] as number,
    batchSize: params['ncBatchSize'] as number,
    initCost: params['initCost'] as number,
    lr: params['maskLr'] as number,
    costMultiplier: params['costMultiplier'] as number,
    patience: params['patience'] as number,
    attackSuccThreshold: params['attackSuccThreshold'] as number,
    earlyStopPatience: params['earlyStopPatience'] as number,
    augment: training.augment ? { flip: training.hflip ?? true } : undefined,
  };
}

export interface DetectionResult {
  readonly triggers: RecoveredTrigger[];
  readonly l1: number[];
  readonly anomalyIndex: number[];
  readonly flagged: FlaggedClass[];
  readonly stats: L1Statistics;
  readonly seconds: number;
}

/**
 * Reverse-engineer every class in turn and flag the outliers. Emits the detection phase (epochs: classes x
 * epochs per class), a step event per batch with the epoch counted over all classes (a class that stops
 * early skips to the next class's first epoch, so the pace is the time per class), and one log line per class.
 */
export async function detectBackdoor(a: {
  model: Model;
  data: ImageDataset;
  settings: ReverseSettings;
  threshold: number;
  seed: number;
  emit: EventSink;
  signal?: AbortSignal;
  className: (k: number) => string;
}): Promise<DetectionResult> {
  const { data, settings, emit } = a;
  const classes = data.numClasses;
  const epochs = settings.epochs;
  const steps = Math.ceil(data.count / settings.batchSize);
  emit({
    type: 'phase',
    phase: DETECT_PHASE,
    label: `Reverse-engineering a trigger for each of ${classes} classes on ${data.count} clean images (${epochs} epochs each at most)`,
    epochs: classes * epochs,
  });
  const t0 = performance.now();
  const triggers: RecoveredTrigger[] = [];
  for (let k = 0; k < classes; k++) {
    let lastReport = 0;
    const t = await reverseEngineer({
      model: a.model,
      data,
      target: k,
      settings,
      seed: a.seed,
      signal: a.signal,
      onStep: (epoch, b, batches, loss) => {
        const now = performance.now();
        if (now - lastReport > 250 || b === batches - 1) {
          lastReport = now;
          emit({ type: 'step', phase: DETECT_PHASE, epoch: k * epochs + epoch + 1, step: b + 1, steps, loss });
        }
      },
    });
    triggers.push(t);
    const how = t.reached
      ? `success ${t.success.toFixed(1)}%`
      : `never reached ${settings.attackSuccThreshold}% (last epoch ${t.success.toFixed(1)}%), last mask kept`;
    emit({
      type: 'log',
      message: `Neural Cleanse: class ${a.className(k)}: L1 ${t.l1.toFixed(2)}, ${how}, ${t.epochsRun} epochs${t.earlyStopped ? ' (early stop)' : ''}, cost ${t.finalCost.toExponential(2)}, ${t.seconds.toFixed(1)} s`,
    });
  }
  const l1 = triggers.map((t) => t.l1);
  return {
    triggers,
    l1,
    anomalyIndex: anomalyIndices(l1),
    flagged: flaggedClasses(l1, a.threshold),
    stats: l1Statistics(l1),
    seconds: (performance.now() - t0) / 1000,
  };
}

const fmt = (v: number, digits = 2): string => (Number.isFinite(v) ? v.toFixed(digits) : String(v));

function emitFindings(emit: EventSink, d: DetectionResult, threshold: number, className: (k: number) => string): void {
  // Signed, so the bars above the threshold line are exactly the flagged classes: positive for triggers
  // smaller than the median, negative for larger ones.
  const signed = d.l1.map((l1, k) => (l1 <= d.stats.median ? d.anomalyIndex[k] : -d.anomalyIndex[k]));
  emit({
    type: 'chart',
    id: 'anomaly-index',
    title: 'Anomaly index per class (positive: trigger smaller than the median)',
    xLabel: 'class',
    yLabel: 'anomaly index',
    chart: {
      kind: 'bar',
      labels: d.l1.map((_, k) => className(k)),
      series: [{ name: 'anomaly index', values: signed.map((v) => (Number.isFinite(v) ? v : Math.sign(v) * 1e6)) }],
    },
    threshold: { value: threshold, label: `flagged above ${threshold}` },
  });
  const facts: Fact[] = [
    {
      label: 'Flagged classes',
      value: d.flagged.length
        ? d.flagged.map((f) => `${className(f.class)} (anomaly index ${fmt(f.anomalyIndex)}, L1 ${fmt(f.l1, 1)})`).join(', ')
        : 'none: no backdoor detected',
    },
    { label: 'Median L1', value: fmt(d.stats.median, 1) },
    { label: 'MAD x 1.4826', value: fmt(d.stats.mad, 2) },
    { label: 'Threshold', value: `anomaly index > ${threshold} with L1 below the median` },
  ];
  const missed = d.triggers.filter((t) => !t.reached).map((t) => className(t.target));
  if (missed.length) facts.push({ label: 'Success threshold not reached', value: missed.join(', ') });
  facts.push({ label: 'Reverse engineering', value: `${d.seconds.toFixed(0)} s` });
  emit({ type: 'facts', title: 'Neural Cleanse', facts });
}

export const neuralCleanse: Defense = {
  name: 'neural-cleanse',
  title: 'Neural Cleanse',
  description:
    'Reverse-engineer the smallest trigger for every class, flag classes whose trigger is an outlier (anomaly index > 2), and unlearn the flagged triggers.',
  needs: 'clean data (BackdoorBench: 5% of the training set)',
  citation:
    'Wang, Yao, Shan, Li, Viswanath, Zheng, Zhao: Neural Cleanse: Identifying and Mitigating Backdoor Attacks in Neural Networks, IEEE S&P 2019 (bolunwang/backdoor); defaults of BackdoorBench defense/nc.py (Wu et al., NeurIPS 2022 Datasets and Benchmarks)',
  modes: ['detect', 'repair'],
  params: [
    {
      key: 'ncEpochs',
      type: 'number',
      integer: true,
      min: 1,
      default: NC_DEFAULTS.epochs,
      label: 'Reverse-engineering epochs',
      description: 'epochs over the clean data per class, at most (BackdoorBench nc_epoch: 80)',
    },
    {
      key: 'ncBatchSize',
      type: 'number',
      integer: true,
      min: 1,
      default: NC_DEFAULTS.batchSize,
      label: 'Batch size',
      description: "images per step of the trigger's optimisation (BackdoorBench: 256; the authors: 32)",
    },
    {
      key: 'initCost',
      type: 'number',
      min: 0,
      default: NC_DEFAULTS.initCost,
      label: 'Initial cost',
      description: "initial weight of the mask's L1 norm in the loss (both codes: 1e-3)",
    },
    {
      key: 'maskLr',
      type: 'number',
      min: 0,
      default: NC_DEFAULTS.lr,
      label: 'Learning rate',
      description: "Adam's learning rate for the mask and pattern, betas (0.5, 0.9) (both codes: 0.1)",
    },
    {
      key: 'costMultiplier',
      type: 'number',
      min: 1,
      default: NC_DEFAULTS.costMultiplier,
      label: 'Cost multiplier',
      description:
        'the cost is multiplied by this after `patience` successful epochs, divided by its 1.5th power after as many failed ones (BackdoorBench: 2)',
    },
    {
      key: 'patience',
      type: 'number',
      integer: true,
      min: 1,
      default: NC_DEFAULTS.patience,
      label: 'Cost patience',
      description: 'epochs in a row above (below) the success threshold before the cost goes up (down) (BackdoorBench: 5)',
    },
    {
      key: 'attackSuccThreshold',
      type: 'number',
      min: 0,
      max: 100,
      default: NC_DEFAULTS.attackSuccThreshold,
      label: 'Attack success threshold (%)',
      description: 'a trigger counts when this share of the stamped clean images goes to its class (BackdoorBench: 98; the authors: 99)',
    },
    {
      key: 'earlyStopPatience',
      type: 'number',
      integer: true,
      min: 1,
      default: NC_DEFAULTS.earlyStopPatience,
      label: 'Early-stop patience',
      description:
        'stop a class after this many epochs without a 1% smaller successful mask, once the cost went up and down (BackdoorBench: 25)',
    },
    {
      key: 'anomalyThreshold',
      type: 'number',
      min: 0,
      default: 2,
      label: 'Anomaly index threshold',
      description: 'a class is flagged when its anomaly index exceeds this and its trigger is below the median (the paper: 2)',
    },
    {
      key: 'unlearningRatio',
      type: 'number',
      min: 0,
      max: 1,
      default: 0.2,
      label: 'Unlearning share',
      description:
        'share of the clean data stamped with the recovered trigger, true labels kept, for unlearning (the paper and BackdoorBench: 0.2)',
    },
  ],
  training: FINETUNE_TRAINING,
  phases: (params, training, mode) => [
    // Per class: the run's own phase event gives classes x ncEpochs (the class count comes from the data).
    { phase: DETECT_PHASE, epochs: params['ncEpochs'] as number },
    ...(mode === 'repair' ? [{ phase: UNLEARN_PHASE, epochs: training.epochs }] : []),
  ],
  async run(input) {
    const { params, test, emit, clean } = input;
    const threshold = params['anomalyThreshold'] as number;
    const ratio = params['unlearningRatio'] as number;
    if (clean.numClasses < 3) {
      throw new InputError(
        `Neural Cleanse compares the triggers of all classes: it needs at least 3 classes, the data has ${clean.numClasses}`,
      );
    }
    if (clean.count < 2) throw new InputError(`Neural Cleanse needs clean images to reverse-engineer triggers on; got ${clean.count}`);
    if (input.mode === 'repair' && !(ratio > 0 && ratio < 1)) {
      throw new InputError(`unlearningRatio must be between 0 and 1 (exclusive) to unlearn, got ${ratio}`);
    }
    const className = (k: number): string => clean.classNames?.[k] ?? String(k);
    const backdoored = input.suspect();
    const rows: ResultRow[] = [{ model: 'backdoored', ...evaluate(backdoored, test) }];
    emit({ type: 'table', rows: [...rows] });

    const detection = await detectBackdoor({
      model: backdoored,
      data: clean,
      settings: reverseSettingsOf(params, input.training),
      threshold,
      seed: input.seed,
      emit,
      signal: input.signal,
      className,
    });
    const flaggedSet = new Set(detection.flagged.map((f) => f.class));
    emitFindings(emit, detection, threshold, className);
    emit({
      type: 'images',
      id: 'triggers',
      title: 'Recovered triggers (flagged classes outlined)',
      images: triggerImages(detection.triggers, clean, flaggedSet, className),
    });
    const report = {
      l1: detection.l1,
      anomalyIndex: detection.anomalyIndex,
      flagged: detection.flagged,
      median: detection.stats.median,
      mad: detection.stats.mad,
      reached: detection.triggers.map((t) => t.reached),
      epochsRun: detection.triggers.map((t) => t.epochsRun),
      secondsPerClass: detection.triggers.map((t) => Math.round(t.seconds * 10) / 10),
      // Best L1 after each epoch (null before the threshold was reached): what fewer epochs would have found.
      l1ByEpoch: detection.triggers.map((t) => t.l1ByEpoch.map((v) => (Number.isFinite(v) ? Math.round(v * 1000) / 1000 : null))),
      detectionSeconds: detection.seconds,
      threshold,
    };
    if (input.mode === 'detect') {
      return { rows, report, attention: [['backdoored', backdoored]] };
    }

    if (detection.flagged.length === 0) {
      emit({ type: 'log', message: 'Neural Cleanse: no class flagged, so nothing to unlearn: the model is returned unchanged' });
      rows.push({ ...rows[0], model: 'nc-unchanged' });
      emit({ type: 'table', rows: [...rows] });
      return { model: backdoored, rows, report: { ...report, unlearned: false }, attention: [['backdoored', backdoored]] };
    }
    const used = detection.flagged.map((f) => detection.triggers[f.class]);
    const { data, stamped } = unlearningSet(clean, used, ratio, input.seed);
    emit({
      type: 'log',
      message: `Neural Cleanse: unlearning the trigger of class ${used.map((t) => className(t.target)).join(', ')} on ${data.count} images (${stamped} stamped, true labels kept)`,
    });
    const model = input.suspect();
    const r = await input.trainPhase({
      student: model,
      data,
      settings: input.training,
      phase: UNLEARN_PHASE,
      label: `Unlearning the recovered trigger on ${data.count} images (${stamped} stamped)`,
      output: 'model',
      attentionAs: 'nc-unlearned',
    });
    rows.push({ model: 'nc-unlearned', ...r });
    emit({ type: 'table', rows: [...rows] });
    return {
      model,
      rows,
      report: { ...report, unlearned: true, unlearnedClasses: used.map((t) => t.target), unlearningImages: data.count, stamped },
      attention: [
        ['backdoored', backdoored],
        ['nc-unlearned', model],
      ],
    };
  },
};
