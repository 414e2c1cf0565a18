// The paper's training schedules (bboylyg/NAD config.py, main.py, train_badnet.py): the defaults of
// backdoor training, teacher finetuning and NAD erasure. Defenses start their own from these.
import type { TrainSettings } from './train';

const SGD = { batchSize: 64, momentum: 0.9, weightDecay: 1e-4, nesterov: true, attentionPower: 2 } as const;

/** NAD erasure (main.py): lr 0.1, 0.01 from epoch 2, 0.0001 from epoch 20; betas 500/1000/1000; augmentation. */
export const NAD_TRAINING: TrainSettings = {
  ...SGD,
  epochs: 20,
  lrSchedule: [
    [0, 0.1],
    [2, 0.01],
    [20, 0.0001],
  ],
  augment: true,
  betas: [500, 1000, 1000],
  seed: 0,
};

/** Teacher finetuning = NAD with all betas 0, 10 epochs (the paper's setting). */
export const FINETUNE_TRAINING: TrainSettings = { ...NAD_TRAINING, epochs: 10, betas: [0, 0, 0] };

/** train_badnet.py: lr 0.1 for 20 epochs, then 0.001, then 0.0009; no augmentation. */
export const BADNET_TRAINING: TrainSettings = {
  ...SGD,
  epochs: 20,
  lrSchedule: [
    [0, 0.1],
    [20, 0.001],
    [29, 0.0009],
  ],
  augment: false,
  betas: [0, 0, 0],
  seed: 0,
};
