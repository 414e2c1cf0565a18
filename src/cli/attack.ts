// `nad train --attack <name>` and `nad attacks`: the attacks of the registry, each parameter a flag of
// `nad train` (keys are unique across attacks), read only for the attack chosen.
import type { Command } from 'commander';
import { ATTACKS, attackNamed, type AttackInfo } from '../engine/attacks/registry';
import { parseTargetType } from '../engine/triggers/spec';
import { InputError } from '../engine/types';
import type { AttackChoice, BackdoorConfig } from '../runs/config';
import { num } from './options';
import { addParam, kebab, paramValue } from './params';

type Flags = Record<string, string | boolean | undefined>;

export function addAttackOptions(cmd: Command): Command {
  cmd.option(
    '--attack <name>',
    `an attack of the registry (${ATTACKS.map((a) => a.name).join(', ')}; see \`nad attacks\`); replaces --trigger`,
  );
  const seen = new Set<string>();
  for (const p of ATTACKS.flatMap((a) => a.params)) {
    if (seen.has(p.key)) continue;
    seen.add(p.key);
    addParam(cmd, p, false);
  }
  return cmd;
}

/** The attack the flags choose, with its parameters, and the backdoor it plants (its trigger, target, share). */
export function attackFromFlags(f: Flags, cmd: Command): { attack: AttackChoice; backdoor: BackdoorConfig } | undefined {
  const name = f['attack'];
  if (typeof name !== 'string') {
    const stray = ATTACKS.flatMap((a) => a.params).find((p) => f[p.key] !== undefined);
    if (stray) throw new InputError(`--${kebab(stray.key)} is a parameter of an attack: give --attack too`);
    return undefined;
  }
  const attack = attackNamed(name);
  if (!attack) throw new InputError(`unknown attack '${name}'; valid: ${ATTACKS.map((a) => a.name).join(', ')}`);
  if (cmd.getOptionValueSource('trigger') === 'cli')
    throw new InputError('give --attack or --trigger, not both (an attack brings its trigger)');
  const foreign = ATTACKS.flatMap((a) => a.params).find((p) => f[p.key] !== undefined && !attack.params.some((q) => q.key === p.key));
  if (foreign)
    throw new InputError(
      `--${kebab(foreign.key)} is not a parameter of ${name} (its parameters: ${attack.params.map((p) => `--${kebab(p.key)}`).join(', ') || 'none'})`,
    );
  const params = Object.fromEntries(attack.params.map((p) => [p.key, paramValue(p, f[p.key])]).filter(([, v]) => v !== undefined));
  const full = Object.fromEntries(attack.params.map((p) => [p.key, params[p.key] ?? p.default]));
  const given = (key: string): string | undefined => (cmd.getOptionValueSource(key) === 'cli' ? (f[key] as string) : undefined);
  const targetLabel = num(f['target'] as string, '--target', { int: true, min: 0 });
  return {
    attack: { name, params },
    backdoor: {
      trigger: attack.trigger(full, { data: String(f['data']), targetLabel }),
      targetType: parseTargetType(given('targetType') ?? attack.defaults.targetType),
      targetLabel,
      injectPortion: given('injectPortion')
        ? num(given('injectPortion'), '--inject-portion', { min: 0, max: 1 })
        : attack.defaults.injectPortion,
    },
  };
}

/** What the registry declares, as data: `nad attacks --json`, and dist/attacks.json for the Train wizard. */
export function describeAttacks(): AttackInfo[] {
  return ATTACKS.map(({ name, title, description, citation, labels, params, defaults }) => ({
    name,
    title,
    description,
    citation,
    labels,
    params,
    defaults,
  }));
}

export function addAttacksCommand(program: Command): void {
  program
    .command('attacks')
    .description('list the attacks `nad train --attack` offers, and their parameters')
    .option('--json', 'as JSON')
    .action((f: { json?: boolean }) => {
      if (f.json) {
        process.stdout.write(JSON.stringify(describeAttacks(), null, 2) + '\n');
        return;
      }
      for (const a of ATTACKS) {
        process.stdout.write(`${a.name.padEnd(10)} ${a.title} (${a.labels}-label): ${a.description}\n`);
        for (const p of a.params)
          process.stdout.write(`${' '.repeat(11)}--${kebab(p.key)}  ${p.description} (default ${JSON.stringify(p.default)})\n`);
      }
    });
}
