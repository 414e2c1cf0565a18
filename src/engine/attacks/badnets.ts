// BadNets (Gu et al. 2017): a small fixed patch, poison-label. The NAD paper's gridTrigger (3x3 pattern
// in the bottom-right corner) is its default; squareTrigger and fourCornerTrigger are the paper's others.
// `bbSquare` is BackdoorBench's default BadNets trigger for CIFAR-10 (config/attack/badnet/default.yaml:
// resource/badnet/trigger_image.png, made by generate_white_square.py with square_size 3 and distances 0,
// stamped by AddMaskPatchTrigger: the trigger's non-zero pixels replace the image's): a 3x3 white square
// flush with the bottom-right corner, i.e. the square trigger at distance 0. BackdoorBench resizes its
// 32x32 PNG to other image sizes (a blurred square); here the square keeps its size in pixels.
import { PAPER_DEFAULTS } from '../triggers/spec';
import { stampAttack } from './stamp-attack';

const PATTERNS = { grid: 'gridTrigger', square: 'squareTrigger', fourCorner: 'fourCornerTrigger', bbSquare: 'squareTrigger' } as const;

export const badnets = stampAttack({
  name: 'badnets',
  title: 'BadNets',
  description: 'A small fixed patch in a corner; poisoned images are relabelled to the target.',
  citation:
    "Gu, Dolan-Gavitt, Garg: BadNets, 2017; the NAD paper's DatasetBD triggers (bboylyg/NAD data_loader.py); BackdoorBench's 3x3 white square (resource/badnet)",
  labels: 'poison',
  params: [
    {
      key: 'pattern',
      type: 'choice',
      choices: Object.keys(PATTERNS),
      default: 'grid',
      label: 'Patch',
      description:
        "grid (the paper's gridTrigger), square, fourCorner, or bbSquare (BackdoorBench's default: a 3x3 white square in the bottom-right corner, distance 0)",
    },
    {
      key: 'patchSize',
      type: 'number',
      integer: true,
      min: 1,
      default: PAPER_DEFAULTS.size,
      label: 'Square size',
      description: 'side of the square patch in pixels (square and bbSquare; the paper and BackdoorBench: 3)',
    },
    {
      key: 'patchDistance',
      type: 'number',
      integer: true,
      min: 0,
      default: PAPER_DEFAULTS.distance,
      label: 'Square distance',
      description: 'gap between the square and the bottom/right edges (square only; the paper: 1; bbSquare: always 0)',
    },
  ],
  defaults: { targetType: 'all2one', injectPortion: PAPER_DEFAULTS.injectPortion },
  trigger: (p) => {
    const pattern = p['pattern'] as keyof typeof PATTERNS;
    const name = PATTERNS[pattern];
    if (pattern === 'bbSquare') return { name, size: p['patchSize'] as number, distance: 0 };
    return name === 'squareTrigger' ? { name, size: p['patchSize'] as number, distance: p['patchDistance'] as number } : { name };
  },
});
