// The attack interface: every attack (BadNets, Blend, SIG, Trojan, ...) is one module that declares
// its name, its parameters with defaults, how it poisons a training set, and the trigger it stamps on
// a test image. The CLI's `nad train --attack` flags, the Train wizard's questions and the run's config
// come from these declarations (see docs/adding-an-attack.md).
import type { ParamSpec, ParamValues } from '../params';
import type { TrainingHook } from '../train';
import type { PoisonedDataset } from '../triggers';
import type { TargetType, TriggerSpec } from '../triggers/spec';
import type { ImageDataset, ModelSpec } from '../types';
import type { EventSink } from '../../shared/run-events';

export interface PoisonRequest {
  readonly train: ImageDataset;
  /** Every declared parameter, defaults applied and checked. */
  readonly params: ParamValues;
  readonly targetType: TargetType;
  readonly targetLabel: number;
  /** Share of the training set drawn for poisoning. */
  readonly injectPortion: number;
  readonly seed: number;
  /** The architecture the run trains, for attacks that train a surrogate (CL); absent = the data's default. */
  readonly model?: ModelSpec;
  readonly signal?: AbortSignal;
  readonly emit?: EventSink;
  /** A folder the attack may keep files in (the run folder): what it trains, for the test-time trigger. */
  readonly outputDir?: string;
}

/** What an attack trains along with the model (the input-aware generator); the caller disposes it after training. */
export interface AttackTraining extends TrainingHook {
  dispose(): void;
}

/** The poisoned training set, and for an attack that also poisons while the model trains, its hook. */
export interface AttackPoisoning extends PoisonedDataset {
  readonly training?: AttackTraining;
  /**
   * For an attack that poisons anew every epoch (WaNet with warpPerEpoch): the training set of epoch e (0-based),
   * drawn from the run's seed and e, so that a resumed run draws what an uninterrupted one did; epoch 0's is the
   * poisoned set itself. The training loop calls it at the start of each epoch.
   */
  readonly epochData?: (epoch: number) => PoisonedDataset;
}

/** The run a test-time trigger is made for, when it depends on more than the parameters (Refool's default reflections). */
export interface TriggerContext {
  /** The training data path, as the run's config gives it. */
  readonly data: string;
  readonly targetLabel: number;
}

/** What an attack declares, as data (`nad attacks --json`, dist/attacks.json for the wizard). */
export type AttackInfo = Omit<Attack, 'trigger' | 'poison'>;

export interface Attack {
  /** Registry key and CLI name (`nad train --attack <name>`). */
  readonly name: string;
  readonly title: string;
  /** One line for the wizard's pick and `nad attacks`. */
  readonly description: string;
  /** The paper, and BackdoorBench where its defaults are used. */
  readonly citation: string;
  /** Poison-label attacks relabel what they poison; clean-label attacks keep the labels. */
  readonly labels: 'poison' | 'clean';
  readonly params: readonly ParamSpec[];
  readonly defaults: { readonly targetType: TargetType; readonly injectPortion: number };
  /** The trigger these parameters stamp on a test image: ASR is measured with it, and the run's config records it. */
  trigger(params: ParamValues, context?: TriggerContext): TriggerSpec;
  poison(request: PoisonRequest): Promise<AttackPoisoning>;
}
