// SIG (Barni et al. 2019): a horizontal sinusoidal signal on the image, clean-label: only images of the
// target class carry it in training, and keep their labels. Variants: the seed's plant_sin_trigger
// (0.2 img + 0.8 pattern), the additive signal, and the NAD paper's signalTrigger (a stored sine mask).
//
// Which images (`sigPick`). `targetClass`, the default, is BackdoorBench's rule (attack/sig.py calls
// utils/backdoor_generate_poison_index.py with clean_label=True): the poisoning ratio p counts against the
// WHOLE training set, and round(p * N) images (Python's round: halves to even) are drawn without
// replacement from the target class (np.random.choice(np.where(targets == tlabel)[0], ...)); here a seeded
// permutation of the target-class indices, its first round(p * N). When round(p * N) exceeds the class,
// BackdoorBench's np.random.choice raises; here the whole class is poisoned and a log line says so.
// `datasetBD` is the NAD paper's DatasetBD (and this module's rule before BackdoorBench's): floor(p * N)
// images drawn from the whole set, of which only the target-class ones are stamped, about p / classes of
// the data. With target type all2one or all2all (not SIG's own), DatasetBD's rule applies either way.
import { poisonTrainingSet, createTrigger, type PoisonedDataset } from '../triggers';
import { PAPER_DEFAULTS } from '../triggers/spec';
import { Rng } from '../rng';
import { InputError, type ImageDataset } from '../types';
import type { ParamValues } from '../params';
import type { EventSink } from '../../shared/run-events';
import type { Attack, PoisonRequest } from './types';

const VARIANTS = { blend: 'sig', additive: 'sigAdditive', signal: 'signalTrigger' } as const;
export const SIG_PICKS = ['targetClass', 'datasetBD'] as const;

/** Python 3's round() of a float to an integer: halves go to the even neighbour. */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

function sigTrigger(p: ParamValues): ReturnType<Attack['trigger']> {
  const name = VARIANTS[p['sigVariant'] as keyof typeof VARIANTS];
  if (name === 'signalTrigger') return { name, alpha: p['sigAlpha'] as number };
  const wave = { delta: p['sigDelta'] as number, frequency: p['sigFrequency'] as number };
  return name === 'sig' ? { name, alpha: p['sigAlpha'] as number, ...wave } : { name, ...wave };
}

/**
 * BackdoorBench's clean-label picks: round(portion * N) target-class images (all of them when the class is
 * smaller), ascending; seeded.
 */
export function sigTargetClassPicks(
  labels: ArrayLike<number>,
  count: number,
  targetLabel: number,
  injectPortion: number,
  seed: number,
  emit?: EventSink,
): Int32Array {
  const candidates = new Rng(seed).permutation(count).filter((i) => labels[i] === targetLabel);
  const wanted = roundHalfEven(injectPortion * count);
  if (wanted > candidates.length)
    emit?.({
      type: 'log',
      message: `SIG: ${wanted} poisoned images asked for, class ${targetLabel} has ${candidates.length}: all of them`,
    });
  return Int32Array.from(candidates.subarray(0, Math.min(wanted, candidates.length))).sort();
}

async function poisonSig(req: PoisonRequest): Promise<PoisonedDataset> {
  const { train: ds, params, targetType, targetLabel, injectPortion, seed, emit } = req;
  const trigger = sigTrigger(params);
  if (targetType !== 'cleanLabel' || params['sigPick'] === 'datasetBD')
    return poisonTrainingSet(ds, { trigger, targetType, targetLabel, injectPortion, seed });
  if (!Number.isInteger(targetLabel) || targetLabel < 0 || targetLabel >= ds.numClasses)
    throw new InputError(`target label ${targetLabel} is out of range for ${ds.numClasses} classes (0..${ds.numClasses - 1})`);
  if (!(injectPortion >= 0 && injectPortion <= 1)) throw new InputError(`inject portion must be in [0, 1], got ${injectPortion}`);
  return stampPicks(ds, createTrigger(trigger, ds), sigTargetClassPicks(ds.labels, ds.count, targetLabel, injectPortion, seed, emit));
}

function stampPicks(ds: ImageDataset, trigger: ReturnType<typeof createTrigger>, picks: Int32Array): PoisonedDataset {
  const size = ds.height * ds.width * ds.channels;
  const images = ds.images.slice(0, ds.count * size);
  for (const i of picks) trigger.stamp(images.subarray(i * size, (i + 1) * size));
  return { ...ds, images, labels: ds.labels.slice(0, ds.count), poisonedIndices: picks, originalLabels: ds.labels.slice(0, ds.count) };
}

export const sig: Attack = {
  name: 'sig',
  title: 'SIG',
  description: 'A sinusoidal signal over the image on target-class images only; labels are kept (clean-label).',
  citation:
    "Barni, Kallas, Tondi: A New Backdoor Attack in CNNs by Training Set Corruption Without Label Poisoning, ICIP 2019; BackdoorBench's clean-label share (round(p * N) target-class images)",
  labels: 'clean',
  params: [
    {
      key: 'sigVariant',
      type: 'choice',
      choices: Object.keys(VARIANTS),
      default: 'blend',
      label: 'Variant',
      description:
        "blend: (1-alpha) img + alpha' signal as plant_sin_trigger; additive: img + signal; signal: the NAD paper's signalTrigger mask",
    },
    {
      key: 'sigAlpha',
      type: 'number',
      min: 0,
      max: 1,
      default: PAPER_DEFAULTS.alpha,
      label: 'Image weight',
      description: 'weight of the image in the blend variant, and of the mask in signal (0.2)',
    },
    {
      key: 'sigDelta',
      type: 'number',
      min: 0,
      default: PAPER_DEFAULTS.sigDelta,
      label: 'Amplitude',
      description: 'amplitude of the signal, delta (20; the additive variant of the paper: 40)',
    },
    {
      key: 'sigFrequency',
      type: 'number',
      min: 0.001,
      default: PAPER_DEFAULTS.sigFrequency,
      label: 'Frequency',
      description: 'periods across the image width, f (6)',
    },
    {
      key: 'sigPick',
      type: 'choice',
      choices: SIG_PICKS,
      default: 'targetClass',
      label: 'Poisoned share',
      description:
        "targetClass: round(p * N) images of the target class, p of the whole set (BackdoorBench); datasetBD: the NAD paper's DatasetBD, p * N drawn from all, only target-class ones stamped (about p / classes)",
    },
  ],
  defaults: { targetType: 'cleanLabel', injectPortion: PAPER_DEFAULTS.injectPortion },
  trigger: sigTrigger,
  poison: poisonSig,
};
