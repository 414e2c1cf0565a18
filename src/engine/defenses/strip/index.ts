// STRIP (Gao, Xu, Wang, Chen, Ranasinghe, Nepal: "STRIP: A Defence Against Trojan Attacks on Deep Neural
// Networks", ACSAC 2019; the authors' garrisongys/STRIP), detection only, as BackdoorBench's STRIP class
// does it (SCLBD/BackdoorBench detection_infer/strip.py and detection_pretrain/strip.py, from
// Unispac/Fight-Poison-With-Poison):
//  - Superimposing: an input x and a clean image o, both as the model reads them (floats in [0, 1]; NAD's
//    WRN has no normalisation layer), give x + alpha * o, not clipped (BackdoorBench's `_input1 + alpha *
//    _input2`, on its normalised tensors). The paper's notebook adds x + o (cv2.addWeighted(x, 1, o, 1, 0)
//    on float32 in [0, 1], not clipped either), i.e. alpha 1.
//  - Overlays: N distinct images of the defender's clean data per input, drawn from a seeded Rng for
//    each input (BackdoorBench: one random.shuffle per batch of 128 inputs, its first N; the notebook: N
//    with replacement per input). A clean image scored for the threshold may be drawn as its own overlay,
//    as in BackdoorBench.
//  - Entropy: softmax of the logits in evaluation mode, p + 1e-8, H = -sum p ln p (BackdoorBench; the
//    notebook uses log2 and no 1e-8), computed in float64 from the logits; the score is H's mean over the
//    N overlays. Low entropy = triggered (the trigger keeps winning whatever is superimposed).
//  - Threshold: the entropies of `thresholdCount` of the defender's clean images, sorted, at index
//    floor(frr * n); an input is flagged when its entropy is below it (BackdoorBench's threshold_low; the
//    notebook fits a normal distribution and takes its 1% quantile).
// Defaults: the and BackdoorBench's STRIP class defaults N = 64, alpha = 0.5, defense_fpr = 0.05
// (its runner passes N = 100, alpha = 1, defense_fpr = 0.1; the paper N = 100, alpha 1, FRR 1%).
// The test sets are only scored for the report: FRR = clean test images flagged, FAR = triggered
// non-target test images not flagged, TPR = 1 - FAR, and the ROC AUC of low entropy as the score.
// Modules: entropy.ts (overlays, entropies, threshold), inspect.ts (single images), report.ts (ROC, histograms).
import { EVAL_BATCH, evaluate } from '../../evaluate';
import { FINETUNE_TRAINING } from '../../schedules';
import { InputError } from '../../types';
import type { Defense } from '../types';
import { STRIP_DEFAULTS, streamSeed, stripEntropies, stripThreshold, subsetOf } from './entropy';
import { inspectedFigure } from './inspect';
import { entropyHistograms, entropyStats, pct, rocAuc, rocCurve, thresholdPosition } from './report';

export { drawOverlays, entropyOfLogits, STRIP_DEFAULTS, stripEntropies, stripThreshold, thresholdAt } from './entropy';
export type { StripOptions, ThresholdOptions } from './entropy';
export { stripImage, type StripVerdict } from './inspect';
export { entropyHistograms, entropyStats, rocAuc, rocCurve, thresholdPosition, type EntropyStats } from './report';

export const strip: Defense = {
  name: 'strip',
  title: 'STRIP',
  description:
    'Flag inputs whose prediction stays confident (low entropy) when clean images are superimposed on them; reports FRR, FAR and ROC AUC on the test sets.',
  needs: 'clean data (at least as many images as overlays)',
  citation:
    'Gao, Xu, Wang, Chen, Ranasinghe, Nepal: STRIP: A Defence Against Trojan Attacks on Deep Neural Networks, ACSAC 2019; defaults of BackdoorBench detection_infer/strip.py (Wu et al., NeurIPS 2022 Datasets and Benchmarks)',
  modes: ['detect'],
  inspectsImages: true,
  params: [
    {
      key: 'overlays',
      type: 'number',
      integer: true,
      min: 1,
      default: STRIP_DEFAULTS.overlays,
      label: 'Overlays per image',
      description: 'clean images superimposed on each input, N (BackdoorBench: 64; the paper: 100)',
    },
    {
      key: 'alpha',
      type: 'number',
      min: 0,
      default: STRIP_DEFAULTS.alpha,
      label: 'Overlay weight',
      description: 'the superimposed image is input + alpha * clean image, not clipped (BackdoorBench: 0.5; the paper: 1)',
    },
    {
      key: 'frr',
      type: 'number',
      min: 0,
      max: 0.5,
      default: STRIP_DEFAULTS.frr,
      label: 'False rejection rate',
      description: "share of the defender's clean images below the entropy threshold (BackdoorBench defense_fpr: 0.05; the paper: 0.01)",
    },
    {
      key: 'thresholdCount',
      type: 'number',
      integer: true,
      min: 1,
      default: STRIP_DEFAULTS.thresholdCount,
      label: 'Clean images for the threshold',
      description: "how many of the defender's clean images are scored to set the threshold (a seeded subset; all when fewer)",
    },
    {
      key: 'detectCount',
      type: 'number',
      integer: true,
      min: 0,
      default: STRIP_DEFAULTS.detectCount,
      label: 'Test images scored',
      description:
        'how many clean and how many triggered test images are scored for FRR, FAR and AUC (seeded subsets; all when fewer; 0: none, to check given images only)',
    },
  ],
  training: FINETUNE_TRAINING,
  phases: () => [],
  async run(input) {
    const { params, test, emit, signal, clean } = input;
    const n = params['overlays'] as number;
    const alpha = params['alpha'] as number;
    const frr = params['frr'] as number;
    const detectCount = params['detectCount'] as number;
    if (clean.count < n) {
      throw new InputError(`STRIP needs at least ${n} clean images to superimpose (${n} per input); the clean data has ${clean.count}`);
    }
    const suspect = input.suspect();
    const rows = [{ model: 'backdoored', ...evaluate(suspect, test) }];
    emit({ type: 'table', rows: [...rows] });

    const thresholdCount = Math.min(clean.count, params['thresholdCount'] as number);
    const cleanTest = subsetOf(test.clean, detectCount, streamSeed(input.seed, 3));
    const triggeredTest = test.backdoor ? subsetOf(test.backdoor, detectCount, streamSeed(input.seed, 4)) : undefined;
    const inspect = input.inspect;
    const images = thresholdCount + cleanTest.count + (triggeredTest?.count ?? 0) + (inspect?.images.count ?? 0);
    const total = images * n;
    const steps = Math.ceil(total / EVAL_BATCH);
    emit({ type: 'phase', phase: 'strip', label: `STRIP: ${images} images x ${n} overlays`, epochs: 1 });
    const t0 = performance.now();
    let before = 0;
    // One progress bar over the three sets; a step event's loss has no meaning here (NaN).
    const onBatch = (done: number): void =>
      emit({ type: 'step', phase: 'strip', epoch: 1, step: Math.ceil((before + done) / EVAL_BATCH), steps });
    const opts = { overlays: n, alpha, signal, onBatch };
    const scored = async (what: string, count: number, score: () => Promise<Float64Array>): Promise<Float64Array> => {
      const t = performance.now();
      const e = await score();
      before += count * n;
      emit({ type: 'log', message: `STRIP: entropies of ${count} ${what} in ${((performance.now() - t) / 1000).toFixed(1)} s` });
      return e;
    };
    let threshold = NaN;
    const defender = await scored("of the defender's clean images", thresholdCount, async () => {
      const r = await stripThreshold(suspect, clean, { ...opts, frr, thresholdCount, seed: input.seed });
      threshold = r.threshold;
      return r.entropies;
    });
    emit({ type: 'log', message: `STRIP: entropy threshold ${threshold.toPrecision(4)} (FRR ${frr} on ${thresholdCount} clean images)` });
    const none = new Float64Array(0);
    // The images the user asked about first (stream 7, as stripImage): their verdicts come before the test sets' statistics.
    const inspected = inspect
      ? await scored('given images', inspect.images.count, () =>
          stripEntropies(suspect, inspect.images, clean, { ...opts, seed: streamSeed(input.seed, 7) }),
        )
      : none;
    const cleanE =
      cleanTest.count > 0
        ? await scored('clean test images', cleanTest.count, () =>
            stripEntropies(suspect, cleanTest, clean, { ...opts, seed: streamSeed(input.seed, 5) }),
          )
        : none;
    const trigE =
      triggeredTest && triggeredTest.count > 0
        ? await scored('triggered test images', triggeredTest.count, () =>
            stripEntropies(suspect, triggeredTest, clean, { ...opts, seed: streamSeed(input.seed, 6) }),
          )
        : none;
    const seconds = (performance.now() - t0) / 1000;

    // Flagged: entropy below the threshold. FRR, FAR and TPR in percent, as ACC and ASR.
    const flaggedClean = cleanE.filter((v) => v < threshold).length;
    const missed = trigE.filter((v) => v >= threshold).length;
    const frrTest = cleanE.length ? (100 * flaggedClean) / cleanE.length : NaN;
    const far = trigE.length ? (100 * missed) / trigE.length : NaN;
    const tpr = 100 - far;
    const auc = rocAuc(cleanE, trigE);
    const verdicts = inspect
      ? inspect.names.map((name, i) => ({ file: name, entropy: inspected[i], triggered: inspected[i] < threshold }))
      : [];
    if (inspect) emit({ type: 'images', ...inspectedFigure(inspect, verdicts, threshold) });
    const verdictFacts = verdicts.slice(0, 10).map((v) => ({
      label: v.file,
      value: `${v.triggered ? 'likely triggered' : 'looks clean'} (entropy ${v.entropy.toPrecision(3)} ${v.triggered ? '<' : '>='} ${threshold.toPrecision(3)})`,
    }));
    const tested = cleanE.length + trigE.length > 0;
    emit({
      type: 'facts',
      title: 'STRIP detection',
      facts: [
        ...verdictFacts,
        {
          label: 'Threshold',
          value: `entropy ${threshold.toPrecision(4)} (${(100 * frr).toFixed(1)}% of ${thresholdCount} clean images below)`,
        },
        ...(tested
          ? [
              { label: 'FRR', value: `${pct(frrTest)} (${flaggedClean} of ${cleanE.length} clean test images flagged)` },
              { label: 'FAR', value: `${pct(far)} (${missed} of ${trigE.length} triggered test images not flagged)` },
              { label: 'TPR', value: pct(tpr) },
              { label: 'ROC AUC', value: Number.isFinite(auc) ? auc.toFixed(4) : 'n/a' },
            ]
          : []),
      ],
    });
    if (tested)
      emit({
        type: 'chart',
        id: 'strip-entropy',
        title: `Entropy over ${n} overlays: clean vs triggered test images`,
        xLabel: 'mean entropy (nats)',
        yLabel: '% of images',
        chart: entropyHistograms(
          [
            { name: 'clean', values: cleanE },
            { name: 'triggered', values: trigE },
          ],
          threshold,
        ),
        // The threshold is a bin edge of the histograms: a vertical line there.
        threshold: { value: thresholdPosition([cleanE, trigE], threshold), label: `threshold ${threshold.toPrecision(3)}`, axis: 'x' },
      });
    if (trigE.length > 0 && cleanE.length > 0) {
      emit({
        type: 'chart',
        id: 'strip-roc',
        title: `ROC of low entropy as the trigger score (AUC ${auc.toFixed(3)})`,
        xLabel: 'clean images flagged (FPR %)',
        yLabel: 'triggered images flagged (TPR %)',
        chart: { kind: 'xy', series: [{ name: 'ROC', points: rocCurve(cleanE, trigE) }] },
      });
    }
    emit({
      type: 'log',
      message: `STRIP: FRR ${pct(frrTest)}, FAR ${pct(far)}, ROC AUC ${auc.toFixed(4)} (${seconds.toFixed(1)} s, ${(total / seconds).toFixed(0)} images/s)`,
    });
    return {
      rows,
      report: {
        threshold,
        frr: frrTest,
        far,
        tpr,
        auc,
        n,
        alpha,
        frrTarget: frr,
        counts: { thresholdImages: thresholdCount, overlayPool: clean.count, clean: cleanE.length, triggered: trigE.length },
        entropy: {
          defender: entropyStats(defender),
          clean: entropyStats(cleanE),
          ...(trigE.length ? { triggered: entropyStats(trigE) } : {}),
        },
        ...(inspect ? { inspected: verdicts } : {}),
        seconds,
      },
      attention: [['backdoored', suspect]],
    };
  },
};
