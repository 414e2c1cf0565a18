// `nad defend <method>` and `nad defenses` as a user runs them: commands and flags come from the
// defense registry; the JSON result has the repaired model's ACC/ASR and the defense's own report.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { PNG } from 'pngjs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readRunEvents, RunStore } from '../../src/runs/run-store';
import { DEFENSES } from '../../src/engine/defenses/registry';
import { writeSmallMnist, trainSmallModel } from '../integration/fixtures/small-mnist';

const ROOT = join(__dirname, '..', '..');
const CLI = join(ROOT, 'dist', 'cli.js');
let dir = '';
let data = '';
let model = '';

before(() => {
  if (!existsSync(CLI)) execFileSync(process.execPath, [join(ROOT, 'scripts', 'build.mjs')], { cwd: ROOT, stdio: 'inherit' });
  dir = mkdtempSync(join(tmpdir(), 'nad-defend-'));
  data = writeSmallMnist(join(dir, 'digits'), { train: 300, test: 100, repoRoot: ROOT });
  model = join(trainSmallModel(data, join(dir, '.nad', 'runs'), 'suspect', dir), 'model', 'model.safetensors');
});

function nad(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: dir, encoding: 'utf8', timeout: 300_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('nad defenses lists every defense of the registry with its parameters', () => {
  const o = nad(['defenses', '--json']);
  assert.equal(o.code, 0, o.stderr);
  const list = JSON.parse(o.stdout) as Array<{ name: string; modes: string[]; params: Array<{ key: string }> }>;
  assert.deepEqual(
    list.map((d) => d.name),
    DEFENSES.map((d) => d.name),
  );
  assert.deepEqual(list.find((d) => d.name === 'strip')?.modes, ['detect']);
  assert.deepEqual(list.find((d) => d.name === 'nad')?.modes, ['repair']);
  assert.deepEqual(
    list.find((d) => d.name === 'fine-pruning')?.params.map((p) => p.key),
    ['maxAccDrop', 'step'],
  );
});

test('nad defend fine-pruning: flags from its parameters, the pruning curve stored, the report in --json', () => {
  const o = nad([
    'defend',
    'fine-pruning',
    '--model',
    model,
    '--data',
    data,
    '--clean-count',
    '200',
    '--epochs',
    '1',
    '--no-augment',
    '--max-acc-drop',
    '0.2',
    '--json',
    '-q',
  ]);
  assert.equal(o.code, 0, o.stderr);
  const r = JSON.parse(o.stdout) as {
    acc: number;
    asr: number;
    ra: number;
    der: number;
    runDir: string;
    prunedChannels: number;
    totalChannels: number;
    table: Array<{ model: string; acc: number; asr: number; ra: number }>;
  };
  assert.ok(r.acc > 10 && r.acc <= 100, `ACC ${r.acc}`);
  assert.ok(r.asr >= 0 && r.asr <= 100, `ASR ${r.asr}`);
  assert.ok(r.prunedChannels >= 0 && r.prunedChannels < r.totalChannels, `${r.prunedChannels} of ${r.totalChannels}`);
  assert.deepEqual(
    r.table.map((row) => row.model),
    ['backdoored', 'pruned', 'fine-pruned'],
  );
  // RA of the repaired model, and BackdoorBench's DER from the first and last rows, as fractions.
  const [first, last] = [r.table[0], r.table[2]];
  assert.equal(r.ra, last.ra);
  assert.ok(r.ra >= 0 && r.ra <= 100 - r.asr + 1e-9, `RA ${r.ra} with ASR ${r.asr}`);
  assert.ok(Math.abs(r.der - (Math.max(0, (first.asr - last.asr) / 100) - Math.max(0, (first.acc - last.acc) / 100) + 1) / 2) < 1e-12);
  assert.ok(r.der >= 0 && r.der <= 1);
  const events = readRunEvents(r.runDir).events;
  const curve = events.find((e) => e.type === 'series');
  assert.ok(curve && curve.type === 'series' && curve.points.length > 1 && curve.points[0].x === 0, 'no pruning curve stored');
  assert.ok(events.some((e) => e.type === 'epoch' && e.phase === 'finetune'));
});

test('nad defend refuses bad parameter values with exit code 2, naming the flag, before any run', () => {
  const o = nad(['defend', 'fine-pruning', '--model', model, '--data', data, '--max-acc-drop', '2', '--json']);
  assert.equal(o.code, 2, o.stderr);
  assert.match(o.stderr, /--max-acc-drop must be <= 1, got 2/);
  const unknown = nad(['defend', 'no-such-defense', '--model', model]);
  assert.notEqual(unknown.code, 0);
  assert.match(unknown.stderr, /unknown command 'no-such-defense'/);
});

test.after(() => rmSync(dir, { recursive: true, force: true }));

test('nad detect strip: a detection report in --json, the charts stored, no model saved; a repairing defense is not a detector', () => {
  const o = nad([
    'detect',
    'strip',
    '--model',
    model,
    '--data',
    data,
    '--clean-count',
    '200',
    '--overlays',
    '8',
    '--threshold-count',
    '100',
    '--detect-count',
    '60',
    '--json',
    '-q',
  ]);
  assert.equal(o.code, 0, o.stderr);
  const r = JSON.parse(o.stdout) as {
    runDir: string;
    acc: number;
    auc: number;
    frr: number;
    far: number;
    threshold: number;
    table: unknown[];
  };
  assert.ok(r.auc >= 0 && r.auc <= 1, `AUC ${r.auc}`);
  assert.ok(Number.isFinite(r.threshold));
  assert.equal(r.table.length, 1, 'a detector reports the suspect model only');
  assert.ok(!existsSync(join(r.runDir, 'model', 'model.safetensors')), 'a detection run saved a model');
  const run = new RunStore('', join(r.runDir, '..')).read(r.runDir.split(/[\\/]/).pop() as string);
  assert.ok(!('problem' in run));
  assert.equal(run.config['mode'], 'detect');
  const kinds = readRunEvents(r.runDir).events.map((e) => e.type);
  assert.ok(kinds.includes('facts') && kinds.includes('chart'), kinds.join(','));
  const wrong = nad(['detect', 'fine-pruning', '--model', model, '--data', data]);
  assert.notEqual(wrong.code, 0);
  assert.match(wrong.stderr, /unknown command 'fine-pruning'|error/i);
});

test('nad detect strip --inspect: each given image gets its entropy and verdict against the threshold; the wrong size is refused naming the file', () => {
  // Two digits of the test split as PNGs (grey: R = G = B), one with a 3x3 white square in the corner.
  const raw = readFileSync(join(data, 't10k-images-idx3-ubyte'));
  const png = (k: number, square: boolean, file: string, side = 28): string => {
    const img = new PNG({ width: side, height: side });
    for (let y = 0; y < side; y++)
      for (let x = 0; x < side; x++) {
        const v = square && y >= side - 4 && x >= side - 4 && y < side - 1 && x < side - 1 ? 255 : (raw[16 + k * 784 + y * 28 + x] ?? 0);
        const o = 4 * (y * side + x);
        img.data[o] = img.data[o + 1] = img.data[o + 2] = v;
        img.data[o + 3] = 255;
      }
    writeFileSync(join(dir, file), PNG.sync.write(img));
    return join(dir, file);
  };
  const files = [png(0, false, 'digit.png'), png(1, true, 'digit-square.png')];
  const args = ['detect', 'strip', '--model', model, '--data', data, '--clean-count', '200', '--overlays', '8', '--threshold-count', '100'];
  const o = nad([...args, '--detect-count', '0', '--inspect', files.join(','), '--json', '-q']);
  assert.equal(o.code, 0, o.stderr);
  const r = JSON.parse(o.stdout) as {
    runDir: string;
    threshold: number;
    inspected: Array<{ file: string; entropy: number; triggered: boolean }>;
  };
  assert.deepEqual(
    r.inspected.map((v) => v.file),
    ['digit.png', 'digit-square.png'],
  );
  for (const v of r.inspected) {
    assert.ok(Number.isFinite(v.entropy) && v.entropy >= 0, `entropy ${v.entropy}`);
    assert.equal(v.triggered, v.entropy < r.threshold);
  }
  const events = readRunEvents(r.runDir).events;
  const shown = events.find((e) => e.type === 'images');
  assert.ok(shown && shown.type === 'images');
  assert.equal(shown.images.length, 2);
  assert.deepEqual(
    shown.images.map((i) => i.marked),
    r.inspected.map((v) => v.triggered),
  );
  // No test images were scored: no histogram, no ROC.
  assert.ok(!events.some((e) => e.type === 'chart' && e.id.startsWith('strip-')));
  // What made the run: the version, the engine, and the SHA-256 of every input it names.
  const config = JSON.parse(readFileSync(join(r.runDir, 'config.json'), 'utf8')) as {
    provenance: {
      version: string;
      node: string;
      tfjs: string;
      kernels: string;
      inputs: Array<{ role: string; path: string; sha256: string; files?: number }>;
    };
  };
  const p = config.provenance;
  assert.equal(p.version, (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version);
  assert.equal(p.node, process.version);
  assert.match(p.tfjs, /^\d+\.\d+\.\d+/);
  assert.match(p.kernels, /^[0-9a-f]{16}$/);
  const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');
  const byRole = new Map(p.inputs.map((i) => [i.role, i]));
  assert.equal(byRole.get('model')?.sha256, sha(readFileSync(model)));
  assert.equal(byRole.get('inspected 2')?.sha256, sha(readFileSync(files[1])));
  // A folder: over each file's relative path and contents, in path order.
  const names = readdirSync(data).sort();
  const h = createHash('sha256');
  for (const n of names) h.update(n + '\0').update(readFileSync(join(data, n)));
  assert.deepEqual(
    { sha256: byRole.get('data')?.sha256, files: byRole.get('data')?.files },
    { sha256: h.digest('hex'), files: names.length },
  );
  const big = png(0, false, 'digit-32.png', 32);
  const wrong = nad([...args, '--inspect', big, '--json', '-q']);
  assert.equal(wrong.code, 2, wrong.stderr);
  assert.match(wrong.stderr, /digit-32\.png: the image is 32x32 but the model takes 28x28 images/);
  const nc = nad(['detect', 'neural-cleanse', '--model', model, '--data', data, '--inspect', files[0]]);
  assert.notEqual(nc.code, 0);
  assert.match(nc.stderr, /unknown option '--inspect'/);
});
