// Trojan (Liu, Ma, Aafer, Lee, Zhai, Wang, Zhang: "Trojaning Attack on Neural Networks", NDSS 2018,
// TrojanNN), poison-label: a watermark patch added to the image, images relabelled to the target.
//
// `fixed` (the default): the NAD paper's trojanTrigger, its stored best_square_trigger_cifar10.npz (rows
// and columns 25-27) added to the image. `optimised`: TrojanNN's trigger generation as BackdoorBench's
// attack/trojannn.py runs it (trojan-optimise.ts): on a clean model (the user's `trojanModel` file, or one
// of the run's architecture trained first for `trojanEpochs` epochs, as CL's surrogate: surrogate.ts), pick
// the `trojanNeurons` neurons of the last hidden layer most connected to the classifier, then optimise the
// mask's non-zero pixels by signed gradient steps so that those neurons reach `trojanTarget` (squared
// error), within `trojanEps` of the mask; BackdoorBench's defaults (config/attack/trojannn/
// preactresnet18.yaml: num_neuron 2, neuron_target_values 100, mask_update_iters 1000; alpha 0.1, eps 0.3).
// The mask is the paper's trojan square (or the user's `trojanMaskFile`) over 255, where BackdoorBench
// starts from a PNG (apple4.png). The optimised trigger is then added to a seeded share of the training set
// (DatasetBD's picks, as the fixed one) and to the test images, and the run records it (the poisoned set's
// `trigger`: a trojanTrigger whose `pattern` holds the values; trigger.json in a run folder).
import { defaultSpecFor, describeSpec, type Model } from '../models';
import { Rng } from '../rng';
import { poisonTrainingSet, type PoisonedDataset, type TriggerSpec } from '../triggers';
import { trojanMask } from '../triggers/masks';
import { PAPER_DEFAULTS } from '../triggers/spec';
import type { ParamValues } from '../params';
import { loadSurrogate, trainSurrogate } from './surrogate';
import { TROJAN_NN, mostConnectedNeurons, optimiseTrojanTrigger, triggerBytes } from './trojan-optimise';
import type { Attack, PoisonRequest } from './types';

/** Epochs of the clean model when no model file is given (as CL's surrogate). */
export const TROJAN_MODEL_EPOCHS = 10;

/** The fixed trigger these parameters stamp (the optimised one starts from its mask). */
function fixedTrigger(p: ParamValues): TriggerSpec {
  const file = p['trojanMaskFile'] as string;
  return file ? { name: 'trojanTrigger', maskFile: file } : { name: 'trojanTrigger' };
}

/** The optimised trigger for `model` from `mask` (H x W x C, 0..255): neuron selection, then the optimisation; the trigger and a log line. */
export async function optimisedTrojanTrigger(
  model: Model,
  mask: Float32Array,
  req: Pick<PoisonRequest, 'train' | 'params' | 'signal' | 'emit'>,
): Promise<{ trigger: TriggerSpec; message: string }> {
  const { train: ds, params: p, signal, emit } = req;
  const shape = { height: ds.height, width: ds.width, channels: ds.channels };
  const start = mask.map((v) => Math.min(1, Math.max(0, Math.fround(v / 255))));
  const neurons = mostConnectedNeurons(model, p['trojanNeurons'] as number);
  const steps = p['trojanSteps'] as number;
  emit?.({ type: 'phase', phase: 'trojan', label: `Trojan: optimising the trigger for neurons ${neurons.join(', ')}`, epochs: 1 });
  const t0 = performance.now();
  const out = await optimiseTrojanTrigger(model, start, shape, {
    neurons,
    target: p['trojanTarget'] as number,
    steps,
    step: p['trojanStep'] as number,
    eps: p['trojanEps'] as number,
    signal,
    onStep: (step, cost) => emit?.({ type: 'step', phase: 'trojan', epoch: 1, step, steps, loss: cost }),
  });
  const pattern = Array.from(triggerBytes(out.image));
  const message =
    `Trojan: neurons ${neurons.join(', ')} of the last hidden layer (most connected to the classifier) driven to ${p['trojanTarget']}: ` +
    `cost ${out.firstCost.toFixed(2)} -> ${out.lastCost.toFixed(2)} in ${out.steps} steps, ${((performance.now() - t0) / 1000).toFixed(1)} s`;
  return { trigger: { name: 'trojanTrigger', pattern }, message };
}

async function poisonTrojan(req: PoisonRequest): Promise<PoisonedDataset> {
  const { train: ds, params: p, targetType, targetLabel, injectPortion, seed, emit } = req;
  if (p['trojanTrigger'] !== 'optimised')
    return poisonTrainingSet(ds, { trigger: fixedTrigger(p), targetType, targetLabel, injectPortion, seed });
  // The mask first: a bad mask file fails before minutes of training.
  const mask = trojanMask({ height: ds.height, width: ds.width, channels: ds.channels }, (p['trojanMaskFile'] as string) || undefined);
  const file = p['trojanModel'] as string;
  const model = file
    ? await loadSurrogate(file, ds, 'trojanModel')
    : await trainSurrogate(req, req.model ?? defaultSpecFor(ds), p['trojanEpochs'] as number, new Rng(seed).nextUint32(), 'Trojan');
  try {
    const { trigger, message } = await optimisedTrojanTrigger(model, mask, req);
    emit?.({ type: 'log', message: `${message}, on ${file ? file : `a clean ${describeSpec(model.spec)}`}` });
    return { ...poisonTrainingSet(ds, { trigger, targetType, targetLabel, injectPortion, seed }), trigger };
  } finally {
    model.dispose();
  }
}

export const trojan: Attack = {
  name: 'trojan',
  title: 'Trojan',
  description:
    "A watermark patch added to the image (the NAD paper's fixed trojan square, or TrojanNN's trigger optimised on a clean model); relabelled to the target.",
  citation:
    "Liu, Ma, Aafer, Lee, Zhai, Wang, Zhang: Trojaning Attack on Neural Networks, NDSS 2018; the NAD paper's trojanTrigger; BackdoorBench's trojannn (num_neuron 2, target 100, 1000 steps of 0.1, eps 0.3)",
  labels: 'poison',
  params: [
    {
      key: 'trojanTrigger',
      type: 'choice',
      choices: ['fixed', 'optimised'],
      default: 'fixed',
      label: 'Trigger',
      description: "fixed: the NAD paper's trojan square as stored; optimised: TrojanNN's, optimised on a clean model from that mask",
    },
    {
      key: 'trojanMaskFile',
      type: 'path',
      default: '',
      label: 'Mask file',
      description:
        "a .npy/.npz mask (values 0..255) replacing the paper's trojan square; the optimised trigger changes its non-zero values",
    },
    {
      key: 'trojanModel',
      type: 'modelFile',
      default: '',
      label: 'Model',
      description:
        'optimised: the clean model whose neurons the trigger drives (BackdoorBench: a pretrained clean model); without one, one is trained first',
    },
    {
      key: 'trojanEpochs',
      type: 'number',
      integer: true,
      min: 1,
      default: TROJAN_MODEL_EPOCHS,
      label: 'Clean model epochs',
      description: `optimised: epochs of training the clean model when no model file is given (${TROJAN_MODEL_EPOCHS})`,
    },
    {
      key: 'trojanNeurons',
      type: 'number',
      integer: true,
      min: 1,
      default: TROJAN_NN.neurons,
      label: 'Neurons',
      description: `optimised: how many neurons of the last hidden layer the trigger drives (BackdoorBench: ${TROJAN_NN.neurons})`,
    },
    {
      key: 'trojanTarget',
      type: 'number',
      default: TROJAN_NN.target,
      label: 'Target activation',
      description: `optimised: the activation the selected neurons are driven to (BackdoorBench: ${TROJAN_NN.target})`,
    },
    {
      key: 'trojanSteps',
      type: 'number',
      integer: true,
      min: 1,
      default: TROJAN_NN.steps,
      label: 'Steps',
      description: `optimised: signed-gradient steps on the trigger (BackdoorBench: ${TROJAN_NN.steps}); stops early once the error is below 1e-3`,
    },
    {
      key: 'trojanStep',
      type: 'number',
      min: 0,
      max: 1,
      default: TROJAN_NN.step,
      label: 'Step size',
      description: `optimised: step on the [0, 1] pixel scale (BackdoorBench: ${TROJAN_NN.step})`,
    },
    {
      key: 'trojanEps',
      type: 'number',
      min: 0,
      max: 1,
      default: TROJAN_NN.eps,
      label: 'Bound',
      description: `optimised: how far a pixel may move from the mask, on the [0, 1] scale (BackdoorBench: ${TROJAN_NN.eps})`,
    },
  ],
  defaults: { targetType: 'all2one', injectPortion: PAPER_DEFAULTS.injectPortion },
  trigger: fixedTrigger,
  poison: poisonTrojan,
};
