// Runs on Slurm, against a real one-node Slurm on this machine (scripts/setup-slurm.sh; the tests that need
// it skip, saying why, when it cannot start): a 2x2 matrix on digits goes through sbatch and gives the local
// run's table; a job that fails in Slurm and a job sbatch refuses leave the run failed with the reason;
// scancel cancels; without sbatch on PATH the message names it and no run folder is made.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { runMatrix } from '../../src/runs/matrix/run';
import { parseMatrix, type MatrixSpec } from '../../src/runs/matrix/spec';
import { matrixTable } from '../../src/runs/matrix/table';
import { buildJobConfig } from '../../src/runs/config-file';
import { RunStore } from '../../src/runs/run-store';
import { submitMatrix, submitRun, waitForMatrix } from '../../src/runs/executors/slurm-submit';
import {
  cancelRunJob,
  errorTail,
  phaseOf,
  readJobRecord,
  sbatchArgs,
  sbatchScript,
  SLURM_FILES,
  SlurmMissingError,
  trackRuns,
} from '../../src/runs/executors/slurm';
import { tempFolder } from '../fixtures/data/paths';
import { writeNpy } from '../fixtures/data/npy-file';
import { writeSmallMnist } from '../integration/fixtures/small-mnist';

const ROOT = join(__dirname, '..', '..');
const CLI = join(ROOT, 'dist', 'cli.js');

/** Why the Slurm tests cannot run here, or undefined when Slurm is up (started by the setup script if need be). */
function slurmProblem(): string | undefined {
  if (!existsSync(CLI)) return 'dist/cli.js is missing: run `npm run build` first';
  const r = spawnSync('bash', [join(ROOT, 'scripts', 'setup-slurm.sh')], { encoding: 'utf8', timeout: 180_000 });
  return r.status === 0 ? undefined : `a local Slurm could not start (scripts/setup-slurm.sh: ${(r.stderr || String(r.error)).trim()})`;
}
const NO_SLURM = slurmProblem();
const skipNoSlurm = NO_SLURM ? `skipped: ${NO_SLURM}` : false;

function tinyMatrix(dir: string, name: string): MatrixSpec {
  const data = writeSmallMnist(join(dir, 'digits'), { train: 20, test: 6, repoRoot: ROOT });
  return parseMatrix(
    {
      name,
      data,
      attacks: ['badnets', 'blend'],
      defenses: ['none', 'finetune'],
      cleanCount: 30,
      training: { epochs: 1, batchSize: 40, augment: false },
      defenseTraining: { epochs: 1, batchSize: 30, augment: false },
    },
    `${name}.nad-matrix.json`,
    dir,
  );
}

async function until<T>(what: string, seconds: number, get: () => T | undefined | Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < seconds * 2; i++) {
    const v = await get();
    if (v !== undefined) return v;
    await sleep(500);
  }
  throw new Error(`timed out after ${seconds} s waiting for ${what}`);
}

test('the job script and the sbatch options: checked, each problem naming the option', () => {
  const script = sbatchScript(
    '/shared/runs/r1',
    'm-badnets-s0',
    { partition: 'gpu', gpus: 1, time: '2:00:00' },
    { node: '/usr/bin/node', cli: '/opt/nad/dist/cli.js', cwd: '/shared' },
  );
  for (const line of [
    '#SBATCH --job-name=nad-m-badnets-s0',
    '#SBATCH --output=/shared/runs/r1/slurm.out',
    '#SBATCH --error=/shared/runs/r1/slurm.err',
    '#SBATCH --requeue',
    '#SBATCH --partition=gpu',
    '#SBATCH --gpus=1',
    '#SBATCH --time=2:00:00',
    'exec /usr/bin/node /opt/nad/dist/cli.js run-folder /shared/runs/r1',
  ])
    assert.ok(script.split('\n').includes(line), `the script has '${line}':\n${script}`);
  assert.throws(() => sbatchArgs({ time: 'two hours' }), /--time: 'two hours' is not a Slurm time limit/);
  assert.throws(() => sbatchArgs({ gpus: -1 }), /--gpus must be a whole number/);
  assert.throws(() => sbatchArgs({ partition: 'a b' }), /--partition: 'a b' is not a Slurm partition name/);
  assert.throws(() => sbatchArgs({ extraArgs: ['mem=8G'] }), /--sbatch-arg: 'mem=8G' is not an sbatch option/);
  assert.deepEqual(
    ['PENDING', 'REQUEUED', 'RUNNING', 'COMPLETING', 'COMPLETED', 'FAILED', 'CANCELLED by 0', 'TIMEOUT', 'PREEMPTED', 'NODE_FAIL'].map(
      phaseOf,
    ),
    ['queued', 'queued', 'running', 'running', 'ended', 'ended', 'ended', 'ended', 'ended', 'ended'],
  );
});

test('without sbatch on PATH: a clear message naming it, exit code 2, and no run folder', async () => {
  const t = tempFolder('slurm-missing');
  try {
    const file = join(t.dir, 'm.nad-matrix.json');
    writeFileSync(file, JSON.stringify({ name: 'm', data: 'mnist', attacks: ['badnets'], defenses: ['none'] }));
    const spec = parseMatrix(JSON.parse(readFileSync(file, 'utf8')), file, t.dir);
    await assert.rejects(
      submitMatrix(spec, { cwd: t.dir, slurm: {}, cli: CLI, env: { PATH: '/nonexistent' } }),
      (e: unknown) => e instanceof SlurmMissingError && /'sbatch' was not found on PATH/.test(e.message),
    );
    const r = spawnSync(process.execPath, [CLI, 'matrix', file, '--executor', 'slurm'], {
      cwd: t.dir,
      encoding: 'utf8',
      env: { PATH: '/nonexistent', HOME: t.dir },
    });
    if (!existsSync(CLI)) return;
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /nad: error: 'sbatch' was not found on PATH, so runs cannot go to Slurm: .*--executor local/);
    assert.equal(existsSync(join(t.dir, '.nad', 'runs')), false);
  } finally {
    t.remove();
  }
});

test(
  'a 2x2 matrix on digits through sbatch: every cell a Slurm job in its run folder, the table the local run gives',
  { skip: skipNoSlurm },
  async () => {
    const t = tempFolder('slurm-matrix');
    try {
      const spec = tinyMatrix(t.dir, 'slurm2x2');
      const lines: string[] = [];
      const ctx = { cwd: t.dir, slurm: { time: '10' }, cli: CLI, pollMs: 500, onLine: (l: string) => lines.push(l) };
      const t0 = Date.now();
      const sub = await submitMatrix(spec, ctx);
      const runs = new RunStore(t.dir).list().runs;
      assert.equal(runs.length, 4, 'one run folder per cell, made at submission');
      for (const r of runs) {
        for (const f of [SLURM_FILES.script, SLURM_FILES.job, 'config.json', 'status.json'])
          assert.ok(existsSync(join(r.dir, f)), `${r.id}/${f}`);
      }
      const defense = runs.find(
        (r) => r.config['kind'] === 'defend' && (r.config['matrix'] as { cell: string }).cell === 'badnets/finetune/seed0',
      );
      const train = runs.find((r) => (r.config['matrix'] as { cell: string }).cell === 'badnets/train/seed0');
      assert.ok(defense && train);
      assert.deepEqual(readJobRecord(defense.dir)?.after, [readJobRecord(train.dir)?.jobId], 'the defense waits for its model');
      // The same matrix run locally in another folder meanwhile: the same table, number for number (same seeds, same engine).
      const local = tempFolder('slurm-matrix-local');
      try {
        const [r, l] = await Promise.all([waitForMatrix(sub, ctx), runMatrix(tinyMatrix(local.dir, 'slurm2x2'), { cwd: local.dir })]);
        process.stderr.write(`2x2 matrix through Slurm (beside the same matrix run locally): ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
        assert.deepEqual(
          r.outcomes.map((o) => o.state),
          ['finished', 'finished', 'finished', 'finished'],
          lines.join('\n'),
        );
        for (const o of r.outcomes) {
          const out = readFileSync(join(t.dir, '.nad', 'runs', o.runId as string, SLURM_FILES.out), 'utf8');
          assert.match(out, /ACC/, 'the job printed its result into slurm.out');
        }
        const a = matrixTable(spec, r.outcomes);
        const b = matrixTable(spec, l.outcomes);
        assert.equal(a.cells.length, 2);
        assert.equal(a.cells[0].length, 2);
        assert.deepEqual(
          a.cells.map((row) => row.map((c) => [c.acc?.mean, c.asr?.mean])),
          b.cells.map((row) => row.map((c) => [c.acc?.mean, c.asr?.mean])),
        );
      } finally {
        local.remove();
      }
      // Submitted again: every cell is kept, no job is submitted.
      const again: string[] = [];
      await submitMatrix(spec, { ...ctx, onLine: (l) => again.push(l) });
      assert.ok(
        again.every((l) => /kept from an earlier sitting/.test(l)),
        again.join('\n'),
      );
    } finally {
      t.remove();
    }
  },
);

test(
  "a defense cell submitted before its attack made its trigger (Trojan's optimised one) is scored with that trigger",
  { skip: skipNoSlurm },
  async () => {
    const t = tempFolder('slurm-trojan');
    try {
      const data = writeSmallMnist(join(t.dir, 'digits'), { train: 20, test: 6, repoRoot: ROOT });
      // The paper's trojan square is CIFAR's: on 28x28 digits the mask is a file (a square in the corner).
      const mask = new Float32Array(28 * 28);
      for (let y = 22; y < 27; y++) for (let x = 22; x < 27; x++) mask[y * 28 + x] = 128;
      const maskFile = join(t.dir, 'mask.npy');
      writeNpy(maskFile, mask, [28, 28, 1]);
      const params = { trojanTrigger: 'optimised', trojanMaskFile: maskFile, trojanEpochs: 1, trojanSteps: 3 };
      const trojan = { name: 'trojan', params };
      const spec = parseMatrix(
        {
          name: 'slurm-trojan',
          data,
          attacks: [trojan],
          defenses: ['finetune'],
          cleanCount: 30,
          training: { epochs: 1, batchSize: 40, augment: false },
          defenseTraining: { epochs: 1, batchSize: 30, augment: false },
        },
        'slurm-trojan.nad-matrix.json',
        t.dir,
      );
      const ctx = { cwd: t.dir, slurm: { time: '10' }, cli: CLI, pollMs: 500 };
      const sub = await submitMatrix(spec, ctx);
      const cellRun = (cell: string): string => {
        const r = new RunStore(t.dir).list().runs.find((x) => (x.config['matrix'] as { cell: string }).cell === cell);
        assert.ok(r, cell);
        return r.dir;
      };
      const defenseDir = cellRun('trojan/finetune/seed0');
      const submitted = JSON.parse(readFileSync(join(defenseDir, 'config.json'), 'utf8')) as { backdoor: { trigger: unknown } };
      const r = await waitForMatrix(sub, ctx);
      assert.deepEqual(
        r.outcomes.map((o) => o.state),
        ['finished', 'finished'],
        r.outcomes.map((o) => o.error ?? '').join('\n'),
      );
      const made = JSON.parse(readFileSync(join(cellRun('trojan/train/seed0'), 'trigger.json'), 'utf8')) as unknown;
      const ran = JSON.parse(readFileSync(join(defenseDir, 'config.json'), 'utf8')) as { backdoor: { trigger: unknown } };
      assert.notDeepEqual(submitted.backdoor.trigger, made, 'at submission the optimised trigger did not exist yet');
      assert.deepEqual(ran.backdoor.trigger, made, "the defense's config.json records the trigger its attack made");
    } finally {
      t.remove();
    }
  },
);

test('a job that fails in Slurm, and one sbatch refuses: the run is failed with the reason', { skip: skipNoSlurm }, async () => {
  const t = tempFolder('slurm-fail');
  try {
    const data = writeSmallMnist(join(t.dir, 'digits'), { train: 5, test: 2, repoRoot: ROOT });
    const config = buildJobConfig({ kind: 'train', name: 'doomed', data, training: { epochs: 1 } }, 'the test');
    // The job's CLI is not where the script says (dist not on the shared filesystem): node fails before writing a status.
    const doomed = submitRun(config, { cwd: t.dir, slurm: {}, cli: join(t.dir, 'missing', 'cli.js') });
    const store = new RunStore(t.dir);
    const failed = await until('the failed job to be settled', 60, async () => {
      await trackRuns([doomed.runDir]);
      const run = store.read(doomed.runId);
      return 'problem' in run || run.status.state === 'running' ? undefined : run;
    });
    assert.equal(failed.status.state, 'failed');
    assert.match(
      failed.status.error ?? '',
      new RegExp(`Slurm job ${doomed.jobId} ended FAILED \\(NonZeroExitCode\\) before the run finished`),
    );
    assert.match(failed.status.error ?? '', /slurm\.err: Error: Cannot find module '.*missing\/cli\.js'/);
    // A partition that does not exist: sbatch refuses at once.
    assert.throws(
      () => submitRun(config, { cwd: t.dir, slurm: { partition: 'nosuchpartition' }, cli: CLI }),
      /sbatch refused the job: invalid partition/i,
    );
    const refused = store.list().runs.find((r) => r.id !== doomed.runId);
    assert.ok(refused);
    assert.equal(refused.status.state, 'failed');
    assert.match(refused.status.error ?? '', /sbatch refused the job: invalid partition/i);
  } finally {
    t.remove();
  }
});

test('scancel cancels a queued job and the run is marked cancelled', { skip: skipNoSlurm }, async () => {
  const t = tempFolder('slurm-cancel');
  try {
    const data = writeSmallMnist(join(t.dir, 'digits'), { train: 5, test: 2, repoRoot: ROOT });
    const config = buildJobConfig({ kind: 'train', name: 'later', data, training: { epochs: 1 } }, 'the test');
    // Held in the queue for an hour: it never takes a CPU.
    const job = submitRun(config, { cwd: t.dir, slurm: { extraArgs: ['--begin=now+1hour'] }, cli: CLI });
    assert.equal((await trackRuns([job.runDir])).get(job.runDir)?.phase, 'queued');
    assert.equal(new RunStore(t.dir).list().runs[0].status.state, 'running', 'the queue owns the folder until the job starts');
    await cancelRunJob(job.runDir);
    const state = await until('the job to be cancelled', 30, async () => {
      const s = (await trackRuns([job.runDir])).get(job.runDir);
      return s?.phase === 'ended' ? s : undefined;
    });
    assert.equal(state.state, 'CANCELLED');
    const run = new RunStore(t.dir).read(job.runId);
    assert.ok(!('problem' in run));
    assert.equal(run.status.state, 'cancelled');
    assert.match(run.status.error ?? '', /ended CANCELLED/);
    assert.equal(readdirSync(job.runDir).includes('model'), false);
  } finally {
    t.remove();
  }
});

test('a requeued job resumes its run from the last saved epoch, in the same folder', { skip: skipNoSlurm }, async () => {
  const t = tempFolder('slurm-requeue');
  try {
    const data = writeSmallMnist(join(t.dir, 'digits'), { train: 30, test: 5, repoRoot: ROOT });
    const config = buildJobConfig(
      { kind: 'train', name: 'requeued', data, training: { epochs: 4, batchSize: 30, augment: false } },
      'the test',
    );
    const job = submitRun(config, { cwd: t.dir, slurm: {}, cli: CLI });
    const metrics = join(job.runDir, 'metrics.jsonl');
    const epochsIn = (): number => (existsSync(metrics) ? (readFileSync(metrics, 'utf8').match(/"type":"epoch"/g)?.length ?? 0) : 0);
    // Once the first epoch's model is saved, Slurm takes the job back (as preemption with requeue does) and starts it again.
    await until('the first epoch', 120, () => (epochsIn() >= 1 ? true : undefined));
    const requeue = spawnSync('scontrol', ['requeue', job.jobId], { encoding: 'utf8' });
    assert.equal(requeue.status, 0, requeue.stderr);
    // Slurm holds a requeued job for two minutes (reason BeginTime); the test lets it start at once.
    await until('the job to be back in the queue', 30, async () =>
      (await trackRuns([job.runDir])).get(job.runDir)?.phase === 'queued' ? true : undefined,
    );
    spawnSync('scontrol', ['update', `JobId=${job.jobId}`, 'StartTime=now'], { encoding: 'utf8' });
    const state = await until('the requeued job to end', 180, async () => {
      const s = (await trackRuns([job.runDir])).get(job.runDir);
      return s?.phase === 'ended' ? s : undefined;
    });
    assert.equal(state.state, 'COMPLETED', errorTail(job.runDir, 20));
    const run = new RunStore(t.dir).read(job.runId);
    assert.ok(!('problem' in run));
    assert.equal(run.status.state, 'finished');
    const text = readFileSync(metrics, 'utf8');
    assert.match(text, /resumed \(epochs done: model [123]\)/, 'the second start continued from a saved epoch');
    assert.equal(epochsIn(), 4, 'each epoch once in metrics.jsonl');
    assert.equal(new RunStore(t.dir).list().runs.length, 1, 'no second run folder');
  } finally {
    t.remove();
  }
});
