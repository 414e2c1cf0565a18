// Trojan (Liu et al. 2018, TrojanNN): a watermark patch, poison-label. Today the NAD paper's fixed trojan
// mask (best_square_trigger_cifar10.npz, added to the image); the optimised trigger is to come.
import { PAPER_DEFAULTS } from '../triggers/spec';
import { stampAttack } from './stamp-attack';

export const trojan = stampAttack({
  name: 'trojan',
  title: 'Trojan',
  description: "The NAD paper's fixed Trojan watermark (rows and columns 25-27) added to the image; relabelled to the target.",
  citation: "Liu, Ma, Aafer, Lee, Zhai, Wang, Zhang: Trojaning Attack on Neural Networks, NDSS 2018; the NAD paper's trojanTrigger",
  labels: 'poison',
  params: [],
  defaults: { targetType: 'all2one', injectPortion: PAPER_DEFAULTS.injectPortion },
  trigger: () => ({ name: 'trojanTrigger' }),
});
