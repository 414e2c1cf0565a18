// `nad bench`'s attack units (src/engine/bench-attacks.ts): each engine unit, one timed call on wasm (small
// batches), gives a finite positive figure and leaves no tensor behind; the PyTorch twins (pytorch-bench.ts,
// served as `nad bench` serves them) time one call each; and each twin computes what the engine unit does on
// one fixed input: CL's PGD step (two steps, so that the eps projection bites) from the same WRN-16-1 weights,
// and WaNet's grid (from the same noise) and warp of the same uint8 images. The torch parts run the bench's
// own Python source under /usr/bin/python3 and are skipped where it has no torch. Also: the attack table, the
// JSON rows, bad unit names.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as tf from '@tensorflow/tfjs-core';
import { pgdStep } from '../../src/engine/attacks/cl';
import { switchBackend } from '../../src/engine/backend';
import { ATTACK_SIZES, ATTACK_UNITS, benchAttackUnit, wanetBenchGrid, warpBatch, type AttackSizes } from '../../src/engine/bench-attacks';
import { attackRows, BENCH_SPEC, runBenchmark, type BenchResult } from '../../src/engine/bench';
import { DEFENSE_SIZES } from '../../src/engine/bench-defenses';
import { createModel } from '../../src/engine/models';
import { PYTORCH_BENCH_SOURCE } from '../../src/engine/pytorch-bench';
import { PytorchTwinServer } from '../../src/engine/pytorch-run';
import { Rng } from '../../src/engine/rng';
import { formatBench } from '../../src/cli/bench';
import { InputError } from '../../src/engine/types';

const PYTHON = '/usr/bin/python3';
const SMALL: AttackSizes = { ...ATTACK_SIZES, clBatch: 4, wanetImages: 8 };
const SIZE = 32;
const PIXELS = SIZE * SIZE * 3;
const SHAPE = { height: SIZE, width: SIZE, channels: 3 };

/** Why the twins cannot be checked here (no interpreter, or no torch in it), from a failed run's error. */
function torchMissing(e: unknown): string | undefined {
  const text = e instanceof Error ? e.message : String(e);
  if (/ENOENT/.test(text)) return `${PYTHON} not found`;
  if (/No module named '?torch/.test(text)) return `${PYTHON} has no torch`;
  return undefined;
}

/**
 * The bench source with nothing to time, then a tail that reads one JSON object from stdin and prints one
 * JSON line, calling the twins' own functions (pgd_step, wanet_grid, wanet_warp). Started now, so that
 * importing torch overlaps the engine tests; `send` writes the input once the engine side has it.
 */
const TAIL = String.raw`
d = json.loads(sys.stdin.read())
g = wanet_grid(Z["wanet"], 32)
x = torch.tensor(d["images"], dtype=torch.uint8).reshape(-1, 32, 32, 3).permute(0, 3, 1, 2).contiguous()
grids = g.repeat(len(x), 1, 1, 1)
warped = wanet_warp(x, grids).permute(0, 2, 3, 1).reshape(-1)
flt = F.grid_sample(x.float(), grids, align_corners=True).permute(0, 2, 3, 1).reshape(-1)
m = WRN().eval()
sd = {k: torch.tensor(v["data"], dtype=torch.float32).reshape(v["shape"]) for k, v in d["sd"].items()}
missing, unexpected = m.load_state_dict(sd, strict=False)
assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing), (missing, unexpected)
x = torch.tensor(d["x"], dtype=torch.float32).reshape(-1, 32, 32, 3).permute(0, 3, 1, 2).contiguous()
y = torch.tensor(d["y"])
a1, l1 = pgd_step(m, x, x, y, d["eps"], d["step"])
a2, l2 = pgd_step(m, a1, x, y, d["eps"], d["step"])
print(json.dumps({"grid": g.reshape(-1).tolist(), "warped": warped.tolist(), "float": flt.tolist(),
                  "adv": a2.permute(0, 2, 3, 1).reshape(-1).tolist(), "loss": [l1, l2]}))
`;
interface TailOutput {
  grid: number[];
  warped: number[];
  float: number[];
  adv: number[];
  loss: number[];
}

function startTail(): { send: (input: unknown) => void; output: Promise<TailOutput>; kill: () => void } {
  const config = JSON.stringify({ nad: false, defenses: [], sizes: { ...DEFENSE_SIZES, ...ATTACK_SIZES } });
  let send: (input: unknown) => void = () => undefined;
  let kill: () => void = () => undefined;
  const output = new Promise<TailOutput>((resolve, reject) => {
    const p = execFile(
      PYTHON,
      ['-c', `${PYTORCH_BENCH_SOURCE}\n${TAIL}`, '0', '0', '1', config],
      { timeout: 120_000, maxBuffer: 64 << 20 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(stderr || err.message));
        else resolve(JSON.parse(stdout.trim().split('\n').pop() ?? 'null') as TailOutput);
      },
    );
    p.stdin?.on('error', () => undefined);
    send = (input) => p.stdin?.end(JSON.stringify(input));
    kill = () => p.kill();
  });
  output.catch(() => undefined); // reported by the test that awaits it
  return { send, output, kill };
}
const tail = startTail();
const server = PytorchTwinServer.start(PYTHON, 1, { ...DEFENSE_SIZES, ...SMALL });
server.catch(() => undefined);
// Neither Python outlives the file, whichever tests ran (a filtered run sends the tail nothing).
after(async () => {
  tail.kill();
  (await server.catch(() => undefined))?.server.close();
});

/** The awaited Python result, or undefined after marking the test skipped when torch is absent. */
async function orSkip<T>(p: Promise<T>, t: { skip(message: string): void }): Promise<T | undefined> {
  try {
    return await p;
  } catch (e) {
    const why = torchMissing(e);
    if (why === undefined) throw e;
    t.skip(`${why}: the PyTorch twins are not checked`);
    return undefined;
  }
}

describe('attack bench units (engine)', () => {
  before(async () => {
    await switchBackend('wasm', { wasmThreads: 2 });
  });

  for (const u of ATTACK_UNITS) {
    it(`${u.attack}: one call gives a finite positive img/s, no tensor leaks`, async () => {
      const n = tf.memory().numTensors;
      const r = await benchAttackUnit(u, { steps: 1, warmup: 1, seed: 3, sizes: SMALL });
      assert.equal(r.error, undefined);
      assert.ok(r.value !== null && Number.isFinite(r.value) && r.value > 0, `${u.attack}: ${r.value}`);
      assert.equal(r.stepMs.length, 1);
      // img/s is the batch over the call's time.
      const work = u.attack === 'cl' ? SMALL.clBatch : SMALL.wanetImages;
      assert.ok(Math.abs((r.value ?? 0) * (r.stepMs[0] / 1000) - work) < 1e-6);
      assert.equal(r.numTensorsFlat, true);
      assert.equal(tf.memory().numTensors, n, `${u.attack} leaked ${tf.memory().numTensors - n} tensors`);
    });
  }

  it('the PGD unit moves the batch by one sign step per call, inside [0, 1]', () => {
    const model = createModel(BENCH_SPEC, 4);
    const rng = new Rng(2);
    const x = tf.tensor4d(
      Float32Array.from({ length: 2 * PIXELS }, () => rng.next()),
      [2, SIZE, SIZE, 3],
    );
    const y = tf.oneHot(tf.tensor1d([1, 7], 'int32'), 10);
    const n = tf.memory().numTensors;
    const { adv, loss } = pgdStep(model, x, x, y, { eps: ATTACK_SIZES.clEps, step: ATTACK_SIZES.clStep });
    assert.equal(tf.memory().numTensors, n + 1);
    assert.ok(Number.isFinite(loss) && loss > 0);
    const a = adv.dataSync();
    const v = x.dataSync();
    let moved = 0;
    for (let i = 0; i < a.length; i++) {
      assert.ok(a[i] >= 0 && a[i] <= 1);
      const d = Math.abs(a[i] - v[i]);
      assert.ok(d <= ATTACK_SIZES.clStep + 1e-6, `moved ${d}`);
      if (d > 1e-7) moved++;
    }
    assert.ok(moved > 0.9 * a.length, `only ${moved} of ${a.length} values moved`);
    tf.dispose([adv, x, y]);
    model.dispose();
  });

  it('refuses a bad step count and a field of the wrong size', async () => {
    await assert.rejects(benchAttackUnit(ATTACK_UNITS[0], { steps: 0, warmup: 0 }), InputError);
    const bad = { ...SMALL, wanet: { ...SMALL.wanet, noise: [1, 2, 3] } };
    assert.throws(() => wanetBenchGrid(bad), /wanet\.noise has 3 values, k = 4 needs 32/);
    const r = await benchAttackUnit(ATTACK_UNITS[1], { steps: 1, warmup: 0, sizes: bad });
    assert.equal(r.value, null);
    assert.match(r.error ?? '', /wanet\.noise/);
  });
});

describe('attack table', () => {
  const engine = [
    { attack: 'cl' as const, unit: 'u1', measure: 'rate' as const, value: 40, stepMs: [1600], numTensorsFlat: true },
    { attack: 'wanet' as const, unit: 'u2', measure: 'rate' as const, value: 3000, stepMs: [85], numTensorsFlat: true },
  ];
  const pytorch = {
    python: 'p',
    torch: '1.13',
    threads: 2,
    nadImgPerSec: null,
    nadImgPerSecBest: null,
    inferenceImgPerSec: null,
    defenses: { cl: { rate: 50, seconds: 1.28 }, wanet: { error: 'RuntimeError: y' } },
  };

  it('rows carry the attack name, the ratio and why a twin is missing; the text has its own table', () => {
    const rows = attackRows(engine, pytorch);
    assert.deepEqual(
      rows.map((r) => [r.attack, r.ratio, r.pytorchError]),
      [
        ['cl', 0.8, undefined],
        ['wanet', null, 'RuntimeError: y'],
      ],
    );
    assert.ok(rows.every((r) => !('defense' in r)));
    const r: BenchResult = {
      backend: 'wasm',
      nadImgPerSec: null,
      inferenceImgPerSec: null,
      pytorchImgPerSec: null,
      pytorchInferenceImgPerSec: null,
      ratioToPytorch: null,
      pytorch,
      backends: [],
      parts: 'attacks',
      defenses: [],
      attacks: rows,
      machine: { cpus: 2, node: 'v20', tfjs: '4' },
    };
    const text = formatBench(r);
    assert.match(text, /^Attack units on wasm vs PyTorch 1\.13, 2 threads/);
    assert.match(text, /\| attack \| unit \| this engine \| PyTorch \| ratio \|/);
    assert.match(text, /\| cl \| u1 \| 40\.00 \| 50\.00 \| 0\.80x \|/);
    assert.match(text, /\| wanet \| u2 \| 3000 \| not measured \(RuntimeError: y\) \| - \|/);
    assert.doesNotMatch(text, /Defense units|NAD step img\/s/);
  });

  it('refuses unknown attack units', async () => {
    await assert.rejects(runBenchmark({ parts: 'attacks', attacks: ['pgd' as 'cl'], pytorch: false }), /unknown attack unit pgd/);
  });
});

describe('attack twins (PyTorch)', () => {
  it('each twin serves one timed call of the sizes given, as `nad bench` runs them', async (t) => {
    const started = await orSkip(server, t);
    if (!started) return;
    const twins = started.server;
    try {
      for (const [name, work] of [
        ['cl', SMALL.clBatch],
        ['wanet', SMALL.wanetImages],
      ] as const) {
        const r = await twins.call(name, 110_000);
        assert.ok('seconds' in r, `${name}: ${JSON.stringify(r)}`);
        assert.ok(Number.isFinite(r.seconds) && r.seconds > 0);
        assert.equal(r.work, work);
      }
    } finally {
      twins.close();
    }
  });

  // One Python run for both checks (tail above): the inputs of both, sent at once.
  const n = 4;
  const rng = new Rng(11);
  const images = Uint8Array.from({ length: n * PIXELS }, () => rng.int(256));
  const labels = [3, 0, 8];
  const xs = Float32Array.from({ length: labels.length * PIXELS }, () => rng.next());
  // eps 2/255 under two steps of 1.5/255: the projection to the eps-ball bites on the second.
  const eps = 2 / 255;
  const step = ATTACK_SIZES.clStep;
  let model: ReturnType<typeof createModel> | undefined;
  let output: Promise<TailOutput> | undefined;
  before(async () => {
    await switchBackend('wasm', { wasmThreads: 2 });
    model = createModel(BENCH_SPEC, 9);
    const sd = Object.fromEntries([...model.params.toStateDict()].map(([k, v]) => [k, { shape: v.shape, data: Array.from(v.data) }]));
    tail.send({ images: Array.from(images), sd, x: Array.from(xs), y: labels, eps, step });
    output = tail.output;
  });
  after(() => model?.dispose());

  it("WaNet: the twin's grid and warp equal the engine unit's on the same noise and images", async (c) => {
    assert.ok(output);
    const t = await orSkip(output, c);
    if (!t) return;
    const grid = wanetBenchGrid(ATTACK_SIZES);
    let gridDiff = 0;
    for (let i = 0; i < grid.length; i++) gridDiff = Math.max(gridDiff, Math.abs(grid[i] - t.grid[i]));
    assert.ok(gridDiff < 1e-6, `grids differ by ${gridDiff}`);
    const warped = images.slice();
    warpBatch(warped, n, SHAPE, grid, new Uint8Array(PIXELS));
    let changed = 0;
    let mismatches = 0;
    for (let i = 0; i < warped.length; i++) {
      if (warped[i] !== images[i]) changed++;
      if (warped[i] === t.warped[i]) continue;
      mismatches++;
      // Only where torch's float32 sits a hair below an integer (warpImage's uint8 note).
      assert.equal(Math.abs(warped[i] - t.warped[i]), 1, `value ${i}: ${warped[i]} vs ${t.warped[i]}`);
      assert.ok(Math.abs(t.float[i] - Math.round(t.float[i])) < 1e-3, `value ${i} differs away from an integer: ${t.float[i]}`);
    }
    assert.ok(changed > 0.5 * warped.length, `the warp changed only ${changed} values`);
    assert.ok(mismatches <= 0.005 * warped.length, `${mismatches} of ${warped.length} uint8 values differ`);
  });

  it('CL: two twin PGD steps equal two pgdStep calls on the same WRN-16-1 weights and images (loss too)', async (c) => {
    assert.ok(output && model);
    const t = await orSkip(output, c);
    if (!t) return;
    const x = tf.tensor4d(xs, [labels.length, SIZE, SIZE, 3]);
    const y = tf.oneHot(tf.tensor1d(labels, 'int32'), 10);
    const s1 = pgdStep(model, x, x, y, { eps, step });
    const s2 = pgdStep(model, s1.adv, x, y, { eps, step });
    const adv = s2.adv.dataSync();
    tf.dispose([s1.adv, s2.adv, x, y]);
    for (const [k, l] of [s1.loss, s2.loss].entries())
      assert.ok(Math.abs(l - t.loss[k]) < 1e-4 * Math.max(1, l), `loss ${k}: ${l} vs ${t.loss[k]}`);
    let same = 0;
    let atBound = 0;
    for (let i = 0; i < adv.length; i++) {
      const d = Math.abs(adv[i] - t.adv[i]);
      // A gradient sign flipped by rounding moves a value by at most two steps' worth, and stays in the ball.
      assert.ok(d <= 2 * eps + 1e-6, `value ${i}: ${adv[i]} vs ${t.adv[i]}`);
      if (d < 1e-6) same++;
      if (Math.abs(Math.abs(adv[i] - xs[i]) - eps) < 1e-6) atBound++;
    }
    assert.ok(same >= 0.995 * adv.length, `only ${same} of ${adv.length} values agree`);
    assert.ok(atBound > 0.2 * adv.length, `the eps projection bit on only ${atBound} values`);
  });
});
