// Defaults per kind of data (src/runs/data-defaults.ts): CIFAR keeps the paper's values, and the CLI's
// configs of the README's CIFAR command lines resolve byte for byte to their config.json of before; 28x28 grayscale
// gets WRN-10-1, a teacher finetuned for one epoch at lr 0.1 and NAD with one epoch at lr 0.1 (both with the paper's
// crop/flip/cutout); explicit flags and config values win; config.json records the result.
// The real runs read ../shared (CIFAR) and Debian's dataset-fashion-mnist; each skips when it is absent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import * as tf from '@tensorflow/tfjs-core';
import { Command } from 'commander';
import { initBackend } from '../../src/engine/backend';
import { saveModelFile, specMetadata } from '../../src/engine/checkpoint';
import { createModel } from '../../src/engine/models';
import { BADNET_TRAINING, DEFAULT_BACKDOOR, FINETUNE_TRAINING, NAD_TRAINING } from '../../src/runs/config';
import { buildJobConfig, runConfigOf } from '../../src/runs/config-file';
import { DATA_DEFAULTS, dataKindOf, defaultTraining, resolveArch, resolveTraining } from '../../src/runs/data-defaults';
import { runJob } from '../../src/runs/jobs';
import {
  addBackdoor,
  addCleanData,
  addCommon,
  addTraining,
  backdoorOf,
  cleanDataOf,
  eraseSchedulesOf,
  num,
  trainingChangesOf,
} from '../../src/cli/options';
import { resolveDataDefaults } from '../../src/runs/jobs/resolve';
import { MODEL_FILES, RunHandle } from '../../src/runs/run-store';
import { CIFAR_DIR, FASHION_DIR, FIXTURES, SHARED, hasFashion, hasShared, tempFolder } from '../fixtures/data/paths';

const STUDENT = join(SHARED, 'models', 'nad-reference', 'wrn16-1_badnets-grid_target5.pth.tar');
const TEACHER = join(SHARED, 'models', 'nad-reference', 'wrn16-1_teacher-finetuned.pth.tar');
const cifarReady = (): boolean => hasShared() && existsSync(STUDENT) && existsSync(TEACHER);

test('the kind of data: one channel up to 32 px is small grayscale, anything else colour', () => {
  assert.equal(dataKindOf({ height: 32, channels: 3 }), 'colour');
  assert.equal(dataKindOf({ height: 64, channels: 3 }), 'colour');
  assert.equal(dataKindOf({ height: 28, channels: 1 }), 'grayscale-small');
  assert.equal(dataKindOf({ imageSize: 28, inChannels: 1 }), 'grayscale-small');
  assert.equal(dataKindOf({ imageSize: 64, inChannels: 1 }), 'colour');
  assert.deepEqual(resolveArch('auto', 'colour'), { arch: 'wrn', depth: 16, widen: 1 });
  assert.deepEqual(resolveArch('auto', 'grayscale-small'), { arch: 'wrn', depth: 10, widen: 1 });
  // A named architecture is kept on any data.
  assert.equal(resolveArch('cnn', 'grayscale-small'), 'cnn');
  assert.equal(resolveArch('preact-resnet18', 'colour'), 'preact-resnet18');
});

test("colour data keeps the paper's schedules, key for key and in order", () => {
  for (const [role, paper] of [
    ['train', BADNET_TRAINING],
    ['finetune', FINETUNE_TRAINING],
    ['nad', NAD_TRAINING],
  ] as const) {
    assert.equal(JSON.stringify(defaultTraining(role, 'colour', 3)), JSON.stringify({ ...paper, seed: 3 }), role);
  }
});

/** NAD on small grayscale data: one epoch at 0.1 where the paper has two, the paper's crop/flip/cutout (docs/defaults.md). */
const ONE_EPOCH_AT_01 = {
  lrSchedule: [
    [0, 0.1],
    [1, 0.01],
    [20, 0.0001],
  ] as Array<[number, number]>,
};
/** Its teacher: that one epoch at 0.1 and no more (the paper's 0.01 epochs give a Fashion-MNIST teacher its backdoor back). */
const ONE_EPOCH_TEACHER = { epochs: 1, ...ONE_EPOCH_AT_01 };

test("small grayscale: the teacher finetunes one epoch at lr 0.1, NAD has one epoch at 0.1, both with the paper's augmentation; training as the paper", () => {
  assert.deepEqual(defaultTraining('train', 'grayscale-small'), BADNET_TRAINING);
  assert.deepEqual(defaultTraining('finetune', 'grayscale-small'), { ...FINETUNE_TRAINING, ...ONE_EPOCH_TEACHER });
  assert.deepEqual(defaultTraining('nad', 'grayscale-small'), { ...NAD_TRAINING, ...ONE_EPOCH_AT_01 });
  assert.deepEqual(DATA_DEFAULTS['grayscale-small'].training.finetune, ONE_EPOCH_TEACHER);
  assert.deepEqual(DATA_DEFAULTS['grayscale-small'].training.nad, ONE_EPOCH_AT_01);
  // Crop/flip/cutout on for both (the paper's); the paper's betas and NAD epochs stay.
  assert.equal(defaultTraining('finetune', 'grayscale-small').augment, true);
  assert.equal(defaultTraining('nad', 'grayscale-small').augment, true);
  assert.deepEqual(defaultTraining('nad', 'grayscale-small').betas, NAD_TRAINING.betas);
  assert.equal(defaultTraining('nad', 'grayscale-small').epochs, NAD_TRAINING.epochs);
  assert.equal(defaultTraining('finetune', 'grayscale-small').epochs, 1);
});

test('what is given wins over the kind; --lr replaces the first step only', () => {
  const t = resolveTraining('nad', 'grayscale-small', { augment: true, epochs: 3, lr: 0.05, betas: [1, 2, 3] }, 7);
  assert.equal(t.augment, true);
  assert.equal(t.epochs, 3);
  assert.equal(t.seed, 7);
  assert.deepEqual(t.betas, [1, 2, 3]);
  assert.deepEqual(t.lrSchedule, [
    [0, 0.05],
    [1, 0.01],
    [20, 0.0001],
  ]);
  // A schedule given replaces the kind's whole.
  assert.deepEqual(resolveTraining('nad', 'grayscale-small', { lrSchedule: [[0, 0.02]] }, 0).lrSchedule, [[0, 0.02]]);
  assert.ok(!('lr' in t), 'the rate is recorded in the schedule, not as "lr"');
  // A complete schedule (a run's config.json) resolves to itself.
  const complete = resolveTraining('finetune', 'colour', {}, 0);
  assert.deepEqual(resolveTraining('finetune', 'grayscale-small', complete, 0), complete);
});

test('the CLI passes on only the flags given; --augment and --no-augment both reach the config', () => {
  const parse = (args: string[]): Record<string, string | boolean | undefined> => {
    const cmd = addTraining(new Command('erase').exitOverride(), NAD_TRAINING, true, true);
    cmd.parse(args, { from: 'user' });
    return cmd.opts();
  };
  assert.deepEqual(trainingChangesOf(parse([]), 0), { hflip: true, seed: 0 });
  assert.deepEqual(trainingChangesOf(parse(['--epochs', '5', '--augment', '--lr', '0.02']), 1), {
    epochs: 5,
    lr: 0.02,
    augment: true,
    hflip: true,
    seed: 1,
  });
  assert.equal(trainingChangesOf(parse(['--no-augment']), 0).augment, false);
  assert.throws(() => trainingChangesOf(parse(['--epochs', '0']), 0), /--epochs must be >= 1/);
  // A config file's schedule is kept as given: the data's kind fills in the rest when the run starts.
  const given = buildJobConfig({ kind: 'train', data: 'mnist', training: { epochs: 2 } }, 'x.nad.json');
  assert.deepEqual(given.kind === 'train' && given.training, { epochs: 2 });
  assert.throws(
    () => runConfigOf({ kind: 'train', data: 'mnist', training: { epochs: 2 } }, 'config.json'),
    /"training" has no "batchSize"/,
  );
});

type Flags = Record<string, string | boolean | undefined>;

/** The CLI's flags parsed by commander with the CLI's own option builders (src/cli/main.ts). */
function flagsOf(kind: 'train' | 'finetune' | 'erase', args: readonly string[]): Flags {
  const base = addCommon(new Command(kind).exitOverride());
  const cmd =
    kind === 'erase'
      ? addTraining(
          addBackdoor(
            addCleanData(base).requiredOption('--student <file>').option('--teacher <file>').option('--teacher-epochs <n>'),
            false,
          ),
          NAD_TRAINING,
          true,
          true,
        )
      : kind === 'finetune'
        ? addTraining(addBackdoor(addCleanData(base).requiredOption('--model <file>'), false), FINETUNE_TRAINING, false, true)
        : addTraining(
            addBackdoor(base.requiredOption('--data <path>').option('--test <path>').option('--arch <arch>', '', 'auto'), true),
            BADNET_TRAINING,
            false,
            true,
          );
  cmd.parse([...args], { from: 'user' });
  return cmd.opts();
}

/** What `nad <kind>` hands the one builder for these flags (as src/cli/main.ts's actions do). */
function cliConfig(kind: 'train' | 'finetune' | 'erase', args: readonly string[]): Record<string, unknown> {
  const f = flagsOf(kind, args);
  const seed = num(f.seed as string, '--seed', { int: true });
  const common = { name: f.name, backend: f.backend, seed, backdoor: backdoorOf(f) };
  if (kind === 'train')
    return { kind, ...common, data: f.data, test: f.test ?? f.data, model: 'auto', training: trainingChangesOf(f, seed) };
  if (kind === 'finetune') return { kind, ...common, model: f.model, ...cleanDataOf(f), training: trainingChangesOf(f, seed) };
  return {
    kind,
    ...common,
    student: f.student,
    ...(f.teacher ? { teacher: f.teacher } : {}),
    ...cleanDataOf(f),
    ...eraseSchedulesOf(f, seed),
  };
}

test("CIFAR: the CLI's configs of the README's command lines resolve to their config.json of before per-kind defaults, byte for byte", async (t) => {
  if (!cifarReady()) return t.skip(`needs ../shared (${CIFAR_DIR} and the NAD reference models)`);
  const before = JSON.parse(
    readFileSync(join(FIXTURES, '..', 'data-defaults', 'cifar-configs-before.json'), 'utf8')
      .split('$SHARED')
      .join(SHARED),
  ) as { configs: Record<string, Record<string, unknown>> };
  const train = join(CIFAR_DIR, 'train.bin');
  const testBin = join(CIFAR_DIR, 'test.bin');
  const data = ['--data', train, '--test', testBin];
  const lines: Array<[string, 'train' | 'finetune' | 'erase', string[]]> = [
    ['erase-line', 'erase', ['--student', STUDENT, '--teacher', TEACHER, ...data, '--clean-count', '2500', '--trigger', 'gridTrigger']],
    ['erase-noteacher', 'erase', ['--student', STUDENT, ...data, '--clean-ratio', '0.05']],
    ['finetune-line', 'finetune', ['--model', STUDENT, ...data, '--clean-count', '2500', '--trigger', 'gridTrigger', '--epochs', '10']],
    ['train-line', 'train', [...data, '--epochs', '1']],
  ];
  lines[0][2].push('--target', '5', '--epochs', '20', '--seed', '0');
  lines[2][2].push('--target', '5');
  for (const [name, kind, args] of lines) {
    const { config } = await resolveDataDefaults(buildJobConfig(cliConfig(kind, [...args, '--name', name]), 'the command line'));
    // As the run store writes config.json (kind first), without what the run layer adds (backend, provenance).
    const fields: Record<string, unknown> = { ...config };
    const written = JSON.parse(JSON.stringify({ kind: config.kind, ...fields })) as Record<string, unknown>;
    const old = before.configs[name];
    if (kind === 'train') {
      // `auto` is recorded as the architecture it chose: on colour data, as before, WRN-16-1.
      assert.deepEqual(written['model'], { arch: 'wrn', depth: 16, widen: 1 });
      assert.equal(JSON.stringify({ ...written, model: 'auto' }), JSON.stringify(old), name);
    } else assert.equal(JSON.stringify(written), JSON.stringify(old), name);
  }
});

/** The first `train` and `test` images of Fashion-MNIST as an IDX folder. */
function fashionSubset(dir: string, train: number, testCount: number): string {
  mkdirSync(dir, { recursive: true });
  const cut = (file: string, n: number, header: number, per: number): void => {
    const all = gunzipSync(readFileSync(join(FASHION_DIR, file)));
    const out = Buffer.from(all.subarray(0, header + n * per));
    out.writeUInt32BE(n, 4);
    writeFileSync(join(dir, file), gzipSync(out));
  };
  cut('train-images-idx3-ubyte.gz', train, 16, 28 * 28);
  cut('train-labels-idx1-ubyte.gz', train, 8, 1);
  cut('t10k-images-idx3-ubyte.gz', testCount, 16, 28 * 28);
  cut('t10k-labels-idx1-ubyte.gz', testCount, 8, 1);
  return dir;
}

test('Fashion-MNIST: a config file that says only epochs trains WRN-10-1 and erases with the small-grayscale schedules; config.json records it all', async (t) => {
  if (!hasFashion()) return t.skip(`needs Debian's dataset-fashion-mnist in ${FASHION_DIR}`);
  await initBackend('auto');
  const folder = tempFolder('defaults-fashion');
  const tensors = tf.memory().numTensors;
  try {
    const data = fashionSubset(join(folder.dir, 'fashion'), 200, 60);
    const common = { backend: 'auto', seed: 0, test: data, backdoor: DEFAULT_BACKDOOR } as const;
    const trained = await runJob(buildJobConfig({ ...common, kind: 'train', data, training: { epochs: 1 } }, 'train.nad.json'), {
      cwd: folder.dir,
    });
    const trainConfig = runConfigOf(JSON.parse(readFileSync(join(trained.runDir, 'config.json'), 'utf8')), 'config.json');
    assert.equal(trainConfig.kind, 'train');
    if (trainConfig.kind !== 'train') return;
    assert.deepEqual(trainConfig.model, { arch: 'wrn', depth: 10, widen: 1 });
    assert.equal(JSON.stringify(trainConfig.training), JSON.stringify({ ...BADNET_TRAINING, epochs: 1 }));
    const erased = await runJob(
      buildJobConfig(
        {
          ...common,
          kind: 'erase',
          student: trained.modelPath,
          data,
          cleanCount: 40,
          // No teacherTraining: the kind's teacher finetunes its one epoch.
          training: { epochs: 1, batchSize: 32 },
        },
        'erase.nad.json',
      ),
      { cwd: folder.dir },
    );
    const eraseConfig = runConfigOf(JSON.parse(readFileSync(join(erased.runDir, 'config.json'), 'utf8')), 'config.json');
    if (eraseConfig.kind !== 'erase') return assert.fail('an erase run');
    assert.deepEqual(eraseConfig.teacherTraining, { ...FINETUNE_TRAINING, ...ONE_EPOCH_TEACHER, betas: [0, 0, 0] });
    assert.deepEqual(eraseConfig.training, { ...NAD_TRAINING, epochs: 1, batchSize: 32, ...ONE_EPOCH_AT_01 });
    assert.deepEqual(
      erased.table.map((r) => r.model),
      ['backdoored', 'teacher', 'erased'],
    );
    for (const r of erased.table) assert.ok(r.acc >= 0 && r.acc <= 100 && r.asr >= 0 && r.asr <= 100, JSON.stringify(r));
    // Explicit values win on the same data: the paper's augmentation, asked for.
    const asked = await runJob(
      buildJobConfig(
        { ...common, kind: 'finetune', model: trained.modelPath, data, cleanCount: 40, training: { epochs: 1, augment: true } },
        'finetune.nad.json',
      ),
      { cwd: folder.dir },
    );
    const finetuneConfig = runConfigOf(JSON.parse(readFileSync(join(asked.runDir, 'config.json'), 'utf8')), 'config.json');
    assert.equal(finetuneConfig.kind === 'finetune' && finetuneConfig.training.augment, true);
    assert.equal(tf.memory().numTensors, tensors, 'no tensor left behind');
  } finally {
    folder.remove();
  }
});

test('resuming: an older run whose config.json says `auto` keeps the architecture its saved epochs were built with', async () => {
  await initBackend('auto');
  const folder = tempFolder('defaults-resume');
  const tensors = tf.memory().numTensors;
  try {
    // Before per-kind defaults, `auto` on 28x28 grayscale built the small CNN, and config.json said "auto".
    const old = buildJobConfig({ kind: 'train', data: 'mnist', model: 'auto', training: { ...BADNET_TRAINING, epochs: 2 } }, 'config.json');
    const run = new RunHandle('old-train', folder.dir, 'train');
    const cnn = createModel({ arch: 'cnn', numClasses: 10, inChannels: 1, imageSize: 28 }, 0);
    const file = join(folder.dir, MODEL_FILES.model);
    mkdirSync(dirname(file), { recursive: true });
    await saveModelFile(file, cnn.params.toStateDict(), { ...specMetadata(cnn.spec), epoch: '1' });
    cnn.dispose();
    const resumed = await resolveDataDefaults(old, { run, epochsDone: { [MODEL_FILES.model]: 1 } });
    assert.equal(resumed.config.kind === 'train' && typeof resumed.config.model === 'object' && resumed.config.model.arch, 'cnn');
    // No epoch saved (starting over, or a folder prepared before it ran): today's `auto`.
    const fresh = await resolveDataDefaults(old, { run, epochsDone: {} });
    assert.deepEqual(fresh.config.kind === 'train' && fresh.config.model, { arch: 'wrn', depth: 10, widen: 1 });
    // A run that recorded its choice keeps it, whatever the saved file.
    const recorded = buildJobConfig({ ...old, model: { arch: 'wrn', depth: 10, widen: 1 } }, 'config.json');
    const kept = await resolveDataDefaults(recorded, { run, epochsDone: { [MODEL_FILES.model]: 1 } });
    assert.deepEqual(kept.config.kind === 'train' && kept.config.model, { arch: 'wrn', depth: 10, widen: 1 });
    assert.equal(tf.memory().numTensors, tensors, 'no tensor left behind');
  } finally {
    folder.remove();
  }
});
