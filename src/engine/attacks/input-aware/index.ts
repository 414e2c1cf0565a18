// The input-aware dynamic backdoor attack (Nguyen & Tran, "Input-Aware Dynamic Backdoor Attack", NeurIPS
// 2020; the authors' code VinAIResearch/input-aware-backdoor-attack-release, and BackdoorBench's
// attack/inputaware.py, whose defaults these are where they differ): every image gets its own trigger,
// x + m(x) * (G(x) - x), from a pattern generator G and a mask generator M (encoder-decoders,
// src/engine/models/input-aware-generator.ts). Poisoning happens while the model trains, not before:
//   1. M is trained alone for `inputAwareMaskEpochs` epochs (mask.ts: mask diversity and a norm penalty
//      towards `inputAwareMaskDensity` of the pixels), then frozen;
//   2. G and the classifier train together (joint.ts, a TrainingHook the training loop calls per batch): in
//      each batch the run's injectPortion (BackdoorBench's pratio, the paper's p_attack, 0.1) gets its own
//      trigger and the target label, `inputAwareCross` (p_cross, 0.1) gets another image's trigger and keeps
//      its label, and G's diversity loss (lambda_div 1) keeps different images' triggers apart.
// The test-time trigger is `inputAware`: G and M in evaluation mode on each test image, stored as uint8 by
// truncation (BackdoorBench's bd_test). The networks are saved after every epoch to trigger.safetensors in
// the run folder (`outputDir`), which trigger.json names, so that eval, defenses and matrix cells stamp the
// same triggers; a resumed run picks them up from there instead of training M again (G's Adam state
// restarts).
// Defaults: BackdoorBench's default.yaml / cifar10.yaml (the authors' config.py): lr_G = lr_M = 0.01, Adam
// betas (0.5, 0.9), lambda_div 1, lambda_norm 100, mask_density 0.032, 25 mask epochs, mask batch 128,
// all2one (its target 0; ours the run's). p_cross: the authors' 0.1; BackdoorBench sets num_cross = num_bd,
// the same at pratio 0.1. How this differs: the classifier follows the run's schedule (our backdoor
// schedule: SGD lr 0.1, no augmentation) where BackdoorBench uses lr_C 0.01 and random crop, rotation and
// flip; colour images use CIFAR-10's normalisation whatever the data set, grey ones 0.5 / 0.5.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeSafetensors, parseSafetensors } from '../../checkpoint/safetensors';
import { writeFileAtomic } from '../../checkpoint/file';
import {
  createInputAwareNets,
  generatorConfigFor,
  inputAwareNetsFrom,
  inputAwareStateDict,
  type InputAwareNets,
} from '../../models/input-aware-generator';
import { Rng } from '../../rng';
import { PAPER_DEFAULTS, type TriggerSpec } from '../../triggers/spec';
import { InputError } from '../../types';
import type { ParamValues } from '../../params';
import type { Attack, AttackPoisoning, PoisonRequest } from '../types';
import { INPUT_AWARE, trainMask } from './mask';
import { jointTraining } from './joint';

/** The file in the run folder that holds the trained generators (trigger.json names it). */
export const INPUT_AWARE_FILE = 'trigger.safetensors';

/** The declared trigger: the generator file comes from the run that trains it (trigger.json), so none yet. */
function declaredTrigger(_p: ParamValues): TriggerSpec {
  return { name: 'inputAware', maskFile: '' };
}

/** Save both networks (with the epoch they were saved after) atomically. */
export async function saveInputAwareNets(file: string, nets: InputAwareNets, epoch: number): Promise<void> {
  const { stateDict, metadata } = inputAwareStateDict(nets);
  await writeFileAtomic(file, [encodeSafetensors(stateDict, { ...metadata, epoch: String(epoch) })]);
}

async function poisonInputAware(req: PoisonRequest): Promise<AttackPoisoning> {
  const { train: ds, params: p, targetType, targetLabel, injectPortion, seed, signal, emit } = req;
  if (targetType === 'cleanLabel')
    throw new InputError('the input-aware attack relabels the images it triggers: its target type is all2one or all2all, not cleanLabel');
  if (!Number.isInteger(targetLabel) || targetLabel < 0 || targetLabel >= ds.numClasses)
    throw new InputError(`target label ${targetLabel} is out of range for ${ds.numClasses} classes (0..${ds.numClasses - 1})`);
  if (!(injectPortion >= 0 && injectPortion <= 1)) throw new InputError(`inject portion must be in [0, 1], got ${injectPortion}`);
  const pCross = p['inputAwareCross'] as number;
  if (injectPortion + pCross > 1)
    throw new InputError(`inject portion (${injectPortion}) plus inputAwareCross (${pCross}) must not exceed 1: they share each batch`);
  const cfg = generatorConfigFor(ds); // InputError on shapes the generator cannot take

  const dir = req.outputDir ?? join(tmpdir(), 'nad-input-aware');
  mkdirSync(dir, { recursive: true });
  const file = req.outputDir ? join(dir, INPUT_AWARE_FILE) : join(dir, `preview-${process.pid}-${seed}.safetensors`);
  const rng = new Rng(seed);
  const netSeed = rng.nextUint32();
  const maskSeed = rng.nextUint32();
  const jointSeed = rng.nextUint32();
  let nets: InputAwareNets;
  if (req.outputDir && existsSync(file)) {
    // A resumed run: the networks as saved after its last epoch.
    const saved = parseSafetensors(readFileSync(file), file);
    nets = inputAwareNetsFrom(saved.stateDict, saved.metadata, file);
    emit?.({ type: 'log', message: `Input-aware: generators read from ${file} (saved after epoch ${saved.metadata['epoch'] ?? '?'})` });
  } else {
    nets = createInputAwareNets(cfg, new Rng(netSeed));
    try {
      await trainMask(nets, ds, {
        epochs: p['inputAwareMaskEpochs'] as number,
        lr: p['inputAwareLrM'] as number,
        batchSize: INPUT_AWARE.batchSize,
        lambdaDiv: p['inputAwareLambdaDiv'] as number,
        lambdaNorm: p['inputAwareLambdaNorm'] as number,
        maskDensity: p['inputAwareMaskDensity'] as number,
        seed: maskSeed,
        signal,
        emit,
      });
      await saveInputAwareNets(file, nets, 0);
    } catch (e) {
      nets.dispose();
      throw e;
    }
  }
  const training = jointTraining(nets, ds, {
    pAttack: injectPortion,
    pCross,
    lambdaDiv: p['inputAwareLambdaDiv'] as number,
    lrG: p['inputAwareLrG'] as number,
    targetType,
    targetLabel,
    seed: jointSeed,
    onEpochEnd: (n, epoch) => saveInputAwareNets(file, n, epoch),
  });
  emit?.({
    type: 'log',
    message:
      `Input-aware: in every batch int(${injectPortion} n) images get their own trigger and label ${targetType === 'all2one' ? targetLabel : 'label + 1'}, ` +
      `int(${pCross} n) get another image's trigger and keep their labels; generators in ${file}`,
  });
  return {
    ...ds,
    images: ds.images,
    labels: ds.labels,
    poisonedIndices: new Int32Array(0),
    originalLabels: ds.labels,
    trigger: { name: 'inputAware', maskFile: file },
    training,
  };
}

export const inputAware: Attack = {
  name: 'input-aware',
  title: 'Input-aware',
  description:
    'A trigger per image from a trained generator and mask generator (dynamic); triggered images relabelled, cross-triggered ones keep their labels.',
  citation:
    'Nguyen, Tran: Input-Aware Dynamic Backdoor Attack, NeurIPS 2020; BackdoorBench (lr_G 0.01, lambda_div 1, lambda_norm 100, mask_density 0.032, 25 mask epochs)',
  labels: 'poison',
  params: [
    {
      key: 'inputAwareCross',
      type: 'number',
      min: 0,
      max: 1,
      default: INPUT_AWARE.pCross,
      label: 'Cross-trigger share',
      description: "share of each batch given another image's trigger with its own label kept, p_cross (0.1)",
    },
    {
      key: 'inputAwareLambdaDiv',
      type: 'number',
      min: 0,
      default: INPUT_AWARE.lambdaDiv,
      label: 'Diversity weight',
      description: 'weight of the diversity loss that keeps the triggers of different images apart, lambda_div (1)',
    },
    {
      key: 'inputAwareLambdaNorm',
      type: 'number',
      min: 0,
      default: INPUT_AWARE.lambdaNorm,
      label: 'Mask norm weight',
      description: 'weight of the penalty on mask values above the density while the mask generator trains, lambda_norm (100)',
    },
    {
      key: 'inputAwareMaskDensity',
      type: 'number',
      min: 0,
      max: 1,
      default: INPUT_AWARE.maskDensity,
      label: 'Mask density',
      description: 'mask values above this are penalised while training the mask generator, mask_density (0.032)',
    },
    {
      key: 'inputAwareMaskEpochs',
      type: 'number',
      integer: true,
      min: 0,
      default: INPUT_AWARE.maskEpochs,
      label: 'Mask epochs',
      description: `epochs of training the mask generator alone before the model (BackdoorBench: ${INPUT_AWARE.maskEpochs})`,
    },
    {
      key: 'inputAwareLrG',
      type: 'number',
      min: 0,
      default: INPUT_AWARE.lrG,
      label: 'Generator learning rate',
      description: 'Adam learning rate of the trigger generator, lr_G (0.01; x0.1 at epochs 200, 300, 400, 500)',
    },
    {
      key: 'inputAwareLrM',
      type: 'number',
      min: 0,
      default: INPUT_AWARE.lrM,
      label: 'Mask learning rate',
      description: 'Adam learning rate of the mask generator, lr_M (0.01; x0.1 at epochs 10 and 20)',
    },
  ],
  defaults: { targetType: 'all2one', injectPortion: PAPER_DEFAULTS.injectPortion },
  trigger: declaredTrigger,
  poison: poisonInputAware,
};
