// Finetuning: train the suspect model on the clean data with augmentation (the paper's teacher, and
// its "Finetuning" baseline). NAD with all betas 0.
import { evaluate } from '../evaluate';
import { FINETUNE_TRAINING } from '../schedules';
import type { Defense } from './types';

export const finetune: Defense = {
  name: 'finetune',
  title: 'Finetuning',
  description: "Finetune the model on clean data with augmentation (the NAD teacher; the paper's baseline).",
  needs: 'clean data (the paper: 5% of the training set)',
  citation: 'Li et al., Neural Attention Distillation, ICLR 2021 (teacher finetuning); Liu et al. 2018',
  modes: ['repair'],
  params: [],
  training: FINETUNE_TRAINING,
  phases: (_params, training) => [{ phase: 'teacher', epochs: training.epochs }],
  async run(input) {
    const backdoored = input.suspect();
    const model = input.suspect();
    const before = evaluate(backdoored, input.test, input.memo);
    const r = await input.trainPhase({
      student: model,
      data: input.clean,
      settings: input.training,
      phase: 'teacher',
      label: `Finetuning on ${input.clean.count} clean images`,
      output: 'model',
      attentionAs: 'teacher',
    });
    const rows = [
      { model: 'backdoored', ...before },
      { model: 'finetuned', ...r },
    ];
    input.emit({ type: 'table', rows });
    return {
      model,
      rows,
      attention: [
        ['backdoored', backdoored],
        ['teacher', model],
      ],
    };
  },
};
