// Provenance of the native backend (issue 16): a run on `--backend native` records the addon it computed
// with (the SHA-256 of the loaded .node file, the instruction set it picked, its threads) beside the
// backend string, the history shows it, and `nad bench --json` reports the same for its native row. Skips,
// saying why, where the addon does not load.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { runBenchmark } from '../../src/engine/bench';
import { nativeAddonPath } from '../../src/engine/kernels/native-addon';
import { BADNET_TRAINING, DEFAULT_BACKDOOR } from '../../src/runs/config';
import { runJob } from '../../src/runs/jobs';
import { readRunSnapshot } from '../../src/runs/run-folder';
import { provenanceFacts, type Provenance } from '../../src/shared/provenance';
import { writeSmallMnist } from '../integration/fixtures/small-mnist';
import { nativeAddonStatus } from '../fixtures/native-addon';

const ROOT = join(__dirname, '..', '..');
const { isa, problem } = nativeAddonStatus();
const sha256 = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');

describe(`provenance of the native addon (${problem ? 'addon not loaded' : isa})`, { skip: problem }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'nad-prov-native-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('a run on --backend native records the loaded file, its SHA-256, the ISA and threads; the history shows them', async () => {
    const data = writeSmallMnist(join(dir, 'digits'), { train: 10, test: 5, repoRoot: ROOT });
    const r = await runJob(
      {
        kind: 'train',
        name: 'tiny-native',
        backend: 'native',
        seed: 0,
        data,
        test: data,
        model: 'auto',
        backdoor: DEFAULT_BACKDOOR,
        training: { ...BADNET_TRAINING, epochs: 1, batchSize: 50, augment: false },
      },
      { cwd: dir },
    );
    const config = JSON.parse(readFileSync(join(r.runDir, 'config.json'), 'utf8')) as { backendUsed: string; provenance: Provenance };
    assert.equal(config.backendUsed, 'native');
    const addon = config.provenance.addon;
    assert.ok(addon, 'config.json has no provenance.addon');
    const loaded = nativeAddonPath();
    assert.ok(loaded, 'the addon did not load');
    assert.equal(addon.file, loaded);
    assert.equal(addon.sha256, sha256(loaded));
    assert.match(addon.sha256, /^[0-9a-f]{64}$/);
    assert.equal(addon.isa, isa);
    assert.ok(Number.isInteger(addon.threads) && addon.threads >= 1, `threads ${addon.threads}`);
    // The backend string beside it names the same instruction set and threads.
    assert.match(config.provenance.backend, new RegExp(`^native \\(NAD kernels .* on ${addon.threads} thread`));
    const snapshot = readRunSnapshot(r.runDir);
    assert.ok(!('problem' in snapshot), JSON.stringify(snapshot));
    const facts = new Map(provenanceFacts(config.provenance));
    assert.equal(facts.get('Native addon'), `${isa}, ${addon.threads} threads, SHA-256 ${addon.sha256} (${loaded})`);
  });

  it('nad bench --json: the native row carries the same addon facts', { timeout: 120_000 }, async () => {
    const before = tf.memory().numTensors;
    const r = await runBenchmark({ backends: ['native'], steps: 1, warmup: 0, parts: 'nad', pytorch: false, wasmThreads: 2 });
    const row = r.backends.find((b) => b.backend === 'native');
    assert.ok(row?.available, JSON.stringify(row));
    const loaded = nativeAddonPath() as string;
    assert.ok(row.addon, 'the native row has no addon');
    const { threads, ...file } = row.addon;
    assert.deepEqual(file, { file: loaded, sha256: sha256(loaded), isa });
    assert.ok(Number.isInteger(threads) && threads >= 1, `threads ${threads}`);
    // The JSON the CLI prints is this object.
    assert.equal((JSON.parse(JSON.stringify(r)) as typeof r).backends[0].addon?.sha256, sha256(loaded));
    assert.equal(tf.memory().numTensors, before);
  });

  it('an older run or another backend has no addon line', () => {
    assert.ok(!provenanceFacts({ backend: 'wasm (SIMD, 2 threads)' }).some(([k]) => k === 'Native addon'));
  });
});
