// Parsing of the CLI's flags into the engine's plain configs (the same configs a run folder stores).
import { Option, type Command } from 'commander';
import { BACKEND_PREFERENCES, type BackendPreference } from '../engine/backend';
import { DEFAULT_BACKDOOR, type BackdoorConfig } from '../runs/config';
import type { TrainSettings } from '../engine/train';
import type { TrainingChanges } from '../runs/data-defaults';
import { parseTargetType, type TriggerSpec } from '../engine/triggers/spec';
import { InputError } from '../engine/types';
import { addExecutorOptions } from './executor';

export interface CommonFlags {
  backend: string;
  seed: string;
  json?: boolean;
  quiet?: boolean;
  runsDir?: string;
  name?: string;
}

export function addCommon(cmd: Command): Command {
  return addExecutorOptions(
    cmd
      .addOption(new Option('--backend <name>', 'TensorFlow.js backend').choices(BACKEND_PREFERENCES as string[]).default('auto'))
      .option('--seed <n>', 'random seed (data order, augmentation, subsets, init)', '0')
      .option('--runs-dir <dir>', 'where run folders go (default: ./.nad/runs)')
      .option('--name <name>', 'a name for the run folder')
      .option('--json', 'print the result as one JSON object on stdout')
      .option('-q, --quiet', 'no progress output'),
  );
}

export function addBackdoor(cmd: Command, train: boolean): Command {
  cmd
    .option(
      '--trigger <name>',
      'trigger: gridTrigger|squareTrigger|fourCornerTrigger|randomPixelTrigger|signalTrigger|trojanTrigger|blend|sig|sigAdditive|warp|lcCheckerboard|inputAware (short: grid, square, ...)',
      'gridTrigger',
    )
    .option('--target <label>', 'target label of the backdoor', String(DEFAULT_BACKDOOR.targetLabel))
    .option('--target-type <type>', 'all2one | all2all | cleanLabel', DEFAULT_BACKDOOR.targetType)
    .option('--trigger-size <n>', 'squareTrigger side (trig_w = trig_h)')
    .option('--trigger-distance <n>', 'squareTrigger distance from the border')
    .option(
      '--trigger-mask <file>',
      'mask/pattern file for signal, trojan and blend triggers (.npy/.npz/.png); inputAware: trigger.safetensors of the run that trained it',
    )
    .option('--trigger-alpha <a>', 'blend weight for randomPixel, signal, blend and sig');
  if (train) cmd.option('--inject-portion <p>', 'share of training images poisoned', String(DEFAULT_BACKDOOR.injectPortion));
  return cmd;
}

/**
 * The schedule flags. `perData`: the defaults depend on the data's kind (src/runs/data-defaults.ts), so
 * the flags have none of their own and only those given reach the config (`trainingChangesOf`).
 */
export function addTraining(cmd: Command, defaults: TrainSettings, withBetas: boolean, perData = false): Command {
  if (perData) return addScheduleChanges(cmd, defaults, withBetas);
  cmd
    .option('--epochs <n>', 'epochs', String(defaults.epochs))
    .option('--batch-size <n>', 'batch size', String(defaults.batchSize))
    .option('--lr <lr>', 'initial learning rate (later steps of the schedule unchanged)')
    .option(
      '--lr-schedule <steps>',
      `learning-rate steps "epoch:lr,..." (default ${defaults.lrSchedule.map(([e, l]) => `${e}:${l}`).join(',')})`,
    )
    .option('--momentum <m>', 'SGD momentum', String(defaults.momentum))
    .option('--weight-decay <wd>', 'weight decay', String(defaults.weightDecay))
    .option(
      defaults.augment ? '--no-augment' : '--augment',
      defaults.augment ? 'disable crop/flip/cutout augmentation' : 'enable crop/flip/cutout augmentation',
    )
    .option('--no-hflip', 'leave the horizontal flip out of the augmentation (for digits and text)')
    .option('--augment-rotation <deg>', ROTATION_HELP);
  if (withBetas)
    cmd
      .option('--betas <b1,b2,b3>', 'attention distillation weights per residual group', defaults.betas.join(','))
      .option('--p <p>', 'attention map power', String(defaults.attentionPower));
  return cmd;
}

const PER_DATA = 'per kind of data, docs/defaults.md';
const ROTATION_HELP = 'with --augment, also rotate half the images by up to this many degrees (WaNet trains with 10; default 0)';
const rotationOf = (f: Flags): number | undefined =>
  typeof f.augmentRotation === 'string' ? num(f.augmentRotation, '--augment-rotation', { min: 0, max: 180 }) : undefined;

function addScheduleChanges(cmd: Command, paper: TrainSettings, withBetas: boolean): Command {
  cmd
    .option('--epochs <n>', `epochs (default ${PER_DATA}; the paper: ${paper.epochs})`)
    .option('--batch-size <n>', `batch size (default ${PER_DATA}; the paper: ${paper.batchSize})`)
    .option('--lr <lr>', 'initial learning rate (later steps of the schedule unchanged)')
    .option(
      '--lr-schedule <steps>',
      `learning-rate steps "epoch:lr,..." (default ${PER_DATA}; the paper: ${paper.lrSchedule.map(([e, l]) => `${e}:${l}`).join(',')})`,
    )
    .option('--momentum <m>', `SGD momentum (the paper: ${paper.momentum})`)
    .option('--weight-decay <wd>', `weight decay (the paper: ${paper.weightDecay})`)
    .option('--augment', `crop/flip/cutout augmentation (default ${PER_DATA}; the paper: ${paper.augment ? 'on' : 'off'})`)
    .option('--no-augment', 'no crop/flip/cutout augmentation')
    .option('--no-hflip', 'leave the horizontal flip out of the augmentation (for digits and text)')
    .option('--augment-rotation <deg>', ROTATION_HELP);
  if (withBetas)
    cmd
      .option('--betas <b1,b2,b3>', `attention distillation weights per residual group (the paper: ${paper.betas.join(',')})`)
      .option('--p <p>', `attention map power (the paper: ${paper.attentionPower})`);
  return cmd;
}

/** The schedule flags given (nothing else): the data's kind fills in the rest when the run starts. */
export function trainingChangesOf(f: Flags, seed: number): TrainingChanges {
  const s = (k: string): string | undefined => (typeof f[k] === 'string' ? (f[k] as string) : undefined);
  const given = <T>(k: string, parse: (v: string) => T): T | undefined => (s(k) === undefined ? undefined : parse(s(k) as string));
  const changes: Record<string, unknown> = {
    epochs: given('epochs', (v) => num(v, '--epochs', { int: true, min: 1 })),
    batchSize: given('batchSize', (v) => num(v, '--batch-size', { int: true, min: 2 })),
    lrSchedule: given('lrSchedule', lrScheduleOf),
    lr: given('lr', (v) => num(v, '--lr', { min: 0 })),
    momentum: given('momentum', (v) => num(v, '--momentum', { min: 0, max: 0.999 })),
    weightDecay: given('weightDecay', (v) => num(v, '--weight-decay', { min: 0 })),
    augment: typeof f.augment === 'boolean' ? f.augment : undefined,
    // Always recorded, as before per-kind defaults: a colour run's config.json stays what it was.
    hflip: f.hflip !== false,
    rotation: rotationOf(f),
    betas: given('betas', (v) => v.split(',').map((b) => num(b, '--betas', { min: 0 }))),
    attentionPower: given('p', (v) => num(v, '--p', { min: 0 })),
    seed,
  };
  return Object.fromEntries(Object.entries(changes).filter(([, v]) => v !== undefined)) as TrainingChanges;
}

/** `nad erase`'s two schedules: the flags but --epochs and --betas apply to the teacher's finetuning too. */
export function eraseSchedulesOf(f: Flags, seed: number): { teacherTraining: TrainingChanges; training: TrainingChanges } {
  const training = trainingChangesOf(f, seed);
  const { epochs: _nadEpochs, betas: _nadBetas, ...shared } = training;
  const teacherEpochs = typeof f.teacherEpochs === 'string' ? num(f.teacherEpochs, '--teacher-epochs', { int: true, min: 1 }) : undefined;
  return { teacherTraining: { ...shared, betas: [0, 0, 0], ...(teacherEpochs !== undefined ? { epochs: teacherEpochs } : {}) }, training };
}

function lrScheduleOf(value: string): Array<[number, number]> {
  const schedule = value.split(',').map((part): [number, number] => {
    const [e, l] = part.split(':');
    return [num(e, '--lr-schedule epoch', { int: true, min: 0 }), num(l, '--lr-schedule lr', { min: 0 })];
  });
  return schedule.sort((a, b) => a[0] - b[0]);
}

export function num(value: string | undefined, flag: string, opts: { int?: boolean; min?: number; max?: number } = {}): number {
  const v = Number(value);
  if (value === undefined || value.trim() === '' || !Number.isFinite(v) || (opts.int && !Number.isInteger(v))) {
    throw new InputError(`${flag} must be ${opts.int ? 'a whole number' : 'a number'}, got '${value}'`);
  }
  if (opts.min !== undefined && v < opts.min) throw new InputError(`${flag} must be >= ${opts.min}, got ${v}`);
  if (opts.max !== undefined && v > opts.max) throw new InputError(`${flag} must be <= ${opts.max}, got ${v}`);
  return v;
}

export function backendOf(f: CommonFlags): BackendPreference {
  return f.backend as BackendPreference;
}

type Flags = Record<string, string | boolean | undefined>;

export function backdoorOf(f: Flags): BackdoorConfig {
  const s = (k: string): string | undefined => (typeof f[k] === 'string' ? (f[k] as string) : undefined);
  const trigger: TriggerSpec = {
    name: s('trigger') ?? 'gridTrigger',
    ...(s('triggerSize') ? { size: num(s('triggerSize'), '--trigger-size', { int: true, min: 1 }) } : {}),
    ...(s('triggerDistance') ? { distance: num(s('triggerDistance'), '--trigger-distance', { int: true, min: 0 }) } : {}),
    ...(s('triggerMask') ? { maskFile: s('triggerMask') } : {}),
    ...(s('triggerAlpha') ? { alpha: num(s('triggerAlpha'), '--trigger-alpha', { min: 0, max: 1 }) } : {}),
  };
  return {
    trigger,
    targetType: parseTargetType(s('targetType') ?? 'all2one'),
    targetLabel: num(s('target'), '--target', { int: true, min: 0 }),
    injectPortion: s('injectPortion') ? num(s('injectPortion'), '--inject-portion', { min: 0, max: 1 }) : DEFAULT_BACKDOOR.injectPortion,
  };
}

export function trainingOf(f: Flags, defaults: TrainSettings, seed: number): TrainSettings {
  const s = (k: string): string | undefined => (typeof f[k] === 'string' ? (f[k] as string) : undefined);
  let schedule: Array<[number, number]> = defaults.lrSchedule.map(([e, l]) => [e, l]);
  if (s('lrSchedule')) schedule = lrScheduleOf(s('lrSchedule') as string);
  if (s('lr')) schedule[0] = [schedule[0][0], num(s('lr'), '--lr', { min: 0 })];
  const betas = s('betas') ? (s('betas') as string).split(',').map((b) => num(b, '--betas', { min: 0 })) : defaults.betas;
  return {
    epochs: num(s('epochs'), '--epochs', { int: true, min: 1 }),
    batchSize: num(s('batchSize'), '--batch-size', { int: true, min: 2 }),
    lrSchedule: schedule,
    momentum: num(s('momentum') ?? String(defaults.momentum), '--momentum', { min: 0, max: 0.999 }),
    weightDecay: num(s('weightDecay') ?? String(defaults.weightDecay), '--weight-decay', { min: 0 }),
    nesterov: defaults.nesterov,
    augment: typeof f.augment === 'boolean' ? f.augment : defaults.augment,
    hflip: f.hflip !== false,
    ...(rotationOf(f) === undefined ? {} : { rotation: rotationOf(f) }),
    betas,
    attentionPower: s('p') ? num(s('p'), '--p', { min: 0 }) : defaults.attentionPower,
    seed,
  };
}

export function cleanOf(f: Flags): { cleanCount?: number; cleanRatio?: number } {
  const count = typeof f.cleanCount === 'string' ? num(f.cleanCount, '--clean-count', { int: true, min: 1 }) : undefined;
  const ratio = typeof f.cleanRatio === 'string' ? num(f.cleanRatio, '--clean-ratio', { min: 0, max: 1 }) : undefined;
  return { ...(count !== undefined ? { cleanCount: count } : {}), ...(ratio !== undefined ? { cleanRatio: ratio } : {}) };
}

/** The data of a defense (finetune, erase, defend): --data, a clean subset of it, and the test data. */
export function addCleanData(cmd: Command, dataHelp = 'clean data'): Command {
  return cmd
    .requiredOption('--data <path>', dataHelp)
    .option('--clean-count <n>', 'use a random subset of n images')
    .option('--clean-ratio <r>', 'use a random share of the images (the paper: 0.05)')
    .option('--test <path>', 'test data for ACC/ASR (default: the test split of --data)');
}

/** The job fields those flags give. */
export function cleanDataOf(f: Flags): { data: string; test: string; cleanCount?: number; cleanRatio?: number } {
  return { data: f.data as string, ...cleanOf(f), test: (f.test as string) ?? (f.data as string) };
}
