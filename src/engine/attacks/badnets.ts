// BadNets (Gu et al. 2017): a small fixed patch, poison-label. The NAD paper's gridTrigger (3x3 pattern
// in the bottom-right corner) is its default; squareTrigger and fourCornerTrigger are the paper's others.
import { PAPER_DEFAULTS } from '../triggers/spec';
import { stampAttack } from './stamp-attack';

const PATTERNS = { grid: 'gridTrigger', square: 'squareTrigger', fourCorner: 'fourCornerTrigger' } as const;

export const badnets = stampAttack({
  name: 'badnets',
  title: 'BadNets',
  description: 'A small fixed patch in a corner; poisoned images are relabelled to the target.',
  citation: "Gu, Dolan-Gavitt, Garg: BadNets, 2017; the NAD paper's DatasetBD triggers (bboylyg/NAD data_loader.py)",
  labels: 'poison',
  params: [
    {
      key: 'pattern',
      type: 'choice',
      choices: Object.keys(PATTERNS),
      default: 'grid',
      label: 'Patch',
      description: "grid (the paper's gridTrigger), square or fourCorner",
    },
    {
      key: 'patchSize',
      type: 'number',
      integer: true,
      min: 1,
      default: PAPER_DEFAULTS.size,
      label: 'Square size',
      description: 'side of the square patch in pixels (square only; the paper: 3)',
    },
    {
      key: 'patchDistance',
      type: 'number',
      integer: true,
      min: 0,
      default: PAPER_DEFAULTS.distance,
      label: 'Square distance',
      description: 'gap between the square and the bottom/right edges (square only; the paper: 1)',
    },
  ],
  defaults: { targetType: 'all2one', injectPortion: PAPER_DEFAULTS.injectPortion },
  trigger: (p) => {
    const name = PATTERNS[p['pattern'] as keyof typeof PATTERNS];
    return name === 'squareTrigger' ? { name, size: p['patchSize'] as number, distance: p['patchDistance'] as number } : { name };
  },
});
