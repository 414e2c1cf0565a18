// The allocation limit derived from the architecture (src/engine/checkpoint/limit.ts, issue 15): the
// element counts it starts from equal what the model builders create, for every architecture; the NAD
// authors' checkpoints (weights plus SGD momentum) load under it; a zip and a legacy torch.save file,
// and a safetensors file, each with one storage grown past the limit, are refused with the file, the
// declared bytes, the limit and the architecture, while the same bytes still parse without the check
// (so it is the limit that refuses them); with the architecture given, a file over it is refused by its size.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { unzipSync, zipSync } from 'fflate';
import { allocationLimit, encodeSafetensors, parseTorchCheckpoint, readCheckpoint, specMetadata } from '../../src/engine/checkpoint';
import { ELEMENT_SIZE } from '../../src/engine/checkpoint/dtypes';
import { unpickle } from '../../src/engine/checkpoint/pickle';
import { TensorRef, type PickleValue } from '../../src/engine/checkpoint/values';
import { COPIES, SLACK_BYTES } from '../../src/engine/checkpoint/limit';
import { createModel, modelElements } from '../../src/engine/models';
import { InputError, type ModelSpec } from '../../src/engine/types';
import { initBackend } from '../../src/engine/backend';
import { SHARED, tempFolder } from '../fixtures/data/paths';

const CKPT = join(__dirname, '..', 'fixtures', 'checkpoints');
const NAD = join(SHARED, 'models', 'nad-reference');
const REFERENCE = ['wrn16-1_badnets-grid_target5.pth.tar', 'wrn16-1_teacher-finetuned.pth.tar'].map((f) => join(NAD, f));
const WRN10_1: ModelSpec = { arch: 'wrn', depth: 10, widen: 1, numClasses: 10, inChannels: 3, imageSize: 32 };
/** Grown storages are this much past the limit. */
const EXTRA = 3 * 2 ** 20;
const scratch = tempFolder('ckpt-limit');
after(() => scratch.remove());

/** Expects readCheckpoint to refuse `file` by the limit of `arch`, naming the file and the numbers. */
async function refusedByLimit(file: string, arch: string, what: RegExp, opts?: { arch?: ModelSpec }): Promise<void> {
  await assert.rejects(readCheckpoint(file, opts), (err: unknown) => {
    assert.ok(err instanceof InputError, String(err));
    assert.equal(err.file, file);
    assert.ok(err.message.includes(file), err.message);
    const m = new RegExp(
      `${what.source} (\\d+) bytes, over the limit of (\\d+) bytes for a ${arch} \\(its parameters and buffers are (\\d+) bytes`,
    ).exec(err.message);
    assert.ok(m, err.message);
    const [declared, limit, model] = m.slice(1).map(Number);
    assert.ok(declared > limit, err.message);
    assert.equal(limit, COPIES * model + SLACK_BYTES);
    return true;
  });
}

test('the element counts behind the limit are what each architecture builds', async () => {
  await initBackend('cpu');
  const specs: ModelSpec[] = [
    WRN10_1,
    { arch: 'wrn', depth: 16, widen: 2, numClasses: 43, inChannels: 3, imageSize: 32 },
    { arch: 'cnn', numClasses: 10, inChannels: 1, imageSize: 28 },
    { arch: 'cnn', numClasses: 10, inChannels: 3, imageSize: 32 },
    { arch: 'preact-resnet18', numClasses: 10, inChannels: 3, imageSize: 32 },
    { arch: 'resnet18', numClasses: 100, inChannels: 3, imageSize: 32 },
    { arch: 'vgg16-bn', numClasses: 10, inChannels: 3, imageSize: 64 },
  ];
  const before = tf.memory().numTensors;
  for (const spec of specs) {
    const model = createModel(spec, 0);
    const built = [...model.params.torchShapes().values()].reduce((sum, s) => sum + s.reduce((a, b) => a * b, 1), 0);
    model.dispose();
    assert.equal(modelElements(spec), built, JSON.stringify(spec));
  }
  assert.equal(tf.memory().numTensors, before);
});

test("the NAD authors' WRN-16-1 checkpoints (weights and SGD momentum) load under the limit", async (t) => {
  if (!REFERENCE.every(existsSync)) return t.skip(`${NAD} is absent (../shared)`);
  const wrn16: ModelSpec = { ...WRN10_1, depth: 16 };
  for (const file of REFERENCE) {
    const inferred = await readCheckpoint(file);
    assert.deepEqual(inferred.spec, wrn16);
    // The elements the builder counts are the file's state_dict less PyTorch's num_batches_tracked counters.
    const elements = [...inferred.stateDict].filter(([n]) => !n.endsWith('num_batches_tracked')).reduce((s, [, v]) => s + v.data.length, 0);
    assert.equal(modelElements(wrn16), elements);
    const given = await readCheckpoint(file, { arch: wrn16 });
    assert.equal(given.stateDict.size, inferred.stateDict.size);
    const bytes = readFileSync(file).length;
    assert.ok(bytes < allocationLimit(wrn16).limit, `${bytes} bytes`);
    // A small CNN's limit is below this file's size: given as the architecture, the file is refused unread.
    const cnn: ModelSpec = { arch: 'cnn', numClasses: 10, inChannels: 3, imageSize: 8 };
    await refusedByLimit(file, 'CNN \\(8x8x3\\)', /the file has/, { arch: cnn });
  }
});

test('a torch zip whose storage entry is grown past the limit is refused with its numbers', async () => {
  const entries = unzipSync(new Uint8Array(readFileSync(join(CKPT, 'wrn10-1_zip.pt'))));
  const storages = Object.keys(entries).filter((n) => /\/data\/\d+$/.test(n));
  const largest = storages.reduce((a, b) => (entries[a].length >= entries[b].length ? a : b));
  const grown = new Uint8Array(entries[largest].length + allocationLimit(WRN10_1).limit + EXTRA);
  grown.set(entries[largest]);
  // Stored, as torch.save writes (a compressed entry is refused before this, as a zip bomb).
  const bytes = zipSync({ ...entries, [largest]: grown }, { level: 0 });
  const file = join(scratch.dir, 'oversize-storage.pt');
  writeFileSync(file, bytes);
  // Without the check the same bytes parse: it is the limit that refuses them.
  const original = parseTorchCheckpoint(new Uint8Array(readFileSync(join(CKPT, 'wrn10-1_zip.pt'))), file);
  assert.equal(parseTorchCheckpoint(bytes, file).stateDict.size, original.stateDict.size);
  await refusedByLimit(file, 'WRN-10-1', /its tensor storages declare/);
});

test('a legacy torch.save file whose storage is grown past the limit is refused with its numbers', async () => {
  const src = new Uint8Array(readFileSync(join(CKPT, 'wrn10-1_legacy.pth.tar')));
  const file = join(scratch.dir, 'oversize-storage.pth.tar');
  // magic, protocol, sys_info, the main pickle, the storage keys; then each storage: an 8-byte count and its bytes.
  let pos = 0;
  const pickles: PickleValue[] = [];
  for (let i = 0; i < 5; i++) {
    const r = unpickle(src, file, pos);
    pickles.push(r.value);
    pos = r.end;
  }
  const dtypes = new Map<string, keyof typeof ELEMENT_SIZE>();
  const todo: PickleValue[] = [pickles[3]];
  while (todo.length) {
    const v = todo.pop();
    if (v instanceof TensorRef) dtypes.set(v.storage.key, v.storage.dtype);
    else if (v instanceof Map) todo.push(...v.values());
    else if (Array.isArray(v)) todo.push(...v);
  }
  const keys = (pickles[4] as PickleValue[]).map(String);
  const view = new DataView(src.buffer, src.byteOffset, src.byteLength);
  // The first float32 storage gets the extra elements (zeros) after its own.
  const key = keys.find((k) => dtypes.get(k) === 'float32');
  assert.ok(key);
  for (const k of keys) {
    const count = Number(view.getBigUint64(pos, true));
    if (k === key) {
      const extra = (allocationLimit(WRN10_1).limit + EXTRA) / 4;
      const grown = new Uint8Array(src.length + extra * 4);
      grown.set(src.subarray(0, pos + 8 + count * 4));
      grown.set(src.subarray(pos + 8 + count * 4), pos + 8 + (count + extra) * 4);
      new DataView(grown.buffer).setBigUint64(pos, BigInt(count + extra), true);
      writeFileSync(file, grown);
      assert.equal(parseTorchCheckpoint(grown, file).stateDict.size, parseTorchCheckpoint(src, file).stateDict.size);
      break;
    }
    pos += 8 + count * ELEMENT_SIZE[dtypes.get(k) ?? 'float32'];
  }
  await refusedByLimit(file, 'WRN-10-1', /its tensor storages declare/);
});

test('a safetensors model file with a tensor past its recorded architecture’s limit is refused', async () => {
  const spec: ModelSpec = { arch: 'cnn', numClasses: 10, inChannels: 1, imageSize: 28 };
  const junk = new Float32Array(allocationLimit(spec).limit / 4 + EXTRA / 4);
  const file = join(scratch.dir, 'oversize.safetensors');
  writeFileSync(file, encodeSafetensors(new Map([['junk', { shape: [junk.length], dtype: 'float32', data: junk }]]), specMetadata(spec)));
  await refusedByLimit(file, 'CNN \\(28x28x1\\)', /its tensor storages declare/);
});
