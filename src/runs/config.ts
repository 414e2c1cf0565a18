// Run configurations: plain JSON saved as a run's config.json; everything needed to re-run it.
// Defaults are the paper's (bboylyg/NAD config.py, main.py, train_badnet.py), changed per kind of data
// by data-defaults.ts when a run starts.
import type { BackendPreference } from '../engine/backend';
import type { ModelSpec } from '../engine/types';
import type { ArchChoice } from '../engine/models';
import type { TrainSettings } from '../engine/train';
import type { DefenseMode, ParamValue } from '../engine/defenses/registry';
import { InputError } from '../engine/types';
import type { TargetType, TriggerSpec } from '../engine/triggers/spec';
import type { TrainingChanges } from './data-defaults';

/** How the backdoor is planted (training) and measured (ASR), in the paper's vocabulary. */
export interface BackdoorConfig {
  readonly trigger: TriggerSpec;
  readonly targetType: TargetType;
  readonly targetLabel: number;
  /** Share of training images poisoned (training only). */
  readonly injectPortion: number;
}

export interface CleanDataConfig {
  /** Dataset path, or `mnist` for the embedded digits. */
  readonly data: string;
  /** Clean subset: a number of images or a ratio (the paper: 5%). Neither = all. */
  readonly cleanCount?: number;
  readonly cleanRatio?: number;
}

interface Common {
  readonly name?: string;
  readonly backend: BackendPreference;
  readonly seed: number;
  /** Test data for ACC/ASR (path or `mnist`); its test split is used. */
  readonly test: string;
  readonly backdoor: BackdoorConfig;
  /** The matrix this run is a cell of (.nad/matrices/<id>), and which cell. */
  readonly matrix?: { readonly id: string; readonly cell: string };
}

/** An attack of the registry (src/engine/attacks/) and its parameters, as `nad train --attack` records it. */
export interface AttackChoice {
  readonly name: string;
  readonly params: Readonly<Record<string, ParamValue>>;
}

/**
 * Schedules of train, finetune and erase configs: as given, changes to the defaults of the data's kind
 * (src/runs/data-defaults.ts); as a run holds them (`RunConfig`, config.json), complete.
 */
type Schedule = TrainingChanges;

export interface TrainJobConfig<S extends Schedule = Schedule> extends Common {
  readonly kind: 'train';
  /**
   * How the training set is poisoned. Absent: DatasetBD with `backdoor.trigger` (runs made before the
   * attack registry, and `--trigger`). Present: the attack's own poisoning; `backdoor.trigger` is then
   * its test-time trigger, filled in from the attack's parameters when the run starts.
   */
  readonly attack?: AttackChoice;
  readonly data: string;
  /**
   * Architecture; `auto` = the data kind's (data-defaults.ts: WRN-16-1 for colour, WRN-10-1 for small
   * grayscale), recorded in config.json as the one chosen. Sizes come from the data.
   */
  readonly model: ArchChoice | ModelSpec;
  readonly training: S;
}

export interface FinetuneJobConfig<S extends Schedule = Schedule> extends Common, CleanDataConfig {
  readonly kind: 'finetune';
  /** Backdoored model file (PyTorch .pth/.pth.tar or our .safetensors). */
  readonly model: string;
  readonly training: S;
}

export interface EraseJobConfig<S extends Schedule = Schedule> extends Common, CleanDataConfig {
  readonly kind: 'erase';
  readonly student: string;
  /** Teacher model file; absent = finetune one from the student on the clean data first. */
  readonly teacher?: string;
  readonly teacherTraining: S;
  readonly training: S;
}

/** Any defense of the registry (src/engine/defenses/) on a suspect model. */
export interface DefendJobConfig extends Common, CleanDataConfig {
  readonly kind: 'defend';
  /** A defense's registry name: nad, finetune, fine-pruning... */
  readonly method: string;
  /** `repair` (the default: nad defend) or `detect` (nad detect: a report, no model). */
  readonly mode?: DefenseMode;
  /** The suspect (backdoored) model file. */
  readonly model: string;
  /** Changes to the defense's schedule; the run's config.json holds the complete schedule it ran. */
  readonly training: Partial<TrainSettings>;
  /** The defense's own parameters (see its `params`); missing ones take their defaults. */
  readonly params: Readonly<Record<string, ParamValue>>;
  /** PNG/JPEG files of the model's input size a detector scores one by one ("is this image triggered?"; STRIP). */
  readonly inspect?: readonly string[];
}

export interface EvalJobConfig extends Common {
  readonly kind: 'eval';
  readonly model: string;
}

export interface AttentionJobConfig extends Common {
  readonly kind: 'attention';
  readonly models: readonly string[];
  /** Number of (non-target) test images to show. */
  readonly count: number;
}

/** What config.json records for such a run. */
export interface ImageAttentionConfig {
  readonly kind: 'imageAttention';
  readonly name?: string;
  readonly backend: BackendPreference;
  /** PNG/JPEG files, all of the models' input size. */
  readonly images: readonly string[];
  /** Model files (PyTorch checkpoints or our safetensors), all taking the same input shape. */
  readonly models: readonly string[];
  /** Stamped on a copy of each image for the "triggered" maps. */
  readonly trigger: TriggerSpec;
  readonly targetType: TargetType;
  readonly targetLabel: number;
  /** Class of each image when known; -1 (or absent) = unknown, shown as such. */
  readonly labels?: readonly number[];
}

export type JobConfig<S extends Schedule = Schedule> =
  | TrainJobConfig<S>
  | FinetuneJobConfig<S>
  | EraseJobConfig<S>
  | DefendJobConfig
  | EvalJobConfig
  | AttentionJobConfig
  | ImageAttentionConfig;

/** A config as it runs and as config.json records it: every schedule complete, `auto` resolved. */
export type RunConfig = JobConfig<TrainSettings>;

export { BADNET_TRAINING, FINETUNE_TRAINING, NAD_TRAINING } from '../engine/schedules';

export const DEFAULT_BACKDOOR: BackdoorConfig = {
  trigger: { name: 'gridTrigger' },
  targetType: 'all2one',
  targetLabel: 5,
  injectPortion: 0.1,
};

/** Check values a hand-edited config or a CLI flag may get wrong; names the offending field. */
export function validateTraining(t: TrainSettings, where: string): void {
  const fail = (msg: string): never => {
    throw new InputError(`${where}: ${msg}`);
  };
  if (!Number.isInteger(t.epochs) || t.epochs < 1) fail(`epochs must be a positive integer, got ${t.epochs}`);
  if (!Number.isInteger(t.batchSize) || t.batchSize < 2) fail(`batch size must be an integer >= 2, got ${t.batchSize}`);
  if (!Array.isArray(t.lrSchedule) || t.lrSchedule.length === 0) fail('lrSchedule must be a non-empty list of [epoch, lr]');
  for (const step of t.lrSchedule) {
    if (!Array.isArray(step) || step.length !== 2 || !(step[1] > 0))
      fail(`lrSchedule entries must be [epoch, lr > 0], got ${JSON.stringify(step)}`);
  }
  if (!(t.momentum >= 0 && t.momentum < 1)) fail(`momentum must be in [0, 1), got ${t.momentum}`);
  if (!(t.weightDecay >= 0)) fail(`weight decay must be >= 0, got ${t.weightDecay}`);
  if (!Array.isArray(t.betas) || t.betas.some((b) => !(b >= 0))) fail(`betas must be non-negative numbers, got ${JSON.stringify(t.betas)}`);
  if (!(t.attentionPower > 0)) fail(`attention power p must be > 0, got ${t.attentionPower}`);
  if (t.rotation !== undefined && !(t.rotation >= 0 && t.rotation <= 180))
    fail(`rotation (largest random rotation of the augmentation, degrees) must be in 0..180, got ${t.rotation}`);
  if (t.rotation && !t.augment) fail(`rotation ${t.rotation} is part of the augmentation, which is off: turn it on (--augment)`);
  if (!Number.isInteger(t.seed)) fail(`seed must be an integer, got ${t.seed}`);
  if (t.epochEvalImages !== undefined && !(Number.isInteger(t.epochEvalImages) && t.epochEvalImages >= 1))
    fail(`epochEvalImages (test images evaluated after each epoch but the last) must be an integer >= 1, got ${t.epochEvalImages}`);
}

export function validateBackdoor(b: BackdoorConfig, numClasses: number, where: string): void {
  if (!Number.isInteger(b.targetLabel) || b.targetLabel < 0 || b.targetLabel >= numClasses) {
    throw new InputError(`${where}: target label must be an integer in 0..${numClasses - 1}, got ${b.targetLabel}`);
  }
  if (!['all2one', 'all2all', 'cleanLabel'].includes(b.targetType)) {
    throw new InputError(`${where}: target type must be all2one, all2all or cleanLabel, got ${b.targetType}`);
  }
  if (!(b.injectPortion >= 0 && b.injectPortion <= 1))
    throw new InputError(`${where}: inject portion must be in [0, 1], got ${b.injectPortion}`);
}
