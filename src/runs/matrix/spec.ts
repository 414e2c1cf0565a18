// An attack x defense matrix (the NAD paper's Table 1): its definition as a `*.nad-matrix.json` file, checked
// against the attack and defense registries, and the cells it expands to. Each attacked model is trained
// once per seed; every defense then runs on it. "none" is the attacked model as trained.
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { ATTACKS, attackNamed } from '../../engine/attacks/registry';
import { DEFENSES, defenseNamed } from '../../engine/defenses/registry';
import { checkParams, type ParamValue } from '../../engine/params';
import type { BackendPreference } from '../../engine/backend';
import type { TrainSettings } from '../../engine/train';
import { FIXED_ARCHS, InputError, type FixedArch } from '../../engine/types';
import type { ArchChoice } from '../../engine/models';
import { DEMO_MODEL } from '../demo';
import { NO_DEFENSE, type MatrixSpec, type MethodChoice } from './cells';

export { cellKey, matrixCells, matrixId, NO_DEFENSE, type MatrixCell, type MatrixSpec, type MethodChoice } from './cells';

/** A matrix on `data` (its own test split) with the defaults every preset shares: target 5, 5% clean data. */
function preset(
  name: string,
  data: string,
  seeds: readonly number[],
  attacks: readonly string[],
  defenses: readonly MethodChoice[],
): MatrixSpec {
  return {
    name,
    data,
    test: data,
    arch: 'auto',
    backend: 'auto',
    seeds,
    target: 5,
    cleanRatio: 0.05,
    attacks: attacks.filter((a) => attackNamed(a)).map((a) => ({ name: a, params: {} })),
    defenses,
    training: {},
    defenseTraining: {},
  };
}

/** The paper's Table 1 shape on some data: its attacks (those we offer) x none, finetuning, Fine-Pruning, MCR and NAD. */
export function paperTable1(data: string, seeds: readonly number[] = [0]): MatrixSpec {
  const defenses = [NO_DEFENSE, 'finetune', 'fine-pruning', 'mcr', 'nad'].map((name) => ({ name, params: {} }));
  return preset('paper-table-1', data, seeds, ['badnets', 'trojan', 'blend', 'cl', 'sig', 'refool'], defenses);
}

/** The demo matrix's defense epochs (NAD's teacher too), and the test images its per-epoch progress is measured on. */
const DEMO_MATRIX_DEFENSE_EPOCHS = 5;
const DEMO_MATRIX_EVAL_IMAGES = 500;

/**
 * `nad demo --matrix`: a small matrix on the embedded digits (4 attacks x 4 defenses x 2 seeds = 32 runs; its
 * table and time in the README). The demo's model, WRN-10-1: the small CNN's flattened classifier keeps corner
 * triggers out of reach of finetuning and NAD. Training: 3 epochs, the last at lr 0.01 (WaNet is not planted
 * in 2 at lr 0.1, and its ASR swings by the epoch at 0.1). Defenses: 5 epochs (and 5 of NAD's teacher, so that
 * it is the finetuning column's model) at lr 0.1 then 0.01, as the quick demo. Measured on BadNets seed 0
 * (README): NAD's first epoch at lr 0.1 leaves the student at 9.6% ACC; 10 epochs peak at epoch 6 (92.6 on the
 * progress subset) and end at 81.04 / 0.33; a first epoch at 0.05 or 0.03 keeps ACC but not the erasure
 * (ASR 99.89, 100). No augmentation (crops and flips turn centred digits into other shapes). Progress after
 * each epoch is measured on 500 test images (`epochEvalImages`); every number of the table on all of them.
 */
export function demoMatrix(seeds: readonly number[] = [0, 1]): MatrixSpec {
  const defenses: MethodChoice[] = [
    { name: NO_DEFENSE, params: {} },
    { name: 'finetune', params: {} },
    { name: 'fine-pruning', params: {} },
    { name: 'nad', params: { teacherEpochs: DEMO_MATRIX_DEFENSE_EPOCHS } },
  ];
  return {
    ...preset('demo-matrix', 'mnist', seeds, ['badnets', 'blend', 'sig', 'wanet'], defenses),
    arch: DEMO_MODEL,
    training: {
      epochs: 3,
      lrSchedule: [
        [0, 0.1],
        [2, 0.01],
      ],
      augment: false,
      epochEvalImages: DEMO_MATRIX_EVAL_IMAGES,
    },
    defenseTraining: {
      epochs: DEMO_MATRIX_DEFENSE_EPOCHS,
      lrSchedule: [
        [0, 0.1],
        [1, 0.01],
      ],
      augment: false,
      epochEvalImages: DEMO_MATRIX_EVAL_IMAGES,
    },
  };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

const KEYS = new Set([
  'name',
  'data',
  'test',
  'arch',
  'backend',
  'seeds',
  'target',
  'cleanCount',
  'cleanRatio',
  'attacks',
  'defenses',
  'training',
  'defenseTraining',
  'preset',
]);

/**
 * A `*.nad-matrix.json` file's matrix. Paths are resolved against `baseDir` (the file's folder). Every
 * problem names the file and the field: a matrix must not fail hours in, at its last cell.
 */
export function parseMatrix(raw: unknown, file: string, baseDir: string): MatrixSpec {
  const fail = (msg: string): never => {
    throw new InputError(`${file}: ${msg}`);
  };
  if (!isObject(raw)) return fail('a matrix file holds one JSON object');
  const unknown = Object.keys(raw).filter((k) => !KEYS.has(k));
  if (unknown.length)
    fail(`unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `"${k}"`).join(', ')} (known: ${[...KEYS].join(', ')})`);
  const path = (p: string): string => (p === 'mnist' || isAbsolute(p) ? p : resolve(baseDir, p));
  const str = (key: string, fallback?: string): string => {
    const v = raw[key] ?? fallback;
    if (typeof v !== 'string' || !v) return fail(`"${key}" must be a non-empty string`);
    return v;
  };
  const data = path(str('data'));
  const preset = raw['preset'];
  if (preset !== undefined && preset !== 'paper-table-1') fail(`"preset" can only be "paper-table-1", got ${JSON.stringify(preset)}`);
  const base = preset ? paperTable1(data) : undefined;

  const seeds = raw['seeds'] ?? base?.seeds ?? [0];
  if (!Array.isArray(seeds) || seeds.length === 0 || !seeds.every((s) => Number.isInteger(s) && s >= 0))
    fail('"seeds" must be a non-empty list of non-negative integers');
  if (new Set(seeds as number[]).size !== (seeds as number[]).length) fail('"seeds" lists a seed twice');

  const target = raw['target'] ?? 5;
  if (!Number.isInteger(target) || (target as number) < 0) fail('"target" must be a class index (an integer >= 0)');

  const choices = (key: 'attacks' | 'defenses'): MethodChoice[] => {
    const v = raw[key] ?? base?.[key];
    if (!Array.isArray(v) || v.length === 0) return fail(`"${key}" must be a non-empty list of names or {"name", "params"} objects`);
    return v.map((item, i): MethodChoice => {
      const c = typeof item === 'string' ? { name: item, params: {} } : item;
      if (!isObject(c) || typeof c['name'] !== 'string') return fail(`${key}[${i}] must be a name or an object with "name"`);
      const params = c['params'] ?? {};
      if (!isObject(params)) return fail(`${key}[${i}].params must be an object`);
      const training = c['training'];
      if (training !== undefined && (key === 'attacks' || !isObject(training)))
        return fail(
          key === 'attacks'
            ? `attacks[${i}].training: an attack's schedule is the matrix's "training"`
            : `defenses[${i}].training must be an object of training settings (epochs, lrSchedule...)`,
        );
      return {
        name: c['name'],
        params: params as Record<string, ParamValue>,
        ...(training ? { training: training as Partial<TrainSettings> } : {}),
      };
    });
  };
  const attacks = choices('attacks');
  const defenses = choices('defenses');
  for (const [i, a] of attacks.entries()) {
    const attack = attackNamed(a.name);
    if (!attack) fail(`attacks[${i}]: unknown attack '${a.name}' (known: ${ATTACKS.map((x) => x.name).join(', ')})`);
    else {
      try {
        checkParams(attack.params, a.params, `attack ${a.name}`);
      } catch (e) {
        fail(`attacks[${i}]: ${(e as Error).message}`);
      }
    }
  }
  for (const [i, d] of defenses.entries()) {
    if (d.name === NO_DEFENSE) continue;
    const defense = defenseNamed(d.name);
    const repairs = DEFENSES.filter((x) => x.modes.includes('repair')).map((x) => x.name);
    if (!defense || !defense.modes.includes('repair'))
      fail(`defenses[${i}]: '${d.name}' is not a defense that repairs a model (known: ${[NO_DEFENSE, ...repairs].join(', ')})`);
    else {
      try {
        checkParams(defense.params, d.params, `defense ${d.name}`);
      } catch (e) {
        fail(`defenses[${i}]: ${(e as Error).message}`);
      }
    }
  }
  const twice = (list: MethodChoice[]): string | undefined => list.map((x) => x.name).find((n, i, all) => all.indexOf(n) !== i);
  const dupA = twice(attacks);
  if (dupA) fail(`"attacks" lists '${dupA}' twice: a matrix row per attack`);
  const dupD = twice(defenses);
  if (dupD) fail(`"defenses" lists '${dupD}' twice: a matrix column per defense`);

  const schedule = (key: 'training' | 'defenseTraining'): Partial<TrainSettings> => {
    const v = raw[key] ?? {};
    if (!isObject(v)) return fail(`"${key}" must be an object of training settings (epochs, batchSize, lr...)`);
    return v as Partial<TrainSettings>;
  };
  const cleanCount = raw['cleanCount'];
  const cleanRatio = raw['cleanRatio'] ?? (cleanCount === undefined ? (base?.cleanRatio ?? 0.05) : undefined);
  if (cleanCount !== undefined && cleanRatio !== undefined) fail('give "cleanCount" or "cleanRatio", not both');
  if (cleanCount !== undefined && (!Number.isInteger(cleanCount) || (cleanCount as number) < 1))
    fail('"cleanCount" must be an integer >= 1');
  if (cleanRatio !== undefined && !(typeof cleanRatio === 'number' && cleanRatio > 0 && cleanRatio <= 1))
    fail('"cleanRatio" must be a number in (0, 1]');
  const arch = raw['arch'] ?? 'auto';
  if (!(arch === 'auto' || arch === 'cnn' || FIXED_ARCHS.includes(arch as FixedArch) || isObject(arch)))
    fail(`"arch" must be "auto", "cnn", ${FIXED_ARCHS.map((a) => `"${a}"`).join(', ')} or {"arch": "wrn", "depth", "widen"}`);
  const backend = raw['backend'] ?? 'auto';
  if (!['auto', 'tensorflow', 'native', 'wasm', 'cpu'].includes(backend as string))
    fail('"backend" must be auto, tensorflow, native, wasm or cpu');

  return {
    name: str('name', base?.name),
    data,
    test: path(str('test', raw['data'] as string)),
    arch: arch as ArchChoice,
    backend: backend as BackendPreference,
    seeds: seeds as number[],
    target: target as number,
    ...(cleanCount !== undefined ? { cleanCount: cleanCount as number } : { cleanRatio: cleanRatio as number }),
    attacks,
    defenses,
    training: schedule('training'),
    defenseTraining: schedule('defenseTraining'),
  };
}

/** The registries' titles, for tables printed by the engine's side (CLI, worker). */
export const REGISTRY_TITLES = {
  attack: (name: string): string | undefined => attackNamed(name)?.title,
  defense: (name: string): string | undefined => defenseNamed(name)?.title,
};

/** Reads and checks a `*.nad-matrix.json` file; paths in it are relative to its folder. */
export function readMatrixFile(file: string): MatrixSpec {
  const path = resolve(file);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new InputError(`cannot read the matrix file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, path);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new InputError(`not valid JSON (${(e as Error).message})`, path);
  }
  return parseMatrix(raw, path, dirname(path));
}
