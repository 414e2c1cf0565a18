// SIG (Barni et al. 2019): a horizontal sinusoidal signal on the image, clean-label: only images of the
// target class carry it in training, and keep their labels. Variants: the seed's plant_sin_trigger
// (0.2 img + 0.8 pattern), the additive signal, and the NAD paper's signalTrigger (a stored sine mask).
import { PAPER_DEFAULTS } from '../triggers/spec';
import { stampAttack } from './stamp-attack';

const VARIANTS = { blend: 'sig', additive: 'sigAdditive', signal: 'signalTrigger' } as const;

export const sig = stampAttack({
  name: 'sig',
  title: 'SIG',
  description: 'A sinusoidal signal over the image on target-class images only; labels are kept (clean-label).',
  citation: 'Barni, Kallas, Tondi: A New Backdoor Attack in CNNs by Training Set Corruption Without Label Poisoning, ICIP 2019',
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
  ],
  defaults: { targetType: 'cleanLabel', injectPortion: PAPER_DEFAULTS.injectPortion },
  trigger: (p) => {
    const name = VARIANTS[p['sigVariant'] as keyof typeof VARIANTS];
    if (name === 'signalTrigger') return { name, alpha: p['sigAlpha'] as number };
    const wave = { delta: p['sigDelta'] as number, frequency: p['sigFrequency'] as number };
    return name === 'sig' ? { name, alpha: p['sigAlpha'] as number, ...wave } : { name, ...wave };
  },
});
