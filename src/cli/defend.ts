// `nad defend <method>`: one subcommand per defense of the registry, its options derived from the
// defense's declared parameters (camelCase key -> --kebab-case flag) and its default schedule.
import type { Command } from 'commander';
import { DEFENSES, type Defense, type DefenseInfo, type DefenseMode } from '../engine/defenses/registry';
import { addParam, kebab, paramValue } from './params';
import {
  addBackdoor,
  addCleanData,
  addCommon,
  addTraining,
  backdoorOf,
  backendOf,
  cleanDataOf,
  num,
  trainingOf,
  type CommonFlags,
} from './options';
import { execute } from './execute';

type Flags = CommonFlags & Record<string, string | boolean | undefined>;

function addDefense(parent: Command, d: Defense, mode: DefenseMode): void {
  const cmd = addCommon(
    parent.command(d.name).description(`${d.title}: ${d.description} Needs ${d.needs}. (${d.citation})`),
  ).requiredOption('--model <file>', 'the suspect (backdoored) model (.pth/.pth.tar/.safetensors)');
  addCleanData(cmd, 'clean data the defender has');
  for (const p of d.params) addParam(cmd, p);
  if (mode === 'detect' && d.inspectsImages)
    cmd.option('--inspect <files>', 'PNG/JPEG images of the model input size to check one by one, comma-separated: is each triggered?');
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
      ...(mode === 'detect' ? { mode } : {}),
      name: f.name,
      backend: backendOf(f),
      seed,
      model: f.model as string,
      ...cleanDataOf(f),
      backdoor: backdoorOf(f),
      training: trainingOf(f, d.training, seed),
      params,
      ...(typeof f.inspect === 'string' ? { inspect: f.inspect.split(',').filter(Boolean) } : {}),
    });
  });
}

/** What the registry declares, as data: `nad defenses --json`, and dist/defenses.json for the extension's wizard. */
export function describeDefenses(): DefenseInfo[] {
  return DEFENSES.map(({ name, title, description, needs, citation, modes, inspectsImages, params, training }) => ({
    name,
    title,
    description,
    needs,
    citation,
    modes,
    ...(inspectsImages ? { inspectsImages } : {}),
    params,
    training,
  }));
}

export function addDefendCommands(program: Command): void {
  const repairs = DEFENSES.filter((d) => d.modes.includes('repair'));
  const detects = DEFENSES.filter((d) => d.modes.includes('detect'));
  const defend = program.command('defend').description(`repair a backdoored model: ${repairs.map((d) => d.name).join(', ')}`);
  for (const d of repairs) addDefense(defend, d, 'repair');
  const detect = program
    .command('detect')
    .description(`detect a backdoor in a model or its inputs, without repairing it: ${detects.map((d) => d.name).join(', ')}`);
  for (const d of detects) addDefense(detect, d, 'detect');
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
        const how = d.modes.map((m) => (m === 'repair' ? 'nad defend' : 'nad detect')).join(', ');
        process.stdout.write(`${d.name.padEnd(14)} ${d.title}: ${d.description}\n${' '.repeat(15)}needs ${d.needs}; runs with ${how}\n`);
        for (const p of d.params)
          process.stdout.write(`${' '.repeat(15)}--${kebab(p.key)}  ${p.description} (default ${JSON.stringify(p.default)})\n`);
      }
    });
}
