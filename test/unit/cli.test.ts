// The `nad` CLI as a user runs it: the paper's numbers on the authors' checkpoints, and bad input that
// must end with a message naming the file and the problem, a non-zero exit, and no run marked finished.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RunStore } from '../../src/runs/run-store';
import { CIFAR_DIR, SHARED, hasShared } from '../fixtures/data/paths';

const ROOT = join(__dirname, '..', '..');
const CLI = join(ROOT, 'dist', 'cli.js');
const MODELS = join(SHARED, 'models', 'nad-reference');
const STUDENT = join(MODELS, 'wrn16-1_badnets-grid_target5.pth.tar');
const TEACHER = join(MODELS, 'wrn16-1_teacher-finetuned.pth.tar');
const TEST_BIN = join(CIFAR_DIR, 'test.bin');
const skipShared = !(hasShared() && existsSync(STUDENT)) && '../shared absent';

before(() => {
  if (!existsSync(CLI)) execFileSync(process.execPath, [join(ROOT, 'scripts', 'build.mjs')], { cwd: ROOT, stdio: 'inherit' });
});

interface Outcome {
  code: number | null;
  stdout: string;
  stderr: string;
  runs: RunStore;
}

function nad(args: string[]): Outcome {
  const cwd = mkdtempSync(join(tmpdir(), 'nad-cli-'));
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8', timeout: 300_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, runs: new RunStore(cwd) };
}

function assertFailed(o: Outcome, ...patterns: RegExp[]): void {
  assert.notEqual(o.code, 0, `exit code ${o.code}; stderr: ${o.stderr}`);
  for (const p of patterns) assert.match(o.stderr, p);
  const { runs } = o.runs.list();
  for (const r of runs) assert.notEqual(r.status.state, 'finished', `run ${r.id} marked finished`);
}

test("nad eval reproduces the PyTorch reference on the authors' checkpoints (ACC/ASR within 0.3)", { skip: skipShared }, () => {
  // RA (robust accuracy: triggered non-target images classified as their true label) from the same
  // PyTorch reference, extended with that one line.
  const expected: Array<[string, number, number, number]> = [
    [STUDENT, 86.29, 100.0, 0.0],
    [TEACHER, 86.14, 2.7, 86.01],
  ];
  for (const [model, acc, asr, ra] of expected) {
    const o = nad(['eval', '--model', model, '--data', TEST_BIN, '--trigger', 'gridTrigger', '--target', '5', '--json']);
    assert.equal(o.code, 0, o.stderr);
    const r = JSON.parse(o.stdout) as { acc: number; asr: number; ra: number; backend: string; runDir: string };
    assert.ok(Math.abs(r.acc - acc) <= 0.3, `ACC ${r.acc} vs ${acc}`);
    assert.ok(Math.abs(r.ra - ra) <= 0.3, `RA ${r.ra} vs ${ra}`);
    assert.ok(Math.abs(r.asr - asr) <= 0.3, `ASR ${r.asr} vs ${asr}`);
    assert.match(r.backend, /wasm|tensorflow|cpu/);
    const status = JSON.parse(readFileSync(join(r.runDir, 'status.json'), 'utf8')) as { state: string; acc: number };
    assert.equal(status.state, 'finished');
    assert.equal(status.acc, r.acc);
    assert.ok(existsSync(join(r.runDir, 'attention', 'maps.json')));
  }
});

test('short trigger names are accepted, unknown ones are refused with the valid names', { skip: skipShared }, () => {
  const ok = nad(['eval', '--model', STUDENT, '--data', TEST_BIN, '--trigger', 'grid', '--target', '5', '--json', '-q']);
  assert.equal(ok.code, 0, ok.stderr);
  assertFailed(nad(['eval', '--model', STUDENT, '--data', TEST_BIN, '--trigger', 'sparkles']), /unknown trigger 'sparkles'/, /gridTrigger/);
});

test(
  "nad eval --attack scores a model with that attack's test trigger; --attack and --trigger together are refused",
  { skip: skipShared },
  () => {
    const grid = nad(['eval', '--model', STUDENT, '--data', TEST_BIN, '--attack', 'badnets', '--json', '-q']);
    assert.equal(grid.code, 0, grid.stderr);
    const g = JSON.parse(grid.stdout) as { asr: number; runDir: string };
    assert.ok(Math.abs(g.asr - 100) <= 0.3, `BadNets' default trigger is the grid the student was trained with: ASR ${g.asr}`);
    const blend = nad(['eval', '--model', STUDENT, '--data', TEST_BIN, '--attack', 'blend', '--blend-alpha', '0.3', '--json', '-q']);
    assert.equal(blend.code, 0, blend.stderr);
    const b = JSON.parse(blend.stdout) as { asr: number; runDir: string };
    assert.ok(b.asr < 50, `the student's backdoor is the grid, not a blended pattern: ASR ${b.asr}`);
    const config = JSON.parse(readFileSync(join(b.runDir, 'config.json'), 'utf8')) as { backdoor: { trigger: Record<string, unknown> } };
    assert.equal(config.backdoor.trigger['name'], 'blend');
    assert.equal(config.backdoor.trigger['alpha'], 0.3);
    assertFailed(
      nad(['eval', '--model', STUDENT, '--data', TEST_BIN, '--attack', 'badnets', '--trigger', 'grid']),
      /--attack or --trigger, not both/,
    );
  },
);

test('truncated, random-bytes and foreign checkpoints: clear errors naming the file', { skip: skipShared }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'nad-bad-ck-'));
  const truncated = join(dir, 'truncated.pth.tar');
  writeFileSync(truncated, readFileSync(STUDENT).subarray(0, 1000));
  assertFailed(nad(['eval', '--model', truncated, '--data', TEST_BIN]), /truncated\.pth\.tar/, /truncated|ends|incomplete/i);
  const random = join(dir, 'random.pth');
  writeFileSync(random, Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 2654435761) >>> 24)));
  assertFailed(nad(['eval', '--model', random, '--data', TEST_BIN]), /random\.pth/, /not a PyTorch checkpoint/);
  const foreign = join(dir, 'foreign.pt');
  copyFileSync(join(ROOT, 'test', 'fixtures', 'checkpoints', 'tensors_zip.pt'), foreign);
  assertFailed(nad(['eval', '--model', foreign, '--data', TEST_BIN]), /foreign\.pt/, /does not look like a model this extension supports/);
});

test('wrong-size data file and labels out of range: clear errors naming the file', { skip: skipShared }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'nad-bad-data-'));
  const bytes = readFileSync(TEST_BIN);
  const cut = join(dir, 'cut.bin');
  writeFileSync(cut, bytes.subarray(0, 3073 * 3 + 100));
  assertFailed(nad(['eval', '--model', STUDENT, '--data', cut]), /cut\.bin/, /3073/);
  const bad = join(dir, 'labels.bin');
  const copy = Buffer.from(bytes.subarray(0, 3073 * 4));
  copy[3073 * 2] = 12;
  writeFileSync(bad, copy);
  assertFailed(nad(['eval', '--model', STUDENT, '--data', bad]), /labels\.bin/, /label/);
});

test('a model for other images (1-channel CNN on CIFAR) is refused naming the file', { skip: skipShared }, () => {
  const train = nad(['train', '--data', 'mnist', '--epochs', '1', '--json', '-q', '--name', 'tiny']);
  assert.equal(train.code, 0, train.stderr);
  const model = (JSON.parse(train.stdout) as { modelPath: string }).modelPath;
  assertFailed(nad(['eval', '--model', model, '--data', TEST_BIN]), /model\.safetensors/, /channel/);
});

test('a diverging run fails with exit code != 0, a NaN message, and its folder marked failed', () => {
  const o = nad(['train', '--data', 'mnist', '--epochs', '1', '--lr', '1e30', '--name', 'diverge']);
  assertFailed(o, /NaN|infinite/, /learning rate/);
  const { runs } = o.runs.list();
  assert.equal(runs.length, 1);
  assert.equal(runs[0].status.state, 'failed');
  assert.match(runs[0].status.error ?? '', /NaN|infinite/);
});

test('nad runs lists stored runs newest first, as JSON too', () => {
  const o = nad(['runs', '--json']);
  assert.equal(o.code, 0);
  assert.deepEqual(JSON.parse(o.stdout), { runs: [], broken: [] });
});
