// Neural Attention Distillation (Li et al., ICLR 2021): finetune a teacher on the clean data (or take a
// given one), then finetune the backdoored student with cross-entropy plus beta_i * the distance of
// its attention maps from the teacher's, per residual group.
import * as tf from '@tensorflow/tfjs-core';
import { attentionSnapshot } from '../attention-snapshot';
import { evaluate } from '../evaluate';
import { describeSpec, type Model } from '../models';
import { NAD_TRAINING, FINETUNE_TRAINING } from '../schedules';
import type { TrainSettings } from '../train';
import { InputError } from '../types';
import type { Defense, ParamValues } from './types';

const teacherSchedule = (params: ParamValues, training: TrainSettings, given?: TrainSettings): TrainSettings =>
  given ?? { ...training, epochs: params['teacherEpochs'] as number, betas: training.betas.map(() => 0) };

export const nad: Defense = {
  name: 'nad',
  title: 'Neural Attention Distillation',
  description: "Distil a finetuned teacher's attention maps into the backdoored model (the paper's method).",
  needs: 'clean data (the paper: 5%), and a teacher model or the epochs to finetune one',
  citation: 'Li, Lyu, Koren, Lyu, Li, Ma: Neural Attention Distillation, ICLR 2021 (bboylyg/NAD)',
  modes: ['repair'],
  params: [
    {
      key: 'teacher',
      type: 'modelFile',
      default: '',
      label: 'Teacher model',
      description: 'a finetuned teacher; without one, it is finetuned from the student on the clean data first',
    },
    {
      key: 'teacherEpochs',
      type: 'number',
      integer: true,
      min: 1,
      default: FINETUNE_TRAINING.epochs,
      label: 'Teacher epochs',
      description: `epochs of finetuning the teacher when none is given (the paper: ${FINETUNE_TRAINING.epochs})`,
    },
  ],
  training: NAD_TRAINING,
  phases: (params, training) => [
    ...(params['teacher'] ? [] : [{ phase: 'teacher', epochs: params['teacherEpochs'] as number }]),
    { phase: 'nad', epochs: training.epochs },
  ],
  async run(input) {
    const { params, test, samples, emit } = input;
    const backdoored = input.suspect();
    const rows = [{ model: 'backdoored', ...evaluate(backdoored, test, input.memo) }];
    emit({ type: 'table', rows: [...rows] });
    let teacher: Model;
    const teacherFile = params['teacher'] as string;
    if (teacherFile) {
      teacher = await input.loadModel(teacherFile);
      if (teacher.spec.arch !== backdoored.spec.arch)
        emit({ type: 'log', message: `teacher is ${describeSpec(teacher.spec)}, student ${describeSpec(backdoored.spec)}` });
      rows.push({ model: 'teacher', ...evaluate(teacher, test) });
    } else {
      teacher = input.suspect();
      const settings = teacherSchedule(params, input.training, input.teacherTraining);
      const r = await input.trainPhase({
        student: teacher,
        data: input.clean,
        settings,
        phase: 'teacher',
        label: 'Finetuning the teacher',
        output: 'teacher',
        attentionAs: 'teacher',
      });
      rows.push({ model: 'teacher', ...r });
    }
    emit({ type: 'table', rows: [...rows] });
    checkAttentionSizes(backdoored, teacher, input.clean, teacherFile);
    emit({ type: 'attention', snapshot: attentionSnapshot('teacher', teacher, samples, 0) });
    emit({ type: 'attention', snapshot: attentionSnapshot('backdoored', backdoored, samples, 0) });
    const student = input.suspect();
    const r = await input.trainPhase({
      student,
      teacher,
      data: input.clean,
      settings: input.training,
      phase: 'nad',
      label: 'Neural Attention Distillation',
      output: 'model',
      attentionAs: 'erased',
    });
    rows.push({ model: 'erased', ...r });
    emit({ type: 'table', rows: [...rows] });
    return {
      model: student,
      rows,
      attention: [
        ['backdoored', backdoored],
        ['teacher', teacher],
        ['erased', student],
      ],
    };
  },
};

/** Distillation compares maps position by position: the teacher's must have the student's sizes. */
function checkAttentionSizes(
  student: Model,
  teacher: Model,
  data: { height: number; width: number; channels: number },
  teacherFile: string,
): void {
  const mismatch = tf.tidy(() => {
    const probe = tf.zeros([1, data.height, data.width, data.channels]) as tf.Tensor4D;
    const gs = student.forward(probe, false).groups;
    const gt = teacher.forward(probe, false).groups;
    return gs.some((g, i) => g.shape[1] !== gt[i]?.shape[1] || g.shape[2] !== gt[i]?.shape[2]);
  });
  if (mismatch)
    throw new InputError(
      `the teacher's attention maps do not have the student's sizes (${describeSpec(teacher.spec)} vs ${describeSpec(student.spec)})`,
      teacherFile || undefined,
    );
}
