// `nad`: the engine from the command line. Same jobs, same run folders as the extension.
import { Command } from 'commander';
import { BADNET_TRAINING, FINETUNE_TRAINING, NAD_TRAINING } from '../runs/config';
import { runDemo } from '../runs/demo';
import { RunStore } from '../runs/run-store';
import { RunCancelledError } from '../engine/train';
import { InputError } from '../engine/types';
import { FIXED_ARCHS, type ArchChoice } from '../engine/models';
import {
  addBackdoor,
  addCleanData,
  addCommon,
  addTraining,
  backdoorOf,
  backendOf,
  cleanDataOf,
  eraseSchedulesOf,
  num,
  trainingChangesOf,
  type CommonFlags,
} from './options';
import { createReporter } from './report';
import { addDefendCommands } from './defend';
import { addMatrixCommand, runMatrixCli } from './matrix';
import { demoMatrix } from '../runs/matrix/spec';
import { addAttackOptions, addAttacksCommand, attackFromFlags } from './attack';
import { controller, execute, printResult } from './execute';
import { addPreviewCommand } from './preview';
import { addSlurmCommands } from './slurm';
import { addDoctorCommand } from './doctor';

type Flags = CommonFlags & Record<string, string | boolean | undefined>;

/** The architecture; its classes, channels and image size come from the data when the run starts. */
function parseModelArch(value: string | undefined): ArchChoice {
  if (!value || value === 'auto') return 'auto';
  const m = /^wrn-(\d+)-(\d+)$/i.exec(value);
  if (m) return { arch: 'wrn', depth: Number(m[1]), widen: Number(m[2]) };
  if (value === 'cnn') return 'cnn';
  const fixed = FIXED_ARCHS.find((a) => a === value.toLowerCase());
  if (fixed) return fixed;
  throw new InputError(`--arch must be auto, cnn, ${FIXED_ARCHS.join(', ')} or wrn-DEPTH-WIDEN (e.g. wrn-16-1), got '${value}'`);
}

const program = new Command('nad')
  .description('Neural Attention Distillation: train backdoored classifiers, erase backdoors, measure ACC/ASR, inspect attention maps.')
  .showHelpAfterError();

addTraining(
  addBackdoor(
    addAttackOptions(
      addCommon(
        program
          .command('train')
          .description("train a backdoored model from scratch (the paper's train_badnet: poisoned data, no augmentation)"),
      ),
    )
      .requiredOption(
        '--data <path>',
        "training data: 'mnist', a CIFAR-10 or CIFAR-100 .bin/folder (CIFAR-100: fine labels, or path#coarse for 20), " +
          'a GTSRB folder (path#roi crops to the sign), a tiny-imagenet-200 folder, IDX files, or a folder of class folders',
      )
      .option('--test <path>', 'test data for ACC/ASR (default: the test split of --data)')
      .option(
        '--arch <arch>',
        'auto (per kind of data: WRN-16-1 for colour, WRN-10-1 for small grayscale; docs/defaults.md) | cnn | ' +
          'preact-resnet18 | resnet18 | vgg16-bn (BackdoorBench CIFAR models) | wrn-DEPTH-WIDEN (e.g. wrn-16-1, wrn-40-2)',
        'auto',
      ),
    true,
  ),
  BADNET_TRAINING,
  false,
  true,
).action(async (f: Flags, cmd: Command) => {
  const seed = num(f.seed, '--seed', { int: true });
  const arch = parseModelArch(f.arch as string);
  const attack = attackFromFlags(f, cmd);
  await execute(f, {
    kind: 'train',
    name: f.name,
    backend: backendOf(f),
    seed,
    data: f.data as string,
    test: (f.test as string) ?? (f.data as string),
    model: arch,
    backdoor: attack?.backdoor ?? backdoorOf(f),
    ...(attack ? { attack: attack.attack } : {}),
    training: trainingChangesOf(f, seed),
  });
});

addTraining(
  addBackdoor(
    addCleanData(
      addCommon(program.command('finetune').description('finetune a model on clean data (the NAD teacher: augmentation, no distillation)')),
    ).requiredOption('--model <file>', 'model to finetune (.pth/.pth.tar/.safetensors)'),
    false,
  ),
  FINETUNE_TRAINING,
  false,
  true,
).action(async (f: Flags) => {
  const seed = num(f.seed, '--seed', { int: true });
  await execute(f, {
    kind: 'finetune',
    name: f.name,
    backend: backendOf(f),
    seed,
    model: f.model as string,
    ...cleanDataOf(f),
    backdoor: backdoorOf(f),
    training: trainingChangesOf(f, seed),
  });
});

addTraining(
  addBackdoor(
    addCleanData(addCommon(program.command('erase').description('erase a backdoor with Neural Attention Distillation')))
      .requiredOption('--student <file>', 'the backdoored model (.pth/.pth.tar/.safetensors)')
      .option('--teacher <file>', 'the teacher; without it one is finetuned from the student first')
      .option(
        '--teacher-epochs <n>',
        `epochs when finetuning the teacher (default per kind of data; the paper: ${FINETUNE_TRAINING.epochs})`,
      ),
    false,
  ),
  NAD_TRAINING,
  true,
  true,
).action(async (f: Flags) => {
  const seed = num(f.seed, '--seed', { int: true });
  await execute(f, {
    kind: 'erase',
    name: f.name,
    backend: backendOf(f),
    seed,
    student: f.student as string,
    ...(f.teacher ? { teacher: f.teacher as string } : {}),
    ...cleanDataOf(f),
    backdoor: backdoorOf(f),
    ...eraseSchedulesOf(f, seed),
  });
});

addAttackOptions(
  addBackdoor(
    addCommon(program.command('eval').description('ACC on clean test images and ASR on triggered non-target-class images'))
      .requiredOption('--model <file>', 'model (.pth/.pth.tar/.safetensors)')
      .requiredOption('--data <path>', 'test data'),
    false,
  ),
).action(async (f: Flags, cmd: Command) => {
  // --attack scores the model with that attack's test-time trigger (e.g. a clean model's ASR under each attack:
  // the baseline an attack's ASR is read against); the attack's sources (Refool's reflections) come from --data.
  const attack = attackFromFlags(f, cmd);
  await execute(f, {
    kind: 'eval',
    name: f.name,
    backend: backendOf(f),
    seed: num(f.seed, '--seed', { int: true }),
    model: f.model as string,
    test: f.data as string,
    backdoor: attack?.backdoor ?? backdoorOf(f),
  });
});

addBackdoor(
  addCommon(
    program
      .command('attention')
      .description('attention maps (per residual group, clean and triggered) of one or more models, as PNG heatmaps and JSON'),
  )
    .requiredOption('--model <files...>', 'model file(s)')
    .requiredOption('--data <path>', 'images to look at (test split)')
    .option('--count <n>', 'number of images', '4'),
  false,
).action(async (f: Flags) => {
  const models = (f.model as unknown as string[]) ?? [];
  await execute(f, {
    kind: 'attention',
    name: f.name,
    backend: backendOf(f),
    seed: num(f.seed, '--seed', { int: true }),
    models,
    test: f.data as string,
    count: num(f.count as string, '--count', { int: true, min: 1, max: 64 }),
    backdoor: backdoorOf(f),
  });
});

program
  .command('runs')
  .description('list the runs stored in ./.nad/runs (or --runs-dir), newest first')
  .option('--runs-dir <dir>', 'runs folder')
  .option('--json', 'as JSON')
  .action((f: Flags) => {
    const { runs, broken } = new RunStore(process.cwd(), f.runsDir).list();
    if (f.json) {
      process.stdout.write(JSON.stringify({ runs, broken }, null, 2) + '\n');
      return;
    }
    if (!runs.length && !broken.length) process.stdout.write('no runs yet\n');
    for (const r of runs) {
      const s = r.status;
      const nums = s.acc !== undefined ? `  ACC ${s.acc.toFixed(2)}  ASR ${(s.asr ?? NaN).toFixed(2)}` : '';
      process.stdout.write(`${r.id}  ${s.kind.padEnd(8)} ${s.state.padEnd(11)}${nums}${s.error ? `  (${s.error})` : ''}\n`);
    }
    for (const b of broken) process.stdout.write(`${b.id}  unreadable: ${b.problem}\n`);
  });

addDefendCommands(program);
addAttacksCommand(program);
addPreviewCommand(program);
addMatrixCommand(program);
addSlurmCommands(program);
addDoctorCommand(program);

addCommon(
  program.command('demo').description('the whole story on the embedded MNIST digits: backdoor, teacher, NAD; prints the ACC/ASR table'),
)
  .option('--quick', 'shorter schedules (a smoke test)')
  .option('--arch <arch>', 'the model: wrn-10-1 (default), cnn (the small CNN, which NAD leaves at 11.7% ASR) or any train --arch')
  .option('--matrix', 'a small attack x defense matrix instead (BadNets, Blend, SIG, WaNet x none, finetuning, Fine-Pruning, NAD; 2 seeds)')
  .action(async (f: Flags) => {
    if (f.matrix && f.arch !== undefined)
      throw new InputError('--arch is for the demo; the matrix (--matrix) trains WRN-10-1, the demo model');
    if (f.matrix) {
      await runMatrixCli(demoMatrix(), f);
      return;
    }
    if (f.executor === 'slurm') throw new InputError('the demo runs on this machine; with --executor slurm, give --matrix');
    const reporter = createReporter({ quiet: Boolean(f.quiet) });
    const t0 = Date.now();
    const r = await runDemo(
      {
        backend: backendOf(f),
        seed: num(f.seed, '--seed', { int: true }),
        quick: Boolean(f.quick),
        model: f.arch === undefined ? undefined : parseModelArch(f.arch as string),
      },
      { cwd: process.cwd(), runsDir: f.runsDir, onEvent: reporter.onEvent, signal: controller.signal },
    );
    reporter.stop();
    printResult(f, { ...r, seconds: (Date.now() - t0) / 1000 });
    if (!f.json)
      process.stdout.write(
        `\nbackend ${r.backend}; ${((Date.now() - t0) / 1000).toFixed(0)} s; runs: ${r.runIds.join(', ')} (see \`nad runs\`)\n`,
      );
  });

program
  .command('bench')
  .description(
    "training (NAD step) and inference speed per backend, and each defense's and attack's unit of work, with PyTorch measured in the same run when importable",
  )
  .option('--json', 'as JSON')
  .option('--steps <n>', 'timed NAD steps per backend', '8')
  .option(
    '--only <parts>',
    "nad (per-backend NAD step), defenses (each defense's unit of work vs its PyTorch twin), attacks (CL's PGD step, WaNet's warp, each vs its twin) or all",
    'all',
  )
  .option('--defense-steps <n>', 'timed calls per defense or attack unit (after 1 warm-up)', '3')
  .option('--backend <names>', 'backends to measure, comma-separated (default tensorflow,native,wasm,cpu)')
  .action(async (f: Flags) => {
    const { runBenchmarkCli, benchBackendsFlag } = await import('./bench');
    await runBenchmarkCli({
      backends: benchBackendsFlag(f.backend as string | undefined),
      json: Boolean(f.json),
      steps: num(f.steps as string, '--steps', { int: true, min: 1 }),
      defenseSteps: num(f.defenseSteps as string, '--defense-steps', { int: true, min: 1 }),
      only: f.only as 'nad' | 'defenses' | 'attacks' | 'all',
    });
  });

async function main(): Promise<void> {
  try {
    await program.parseAsync(process.argv);
    // The wasm backend's thread pool would keep the process alive.
    process.exitCode = 0;
    process.stdout.write('', () => process.exit(0));
  } catch (e) {
    if (e instanceof RunCancelledError) {
      process.stderr.write('nad: cancelled; the run folder is kept and marked cancelled\n');
      process.exit(130);
    }
    const msg = e instanceof Error ? e.message : String(e);
    process.stderr.write(`nad: error: ${msg}\n`);
    if (!(e instanceof InputError) && process.env.NAD_DEBUG && e instanceof Error) process.stderr.write(`${e.stack}\n`);
    process.exit(e instanceof InputError ? 2 : 1);
  }
}

void main();
