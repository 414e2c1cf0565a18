// `nad bench`'s interleaved PyTorch twins (src/engine/pytorch-run.ts): the serving Python process times one
// twin call per request (small sizes, /usr/bin/python3 with torch, skipped without it), reports a bad name
// as an error and keeps serving, and answers with an error once closed; the hook collects only the timed
// calls; benchDefenseUnit runs the hook after each call and outside its timing; the one-shot run's NAD
// figures and the twins' figures merge into one PyTorch result.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { switchBackend } from '../../src/engine/backend';
import { benchDefenseUnit, DEFENSE_SIZES, DEFENSE_UNITS, type DefenseSizes, type DefenseUnitName } from '../../src/engine/bench-defenses';
import { PytorchTwinServer, startInterleavedTwins, withTwins, type InterleavedTwins } from '../../src/engine/pytorch-run';

const PYTHON = '/usr/bin/python3';
const SMALL: DefenseSizes = { ...DEFENSE_SIZES, evalBatch: 16, stripInputs: 2, stripOverlays: 12, stripPool: 16, finetuneBatch: 8 };

function torchMissing(): string | undefined {
  try {
    execFileSync(PYTHON, ['-c', 'import torch'], { stdio: 'pipe', timeout: 50_000 });
    return undefined;
  } catch (e) {
    return `${PYTHON} has no torch (${e instanceof Error ? e.message.split('\n')[0] : String(e)})`;
  }
}
const missing = torchMissing();

describe('serving twins', { skip: missing ?? false }, () => {
  let twins: InterleavedTwins;
  before(async () => {
    const t = await startInterleavedTwins(['/nonexistent/python3', PYTHON], 1, SMALL);
    if ('error' in t) throw new Error(t.error);
    twins = t;
  });
  after(() => twins?.close());

  it('skips a missing interpreter and reports torch and its threads', () => {
    assert.equal(twins.python, PYTHON);
    assert.match(twins.torch, /^\d+\.\d+/);
    assert.equal(twins.threads, 1);
  });

  it('times the timed calls only; a failing twin is reported and the next one still runs', async () => {
    await twins.afterCall('strip', false);
    await twins.afterCall('strip', true);
    await twins.afterCall('strip', true);
    await twins.afterCall('nope' as DefenseUnitName, true);
    await twins.afterCall('clp', true);
    const f = twins.figures();
    assert.deepEqual(Object.keys(f), ['strip', 'nope', 'clp']);
    const strip = f['strip'];
    assert.ok('rate' in strip, JSON.stringify(strip));
    assert.ok(strip.seconds > 0 && Number.isFinite(strip.seconds));
    // The work of one call is the twin's: inputs x overlays superimposed images.
    assert.ok(Math.abs(strip.rate * strip.seconds - SMALL.stripInputs * SMALL.stripOverlays) < 1e-6);
    assert.deepEqual(f['nope'], { error: "KeyError: 'nope'" });
    const clp = f['clp'];
    assert.ok('rate' in clp && Math.abs(clp.rate * clp.seconds - 1) < 1e-9, JSON.stringify(clp));
  });

  it('merges with the one-shot run: its NAD figures, the twins as defenses', () => {
    const run = {
      python: PYTHON,
      torch: twins.torch,
      threads: 1,
      nadImgPerSec: 10,
      nadImgPerSecBest: 12,
      inferenceImgPerSec: 50,
      defenses: {},
    };
    const merged = withTwins(run, twins, ['strip', 'clp']);
    assert.ok('torch' in merged);
    assert.equal(merged.nadImgPerSec, 10);
    assert.deepEqual(merged.defenses, twins.figures());
    const alone = withTwins(null, twins, ['strip']);
    assert.ok('torch' in alone && alone.nadImgPerSec === null && 'strip' in alone.defenses);
  });
});

describe('twin server', { skip: missing ?? false }, () => {
  it('answers with an error, without hanging, once closed', async () => {
    const { server } = await PytorchTwinServer.start(PYTHON, 1, SMALL);
    server.close();
    const r = await server.call('clp', 20_000);
    assert.ok('error' in r, JSON.stringify(r));
  });
});

describe('merging without twins', () => {
  it('says why the twins are missing', () => {
    const run = { python: 'p', torch: '1', threads: 2, nadImgPerSec: 1, nadImgPerSecBest: 1, inferenceImgPerSec: 1, defenses: {} };
    const failed = { error: 'no Python with torch found' };
    const r = withTwins(run, failed, ['strip', 'mcr']);
    assert.ok('defenses' in r);
    assert.deepEqual(r.defenses, { strip: failed, mcr: failed });
    assert.deepEqual(withTwins(null, failed, ['strip']), failed);
    assert.deepEqual(withTwins(null, undefined, []), { error: 'PyTorch not requested' });
  });
});

describe('benchDefenseUnit afterCall', () => {
  before(async () => {
    await switchBackend('wasm', { wasmThreads: 2 });
  });

  it('runs after every call, warm-up ones marked untimed, outside the timed call', async () => {
    const clp = DEFENSE_UNITS.find((u) => u.defense === 'clp');
    assert.ok(clp);
    const seen: Array<[string, boolean]> = [];
    const pause = 1500;
    const r = await benchDefenseUnit(clp, {
      steps: 2,
      warmup: 1,
      afterCall: async (defense, timed) => {
        seen.push([defense, timed]);
        await new Promise((resolve) => setTimeout(resolve, pause));
      },
    });
    assert.equal(r.error, undefined);
    assert.deepEqual(seen, [
      ['clp', false],
      ['clp', true],
      ['clp', true],
    ]);
    // A CLP call takes milliseconds; the hook's pause is not in its time.
    assert.ok(
      r.stepMs.every((ms) => ms < pause),
      `${r.stepMs}`,
    );
  });
});
