// Every attack the product offers. Adding one: a module in this folder and one line here; `nad train
// --attack <name>`, its flags and the Train wizard pick it up.
import { badnets } from './badnets';
import { blend } from './blend';
import { cl } from './cl';
import { inputAware } from './input-aware';
import { refool } from './refool';
import { sig } from './sig';
import { trojan } from './trojan';
import { wanet } from './wanet';
import type { Attack } from './types';

export const ATTACKS: readonly Attack[] = [badnets, blend, sig, trojan, wanet, cl, refool, inputAware];

export function attackNamed(name: string): Attack | undefined {
  return ATTACKS.find((a) => a.name === name);
}

export type { Attack, AttackInfo, AttackPoisoning, PoisonRequest } from './types';
