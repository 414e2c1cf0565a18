// Checkpoint import (torch.save zip + legacy), our safetensors model files, and bad input.
// Fixtures come from scripts/fixtures/make_checkpoint_fixtures.py (committed, so torch is not needed here).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { after, describe, test } from 'node:test';
import { unzipSync, zipSync } from 'fflate';
import { InputError, type StateDict } from '../../src/engine/types';
import {
  encodeSafetensors,
  loadModelFile,
  loadTorchCheckpoint,
  MODEL_FILE_FORMAT,
  parseTorchCheckpoint,
  readCheckpoint,
  saveModelFile,
  specMetadata,
} from '../../src/engine/checkpoint';
import { unpickle } from '../../src/engine/checkpoint/pickle';
import type { PickleValue } from '../../src/engine/checkpoint/values';

const ROOT = resolve(__dirname, '..', '..');
const FIXTURES = join(ROOT, 'test', 'fixtures', 'checkpoints');
const SHARED = join(ROOT, '..', 'shared', 'models', 'nad-reference');
const STUDENT = join(SHARED, 'wrn16-1_badnets-grid_target5.pth.tar');
const TEACHER = join(SHARED, 'wrn16-1_teacher-finetuned.pth.tar');
const haveShared = existsSync(STUDENT) && existsSync(TEACHER);

interface Summary {
  shape: number[];
  dtype: string;
  sum: number;
  absSum: number;
  first: number[];
}
interface Expected {
  marker: string;
  files: Record<string, Record<string, Summary>>;
  pickles: Record<string, unknown>;
}
const expected = JSON.parse(readFileSync(join(FIXTURES, 'expected.json'), 'utf8')) as Expected;

const scratch = mkdtempSync(join(tmpdir(), 'nad-checkpoint-test-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

/** Our NamedTensor dtype for torch's where NamedTensor has no exact one (see namedDType). */
const DTYPE_LABEL: Record<string, string> = { bfloat16: 'float32', uint16: 'int32', uint32: 'int64' };

function assertMatches(sd: StateDict, want: Record<string, Summary>, file: string): void {
  assert.deepEqual([...sd.keys()], Object.keys(want), `${file}: tensor names and order`);
  for (const [name, w] of Object.entries(want)) {
    const t = sd.get(name);
    assert.ok(t);
    assert.deepEqual(t.shape, w.shape, `${file} ${name} shape`);
    assert.equal(t.dtype, DTYPE_LABEL[w.dtype] ?? w.dtype, `${file} ${name} dtype`);
    let sum = 0;
    for (const v of t.data) sum += v;
    assert.ok(Math.abs(sum - w.sum) <= 1e-6 * w.absSum + 1e-9, `${file} ${name}: sum ${sum}, expected ${w.sum}`);
    assert.deepEqual(Array.from(t.data.slice(0, w.first.length)), w.first.map(Math.fround), `${file} ${name} first values`);
  }
}

/** Trainable parameters, as PyTorch counts them (BN running stats and counters excluded). */
function parameterCount(sd: StateDict): number {
  let n = 0;
  for (const [name, t] of sd) if (/\.(weight|bias)$/.test(name)) n += t.data.length;
  return n;
}

/** Asserts the promise rejects with an InputError whose message names the file and matches `pattern`. */
async function rejectsWith(promise: Promise<unknown>, file: string, pattern: RegExp): Promise<string> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof InputError, `expected an InputError, got ${String(err)}`);
    assert.ok(err.message.includes(basename(file)), `message should name ${basename(file)}: ${err.message}`);
    assert.match(err.message, pattern);
    return err.message;
  }
  assert.fail(`${basename(file)} was accepted`);
}

function scratchFile(name: string, bytes: Uint8Array): string {
  const path = join(scratch, name);
  writeFileSync(path, bytes);
  return path;
}

const WRN10 = { arch: 'wrn', depth: 10, widen: 1, numClasses: 10, inChannels: 3, imageSize: 32 };
const WRN16 = { arch: 'wrn', depth: 16, widen: 1, numClasses: 10, inChannels: 3, imageSize: 32 };

describe('torch checkpoints', () => {
  for (const [name, want] of Object.entries(expected.files)) {
    test(`${name} loads to the values PyTorch saved`, async () => {
      assertMatches(await loadTorchCheckpoint(join(FIXTURES, name)), want, name);
    });
  }

  test('format, spec and metadata of the WRN fixtures', async () => {
    const cases: [string, string, Record<string, string>][] = [
      ['wrn10-1_zip.pt', 'torch-zip', {}],
      ['wrn10-1_zip_nested_module.pth.tar', 'torch-zip', { epoch: '3', best_prec: '91.5' }],
      ['wrn10-1_legacy.pth.tar', 'torch-legacy', { epoch: '3' }],
    ];
    for (const [name, format, metadata] of cases) {
      const ckpt = await readCheckpoint(join(FIXTURES, name));
      assert.equal(ckpt.format, format, name);
      assert.deepEqual(ckpt.spec, WRN10, name);
      assert.deepEqual(ckpt.metadata, metadata, name);
      assert.ok(!/^module\./.test([...ckpt.stateDict.keys()][0]));
    }
  });

  test('a torch 2 training checkpoint: weights under `model`, scalars (numpy too) kept as metadata', async () => {
    const file = join(FIXTURES, 'training_torch2_zip.pt');
    const ckpt = parseTorchCheckpoint(readFileSync(file), file);
    assert.deepEqual([...ckpt.stateDict.keys()], ['weight', 'bias']);
    assert.deepEqual(ckpt.metadata, { best_acc: '91.5', epoch: '7' });
  });

  test("the NAD authors' checkpoints (../shared)", async (t) => {
    if (!haveShared) return t.skip('../shared absent');
    const pinned: [string, number[], number][] = [
      [STUDENT, [0.2528459429740906, 0.523759126663208, 0.4152204692363739], -0.2939912580186501],
      [TEACHER, [-0.5739232301712036, -0.8952984809875488, -0.48989033699035645], -1.4397578401258215],
    ];
    for (const [file, conv1First, fcSum] of pinned) {
      const ckpt = await readCheckpoint(file);
      assert.equal(ckpt.format, 'torch-legacy');
      assert.deepEqual(ckpt.spec, WRN16);
      assert.equal(ckpt.stateDict.size, 82);
      assert.equal(parameterCount(ckpt.stateDict), 175_066);
      assert.equal(ckpt.metadata.epoch !== undefined, true);
      assert.deepEqual(Array.from(ckpt.stateDict.get('conv1.weight')?.data.slice(0, 3) ?? []), conv1First);
      const fc = ckpt.stateDict.get('fc.weight');
      assert.deepEqual(fc?.shape, [10, 64]);
      assert.ok(Math.abs((fc?.data ?? []).reduce((a, b) => a + b, 0) - fcSum) < 1e-5);
      assert.equal(ckpt.stateDict.get('block1.layer.0.bn1.num_batches_tracked')?.dtype, 'int64');
    }
  });
});

/** JSON form of an unpickled value, as make_checkpoint_fixtures.py renders the Python original. */
function canonical(v: PickleValue): unknown {
  if (v instanceof Map) return { dict: [...v].map(([k, x]) => [canonical(k), canonical(x)]) };
  if (v instanceof Set) return { set: [...v].map(Number).sort((a, b) => a - b) };
  if (v instanceof Uint8Array) return { bytes: Buffer.from(v).toString('hex') };
  if (Array.isArray(v)) return v.map(canonical);
  if (typeof v === 'bigint') return { int: v.toString() };
  return v;
}

test('plain values through pickle protocols 0, 2, 3, 4 and 5', () => {
  for (const [name, want] of Object.entries(expected.pickles)) {
    const { value } = unpickle(readFileSync(join(FIXTURES, name)), name);
    assert.deepEqual(canonical(value), want, name);
  }
});

describe('safetensors model files', () => {
  test('round trip keeps names, order, shapes, values and metadata; the write is atomic', async () => {
    const source = haveShared ? STUDENT : join(FIXTURES, 'wrn10-1_legacy.pth.tar');
    const ckpt = await readCheckpoint(source);
    // Extension deliberately not .safetensors: the format is recognised by content.
    const path = join(scratch, 'roundtrip.model');
    await saveModelFile(path, ckpt.stateDict, { ...specMetadata(ckpt.spec), format: 'overridden?', trainedOn: 'cifar10' });
    assert.deepEqual(
      readdirSync(scratch).filter((f) => f.endsWith('.tmp')),
      [],
    );

    const loaded = await loadModelFile(path);
    assert.deepEqual(loaded.metadata, { format: MODEL_FILE_FORMAT, version: '1', spec: JSON.stringify(ckpt.spec), trainedOn: 'cifar10' });
    assert.deepEqual([...loaded.stateDict.keys()], [...ckpt.stateDict.keys()]);
    for (const [name, t] of ckpt.stateDict) {
      const u = loaded.stateDict.get(name);
      assert.deepEqual(u?.shape, t.shape, name);
      assert.equal(u?.dtype, t.dtype, name);
      assert.deepEqual(u?.data, t.data, name);
    }
    const again = await readCheckpoint(path);
    assert.equal(again.format, 'safetensors');
    assert.deepEqual(again.spec, ckpt.spec);
  });

  test('reads F64, F16, BF16, I64, I32, U8 and BOOL tensors written by others', async () => {
    const f64 = new Float64Array([1.5, -2.25]);
    const f16 = new Uint16Array([0x3c00, 0xc000, 0x7bff, 0x0001]); // 1, -2, 65504, smallest subnormal
    const bf16 = new Uint16Array([0x3fc0, 0xc050]); // 1.5, -3.25
    const i64 = new BigInt64Array([-3n, 2n ** 40n]);
    const i32 = new Int32Array([-7, 8]);
    const parts: [string, string, number[], Uint8Array][] = [
      ['a.f64', 'F64', [2], new Uint8Array(f64.buffer)],
      ['b.f16', 'F16', [2, 2], new Uint8Array(f16.buffer)],
      ['c.bf16', 'BF16', [2], new Uint8Array(bf16.buffer)],
      ['d.i64', 'I64', [2], new Uint8Array(i64.buffer)],
      ['e.i32', 'I32', [1, 2], new Uint8Array(i32.buffer)],
      ['f.u8', 'U8', [3], new Uint8Array([0, 7, 255])],
      ['g.bool', 'BOOL', [2], new Uint8Array([1, 0])],
    ];
    const header: Record<string, unknown> = { __metadata__: { source: 'hand-written' } };
    let offset = 0;
    for (const [name, dtype, shape, bytes] of parts) {
      header[name] = { dtype, shape, data_offsets: [offset, offset + bytes.length] };
      offset += bytes.length;
    }
    const json = Buffer.from(JSON.stringify(header));
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(BigInt(json.length));
    const file = scratchFile('others.safetensors', Buffer.concat([length, json, ...parts.map((p) => p[3])]));
    const { stateDict, metadata } = await loadModelFile(file);
    assert.deepEqual(metadata, { source: 'hand-written' });
    const values = Object.fromEntries([...stateDict].map(([k, t]) => [k, [t.dtype, t.shape, Array.from(t.data)]]));
    assert.deepEqual(values, {
      'a.f64': ['float64', [2], [1.5, -2.25]],
      'b.f16': ['float16', [2, 2], [1, -2, 65504, Math.fround(2 ** -24)]],
      'c.bf16': ['float32', [2], [1.5, -3.25]],
      'd.i64': ['int64', [2], [-3, 2 ** 40]],
      'e.i32': ['int32', [1, 2], [-7, 8]],
      'f.u8': ['uint8', [3], [0, 7, 255]],
      'g.bool': ['bool', [2], [1, 0]],
    });
  });

  test('Python reads our file: numpy, and PyTorch load_state_dict(strict=True) when torch is installed', async (t) => {
    // Prefer an interpreter with torch (Debian's python3-torch lives in the system one).
    const candidates = [process.env.NAD_PYTHON, 'python3', '/usr/bin/python3'].filter((p): p is string => !!p);
    const works = (p: string, probe: string) => spawnSync(p, ['-c', probe], { stdio: 'ignore' }).status === 0;
    const withTorch = "import numpy, importlib.util as u; assert u.find_spec('torch')";
    const python = candidates.find((p) => works(p, withTorch)) ?? candidates.find((p) => works(p, 'import numpy'));
    if (!python) return t.skip('no python3 with numpy');
    const ckpt = await readCheckpoint(join(FIXTURES, 'wrn10-1_zip.pt'));
    const path = join(scratch, 'for-python.safetensors');
    await saveModelFile(path, ckpt.stateDict, specMetadata(ckpt.spec));
    const run = spawnSync(python, [join(FIXTURES, 'read_safetensors.py'), path], { encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    const out = JSON.parse(run.stdout) as {
      metadata: Record<string, string>;
      tensors: Record<string, Summary>;
      torchLoad: string;
      safetensorsLib: string;
    };
    assert.equal(out.metadata.format, MODEL_FILE_FORMAT);
    assert.deepEqual(JSON.parse(out.metadata.spec), WRN10);
    const want = expected.files['wrn10-1_zip.pt'];
    assert.deepEqual(Object.keys(out.tensors), Object.keys(want));
    for (const [name, w] of Object.entries(want)) {
      assert.deepEqual(out.tensors[name].shape, w.shape, name);
      assert.ok(Math.abs(out.tensors[name].sum - w.sum) <= 1e-6 * w.absSum + 1e-9, name);
    }
    assert.equal(out.tensors['block1.layer.0.bn1.num_batches_tracked'].dtype, 'I64');
    t.diagnostic(`${python}: PyTorch load_state_dict ${out.torchLoad}, safetensors.torch.load_file ${out.safetensorsLib}`);
  });
});

describe('bad input is refused with an InputError naming the file', () => {
  test('empty file', async () => {
    await rejectsWith(readCheckpoint(scratchFile('empty.pth', new Uint8Array(0))), 'empty.pth', /empty/);
  });

  test('missing file', async () => {
    await rejectsWith(readCheckpoint(join(scratch, 'absent.pth')), 'absent.pth', /no such file/);
  });

  test('truncated checkpoints', async () => {
    const legacy = haveShared ? STUDENT : join(FIXTURES, 'wrn10-1_legacy.pth.tar');
    const head = scratchFile('head1000.pth.tar', readFileSync(legacy).subarray(0, 1000));
    await rejectsWith(readCheckpoint(head), 'head1000.pth.tar', /truncated/);
    const full = readFileSync(legacy);
    const cut = scratchFile('cut-in-data.pth.tar', full.subarray(0, full.length - 100));
    await rejectsWith(readCheckpoint(cut), 'cut-in-data.pth.tar', /truncated/);
    const zip = scratchFile('head1000.pt', readFileSync(join(FIXTURES, 'wrn10-1_zip.pt')).subarray(0, 1000));
    await rejectsWith(readCheckpoint(zip), 'head1000.pt', /truncated|damaged/);
    const model = join(scratch, 'whole.safetensors');
    await saveModelFile(model, (await readCheckpoint(join(FIXTURES, 'wrn10-1_zip.pt'))).stateDict, {});
    const st = scratchFile('cut.safetensors', readFileSync(model).subarray(0, 5000));
    await rejectsWith(readCheckpoint(st), 'cut.safetensors', /truncated/);
  });

  test('random bytes', async () => {
    let seed = 12345;
    const bytes = Uint8Array.from({ length: 4096 }, () => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24);
    bytes[0] = 0x13;
    await rejectsWith(readCheckpoint(scratchFile('random.bin', bytes)), 'random.bin', /not a PyTorch checkpoint/);
  });

  test('a zip that is not a torch archive, and a pickle that is not from torch.save', async () => {
    const zip = scratchFile('notes.zip', zipSync({ 'notes/readme.txt': new TextEncoder().encode('hello') }, { level: 0 }));
    await rejectsWith(readCheckpoint(zip), 'notes.zip', /not a PyTorch checkpoint/);
    const pkl = scratchFile('plain.pkl', readFileSync(join(FIXTURES, 'plain_protocol2.pkl')));
    await rejectsWith(readCheckpoint(pkl), 'plain.pkl', /not one written by torch\.save/);
  });

  test('a zip bomb (a storage entry deflated from 256 MB of zeros) is refused before inflating, with its numbers', async () => {
    const entries = unzipSync(readFileSync(join(FIXTURES, 'wrn10-1_zip.pt')));
    const data = Object.keys(entries).find((n) => /\/data\/0$/.test(n));
    assert.ok(data, Object.keys(entries).join(', '));
    const bombed = { ...entries, [data]: new Uint8Array(256 * 1024 * 1024) };
    const file = scratchFile('bomb.pt', zipSync(bombed, { level: 9 }));
    assert.ok(readFileSync(file).length < 2_000_000, 'the bomb is small on disk');
    const rss = process.memoryUsage().rss;
    const t0 = performance.now();
    await rejectsWith(
      readCheckpoint(file),
      'bomb.pt',
      /is compressed \(method 8, \d+ bytes declared to expand to 268435456\).*torch\.save stores every entry uncompressed/,
    );
    assert.ok(performance.now() - t0 < 5_000, 'refused without inflating');
    assert.ok(process.memoryUsage().rss - rss < 128 * 1024 * 1024, 'refused without allocating the inflated size');
    // The same archive stored, as torch.save writes it, still loads.
    const stored = scratchFile('restored.pt', zipSync(entries, { level: 0 }));
    assert.equal((await readCheckpoint(stored)).format, 'torch-zip');
  });

  test('malicious pickles are refused without running their payload', async () => {
    const cwd = process.cwd();
    const work = mkdtempSync(join(scratch, 'cwd-'));
    process.chdir(work); // the payload would write its marker into the working directory
    try {
      for (const name of ['malicious_zip.pt', 'malicious_legacy.pt']) {
        const msg = await rejectsWith(readCheckpoint(join(FIXTURES, name)), name, /posix\.system|nt\.system/);
        assert.match(msg, /malicious/);
      }
    } finally {
      process.chdir(cwd);
    }
    for (const dir of [work, cwd, FIXTURES]) assert.equal(existsSync(join(dir, expected.marker)), false, `marker in ${dir}`);
  });

  test('a whole pickled model', async () => {
    const msg = await rejectsWith(readCheckpoint(join(FIXTURES, 'whole_model.pt')), 'whole_model.pt', /whole pickled model/);
    assert.match(msg, /state_dict\(\)/);
  });

  test('a torch file with no tensors', async () => {
    await rejectsWith(readCheckpoint(join(FIXTURES, 'no_tensors.pt')), 'no_tensors.pt', /no tensors.*epoch, note, values/);
  });

  test('an unknown architecture lists some keys and the supported ones', async () => {
    const msg = await rejectsWith(readCheckpoint(join(FIXTURES, 'tensors_zip.pt')), 'tensors_zip.pt', /transposed, every_other_column/);
    assert.match(msg, /WideResNet/);
  });

  test('damaged bytes only ever give InputErrors (small deterministic fuzz)', () => {
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    const sources = ['tensors_legacy.pt', 'tensors_zip.pt', 'plain_protocol0.pkl', 'plain_protocol4.pkl'].map((f) =>
      readFileSync(join(FIXTURES, f)),
    );
    for (let i = 0; i < 200; i++) {
      const bytes = Uint8Array.from(sources[i % sources.length]);
      for (let j = 0; j < 3; j++) bytes[Math.floor(random() * bytes.length)] = Math.floor(random() * 256);
      try {
        parseTorchCheckpoint(bytes, 'damaged.pt');
      } catch (err) {
        assert.ok(err instanceof InputError, `mutation ${i}: ${String(err)}`);
      }
    }
  });

  test('a model file whose spec contradicts its weights', async () => {
    const sd = (await readCheckpoint(join(FIXTURES, 'wrn10-1_zip.pt'))).stateDict;
    const path = join(scratch, 'lying.safetensors');
    await saveModelFile(path, sd, specMetadata({ arch: 'wrn', depth: 16, widen: 1, numClasses: 10, inChannels: 3, imageSize: 32 }));
    await rejectsWith(readCheckpoint(path), 'lying.safetensors', /do not match the spec/);
    await rejectsWith(
      readCheckpoint(scratchFile('bad-spec.safetensors', encodeSafetensors(sd, { spec: '{"arch":"mlp"}' }))),
      'bad-spec.safetensors',
      /not a model spec/,
    );
  });
});
