// `nad defend <method>`: one subcommand per defense of the registry, its options derived from the
// defense's declared parameters (camelCase key -> --kebab-case flag) and its default schedule.
import type { Command } from 'commander';
import { DEFENSES, type Defense, type ParamSpec, type ParamValue } from '../engine/defenses/registry';
import { addBackdoor, addCommon, addTraining, backdoorOf, backendOf, cleanOf, num, trainingOf, type CommonFlags } from './options';
import { execute } from './execute';

type Flags = CommonFlags & Record<string, string | boolean | undefined>;

const kebab = (key: string): string => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

function addParam(cmd: Command, p: ParamSpec): void {
  const flag = `--${kebab(p.key)}`;
  switch (p.type) {
    case 'boolean':
      cmd.option(p.default ? `--no-${kebab(p.key)}` : flag, p.description);
      return;
    case 'numbers':
      cmd.option(`${flag} <list>`, `${p.description} (comma-separated)`, p.default.join(','));
      return;
    case 'modelFile':
      cmd.option(`${flag} <file>`, p.description);
      return;
    case 'choice':
      cmd.option(`${flag} <${p.choices.join('|')}>`, p.description, p.default);
      return;
    case 'number':
      cmd.option(`${flag} <n>`, p.description, String(p.default));
      return;
    default: {
      const _: never = p;
      return _;
    }
  }
}

/** The flag's value as the parameter's type; the defense checks ranges (checkParams) when the run starts. */
function paramValue(p: ParamSpec, raw: string | boolean | undefined): ParamValue | undefined {
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
    case 'choice':
      return String(raw);
    default: {
      const _: never = p;
      return _;
    }
  }
}

function addDefense(parent: Command, d: Defense): void {
  const cmd = addCommon(parent.command(d.name).description(`${d.title}: ${d.description} Needs ${d.needs}. (${d.citation})`))
    .requiredOption('--model <file>', 'the suspect (backdoored) model (.pth/.pth.tar/.safetensors)')
    .requiredOption('--data <path>', 'clean data the defender has')
    .option('--clean-count <n>', 'use a random subset of n images')
    .option('--clean-ratio <r>', 'use a random share of the images (the paper: 0.05)')
    .option('--test <path>', 'test data for ACC/ASR (default: the test split of --data)');
  for (const p of d.params) addParam(cmd, p);
  addTraining(
    addBackdoor(cmd, false),
    d.training,
    d.training.betas.some((b) => b !== 0),
  ).action(async (f: Flags) => {
    const seed = num(f.seed, '--seed', { int: true });
    const params = Object.fromEntries(d.params.map((p) => [p.key, paramValue(p, f[p.key])]).filter(([, v]) => v !== undefined));
    await execute(f, {
      kind: 'defend',
      method: d.name,
      name: f.name,
      backend: backendOf(f),
      seed,
      model: f.model as string,
      data: f.data as string,
      ...cleanOf(f),
      test: (f.test as string) ?? (f.data as string),
      backdoor: backdoorOf(f),
      training: trainingOf(f, d.training, seed),
      params,
    });
  });
}

/** What the registry declares, as data: `nad defenses --json`, and dist/defenses.json for the extension's wizard. */
export function describeDefenses(): object[] {
  return DEFENSES.map(({ name, title, description, needs, citation, params, training }) => ({
    name,
    title,
    description,
    needs,
    citation,
    params,
    training,
  }));
}

export function addDefendCommands(program: Command): void {
  const defend = program.command('defend').description(`run a defense on a backdoored model: ${DEFENSES.map((d) => d.name).join(', ')}`);
  for (const d of DEFENSES) addDefense(defend, d);
  program
    .command('defenses')
    .description('list the defenses, what each needs, and their parameters')
    .option('--json', 'as JSON')
    .action((f: { json?: boolean }) => {
      if (f.json) {
        process.stdout.write(JSON.stringify(describeDefenses(), null, 2) + '\n');
        return;
      }
      for (const d of DEFENSES) {
        process.stdout.write(`${d.name.padEnd(14)} ${d.title}: ${d.description}\n${' '.repeat(15)}needs ${d.needs}\n`);
        for (const p of d.params)
          process.stdout.write(`${' '.repeat(15)}--${kebab(p.key)}  ${p.description} (default ${JSON.stringify(p.default)})\n`);
      }
    });
}
