// Every defense the product offers. Adding one: a module in this folder and one line here; the CLI
// (`nad defend <name>`), the "NAD: Defend Model…" wizard, the ETA and the run panel pick it up.
import { anp } from './anp';
import { clp } from './clp';
import { finePruning } from './fine-pruning';
import { finetune } from './finetune';
import { iBau } from './i-bau';
import { mcr } from './mcr';
import { nad } from './nad';
import { neuralCleanse } from './neural-cleanse';
import { strip } from './strip';
import type { Defense } from './types';

export const DEFENSES: readonly Defense[] = [nad, finetune, finePruning, mcr, clp, neuralCleanse, strip, iBau, anp];

export function defenseNamed(name: string): Defense | undefined {
  return DEFENSES.find((d) => d.name === name);
}

export type {
  Defense,
  DefenseInfo,
  DefenseInput,
  DefenseMode,
  DefenseOutput,
  ParamSpec,
  ParamValue,
  ParamValues,
  PhaseRequest,
  TrainPhase,
} from './types';
