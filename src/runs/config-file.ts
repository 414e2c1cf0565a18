// Run config files (`*.nad.json`): a job config as JSON, paths relative to the file so that a folder
// of configs and data can be moved or committed. Hand-written files may leave settings out: they get
// the defaults of their data's kind when the run starts (data-defaults.ts). No vscode import: plain
// parsing, usable from tests.
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import type { BackendPreference } from '../engine/backend';
import { FIXED_ARCHS, InputError, type FixedArch } from '../engine/types';
import { DEFAULT_BACKDOOR, type AttackChoice, type BackdoorConfig, type DefendJobConfig, type JobConfig, type RunConfig } from './config';
import type { TrainSettings } from '../engine/train';
import type { TrainingChanges } from './data-defaults';
import type { RunKind } from './run-store';

export const CONFIG_FILE_SUFFIX = '.nad.json';
const KINDS: readonly RunKind[] = ['train', 'finetune', 'erase', 'defend', 'eval', 'attention', 'imageAttention'];
const BACKENDS: readonly BackendPreference[] = ['auto', 'tensorflow', 'native', 'wasm', 'cpu'];

/** A problem with a config file: names the file and the field. */
export class ConfigFileError extends InputError {
  constructor(
    file: string,
    readonly problem: string,
  ) {
    super(problem, file);
    this.name = 'ConfigFileError';
  }
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Parse, complete with the paper's backdoor defaults and resolve the paths of a config file's text. */
export function parseConfigFile(file: string, text: string): JobConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ConfigFileError(file, `invalid JSON (${(e as Error).message})`);
  }
  return buildJobConfig(raw, file, dirname(file));
}

/**
 * The one builder of job configs: checks a config as given (a config file, a config.json to run again,
 * a job that crossed into the worker), fills in the paper's backdoor, keeps the schedules as given (the
 * data's kind completes them when the run starts: jobs/resolve.ts) and resolves relative paths
 * against `base` (absent: kept as they are). `where` names the source in messages.
 */
export function buildJobConfig(raw: unknown, where: string, base?: string): JobConfig {
  const fail = (problem: string): never => {
    throw new ConfigFileError(where, problem);
  };
  if (!isObject(raw)) return fail('expected a JSON object with a "kind"');
  // What the run layer adds to a run's config.json (the backend it used, what made the run) is not part of the config.
  const { backendUsed: _ignored, provenance: _provenance, ...c } = raw;
  const kind = c['kind'];
  if (typeof kind !== 'string' || !KINDS.includes(kind as RunKind))
    return fail(`"kind" must be one of ${KINDS.join(', ')}, got ${JSON.stringify(kind)}`);
  const str = (key: string, required = true): string | undefined => {
    const v = c[key];
    if (v === undefined && !required) return undefined;
    if (typeof v !== 'string' || !v.trim())
      return fail(`"${key}" must be a path (a non-empty string)${v === undefined ? ' and is missing' : ''}`);
    return v;
  };
  const numberOr = (key: string, dflt: number): number => {
    const v = c[key] ?? dflt;
    if (typeof v !== 'number' || !Number.isFinite(v)) return fail(`"${key}" must be a number, got ${JSON.stringify(v)}`);
    return v;
  };
  const backend = c['backend'] ?? 'auto';
  if (!BACKENDS.includes(backend as BackendPreference))
    fail(`"backend" must be one of ${BACKENDS.join(', ')}, got ${JSON.stringify(backend)}`);
  const path = (p: string): string => (p === 'mnist' || base === undefined ? p : resolve(base, p));
  // Attention maps of images read no data set.
  if (kind === 'imageAttention') return buildImageAttention(c, path, fail);
  const data = kind === 'eval' || kind === 'attention' ? undefined : str('data');
  const test = str('test', data === undefined) ?? (data as string);
  const common = {
    ...(typeof c['name'] === 'string' ? { name: c['name'] } : {}),
    backend: backend as BackendPreference,
    seed: numberOr('seed', 0),
    test: path(test),
    backdoor: backdoorOf(c['backdoor'], fail, path),
    ...matrixLinkOf(c['matrix'], fail),
  };
  const clean = {
    ...(c['cleanCount'] !== undefined ? { cleanCount: numberOr('cleanCount', 0) } : {}),
    ...(c['cleanRatio'] !== undefined ? { cleanRatio: numberOr('cleanRatio', 0) } : {}),
  };
  // Only what is given: the defaults of the data's kind (data-defaults.ts) fill in the rest when the run starts.
  const training = (key: string): TrainingChanges => {
    const v = c[key];
    if (v !== undefined && !isObject(v)) return fail(`"${key}" must be an object of training settings (epochs, batchSize, betas...)`);
    return (v ?? {}) as TrainingChanges;
  };
  switch (kind as RunKind) {
    case 'train': {
      const model = c['model'] ?? 'auto';
      if (model !== 'auto' && model !== 'cnn' && !FIXED_ARCHS.includes(model as FixedArch) && !isObject(model))
        fail(`"model" must be "auto", "cnn", ${FIXED_ARCHS.map((a) => `"${a}"`).join(', ')} or { "arch": "wrn", "depth": 16, "widen": 1 }`);
      return {
        ...common,
        kind: 'train',
        data: path(data as string),
        model: model as 'auto',
        training: training('training'),
        ...(c['attack'] !== undefined ? { attack: attackChoiceOf(c['attack'], fail) } : {}),
      };
    }
    case 'finetune':
      return {
        ...common,
        ...clean,
        kind: 'finetune',
        model: path(str('model') as string),
        data: path(data as string),
        training: training('training'),
      };
    case 'erase': {
      const teacher = str('teacher', false);
      return {
        ...common,
        ...clean,
        kind: 'erase',
        student: path(str('student') as string),
        ...(teacher ? { teacher: path(teacher) } : {}),
        data: path(data as string),
        teacherTraining: { ...training('teacherTraining'), betas: [0, 0, 0] },
        training: training('training'),
      };
    }
    case 'defend': {
      const method = c['method'];
      if (typeof method !== 'string' || !method) return fail('"method" must name a defense (nad, finetune, fine-pruning...)');
      const params = c['params'] ?? {};
      if (!isObject(params)) return fail('"params" must be an object of the defense\'s parameters');
      // A parameter that names a model file is a path like the others.
      const withPaths = Object.fromEntries(
        Object.entries(params).map(([k, v]) => [k, typeof v === 'string' && v && /file|teacher|model/i.test(k) ? path(v) : v]),
      );
      const t = c['training'] ?? {};
      if (!isObject(t)) return fail('"training" must be an object of training settings (epochs, batchSize...)');
      const mode = c['mode'] ?? 'repair';
      if (mode !== 'repair' && mode !== 'detect') return fail(`"mode" must be "repair" or "detect", got ${JSON.stringify(mode)}`);
      const inspect = c['inspect'];
      if (inspect !== undefined && (!Array.isArray(inspect) || inspect.some((f) => typeof f !== 'string' || !f)))
        return fail('"inspect" must be a list of PNG/JPEG file paths');
      if (inspect !== undefined && mode !== 'detect') return fail('"inspect" (images to score) needs "mode": "detect"');
      // Only what is given: the defense's own schedule fills in the rest when the run starts.
      return {
        ...common,
        ...clean,
        kind: 'defend',
        method,
        ...(mode === 'detect' ? { mode } : {}),
        model: path(str('model') as string),
        data: path(data as string),
        training: t as Partial<TrainSettings>,
        params: withPaths as DefendJobConfig['params'],
        ...(inspect ? { inspect: (inspect as string[]).map(path) } : {}),
      };
    }
    case 'eval':
      return { ...common, kind: 'eval', model: path(str('model') as string) };
    case 'attention': {
      const models = c['models'];
      if (!Array.isArray(models) || models.length === 0 || models.some((m) => typeof m !== 'string'))
        return fail('"models" must be a non-empty list of model file paths');
      return { ...common, kind: 'attention', models: (models as string[]).map(path), count: numberOr('count', 4) };
    }
    case 'imageAttention': // (returned above, before the data set is read)
      return buildImageAttention(c, path, fail);
  }
}

const SETTINGS: readonly (keyof TrainSettings)[] = [
  'epochs',
  'batchSize',
  'lrSchedule',
  'momentum',
  'weightDecay',
  'nesterov',
  'augment',
  'betas',
  'attentionPower',
  'seed',
];

/**
 * A run's config.json (or a config as a run holds it): checked by the one builder, and every schedule
 * complete, as runs record them. Names the first missing setting.
 */
export function runConfigOf(raw: unknown, where: string, base?: string): RunConfig {
  const config = buildJobConfig(raw, where, base);
  const schedules: Array<[string, TrainingChanges]> =
    config.kind === 'train' || config.kind === 'finetune'
      ? [['training', config.training]]
      : config.kind === 'erase'
        ? [
            ['teacherTraining', config.teacherTraining],
            ['training', config.training],
          ]
        : [];
  for (const [key, t] of schedules) {
    const missing = SETTINGS.find((k) => t[k] === undefined);
    if (missing) throw new ConfigFileError(where, `"${key}" has no "${missing}"; a run's config records its complete schedule`);
  }
  return config as RunConfig;
}

function backdoorOf(v: unknown, fail: (p: string) => never, path: (p: string) => string): BackdoorConfig {
  if (v === undefined) return DEFAULT_BACKDOOR;
  if (!isObject(v)) return fail('"backdoor" must be an object ({ "trigger": { "name": "gridTrigger" }, "targetLabel": 5 })');
  const merged = { ...DEFAULT_BACKDOOR, ...v } as BackdoorConfig;
  if (!isObject(merged.trigger) || typeof merged.trigger.name !== 'string')
    return fail('"backdoor.trigger" must be an object with a "name", e.g. { "name": "gridTrigger" }');
  const maskFile = merged.trigger.maskFile;
  return maskFile ? { ...merged, trigger: { ...merged.trigger, maskFile: path(maskFile) } } : merged;
}

/** The text of a config file at `file` for `config`: paths relative to the file's folder when inside it. */
export function configFileText(config: JobConfig, file: string): string {
  const base = dirname(file);
  const rel = (p: string): string => {
    if (p === 'mnist' || !isAbsolute(p)) return p;
    const r = relative(base, p);
    if (r.startsWith('..') || isAbsolute(r)) return p;
    const portable = r.split(sep).join('/');
    // A relative path that happens to be named "mnist" must not read as the built-in digits.
    return portable === 'mnist' ? `./${portable}` : portable;
  };
  const out: Json = { ...config, ...('test' in config ? { test: rel(config.test) } : {}) };
  switch (config.kind) {
    case 'train':
      out['data'] = rel(config.data);
      break;
    case 'finetune':
      Object.assign(out, { data: rel(config.data), model: rel(config.model) });
      break;
    case 'defend':
      Object.assign(out, {
        data: rel(config.data),
        model: rel(config.model),
        params: Object.fromEntries(Object.entries(config.params).map(([k, v]) => [k, typeof v === 'string' && v ? rel(v) : v])),
      });
      break;
    case 'erase':
      Object.assign(out, {
        data: rel(config.data),
        student: rel(config.student),
        ...(config.teacher ? { teacher: rel(config.teacher) } : {}),
      });
      break;
    case 'eval':
      out['model'] = rel(config.model);
      break;
    case 'attention':
      out['models'] = config.models.map(rel);
      break;
    case 'imageAttention':
      Object.assign(out, { images: config.images.map(rel), models: config.models.map(rel) });
      return JSON.stringify(out, null, 2) + '\n';
    default: {
      const _: never = config;
      return _;
    }
  }
  const mask = config.backdoor.trigger.maskFile;
  if (mask) out['backdoor'] = { ...config.backdoor, trigger: { ...config.backdoor.trigger, maskFile: rel(mask) } };
  return JSON.stringify(out, null, 2) + '\n';
}

/** The first path a job reads a model from, for messages ("Pick another file"). */
export function modelPathOf(config: JobConfig): string | undefined {
  switch (config.kind) {
    case 'erase':
      return config.student;
    case 'finetune':
    case 'defend':
    case 'eval':
      return config.model;
    case 'attention':
    case 'imageAttention':
      return config.models[0];
    case 'train':
      return undefined;
  }
}

/**
 * Attention maps of images come from the Explorer ("NAD: Show Attention Maps" on a PNG/JPEG); the
 * builder checks such a job when it reaches the worker, and a config file may hold one too.
 */
function buildImageAttention(c: Json, path: (p: string) => string, fail: (p: string) => never): JobConfig {
  const list = (key: string): string[] => {
    const v = c[key];
    if (!Array.isArray(v) || v.length === 0 || v.some((m) => typeof m !== 'string'))
      return fail(`"${key}" must be a non-empty list of file paths`);
    return (v as string[]).map(path);
  };
  const given = Object.fromEntries(['trigger', 'targetType', 'targetLabel'].filter((k) => c[k] !== undefined).map((k) => [k, c[k]]));
  const backdoor = backdoorOf(given, fail, path);
  const labels = c['labels'];
  if (labels !== undefined && (!Array.isArray(labels) || labels.some((l) => !Number.isInteger(l))))
    fail('"labels" must be a list of class numbers (-1 = unknown)');
  return {
    kind: 'imageAttention',
    ...(typeof c['name'] === 'string' ? { name: c['name'] } : {}),
    backend: (c['backend'] ?? 'auto') as BackendPreference,
    images: list('images'),
    models: list('models'),
    trigger: backdoor.trigger,
    targetType: backdoor.targetType,
    targetLabel: backdoor.targetLabel,
    ...(labels !== undefined ? { labels: labels as number[] } : {}),
  };
}

function attackChoiceOf(v: unknown, fail: (p: string) => never): AttackChoice {
  if (!isObject(v) || typeof v['name'] !== 'string' || (v['params'] !== undefined && !isObject(v['params']))) {
    return fail('"attack" must be { "name": "badnets", "params": { ... } } (see `nad attacks`)');
  }
  return { name: v['name'], params: (v['params'] ?? {}) as AttackChoice['params'] };
}

/** A matrix cell's link to its matrix; kept as given when it is well formed. */
function matrixLinkOf(v: unknown, fail: (p: string) => never): { matrix?: { id: string; cell: string } } {
  if (v === undefined) return {};
  if (!isObject(v) || typeof v['id'] !== 'string' || typeof v['cell'] !== 'string')
    return fail('"matrix" must be {"id": "<matrix folder>", "cell": "<attack>/<defense>/seed<n>"}');
  return { matrix: { id: v['id'], cell: v['cell'] } };
}
