// CLI flags from declared parameters (src/engine/params.ts): camelCase key -> --kebab-case flag, and the
// flag's text back to the parameter's type. Ranges are checked where the flag is read.
import type { Command } from 'commander';
import type { ParamSpec, ParamValue } from '../engine/params';
import { num } from './options';

export const kebab = (key: string): string => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/** A flag per declared parameter; `withDefault` false leaves it unset unless given (the default is then said in the help). */
export function addParam(cmd: Command, p: ParamSpec, withDefault = true): void {
  const flag = `--${kebab(p.key)}`;
  switch (p.type) {
    case 'boolean':
      cmd.option(p.default ? `--no-${kebab(p.key)}` : flag, p.description);
      return;
    case 'numbers':
      cmd.option(
        `${flag} <list>`,
        `${p.description} (comma-separated)${withDefault ? '' : `; default ${p.default.join(',')}`}`,
        withDefault ? p.default.join(',') : undefined,
      );
      return;
    case 'modelFile':
      cmd.option(`${flag} <file>`, p.description);
      return;
    case 'path':
      cmd.option(`${flag} <path>`, p.description);
      return;
    case 'choice':
      cmd.option(
        `${flag} <${p.choices.join('|')}>`,
        withDefault ? p.description : `${p.description}; default ${p.default}`,
        withDefault ? p.default : undefined,
      );
      return;
    case 'number':
      cmd.option(
        `${flag} <n>`,
        withDefault ? p.description : `${p.description}; default ${p.default}`,
        withDefault ? String(p.default) : undefined,
      );
      return;
    default: {
      const _: never = p;
      return _;
    }
  }
}

/** The flag's value as the parameter's type; the defense checks ranges (checkParams) when the run starts. */
export function paramValue(p: ParamSpec, raw: string | boolean | undefined): ParamValue | undefined {
  if (raw === undefined) return undefined;
  const flag = `--${kebab(p.key)}`;
  switch (p.type) {
    case 'boolean':
      return Boolean(raw);
    case 'numbers':
      return String(raw)
        .split(',')
        .map((v) => num(v, flag));
    case 'number':
      return num(String(raw), flag, { int: p.integer, min: p.min, max: p.max });
    case 'modelFile':
    case 'path':
    case 'choice':
      return String(raw);
    default: {
      const _: never = p;
      return _;
    }
  }
}
