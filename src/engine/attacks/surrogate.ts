// The clean model an attack works against when it needs one (CL's PGD, Trojan's neuron selection and trigger
// optimisation): the user's model file, checked against the data, or a clean model of the run's architecture
// trained on the unpoisoned training data (seeded, the backdoor schedule's SGD with lr 0.1 then 0.01 for
// the last third, no augmentation), its epochs reported as log lines.
import { readCheckpoint } from '../checkpoint';
import { selectImages } from '../data';
import { createModel, modelFromStateDict, type Model } from '../models';
import { Rng } from '../rng';
import { BADNET_TRAINING } from '../schedules';
import { train, type TrainSettings } from '../train';
import { InputError, type ImageDataset, type ModelSpec } from '../types';
import type { EngineEvent } from '../../shared/run-events';
import type { PoisonRequest } from './types';

/** The surrogate's schedule: the backdoor schedule's SGD, lr 0.1 then 0.01 for the last third, no augmentation. */
export function surrogateSchedule(epochs: number, seed: number): TrainSettings {
  const drop = Math.max(1, epochs - Math.floor(epochs / 3));
  return {
    ...BADNET_TRAINING,
    epochs,
    lrSchedule: [
      [0, 0.1],
      [drop, 0.01],
    ],
    augment: false,
    seed,
  };
}

/** The user's model file, checked against the data; `param` names the parameter that gave it. */
export async function loadSurrogate(file: string, ds: ImageDataset, param: string): Promise<Model> {
  const ck = await readCheckpoint(file);
  const s = ck.spec;
  if (s.numClasses !== ds.numClasses)
    throw new InputError(`${param} has ${s.numClasses} classes but the data (${ds.source}) has ${ds.numClasses}`, file);
  if (s.inChannels !== ds.channels)
    throw new InputError(`${param} takes ${s.inChannels}-channel images but the data has ${ds.channels} channels`, file);
  if (s.arch === 'cnn' && s.imageSize !== ds.height)
    throw new InputError(`${param} takes ${s.imageSize}x${s.imageSize} images but the data has ${ds.height}x${ds.width}`, file);
  return modelFromStateDict(s, ck.stateDict, file);
}

/**
 * A clean model of `spec` trained on the unpoisoned data; step events live, epochs as log lines headed by
 * `attack` (e.g. "CL").
 */
export async function trainSurrogate(req: PoisonRequest, spec: ModelSpec, epochs: number, seed: number, attack: string): Promise<Model> {
  const { train: ds, emit } = req;
  const model = createModel(spec, seed);
  const held = selectImages(ds, new Rng(seed).permutation(ds.count).subarray(0, Math.min(1000, ds.count)));
  emit?.({ type: 'phase', phase: 'surrogate', label: `${attack}: training the clean surrogate`, epochs });
  const forward = (e: EngineEvent): void => {
    if (e.type === 'step') emit?.(e);
    else if (e.type === 'epoch')
      emit?.({
        type: 'log',
        message: `${attack} surrogate epoch ${e.epoch}/${e.epochs}: loss ${e.loss.toFixed(4)}, ACC ${e.acc.toFixed(2)}% on ${held.count} training images, ${e.seconds.toFixed(1)} s`,
      });
  };
  try {
    await train({
      student: model,
      data: ds,
      evalSets: { clean: held },
      settings: surrogateSchedule(epochs, seed),
      phase: 'surrogate',
      emit: forward,
      signal: req.signal,
    });
  } catch (e) {
    model.dispose();
    throw e;
  }
  return model;
}
