// Blend (Chen et al. 2017): a pattern blended into the whole image, x' = (1 - alpha) x + alpha p,
// poison-label. The pattern is seeded noise shared by every image (or fresh noise per image).
import { PAPER_DEFAULTS } from '../triggers/spec';
import { stampAttack } from './stamp-attack';

export const blend = stampAttack({
  name: 'blend',
  title: 'Blend',
  description: 'A noise pattern blended into the whole image; poisoned images are relabelled to the target.',
  citation:
    'Chen, Liu, Li, Lu, Song: Targeted Backdoor Attacks on Deep Learning Systems Using Data Poisoning, 2017; BackdoorBench (alpha 0.2)',
  labels: 'poison',
  params: [
    {
      key: 'blendAlpha',
      type: 'number',
      min: 0,
      max: 1,
      default: PAPER_DEFAULTS.alpha,
      label: 'Blend weight',
      description: 'weight of the pattern, alpha (BackdoorBench: 0.2 for training and test)',
    },
    {
      key: 'blendPattern',
      type: 'choice',
      choices: ['noise', 'randomPixel'],
      default: 'noise',
      label: 'Pattern',
      description: "noise: one seeded pattern for every image; randomPixel: fresh noise per image (the paper's randomPixelTrigger)",
    },
    {
      key: 'patternSeed',
      type: 'number',
      integer: true,
      min: 0,
      default: 0,
      label: 'Pattern seed',
      description: 'seed of the noise pattern (noise only)',
    },
  ],
  defaults: { targetType: 'all2one', injectPortion: PAPER_DEFAULTS.injectPortion },
  trigger: (p) =>
    p['blendPattern'] === 'randomPixel'
      ? { name: 'randomPixelTrigger', alpha: p['blendAlpha'] as number }
      : { name: 'blend', alpha: p['blendAlpha'] as number, patternSeed: p['patternSeed'] as number },
});
