// The attacks that stamp one trigger on a seeded share of the training set, as the NAD paper's
// DatasetBD does (data_loader.py): BadNets, Blend, SIG and Trojan differ only in their trigger.
import { poisonTrainingSet } from '../triggers';
import type { Attack } from './types';

/** An attack whose poisoning is DatasetBD's with its own trigger. */
export function stampAttack(declared: Omit<Attack, 'poison'>): Attack {
  return {
    ...declared,
    async poison({ train, params, targetType, targetLabel, injectPortion, seed }) {
      return poisonTrainingSet(train, { trigger: declared.trigger(params), targetType, targetLabel, injectPortion, seed });
    },
  };
}
