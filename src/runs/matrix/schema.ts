// A JSON Schema of *.nad-matrix.json from the registries (`nad matrix --schema`; the build writes it to
// dist/nad-matrix.schema.json and the extension contributes it): VS Code then completes attack and
// defense names and their parameters, and shows each parameter's description on hover.
import { ATTACKS } from '../../engine/attacks/registry';
import { DEFENSES } from '../../engine/defenses/registry';
import type { ParamSpec } from '../../engine/params';
import { NO_DEFENSE } from './cells';

type Json = Record<string, unknown>;

function paramSchema(p: ParamSpec): Json {
  const base = { description: `${p.label}: ${p.description}`, default: p.default };
  switch (p.type) {
    case 'number':
      return {
        ...base,
        type: p.integer ? 'integer' : 'number',
        ...(p.min !== undefined ? { minimum: p.min } : {}),
        ...(p.max !== undefined ? { maximum: p.max } : {}),
      };
    case 'boolean':
      return { ...base, type: 'boolean' };
    case 'choice':
      return { ...base, enum: [...p.choices] };
    case 'numbers':
      return { ...base, type: 'array', items: { type: 'number', ...(p.min !== undefined ? { minimum: p.min } : {}) } };
    case 'modelFile':
    case 'path':
      return { ...base, type: 'string' };
    default: {
      const never: never = p;
      return never;
    }
  }
}

function methods(
  list: ReadonlyArray<{ name: string; title: string; description: string; params: readonly ParamSpec[] }>,
  extra: Json[],
  schedule?: Json,
): Json {
  return {
    type: 'array',
    minItems: 1,
    items: {
      anyOf: [
        ...extra,
        ...list.map((m) => ({ const: m.name, description: `${m.title}: ${m.description}` })),
        ...list.map((m) => ({
          type: 'object',
          description: `${m.title}: ${m.description}`,
          required: ['name'],
          additionalProperties: false,
          properties: {
            name: { const: m.name },
            params: {
              type: 'object',
              additionalProperties: false,
              properties: Object.fromEntries(m.params.map((p) => [p.key, paramSchema(p)])),
            },
            ...(schedule ? { training: schedule } : {}),
          },
        })),
      ],
    },
  };
}

export function matrixSchema(): Json {
  const repairs = DEFENSES.filter((d) => d.modes.includes('repair'));
  const schedule = {
    type: 'object',
    description: 'Changes to the schedule: epochs, batchSize, lrSchedule, momentum, weightDecay, augment, betas, epochEvalImages...',
    properties: {
      epochs: { type: 'integer', minimum: 1 },
      batchSize: { type: 'integer', minimum: 1 },
      augment: { type: 'boolean' },
      rotation: {
        type: 'number',
        minimum: 0,
        maximum: 180,
        description: "With augment: rotate half the images by up to this many degrees (WaNet's training augmentation: 10).",
      },
      epochEvalImages: {
        type: 'integer',
        minimum: 1,
        description:
          'ACC/ASR of the baseline and of the epochs before the last on this many test images (a fixed subset) instead of all; the last epoch, and so every table number, on all of them.',
      },
    },
  };
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: 'NAD attack x defense matrix (*.nad-matrix.json)',
    description: 'Rows: attacks; columns: defenses; each cell ACC / ASR over seeds. See docs/matrix.md.',
    type: 'object',
    additionalProperties: false,
    required: ['data'],
    properties: {
      name: { type: 'string', minLength: 1, description: "The matrix's name (folder and run names)." },
      preset: { enum: ['paper-table-1'], description: "The paper's Table 1: its attacks x none, finetuning, Fine-Pruning, MCR, NAD." },
      data: { type: 'string', minLength: 1, description: 'Training data: a path relative to this file, or "mnist" (embedded digits).' },
      test: { type: 'string', minLength: 1, description: 'Test data for ACC/ASR (its test split); defaults to data.' },
      arch: {
        description:
          "auto (WRN-16-1 for colour 32x32, the small CNN for 28x28 grayscale), cnn, BackdoorBench's CIFAR preact-resnet18, resnet18 or vgg16-bn, or a WideResNet.",
        anyOf: [
          { enum: ['auto', 'cnn', 'preact-resnet18', 'resnet18', 'vgg16-bn'] },
          {
            type: 'object',
            required: ['arch', 'depth', 'widen'],
            properties: { arch: { const: 'wrn' }, depth: { type: 'integer' }, widen: { type: 'integer', minimum: 1 } },
          },
        ],
      },
      backend: { enum: ['auto', 'tensorflow', 'native', 'wasm', 'cpu'] },
      seeds: {
        type: 'array',
        minItems: 1,
        uniqueItems: true,
        items: { type: 'integer', minimum: 0 },
        description: 'One run of every cell per seed.',
      },
      target: { type: 'integer', minimum: 0, description: "The attacks' target class (default 5)." },
      cleanCount: { type: 'integer', minimum: 1, description: "The defender's clean images (or cleanRatio)." },
      cleanRatio: { type: 'number', exclusiveMinimum: 0, maximum: 1, description: "The defender's clean share (default 0.05, the paper)." },
      attacks: methods(ATTACKS, []),
      defenses: methods(repairs, [{ const: NO_DEFENSE, description: 'No defense: the attacked model as trained.' }], {
        ...schedule,
        description: `This defense's schedule, changed after defenseTraining. ${schedule.description}`,
      }),
      training: { ...schedule, description: `The attack training schedule, changed. ${schedule.description}` },
      defenseTraining: { ...schedule, description: `Applied to every defense's own schedule. ${schedule.description}` },
    },
  };
}
