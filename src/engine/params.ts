// Declared parameters of attacks and defenses: their types, and the one check of values as given (a
// config file, CLI flags, the wizard) that fills in defaults. The CLI's flags and the wizards'
// questions are derived from these declarations.
import { InputError } from './types';

export type ParamValue = number | boolean | string | readonly number[];
export type ParamValues = Readonly<Record<string, ParamValue>>;

interface ParamBase {
  /** camelCase key in config.json's `params`; the CLI flag is its kebab-case form. */
  readonly key: string;
  /** Short label for the wizard's question. */
  readonly label: string;
  /** One sentence: what it does, and the paper's value. */
  readonly description: string;
}

export type ParamSpec =
  | (ParamBase & {
      readonly type: 'number';
      readonly default: number;
      readonly min?: number;
      readonly max?: number;
      readonly integer?: boolean;
    })
  | (ParamBase & { readonly type: 'boolean'; readonly default: boolean })
  | (ParamBase & { readonly type: 'choice'; readonly default: string; readonly choices: readonly string[] })
  | (ParamBase & { readonly type: 'numbers'; readonly default: readonly number[]; readonly min?: number })
  /** A model file; '' = not given (the defense then makes its own, e.g. NAD finetunes a teacher). */
  | (ParamBase & { readonly type: 'modelFile'; readonly default: '' })
  /** A data set or folder path; '' = not given (the attack then uses its default source). */
  | (ParamBase & { readonly type: 'path'; readonly default: '' });

function checkOne(spec: ParamSpec, value: unknown, where: string): ParamValue {
  const fail = (what: string): never => {
    throw new InputError(`${where}: ${spec.key} ${what}, got ${JSON.stringify(value)}`);
  };
  switch (spec.type) {
    case 'number': {
      if (typeof value !== 'number' || !Number.isFinite(value)) return fail('must be a number');
      const v = value as number;
      if (spec.integer && !Number.isInteger(v)) fail('must be a whole number');
      if (spec.min !== undefined && v < spec.min) fail(`must be >= ${spec.min}`);
      if (spec.max !== undefined && v > spec.max) fail(`must be <= ${spec.max}`);
      return v;
    }
    case 'boolean':
      return typeof value === 'boolean' ? value : fail('must be true or false');
    case 'choice':
      return typeof value === 'string' && spec.choices.includes(value) ? value : fail(`must be one of ${spec.choices.join(', ')}`);
    case 'numbers': {
      if (!Array.isArray(value) || value.some((x) => typeof x !== 'number' || !Number.isFinite(x)))
        return fail('must be a list of numbers');
      const v = value as number[];
      if (spec.min !== undefined && v.some((x) => x < (spec.min as number))) fail(`must all be >= ${spec.min}`);
      return v;
    }
    case 'modelFile':
      return typeof value === 'string' ? value : fail('must be a file path (or "" for none)');
    case 'path':
      return typeof value === 'string' ? value : fail('must be a file or folder path (or "" for none)');
    default: {
      const _: never = spec;
      return _;
    }
  }
}

/** Every declared parameter, checked, defaults filled in; an undeclared key is an error (a typo would be ignored). */
export function checkParams(specs: readonly ParamSpec[], given: Readonly<Record<string, unknown>> | undefined, where: string): ParamValues {
  const out: Record<string, ParamValue> = {};
  for (const key of Object.keys(given ?? {})) {
    if (!specs.some((s) => s.key === key))
      throw new InputError(`${where}: unknown parameter '${key}' (known: ${specs.map((s) => s.key).join(', ') || 'none'})`);
  }
  for (const spec of specs) {
    const value = given?.[spec.key];
    out[spec.key] = value === undefined ? spec.default : checkOne(spec, value, where);
  }
  return out;
}
