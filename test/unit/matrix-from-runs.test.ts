// Runs chosen in the history as an attack x defense table (src/runs/matrix/from-runs.ts), on run folders
// written by the run store as the jobs write them: rows from the attack that made each model (a defense's
// own config names only the trigger it was scored with), columns per defense, seeds folded into mean ± std,
// a defense run with different settings in a column of its own, detection runs left out with the reason.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { runsMatrix } from '../../src/runs/matrix/from-runs';
import { formatTable } from '../../src/runs/matrix/table';
import { MODEL_FILES, RunStore, type RunSummary } from '../../src/runs/run-store';

const root = mkdtempSync(join(tmpdir(), 'nad-matrix-runs-'));
after(() => rmSync(root, { recursive: true, force: true }));
const store = new RunStore(root, join(root, '.nad', 'runs'));

const grid = { trigger: { name: 'gridTrigger' }, targetType: 'all2one', targetLabel: 5 };
const training = { epochs: 10, batchSize: 64, betas: [0, 0, 0] };

function run(kind: 'train' | 'defend' | 'erase' | 'finetune', config: Record<string, unknown>, result: Record<string, number>): RunSummary {
  const h = store.create(kind, { kind, backdoor: grid, ...config }, String(config['name']));
  h.finish(result);
  const read = store.list().runs.find((r) => r.dir === h.dir);
  assert.ok(read);
  return read;
}

test('chosen runs: attacks as rows, defenses as columns, seeds as mean ± std, differing settings split, detection left out', () => {
  const badnets = run('train', { name: 'badnets', seed: 0, attack: { name: 'badnets', params: {} } }, { acc: 90, asr: 100 });
  const blend = run('train', { name: 'blend', seed: 0, attack: { name: 'blend', params: { alpha: 0.2 } } }, { acc: 88, asr: 99 });
  const modelOf = (r: RunSummary): string => join(r.dir, MODEL_FILES.model);
  const ft = (seed: number, of: RunSummary, acc: number, asr: number, epochs = 10): RunSummary =>
    run(
      'defend',
      { name: `ft${seed}`, seed, method: 'finetune', model: modelOf(of), training: { ...training, epochs } },
      { acc, asr, der: 0.9 },
    );
  const chosen = [
    badnets,
    blend,
    ft(0, badnets, 89, 10),
    ft(1, badnets, 87, 20),
    ft(0, blend, 86, 50),
    // Same defense, other settings: its own column, titled by what differs.
    ft(2, badnets, 80, 2, 20),
    // NAD on a model that is not among the runs: the row comes from its trigger.
    run('erase', { name: 'nad', seed: 0, student: '/elsewhere/student.pth.tar', training }, { acc: 84.57, asr: 2.23, der: 0.98 }),
    run('defend', { name: 'strip', seed: 0, method: 'strip', mode: 'detect', model: modelOf(badnets) }, { acc: 90, asr: 100 }),
  ];
  const titles = {
    attack: (n: string) => ({ badnets: 'BadNets', blend: 'Blend' })[n],
    defense: (n: string) => ({ finetune: 'Finetuning', nad: 'NAD' })[n],
  };
  const m = runsMatrix(chosen, store.list().runs, titles);
  const t = m.table;
  assert.deepEqual(
    t.attacks.map((a) => a.title),
    ['BadNets', 'Blend', 'gridTrigger'],
  );
  assert.deepEqual(
    t.defenses.map((d) => d.title),
    ['No defense', 'Finetuning (training.epochs 10)', 'Finetuning (training.epochs 20)', 'NAD'],
  );
  assert.deepEqual(m.skipped, [{ id: chosen[7].id, why: 'a detection run repairs no model' }]);
  assert.deepEqual(t.seeds, [0, 1, 2]);
  const cell = (a: number, d: number) => t.cells[a][d];
  assert.equal(cell(0, 0).acc?.mean, 90);
  // BadNets x finetuning: seeds 0 and 1 folded: mean and sample std.
  assert.equal(cell(0, 1).seeds, 2);
  assert.equal(cell(0, 1).acc?.mean, 88);
  assert.ok(Math.abs((cell(0, 1).asr?.std ?? 0) - Math.SQRT2 * 5) < 1e-9);
  assert.equal(cell(0, 2).asr?.mean, 2);
  assert.equal(cell(1, 1).asr?.mean, 50);
  assert.equal(cell(1, 2).seeds, 0);
  assert.equal(cell(2, 3).acc?.mean, 84.57);
  // Every cell links its runs; the table exports as the matrix's does.
  assert.deepEqual(cell(0, 1).runIds, [chosen[2].id, chosen[3].id]);
  const md = formatTable(t, 'markdown');
  assert.match(md, /\| BadNets \| 90\.00 \/ 100\.00 \| \*\*88\.00 ± 1\.41 \/ 15\.00 ± 7\.07\*\* \| 80\.00 \/ 2\.00 \| – \|/);
});

test('one run, or runs of one defense with equal settings: one column, titled by the defense alone', () => {
  const a = run('train', { name: 'solo', seed: 3, attack: { name: 'wanet', params: {} } }, { acc: 91, asr: 95 });
  const m = runsMatrix([a], [a]);
  assert.deepEqual(
    m.table.defenses.map((d) => d.title),
    ['No defense'],
  );
  assert.deepEqual(m.table.seeds, [3]);
  assert.equal(m.table.cells[0][0].asr?.mean, 95);
});
