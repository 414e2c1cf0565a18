// Attack x defense matrices: the file is checked against the registries with messages naming the field; a
// small matrix on real digits runs each cell as an ordinary run; stopped mid-cell and run again, it keeps
// the finished cells and resumes the stopped one in its own folder; the table's statistics and exports.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { RunCancelledError } from '../../src/engine/train';
import { cellConfig, runMatrix, type MatrixProgress } from '../../src/runs/matrix/run';
import { cellKey, matrixCells, paperTable1, parseMatrix, REGISTRY_TITLES, type MatrixSpec } from '../../src/runs/matrix/spec';
import { matrixTable, stat, toCsv, toLatex, toMarkdown } from '../../src/runs/matrix/table';
import { listMatrices, readMatrixFolder } from '../../src/runs/matrix/folder';
import { matrixSchema } from '../../src/runs/matrix/schema';
import { ATTACKS } from '../../src/engine/attacks/registry';
import { DEFENSES } from '../../src/engine/defenses/registry';
import { RunStore } from '../../src/runs/run-store';
import { tempFolder } from '../fixtures/data/paths';
import { writeSmallMnist } from '../integration/fixtures/small-mnist';

const ROOT = join(__dirname, '..', '..');

test('a matrix file is checked against the registries; each problem names the file and the field', () => {
  const ok = { name: 'm', data: 'mnist', attacks: ['badnets', { name: 'blend', params: { blendAlpha: 0.1 } }], defenses: ['none', 'nad'] };
  const spec = parseMatrix(ok, 'm.nad-matrix.json', '/base');
  assert.deepEqual(
    spec.attacks.map((a) => a.name),
    ['badnets', 'blend'],
  );
  assert.deepEqual(spec.seeds, [0]);
  assert.equal(spec.cleanRatio, 0.05);
  assert.deepEqual(matrixCells(spec).map(cellKey), ['badnets/train/seed0', 'badnets/nad/seed0', 'blend/train/seed0', 'blend/nad/seed0']);
  const problem = (patch: Record<string, unknown>): RegExp | string => {
    try {
      parseMatrix({ ...ok, ...patch }, 'm.nad-matrix.json', '/base');
    } catch (e) {
      return (e as Error).message;
    }
    return 'accepted';
  };
  assert.match(String(problem({ attacks: ['badnetz'] })), /m\.nad-matrix\.json: attacks\[0\]: unknown attack 'badnetz' \(known: badnets/);
  assert.match(String(problem({ defenses: ['none', 'nad', 'nad'] })), /"defenses" lists 'nad' twice/);
  assert.match(
    String(problem({ defenses: ['fine-prune'] })),
    /defenses\[0\]: 'fine-prune' is not a defense that repairs a model \(known: none, nad/,
  );
  assert.match(
    String(problem({ defenses: [{ name: 'nad', params: { betaz: 1 } }] })),
    /defenses\[0\]: defense nad: unknown parameter 'betaz'/,
  );
  assert.match(String(problem({ seeds: [] })), /"seeds" must be a non-empty list/);
  // A defense may change its own schedule (after defenseTraining); an attack's is the matrix's "training".
  const own = parseMatrix({ ...ok, defenses: ['none', { name: 'nad', training: { epochs: 7 } }] }, 'm.nad-matrix.json', '/base');
  assert.deepEqual(own.defenses[1].training, { epochs: 7 });
  assert.match(
    String(problem({ defenses: [{ name: 'nad', training: 7 }] })),
    /defenses\[0\]\.training must be an object of training settings/,
  );
  assert.match(
    String(problem({ attacks: [{ name: 'badnets', training: {} }] })),
    /attacks\[0\]\.training: an attack's schedule is the matrix's "training"/,
  );
  assert.match(String(problem({ epochs: 3 })), /unknown field "epochs"/);
  assert.match(String(problem({ cleanCount: 10, cleanRatio: 0.1 })), /give "cleanCount" or "cleanRatio", not both/);
  const paper = parseMatrix({ preset: 'paper-table-1', data: 'cifar' }, 'p.nad-matrix.json', '/base');
  assert.equal(paper.data, '/base/cifar');
  assert.deepEqual(
    paper.defenses.map((d) => d.name),
    paperTable1('x').defenses.map((d) => d.name),
  );
});

test('table: mean ± sample std over seeds, the best defense of a row by DER, and the exports', () => {
  assert.deepEqual(stat([1, 3]), { mean: 2, std: Math.SQRT2, n: 2 });
  assert.equal(stat([NaN]), undefined);
  const spec = parseMatrix(
    { name: 'm', data: 'mnist', seeds: [0, 1], attacks: ['badnets'], defenses: ['none', 'finetune', 'nad'] },
    'm',
    '/',
  );
  const o = (defense: string | undefined, seed: number, acc: number, asr: number, der?: number) => ({
    cell: { attack: 'badnets', defense, seed },
    state: 'finished' as const,
    runId: `${defense}-${seed}`,
    acc,
    asr,
    der,
  });
  const t = matrixTable(
    spec,
    [
      o(undefined, 0, 90, 100),
      o(undefined, 1, 92, 98),
      o('finetune', 0, 89, 60, 0.7),
      o('finetune', 1, 89, 40, 0.78),
      o('nad', 0, 88, 4, 0.97),
      { cell: { attack: 'badnets', defense: 'nad', seed: 1 }, state: 'failed' as const, error: 'boom' },
    ],
    REGISTRY_TITLES,
  );
  const row = t.cells[0];
  assert.deepEqual(row[0].acc, { mean: 91, std: Math.SQRT2, n: 2 });
  assert.equal(row[2].seeds, 1);
  assert.deepEqual(row[2].failed, [{ seed: 1, error: 'boom' }]);
  assert.deepEqual(
    row.map((c) => Boolean(c.best)),
    [false, false, true],
  );
  const md = toMarkdown(t);
  assert.match(md, /\| BadNets \| 91\.00 ± 1\.41 \/ 99\.00 ± 1\.41 \| 89\.00 ± 0\.00 \/ 50\.00 ± 14\.14 \| \*\*88\.00 \/ 4\.00\*\* \|/);
  const csv = toCsv(t).trim().split('\n');
  assert.equal(csv.length, 1 + 3);
  assert.match(csv[3], /^badnets,nad,1,88,0,4,0,,,0\.97,0,1,seed 1: boom$/);
  const tex = toLatex(t);
  assert.match(tex, /\\toprule/);
  assert.match(tex, /\\textbf\{88\.00\} & \\textbf\{4\.00\}/);
  assert.match(tex, /\\cmidrule\(lr\)\{2-3\} \\cmidrule\(lr\)\{4-5\} \\cmidrule\(lr\)\{6-7\}/);
});

test('a small matrix on real digits: cells are runs; stopped mid-cell, it keeps the finished cells and resumes the stopped one', async () => {
  const t = tempFolder('matrix');
  try {
    const data = writeSmallMnist(join(t.dir, 'digits'), { train: 300, test: 100, repoRoot: ROOT });
    const spec: MatrixSpec = parseMatrix(
      {
        name: 'small',
        data,
        attacks: ['badnets'],
        defenses: ['none', 'finetune'],
        cleanCount: 60,
        training: { epochs: 1, batchSize: 32, augment: false },
        defenseTraining: { epochs: 2, batchSize: 32, augment: false },
      },
      'small.nad-matrix.json',
      t.dir,
    );
    // First sitting: stop during the finetuning cell, after its first epoch was saved.
    const controller = new AbortController();
    const seen: MatrixProgress['what'][] = [];
    await assert.rejects(
      runMatrix(spec, {
        cwd: t.dir,
        signal: controller.signal,
        onEvent: (e) => {
          if (e.type === 'epoch' && e.phase === 'teacher' && e.epoch === 1) controller.abort();
        },
        onProgress: (p) => seen.push(p.what),
      }),
      RunCancelledError,
    );
    assert.deepEqual(seen, ['start', 'end', 'start']);
    const store = new RunStore(t.dir);
    assert.equal(store.list().runs.length, 2);
    const between = readMatrixFolder(listMatrices(store.runsDir).map((m) => m.dir)[0], store.runsDir);
    assert.deepEqual(
      between.outcomes.map((o) => o.state),
      ['finished', 'failed'],
    );
    assert.match(between.outcomes[1].error ?? '', /cancelled/);
    // Second sitting: the trained model is kept, the finetuning run continues in its own folder.
    const progress: Array<[string, string]> = [];
    const r = await runMatrix(spec, { cwd: t.dir, onProgress: (p) => progress.push([cellKey(p.cell), p.what]) });
    assert.deepEqual(progress, [
      ['badnets/train/seed0', 'cached'],
      ['badnets/train/seed0', 'end'],
      ['badnets/finetune/seed0', 'resume'],
      ['badnets/finetune/seed0', 'end'],
    ]);
    assert.equal(store.list().runs.length, 2, 'no new run folder: the stopped cell resumed in its own');
    assert.deepEqual(
      r.outcomes.map((o) => o.state),
      ['finished', 'finished'],
    );
    const finetune = store.read(r.outcomes[1].runId as string);
    assert.ok(!('problem' in finetune));
    assert.deepEqual(finetune.config['matrix'], { id: r.id, cell: 'badnets/finetune/seed0' });
    assert.equal(finetune.config['model'], join(store.runsDir, r.outcomes[0].runId as string, 'model', 'model.safetensors'));
    const metrics = readFileSync(join(finetune.dir, 'metrics.jsonl'), 'utf8');
    assert.match(metrics, /resumed \(epochs done: model 1\)/);
    const cells = JSON.parse(readFileSync(join(r.dir, 'cells.json'), 'utf8')) as { cells: Record<string, string> };
    assert.deepEqual(Object.keys(cells.cells).sort(), ['badnets/finetune/seed0', 'badnets/train/seed0']);
    // Between the sittings the folder read by path showed the stopped cell as failed (cancelled), the first one finished.
    const folder = readMatrixFolder(r.dir, store.runsDir);
    assert.deepEqual(
      folder.outcomes.map((o) => [o.state, o.acc]),
      r.outcomes.map((o) => [o.state, o.acc]),
    );
    assert.deepEqual(folder.spec, JSON.parse(JSON.stringify(spec)));
    const table = matrixTable(spec, r.outcomes);
    assert.equal(table.cells[0][1].acc?.mean, r.outcomes[1].acc);
    assert.ok((r.outcomes[1].der ?? -1) >= 0);
  } finally {
    t.remove();
  }
});

test('a cell refused before its run starts is failed with its reason, in the result and in the folder; the matrix goes on', async () => {
  const t = tempFolder('matrix-refused');
  try {
    const data = writeSmallMnist(join(t.dir, 'digits'), { train: 100, test: 40, repoRoot: ROOT });
    const spec = parseMatrix(
      {
        name: 'refused',
        data,
        attacks: ['badnets'],
        defenses: ['none', 'finetune', { name: 'nad', params: { teacherEpochs: 1 } }],
        cleanCount: 30,
        training: { epochs: 1, batchSize: 32, augment: false },
        // Checked by the one config builder when the defense cells are built: every defense cell is refused.
        defenseTraining: { epochs: 0 },
      },
      'refused.nad-matrix.json',
      t.dir,
    );
    const r = await runMatrix(spec, { cwd: t.dir });
    assert.deepEqual(
      r.outcomes.map((o) => o.state),
      ['finished', 'failed', 'failed'],
    );
    assert.match(r.outcomes[1].error ?? '', /epochs/);
    const folder = readMatrixFolder(r.dir, new RunStore(t.dir).runsDir);
    assert.deepEqual(
      folder.outcomes.map((o) => [o.state, o.error]),
      r.outcomes.map((o) => [o.state, o.error]),
    );
    assert.equal(matrixTable(spec, r.outcomes).cells[0][1].failed.length, 1);
  } finally {
    t.remove();
  }
});

test('the JSON Schema of matrix files offers every attack, every repairing defense and their parameters', () => {
  const schema = matrixSchema() as {
    properties: Record<
      string,
      {
        items?: {
          anyOf: Array<{ const?: string; properties?: { name: { const: string }; params: { properties: Record<string, unknown> } } }>;
        };
      }
    >;
  };
  const names = (key: string): string[] => (schema.properties[key].items?.anyOf ?? []).flatMap((s) => (s.const ? [s.const] : []));
  assert.deepEqual(
    names('attacks'),
    ATTACKS.map((a) => a.name),
  );
  assert.deepEqual(names('defenses'), ['none', ...DEFENSES.filter((d) => d.modes.includes('repair')).map((d) => d.name)]);
  assert.ok(!names('defenses').includes('strip'), 'a detector is not a matrix column');
  const nad = schema.properties['defenses'].items?.anyOf.find((s) => s.properties?.name.const === 'nad');
  assert.deepEqual(Object.keys(nad?.properties?.params.properties ?? {}).sort(), ['teacher', 'teacherEpochs']);
});

test("a defense cell of an attack that made its trigger while poisoning is scored with that trigger (the trained run's trigger.json)", () => {
  const t = tempFolder('matrix-made-trigger');
  try {
    const spec = parseMatrix(
      { name: 'made', data: 'mnist', attacks: ['trojan'], defenses: ['none', 'finetune'], cleanCount: 30 },
      'made.nad-matrix.json',
      t.dir,
    );
    const cell = { attack: 'trojan', defense: 'finetune', seed: 0 };
    const model = join(t.dir, 'train-run', 'model', 'model.safetensors');
    mkdirSync(dirname(model), { recursive: true });
    // Without trigger.json: the attack's own trigger (the fixed trojan mask).
    const triggerOf = (c: ReturnType<typeof cellConfig>): Record<string, unknown> =>
      'backdoor' in c ? (c.backdoor.trigger as unknown as Record<string, unknown>) : {};
    assert.equal(triggerOf(cellConfig(spec, cell, model, 'made-0000'))['pattern'], undefined);
    const pattern = Array.from({ length: 28 * 28 }, (_, i) => (i % 7 === 0 ? 200 : 0));
    writeFileSync(join(t.dir, 'train-run', 'trigger.json'), JSON.stringify({ name: 'trojanTrigger', pattern }));
    const made = triggerOf(cellConfig(spec, cell, model, 'made-0000'));
    assert.equal(made['name'], 'trojanTrigger');
    assert.deepEqual(made['pattern'], pattern);
    writeFileSync(join(t.dir, 'train-run', 'trigger.json'), '{"name": "trojanTr');
    assert.throws(() => cellConfig(spec, cell, model, 'made-0000'), /trigger\.json: cannot read the trigger the attack made/);
  } finally {
    t.remove();
  }
});
