// "Run Again With Changes": a run's config.json read as the answers of its wizard, and the answers written
// back over that config. Only the answers the person changed are written (and those the file had wrong):
// everything else stays as the run had it, so the new run differs from the old in exactly what was changed.
// A field the wizard asks that is missing its sense (hand-edited) is named with the file, and the wizard
// offers its default instead.
import * as vscode from 'vscode';
import { resolve } from 'node:path';
import { checkParams, type ParamSpec, type ParamValue } from '../../engine/params';
import { TRIGGER_NAMES } from '../../engine/triggers/spec';
import type { JobConfig } from '../../runs/config';
import { buildJobConfig, ConfigFileError } from '../../runs/config-file';
import { WIZARD_KINDS } from '../../shared/panel-protocol';
import type { JobDraft } from './steps';

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The draft fields a wizard asks and a config stores. */
type Field =
  | 'model'
  | 'teacher'
  | 'data'
  | 'clean'
  | 'trigger'
  | 'targetLabel'
  | 'injectPortion'
  | 'epochs'
  | 'teacherEpochs'
  | 'betas'
  | 'attack'
  | 'params';

/** Which fields each kind's wizard asks (and so which a run of that kind is prefilled with). */
const FIELDS: Readonly<Record<(typeof WIZARD_KINDS)[number], readonly Field[]>> = {
  erase: ['model', 'teacher', 'data', 'clean', 'trigger', 'targetLabel', 'teacherEpochs', 'epochs', 'betas'],
  train: ['data', 'attack', 'params', 'targetLabel', 'injectPortion', 'epochs'],
  finetune: ['model', 'data', 'clean', 'trigger', 'targetLabel', 'epochs'],
  defend: ['model', 'data', 'clean', 'trigger', 'targetLabel', 'params', 'epochs'],
  eval: ['model', 'data', 'trigger', 'targetLabel'],
};

/** A run's answers for its kind's wizard; `finish` turns the answers into the new run's config. */
export interface Prefill {
  /** The run's config.json, for messages. */
  readonly file: string;
  /** The run's name, for the wizard's title. */
  readonly name: string;
  /** A URI in the run's workspace folder (the wizard's folder). */
  readonly runUri: vscode.Uri;
  /** The run's defense or attack, and a defense's mode. */
  readonly method?: string;
  readonly mode?: 'repair' | 'detect';
  readonly attack?: string;
  /** What in config.json could not be used: each names the field; the wizard offers the default instead. */
  readonly problems: readonly string[];
  /** Fill a fresh draft (holding the wizard's defaults) with the run's answers. */
  apply(d: JobDraft): void;
  /** The old config with the changed answers written over it, checked by the one config builder; undefined after showing why not. */
  finish(d: JobDraft): JobConfig | undefined;
}

/**
 * Read `raw` (the parsed config.json of a run in `cwd`'s workspace) as its wizard's answers. `params` are the
 * declared parameters of its defense or attack (from the registry), to check the stored values against.
 */
export function readPrefill(raw: Json, file: string, cwd: string, runUri: vscode.Uri, params: readonly ParamSpec[] = []): Prefill {
  const kind = String(raw['kind']);
  const fields = FIELDS[kind] ?? [];
  const problems: string[] = [];
  /** Fields whose stored value was unusable: written from the answer (the default unless changed). */
  const broken = new Set<Field>();
  const brokenParams = new Set<string>();
  const bad = (field: Field, key: string, what: string, value: unknown): undefined => {
    problems.push(`"${key}" ${what}, got ${JSON.stringify(value)}`);
    broken.add(field);
    return undefined;
  };
  const at = (path: string): unknown => path.split('.').reduce<unknown>((o, k) => (isObject(o) ? o[k] : undefined), raw);
  const abs = (p: string): string => (p === 'mnist' ? p : resolve(cwd, p));
  const path = (field: Field, key: string): string | undefined => {
    const v = at(key);
    return typeof v === 'string' && v.trim() ? abs(v) : bad(field, key, 'must be a path', v);
  };
  const int = (field: Field, key: string, lo: number, hi: number): number | undefined => {
    const v = at(key);
    return typeof v === 'number' && Number.isInteger(v) && v >= lo && v <= hi
      ? v
      : bad(field, key, `must be a whole number from ${lo} to ${hi}`, v);
  };
  const modelKey = kind === 'erase' ? 'student' : 'model';
  const dataKey = kind === 'eval' ? 'test' : 'data';
  const answers: Partial<Pick<JobDraft, Field>> = {};
  for (const f of fields) {
    switch (f) {
      case 'model':
        answers.model = path(f, modelKey);
        break;
      case 'teacher': {
        const t = raw['teacher'];
        answers.teacher = t === undefined || t === null || t === '' ? null : path(f, 'teacher');
        break;
      }
      case 'data':
        answers.data = path(f, dataKey);
        break;
      case 'clean': {
        const { cleanCount: count, cleanRatio: ratio } = raw;
        if (count !== undefined)
          answers.clean =
            typeof count === 'number' && Number.isInteger(count) && count >= 1
              ? { cleanCount: count }
              : bad(f, 'cleanCount', 'must be a whole number of images, 1 or more', count);
        else if (ratio !== undefined)
          answers.clean =
            typeof ratio === 'number' && ratio > 0 && ratio <= 1
              ? { cleanRatio: ratio }
              : bad(f, 'cleanRatio', 'must be a share above 0 and at most 1', ratio);
        else answers.clean = {};
        break;
      }
      case 'trigger': {
        const name = at('backdoor.trigger.name');
        answers.trigger =
          typeof name === 'string' && (TRIGGER_NAMES as readonly string[]).includes(name)
            ? name
            : bad(f, 'backdoor.trigger.name', `must be one of ${TRIGGER_NAMES.join(', ')}`, name);
        break;
      }
      case 'targetLabel':
        answers.targetLabel = int(f, 'backdoor.targetLabel', 0, 999);
        break;
      case 'injectPortion': {
        const v = at('backdoor.injectPortion');
        answers.injectPortion =
          typeof v === 'number' && v >= 0 && v <= 1 ? v : bad(f, 'backdoor.injectPortion', 'must be a share from 0 to 1', v);
        break;
      }
      case 'epochs':
        // A defense's config may leave its epochs to the defense: the wizard's default stands.
        if (kind !== 'defend' || at('training.epochs') !== undefined) answers.epochs = int(f, 'training.epochs', 1, 10_000);
        break;
      case 'teacherEpochs':
        answers.teacherEpochs = int(f, 'teacherTraining.epochs', 1, 10_000);
        break;
      case 'betas': {
        const v = at('training.betas');
        answers.betas =
          Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'number' && Number.isFinite(x) && x >= 0)
            ? (v as number[])
            : bad(f, 'training.betas', 'must be 3 numbers >= 0', v);
        break;
      }
      case 'attack': {
        const name = at('attack.name');
        answers.attack = typeof name === 'string' && name ? name : bad(f, 'attack.name', 'must name an attack', name);
        break;
      }
      case 'params': {
        const key = kind === 'train' ? 'attack.params' : 'params';
        const given = at(key) ?? {};
        if (!isObject(given)) {
          bad(f, key, 'must be an object of parameters', given);
          break;
        }
        const out: Record<string, ParamValue> = {};
        for (const spec of params) {
          if (given[spec.key] === undefined) continue;
          try {
            out[spec.key] = checkParams([spec], { [spec.key]: given[spec.key] }, key)[spec.key];
          } catch (e) {
            problems.push((e as Error).message);
            brokenParams.add(spec.key);
          }
        }
        answers.params = out;
        break;
      }
    }
  }
  let start: Partial<Pick<JobDraft, Field>> = {};
  const method = typeof raw['method'] === 'string' ? raw['method'] : undefined;
  const name = typeof raw['name'] === 'string' && raw['name'] ? raw['name'] : '';
  return {
    file,
    name,
    runUri,
    method,
    mode: raw['mode'] === 'detect' ? 'detect' : 'repair',
    attack: answers.attack,
    problems,
    apply(d) {
      for (const f of fields) {
        const v = answers[f];
        // Every declared parameter gets a value, so that the questions' answers compare with these.
        if (f === 'params')
          d.params = { ...Object.fromEntries(params.map((p) => [p.key, p.default])), ...d.params, ...(v as Record<string, ParamValue>) };
        else if (v !== undefined) Object.assign(d, { [f]: v });
      }
      start = JSON.parse(JSON.stringify(pick(d, fields))) as typeof start;
    },
    finish(d) {
      const now = pick(d, fields);
      const differs = (a: unknown, b: unknown): boolean => JSON.stringify(a) !== JSON.stringify(b);
      const changed = (f: Field): boolean => broken.has(f) || (f === 'params' && brokenParams.size > 0) || differs(now[f], start[f]);
      // Of the parameters, only those changed (or unusable in the file) are written.
      const before = start.params ?? {};
      const paramsChanged = Object.keys(d.params).filter((k) => brokenParams.has(k) || differs(d.params[k], before[k]));
      const out = writeAnswers(raw, kind, d, fields.filter(changed), paramsChanged, cwd);
      try {
        return buildJobConfig(out, file, cwd);
      } catch (e) {
        const problem = e instanceof ConfigFileError ? e.problem : (e as Error).message;
        void vscode.window
          .showErrorMessage(`NAD: ${file}: cannot run this config again (${problem}).`, 'Open Config File')
          .then((a) => a && vscode.window.showTextDocument(vscode.Uri.file(file)));
        return undefined;
      }
    },
  };
}

function pick(d: JobDraft, fields: readonly Field[]): Partial<Pick<JobDraft, Field>> {
  return Object.fromEntries(fields.map((f) => [f, d[f]]));
}

/** The old config (without what the run layer added, and without a matrix link: a changed run is not that cell) with `fields` written from the draft. */
function writeAnswers(raw: Json, kind: string, d: JobDraft, fields: readonly Field[], params: readonly string[], cwd: string): Json {
  const { backendUsed: _b, provenance: _p, matrix: _m, ...out } = raw;
  const obj = (key: string): Json => (isObject(out[key]) ? { ...(out[key] as Json) } : {});
  // A path that did not change keeps its spelling (relative paths stay relative).
  const same = (old: unknown, now: string): string => (typeof old === 'string' && (old === now || resolve(cwd, old) === now) ? old : now);
  for (const f of fields) {
    switch (f) {
      case 'model':
        out[kind === 'erase' ? 'student' : 'model'] = same(raw[kind === 'erase' ? 'student' : 'model'], d.model ?? '');
        break;
      case 'teacher':
        if (d.teacher) out['teacher'] = same(raw['teacher'], d.teacher);
        else delete out['teacher'];
        break;
      case 'data': {
        const data = same(raw[kind === 'eval' ? 'test' : 'data'], d.data ?? 'mnist');
        if (kind === 'eval') out['test'] = data;
        else {
          // The test split follows the data unless the run measured on other data (nad --test).
          const test = raw['test'];
          const followed =
            test === undefined ||
            (typeof test === 'string' && typeof raw['data'] === 'string' && resolve(cwd, test) === resolve(cwd, raw['data']));
          out['data'] = data;
          if (followed) out['test'] = data;
        }
        break;
      }
      case 'clean':
        delete out['cleanRatio'];
        delete out['cleanCount'];
        Object.assign(out, d.clean);
        break;
      case 'trigger': {
        const backdoor = obj('backdoor');
        const old = isObject(backdoor['trigger']) ? (backdoor['trigger'] as Json) : {};
        // Another trigger: its own settings (mask file, size) are not the old trigger's.
        out['backdoor'] = { ...backdoor, trigger: old['name'] === d.trigger ? old : { name: d.trigger } };
        break;
      }
      case 'targetLabel':
        out['backdoor'] = { ...obj('backdoor'), targetLabel: d.targetLabel };
        break;
      case 'injectPortion':
        out['backdoor'] = { ...obj('backdoor'), injectPortion: d.injectPortion };
        break;
      case 'epochs':
        out['training'] = { ...obj('training'), epochs: d.epochs };
        break;
      case 'teacherEpochs':
        out['teacherTraining'] = { ...obj('teacherTraining'), epochs: d.teacherEpochs };
        break;
      case 'betas':
        out['training'] = { ...obj('training'), betas: d.betas };
        break;
      case 'attack':
      case 'params': {
        const changed = Object.fromEntries(params.map((k) => [k, d.params[k]]));
        if (kind !== 'train') out['params'] = { ...obj('params'), ...changed };
        // Another attack takes its own parameters; the same one keeps its others.
        else if (fields.includes('attack')) out['attack'] = { name: d.attack, params: d.params };
        else {
          const attack = obj('attack');
          out['attack'] = { ...attack, params: { ...(isObject(attack['params']) ? attack['params'] : {}), ...changed } };
        }
        break;
      }
    }
  }
  return out;
}
