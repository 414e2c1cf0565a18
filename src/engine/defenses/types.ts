// The defense interface: every defense (NAD, finetuning, Fine-Pruning, ...) is one module that declares
// its name, what it needs, its parameters with defaults, its phases, and a `run` over plain inputs.
// The CLI's options, the wizard's questions, the ETA and the run panel all come from these declarations
// (see docs/adding-a-defense.md). A defense never sees run folders or processes: the run layer hands
// it a `trainPhase` that saves, resumes and reports each epoch.
import type { AttentionSamples } from '../attention-snapshot';
import type { EvalResult, EvalSets } from '../evaluate';
import type { Model } from '../models';
import type { TrainSettings, TrainingHook } from '../train';
import type { ImageDataset } from '../types';
import type { EventSink, Phase, ResultRow } from '../../shared/run-events';
import type { ParamSpec, ParamValues } from '../params';
import type { PredictionMemo } from '../prediction-memo';

export type { ParamSpec, ParamValue, ParamValues } from '../params';

/** A training phase the run layer runs for a defense: epochs are reported, saved and resumable. */
export interface PhaseRequest {
  readonly student: Model;
  /** With a teacher and non-zero betas the loss adds attention distillation (NAD). */
  readonly teacher?: Model;
  readonly data: ImageDataset;
  readonly settings: TrainSettings;
  readonly phase: Phase;
  readonly label: string;
  /** Which model file of the run the epochs are saved to. */
  readonly output: 'teacher' | 'model';
  /** Name of the attention snapshot sent after each epoch (e.g. `erased`); none when absent. */
  readonly attentionAs?: string;
  /** Called after every optimiser step (e.g. Fine-Pruning holding pruned weights at 0). */
  readonly afterStep?: () => void;
  /** An attack trained along with the model (the input-aware generator), called per batch (TrainingHook). */
  readonly hook?: TrainingHook;
  /** The training set of each epoch, when an attack poisons anew every epoch (TrainArgs.epochData). */
  readonly epochData?: (epoch: number) => ImageDataset;
}

export type TrainPhase = (request: PhaseRequest) => Promise<EvalResult>;

/**
 * `repair` returns a repaired model (`nad defend`); `detect` only reports whether, and where, the model or its
 * inputs are backdoored (`nad detect`). Neural Cleanse does both: detection, then unlearning.
 */
export type DefenseMode = 'repair' | 'detect';

export interface DefenseInput {
  /** What the run asks for: one of the defense's `modes`. In `detect` mode nothing is trained or saved. */
  readonly mode: DefenseMode;
  /** A fresh copy of the suspect (backdoored) model on each call; the run layer disposes them all. */
  readonly suspect: () => Model;
  /** Loads a model file a parameter names (checked against the data); disposed by the run layer. */
  readonly loadModel: (file: string) => Promise<Model>;
  /** The defender's clean data. */
  readonly clean: ImageDataset;
  /**
   * Images the user asks about one by one ("is this image triggered?"), in the model's input shape, each
   * named (a file name) in `names`; only detectors that score inputs (STRIP) use them.
   */
  readonly inspect?: { readonly names: readonly string[]; readonly images: ImageDataset };
  /** Test sets for the ACC/ASR the defense reports (never used to make a decision). */
  readonly test: EvalSets;
  /** Images whose attention maps are shown. */
  readonly samples: AttentionSamples;
  /** The finetuning schedule. */
  readonly training: TrainSettings;
  /** The schedule of a teacher finetuned first (NAD), when the config gives one. */
  readonly teacherTraining?: TrainSettings;
  /** Every declared parameter, defaults applied and checked. */
  readonly params: ParamValues;
  readonly seed: number;
  readonly emit: EventSink;
  readonly signal?: AbortSignal;
  readonly trainPhase: TrainPhase;
  /** Predictions already made in this run or matrix (see PredictionMemo), for the plain models a defense evaluates. */
  readonly memo?: PredictionMemo;
}

export interface DefenseOutput {
  /** The repaired model (repair mode; none in detect mode); the run layer saves it as model/model.safetensors. */
  readonly model?: Model;
  /** The ACC/ASR table, first row the suspect model as given (its only row in detect mode). */
  readonly rows: readonly ResultRow[];
  /** Method-specific results (pruned channels, chosen t, flagged classes...): JSON, in --json and results.json. */
  readonly report?: Readonly<Record<string, unknown>>;
  /** Models whose final attention maps are stored, by name. */
  readonly attention: ReadonlyArray<readonly [string, Model]>;
}

/** What a defense declares, as data (`nad defenses --json`, dist/defenses.json for the wizard). */
export type DefenseInfo = Omit<Defense, 'phases' | 'run'>;

export interface Defense {
  /** Registry key and CLI name (`nad defend <name>`). */
  readonly name: string;
  readonly title: string;
  /** One line for the wizard's pick and `nad defend --help`. */
  readonly description: string;
  /** What data and models it needs, one line. */
  readonly needs: string;
  /** The paper, and BackdoorBench where its defaults are used. */
  readonly citation: string;
  /** What it offers: `repair` (nad defend), `detect` (nad detect), or both. */
  readonly modes: readonly DefenseMode[];
  /** Whether its detection scores images the user gives one by one (`inspect`: "is this image triggered?"). */
  readonly inspectsImages?: boolean;
  readonly params: readonly ParamSpec[];
  /** Default finetuning schedule (the CLI's --epochs, --lr... start from it). */
  readonly training: TrainSettings;
  /** The training phases it will run in `mode`, in order, for the ETA and the panel. */
  phases(
    params: ParamValues,
    training: TrainSettings,
    mode: DefenseMode,
  ): ReadonlyArray<{ readonly phase: Phase; readonly epochs: number }>;
  run(input: DefenseInput): Promise<DefenseOutput>;
}
