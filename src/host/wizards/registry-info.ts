// The attack and defense registries as the wizards see them: dist/defenses.json and dist/attacks.json,
// written at build time from src/engine/{defenses,attacks}/registry.ts (`nad defenses --json`), so the
// extension host never loads the engine. One question per declared parameter, typed by its kind.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ParamSpec } from '../../engine/params';
import type { AttackInfo } from '../../engine/attacks/registry';
import type { DefenseInfo, DefenseMode } from '../../engine/defenses/registry';
import { integerIn, numberList, parseNumberList } from './multi-step';
import { pickModelOrNone, type Ask } from './steps';

export type { AttackInfo, DefenseInfo, DefenseMode };

export function readDefenses(extensionPath: string): DefenseInfo[] {
  return JSON.parse(readFileSync(join(extensionPath, 'dist', 'defenses.json'), 'utf8')) as DefenseInfo[];
}

export function readAttacks(extensionPath: string): AttackInfo[] {
  return JSON.parse(readFileSync(join(extensionPath, 'dist', 'attacks.json'), 'utf8')) as AttackInfo[];
}

/** The question for one declared parameter, typed by its kind. */
export function askParam(p: ParamSpec): Ask {
  return async (w, d) => {
    const current = d.params[p.key] ?? p.default;
    const prompt = `${p.label}: ${p.description}`;
    switch (p.type) {
      case 'modelFile':
        d.params[p.key] = (await pickModelOrNone(w, d, prompt, 'None', (current as string) || null)) ?? '';
        return;
      case 'path':
        d.params[p.key] = (
          await w.input({ prompt, value: current as string, placeholder: 'empty: the default', validate: () => undefined })
        ).trim();
        return;
      case 'boolean':
        d.params[p.key] = await w.pick<boolean>(
          prompt,
          [
            { label: 'Yes', value: true },
            { label: 'No', value: false },
          ],
          (v) => v === current,
        );
        return;
      case 'choice':
        d.params[p.key] = await w.pick<string>(
          prompt,
          p.choices.map((c) => ({ label: c, value: c })),
          (v) => v === current,
        );
        return;
      case 'numbers':
        d.params[p.key] = parseNumberList(
          await w.input({ prompt, value: (current as readonly number[]).join(', '), validate: numberList(p.default.length, p.label) }),
        );
        return;
      case 'number': {
        const lo = p.min ?? -Infinity;
        const hi = p.max ?? Infinity;
        const validate = p.integer
          ? integerIn(Number.isFinite(lo) ? lo : -1e9, Number.isFinite(hi) ? hi : 1e9, p.label)
          : (v: string): string | undefined =>
              v.trim() !== '' && Number(v) >= lo && Number(v) <= hi
                ? undefined
                : `${p.label} must be a number${Number.isFinite(lo) ? ` >= ${lo}` : ''}${Number.isFinite(hi) ? ` and <= ${hi}` : ''}`;
        d.params[p.key] = Number(await w.input({ prompt, value: String(current), validate }));
        return;
      }
      default: {
        const _: never = p;
        return _;
      }
    }
  };
}
