// Property-based fuzzing of every file reader (issue 15): mutations of small valid files (bit flips,
// overwrites, truncation, inserted and duplicated chunks, hostile size fields) and generated headers
// (safetensors JSON, npy dicts, IDX magic and dims, pickle opcode streams, PNG headers, config JSON).
// The property, per case: a valid result, or an InputError naming the file; never another exception,
// a case over 2 s, or arrayBuffers growing past a bound derived from the file's size; a checkpoint's
// tensors never past the allocation limit of the architecture they describe.
// `npm test` runs a few hundred cases per reader with a fixed seed; `npm run fuzz` 20x more, FUZZ_SEED printed.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { zipSync } from 'fflate';
import { PNG } from 'pngjs';
import {
  allocationLimit,
  detectCheckpointFormat,
  encodeSafetensors,
  inferSpec,
  parseSafetensors,
  parseTorchCheckpoint,
  storageCheckFor,
  type StorageCheck,
} from '../../src/engine/checkpoint';
import { checkModelFileVersion } from '../../src/engine/checkpoint/safetensors';
import { decodeCifarBinary } from '../../src/engine/data/cifar';
import { decodeCifar100Binary } from '../../src/engine/data/cifar100';
import { parseGtsrbCsv } from '../../src/engine/data/gtsrb';
import { readIdxPair } from '../../src/engine/data/idx';
import { decodeImageFile } from '../../src/engine/data/image-folder';
import { decodeJpegAsPillow } from '../../src/engine/data/jpeg';
import { parseNpy, parseNpz } from '../../src/engine/data/npy';
import { decodePpm } from '../../src/engine/data/ppm';
import { InputError, type ModelSpec, type StateDict } from '../../src/engine/types';
import { configFileText, parseConfigFile } from '../../src/runs/config-file';
import { readRunEvents, RunStore } from '../../src/runs/run-store';
import { SHARED, tempFolder } from '../fixtures/data/paths';
import { FUZZ_SCALE, FUZZ_SEED, fuzzReader, mutatedFiles, stats, summaryTable, type FaultKind } from '../fuzz/harness';
import { OP } from '../../src/engine/checkpoint/pickle-opcodes';

const ROOT = join(__dirname, '..', '..');
const CKPT = join(ROOT, 'test', 'fixtures', 'checkpoints');
const DATA = join(ROOT, 'test', 'fixtures', 'data');
const NAD_STUDENT = join(SHARED, 'models', 'nad-reference', 'wrn16-1_badnets-grid_target5.pth.tar');
const fixture = (...parts: string[]): Uint8Array => new Uint8Array(readFileSync(join(...parts)));
const scratch = tempFolder('fuzz');
/** Per-test-file timeout: a hang inside a synchronous reader ends the file here rather than never. */
const TIMEOUT = 600_000 * FUZZ_SCALE;

type Mutated = { bytes: Uint8Array; faults: FaultKind[] };
const faultsOf = (m: Mutated): FaultKind[] => m.faults;
const generated = (): FaultKind[] => ['generated'];
/** What a reader may allocate per input byte (float32 out of 1-byte storages, plus copies) and a fixed slack. */
const bound = (factor: number) => (m: { bytes: Uint8Array }) => factor * m.bytes.length + 16 * 2 ** 20;

/**
 * The checkpoint pipeline of readCheckpoint, on bytes: parse with the architecture's allocation limit
 * (src/engine/checkpoint/limit.ts), then infer the model (a refusal there is an InputError too). Files
 * whose tensors are no model are parsed on, so that the conversions after the check are fuzzed too.
 */
function readCheckpointBytes(bytes: Uint8Array, file: string): StateDict {
  const format = detectCheckpointFormat(bytes);
  const check: StorageCheck = (tensors, declared, metadata) => {
    let spec: ModelSpec;
    try {
      spec = inferSpec(tensors, file, metadata);
    } catch (err) {
      if (err instanceof InputError) return;
      throw err;
    }
    storageCheckFor(file, spec)(tensors, declared, metadata);
  };
  if (format === 'safetensors') {
    const { stateDict, metadata } = parseSafetensors(bytes, file, check);
    checkModelFileVersion(metadata, file);
    inferOrRefuse(stateDict, file, metadata);
    return stateDict;
  }
  const { stateDict } = parseTorchCheckpoint(bytes, file, check);
  inferOrRefuse(stateDict, file);
  return stateDict;
}

function inferOrRefuse(sd: StateDict, file: string, metadata?: Record<string, string>): void {
  try {
    inferSpec(sd, file, metadata);
  } catch (err) {
    if (!(err instanceof InputError)) throw err;
  }
}

function checkStateDict(sd: StateDict): void {
  for (const [name, t] of sd)
    assert.equal(
      t.data.length,
      t.shape.reduce((a, b) => a * b, 1),
      `tensor ${name}: data matches its shape`,
    );
  // What it returns stays within the limit of the architecture its tensors describe.
  let spec: ModelSpec;
  try {
    spec = inferSpec(sd, 'fuzzed');
  } catch {
    return;
  }
  const bytes = [...sd.values()].reduce((sum, t) => sum + t.data.byteLength, 0);
  assert.ok(bytes <= allocationLimit(spec).limit, `${bytes} bytes of tensors, over the limit ${allocationLimit(spec).limit}`);
}

// ---------- pickle opcode streams ----------

const enc = new TextEncoder();
const u32 = (n: number): number[] => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
const shortUnicode = (s: string): number[] => {
  const b = enc.encode(s).subarray(0, 255);
  return [OP.SHORT_BINUNICODE, b.length, ...b];
};
const binint = (n: number): number[] => [OP.BININT, ...u32(n)];
const global = (module: string, name: string): number[] => [OP.GLOBAL, ...enc.encode(`${module}\n${name}\n`)];

const GLOBALS: readonly [string, string][] = [
  ['collections', 'OrderedDict'],
  ['torch._utils', '_rebuild_tensor_v2'],
  ['torch._utils', '_rebuild_parameter'],
  ['torch', 'FloatStorage'],
  ['torch', 'HalfStorage'],
  ['torch', 'ByteStorage'],
  ['torch', 'LongStorage'],
  ['torch', 'Size'],
  ['builtins', 'set'],
  ['_codecs', 'encode'],
  ['numpy', 'dtype'],
  ['os', 'system'],
];

/** One opcode with plausible or hostile arguments. */
const pickleOp: fc.Arbitrary<number[]> = fc.oneof(
  fc.constantFrom(
    ...[
      OP.MARK,
      OP.EMPTY_DICT,
      OP.EMPTY_LIST,
      OP.EMPTY_TUPLE,
      OP.TUPLE,
      OP.TUPLE1,
      OP.TUPLE2,
      OP.TUPLE3,
      OP.SETITEM,
      OP.SETITEMS,
      OP.APPEND,
      OP.APPENDS,
      OP.DICT,
      OP.LIST,
      OP.REDUCE,
      OP.BUILD,
      OP.NEWOBJ,
      OP.BINPERSID,
      OP.NONE,
      OP.NEWTRUE,
      OP.NEWFALSE,
      OP.POP,
      OP.DUP,
      OP.MEMOIZE,
      OP.EMPTY_SET,
      OP.ADDITEMS,
      OP.FROZENSET,
      OP.POP_MARK,
      OP.STACK_GLOBAL,
      OP.STOP,
    ].map((op) => [op]),
  ),
  fc.integer({ min: 0, max: 255 }).map((n) => [OP.BININT1, n]),
  fc.integer().map((n) => binint(n)),
  fc.integer({ min: 0, max: 255 }).map((n) => [OP.BINPUT, n]),
  fc.integer({ min: 0, max: 255 }).map((n) => [OP.BINGET, n]),
  fc.nat().map((n) => [OP.LONG_BINGET, ...u32(n)]),
  fc.string({ maxLength: 12 }).map(shortUnicode),
  fc.constantFrom(...GLOBALS).map(([m, n]) => global(m, n)),
  fc.constantFrom(0, 1, 0x7fffffff, 0xffffffff).map((n) => [OP.BINUNICODE, ...u32(n), 0x41]),
  fc.constantFrom(0, 8, 0xffffffff).map((n) => [OP.BINBYTES8, ...u32(n), ...u32(n), 0]),
  fc.constantFrom(0, 8, 0xffffffff).map((n) => [OP.FRAME, ...u32(n), 0, 0, 0, 0]),
  fc.uint8Array({ maxLength: 9 }).map((b) => [OP.LONG1, b.length, ...b]),
  fc.uint8Array({ minLength: 1, maxLength: 6 }).map((b) => [...b]),
);

/** A torch tensor rebuild with hostile storage sizes, offsets, shapes and strides, in a state_dict. */
const tensorDict: fc.Arbitrary<number[]> = fc
  .record({
    storage: fc.constantFrom('FloatStorage', 'HalfStorage', 'ByteStorage', 'LongStorage', 'BoolStorage'),
    count: fc.oneof(fc.integer({ min: 0, max: 64 }), fc.constantFrom(0x7fffffff, 2 ** 31)),
    offset: fc.oneof(fc.integer({ min: 0, max: 8 }), fc.constantFrom(-1, 0x7fffffff)),
    shape: fc.array(fc.oneof(fc.integer({ min: 0, max: 3 }), fc.constantFrom(-1, 1 << 20, 0x7fffffff)), { maxLength: 3 }),
    stride: fc.array(fc.oneof(fc.integer({ min: 0, max: 9 }), fc.constantFrom(-1, 1 << 20)), { maxLength: 3 }),
    tensors: fc.integer({ min: 1, max: 3 }),
    // Half the cases are a consistent tensor (contiguous strides, small dims), so that many are read in full.
    consistent: fc.boolean(),
  })
  .map((r) => {
    if (!r.consistent) return r;
    const shape = r.shape.map((d) => Math.min(Math.max(d, 0), 3));
    const stride = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
    const offset = Math.min(Math.max(r.offset, 0), 8);
    return { ...r, shape, stride, offset, count: offset + shape.reduce((a, b) => a * b, 1) };
  })
  .map(({ storage, count, offset, shape, stride, tensors }) => {
    const tuple = (xs: number[]): number[] => [OP.MARK, ...xs.flatMap(binint), OP.TUPLE];
    const out: number[] = [OP.EMPTY_DICT, OP.MARK];
    for (let t = 0; t < tensors; t++) {
      out.push(...shortUnicode(`w${t}`), ...global('torch._utils', '_rebuild_tensor_v2'), OP.MARK);
      out.push(OP.MARK, ...shortUnicode('storage'), ...global('torch', storage), ...shortUnicode('0'), ...shortUnicode('cpu'));
      out.push(...binint(count), OP.TUPLE, OP.BINPERSID, ...binint(offset), ...tuple(shape), ...tuple(stride), OP.NEWFALSE);
      out.push(...global('collections', 'OrderedDict'), OP.EMPTY_TUPLE, OP.REDUCE, OP.TUPLE, OP.REDUCE);
    }
    out.push(OP.SETITEMS);
    return out;
  });

const picklePrograms = fc
  .tuple(
    fc.constantFrom(2, 3, 4, 5),
    fc.oneof(tensorDict, fc.constant([] as number[])),
    fc.oneof(fc.constant([] as number[][]), fc.array(pickleOp, { maxLength: 24 })),
    fc.uint8Array({ maxLength: 256 }),
  )
  .map(([proto, dict, ops, storage]) => {
    const pkl = new Uint8Array([OP.PROTO, proto, ...dict, ...ops.flat(), OP.STOP]);
    // Inside a torch zip, next to one storage of random bytes, so that the tensors are built too.
    const bytes = zipSync({ 'archive/data.pkl': pkl, 'archive/data/0': storage }, { level: 0 });
    return { bytes, faults: ['generated'] as FaultKind[] };
  });

// ---------- seeds for the data formats ----------

function idxFile(magic: number, dims: number[], data: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, magic, false);
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d >>> 0, false));
  out.set(data, 4 + 4 * dims.length);
  return out;
}

function npyFile(header: string, data: Uint8Array): Uint8Array {
  const pad = (64 - ((10 + header.length + 1) % 64)) % 64;
  const text = header + ' '.repeat(pad) + '\n';
  const out = new Uint8Array(10 + text.length + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(out.buffer).setUint16(8, text.length, true);
  out.set(enc.encode(text), 10);
  out.set(data, 10 + text.length);
  return out;
}

function pngFile(width: number, height: number): Uint8Array {
  const png = new PNG({ width, height });
  for (let i = 0; i < png.data.length; i++) png.data[i] = (i * 37) & 0xff;
  return new Uint8Array(PNG.sync.write(png));
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** A PNG whose IHDR declares any size, with a correct CRC (so only a size check can refuse it), then the seed's other chunks. */
function pngWithHeader(seed: Uint8Array, width: number, height: number, depth: number, colour: number): Uint8Array {
  const out = new Uint8Array(seed);
  const view = new DataView(out.buffer);
  view.setUint32(16, width >>> 0, false);
  view.setUint32(20, height >>> 0, false);
  out[24] = depth;
  out[25] = colour;
  view.setUint32(29, crc32(out.subarray(12, 29)), false);
  return out;
}

const cifarSeed = (recordBytes: number, records: number): Uint8Array =>
  Uint8Array.from({ length: recordBytes * records }, (_, i) => (i % recordBytes < recordBytes - 3072 ? i % 10 : (i * 7) & 0xff));

// Printed first too, so that a run killed by a hang or out of memory can be replayed: FUZZ_SEED=<n> npm run fuzz.
console.log(`fuzz: FUZZ_SEED=${FUZZ_SEED} FUZZ_SCALE=${FUZZ_SCALE}`);

after(() => {
  scratch.remove();
  console.log(`\n${summaryTable()}\n`);
});

/** A checkpoint reader fuzzed through readCheckpointBytes: every state dict it returns must match its shapes. */
function fuzzCheckpoint<T extends { readonly bytes: Uint8Array }>(
  reader: string,
  arb: fc.Arbitrary<T>,
  file: string,
  runs: number,
  faults: (input: T) => readonly FaultKind[],
): void {
  fuzzReader(
    reader,
    arb,
    (m) => readCheckpointBytes(m.bytes, file),
    { runs, allocLimit: bound(12), faults, file: () => file },
    checkStateDict,
  );
}

describe('fuzz: every reader returns a valid result or a named InputError', { timeout: TIMEOUT }, () => {
  test('checkpoint: torch zip', () => {
    const seeds = ['tensors_zip.pt', 'training_torch2_zip.pt', 'tensors_torch2_zip.pt', 'malicious_zip.pt', 'wrn10-1_zip.pt'].map((n) =>
      fixture(CKPT, n),
    );
    const file = join(scratch.dir, 'zip.pt');
    fuzzCheckpoint('checkpoint: torch zip', mutatedFiles(seeds), file, 200, faultsOf);
  });

  test('checkpoint: legacy torch.save (pickle + raw storages)', () => {
    const seeds = ['tensors_legacy.pt', 'malicious_legacy.pt', 'wrn10-1_legacy.pth.tar', 'no_tensors.pt'].map((n) => fixture(CKPT, n));
    // The NAD authors' WRN-16-1 student (about 1 MB), when ../shared is present.
    if (existsSync(NAD_STUDENT)) seeds.push(new Uint8Array(readFileSync(NAD_STUDENT)));
    else console.log(`fuzz: ${NAD_STUDENT} is absent; the legacy reader is fuzzed from the committed fixtures only`);
    const file = join(scratch.dir, 'legacy.pth.tar');
    fuzzCheckpoint('checkpoint: legacy', mutatedFiles(seeds), file, 200, faultsOf);
  });

  test('checkpoint: generated pickle opcode streams', () => {
    const file = join(scratch.dir, 'generated.pt');
    fuzzCheckpoint('checkpoint: generated pickles', picklePrograms, file, 400, faultsOf);
  });

  test('checkpoint: safetensors', () => {
    const sd: StateDict = new Map([
      ['a', { shape: [2, 3], dtype: 'float32', data: Float32Array.from([1, 2, 3, 4, 5, 6]) }],
      ['n', { shape: [], dtype: 'int64', data: Float32Array.from([7]) }],
      ['b', { shape: [4], dtype: 'uint8', data: Float32Array.from([1, 2, 3, 4]) }],
    ]);
    const seeds = [encodeSafetensors(sd, { format: 'nad-vscode-model', version: '1' }), encodeSafetensors(sd, {})];
    const file = join(scratch.dir, 'model.safetensors');
    fuzzCheckpoint('checkpoint: safetensors (mutated)', mutatedFiles(seeds), file, 300, faultsOf);

    const DTYPES = ['F64', 'F32', 'F16', 'BF16', 'I64', 'I32', 'I16', 'I8', 'U8', 'U16', 'U32', 'U64', 'BOOL', 'F8', 'X'];
    const dim = fc.oneof(fc.integer({ min: 0, max: 8 }), fc.constantFrom(-1, 2 ** 31, 2 ** 53, 1.5));
    const entry = fc.record({
      dtype: fc.constantFrom(...DTYPES),
      shape: fc.array(dim, { maxLength: 4 }),
      data_offsets: fc.tuple(dim, dim),
    });
    const headers = fc
      .record({
        tensors: fc.dictionary(fc.string({ maxLength: 6 }), entry, { maxKeys: 4 }),
        meta: fc.option(fc.dictionary(fc.string({ maxLength: 6 }), fc.oneof(fc.string(), fc.integer())), { nil: undefined }),
        data: fc.uint8Array({ maxLength: 256 }),
        length: fc.option(fc.constantFrom(0, 0xffffffff, 2 ** 40), { nil: undefined }),
        consistent: fc.boolean(),
      })
      .map(({ tensors, meta, data, length, consistent }) => {
        if (consistent) {
          // Half the cases: known dtypes, small dims and offsets laid end to end, so that many are read in full.
          const SIZE: Record<string, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, U8: 1, BOOL: 1 };
          let at = 0;
          for (const t of Object.values(tensors)) {
            if (!(t.dtype in SIZE)) t.dtype = 'F32';
            t.shape = t.shape.map((d) => (Number.isInteger(d) && d >= 0 && d <= 8 ? d : 2));
            const end = at + t.shape.reduce((a, b) => a * b, 1) * SIZE[t.dtype];
            t.data_offsets = [at, end];
            at = end;
          }
          data = new Uint8Array(at).map((_, i) => data[i % Math.max(1, data.length)] ?? 0);
        }
        const json = enc.encode(JSON.stringify(meta === undefined ? tensors : { ...tensors, __metadata__: meta }));
        const bytes = new Uint8Array(8 + json.length + data.length);
        new DataView(bytes.buffer).setBigUint64(0, BigInt(length ?? json.length), true);
        bytes.set(json, 8);
        bytes.set(data, 8 + json.length);
        return { bytes };
      });
    fuzzCheckpoint('checkpoint: safetensors (generated headers)', headers, file, 300, generated);
  });

  test('npy and npz', () => {
    const npyNames = ['u1-c.npy', 'f4-f.npy', 'f4-v2.npy', 'f4-v3.npy', 'i8-c.npy', 'b1-f.npy', 'scalar.npy'];
    const seeds = npyNames.map((n) => fixture(DATA, 'npy', n));
    const file = join(scratch.dir, 'mask.npy');
    const checkNpy = (a: ReturnType<typeof parseNpy>): void =>
      assert.equal(
        a.data.length,
        a.shape.reduce((x, y) => x * y, 1),
      );
    fuzzReader(
      'npy (mutated)',
      mutatedFiles(seeds),
      (m) => parseNpy(m.bytes, file),
      {
        runs: 300,
        allocLimit: bound(4),
        faults: faultsOf,
        file: () => file,
      },
      checkNpy,
    );

    const DESCRS = ['|u1', '<f4', '<f8', '<i8', '>f4', '|b1', '<c8', 'O', "'"];
    const headers = fc
      .record({
        descr: fc.constantFrom(...DESCRS),
        fortran: fc.constantFrom('True', 'False', 'maybe'),
        shape: fc.array(fc.oneof(fc.integer({ min: 0, max: 6 }), fc.constantFrom(-1, 2 ** 31, 2 ** 53, 2 ** 64)), { maxLength: 4 }),
        data: fc.uint8Array({ maxLength: 512 }),
      })
      .map(({ descr, fortran, shape, data }) => ({
        bytes: npyFile(`{'descr': '${descr}', 'fortran_order': ${fortran}, 'shape': (${shape.map((d) => `${d},`).join(' ')}), }`, data),
      }));
    fuzzReader(
      'npy (generated headers)',
      headers,
      (m) => parseNpy(m.bytes, file),
      {
        runs: 300,
        allocLimit: bound(4),
        faults: generated,
        file: () => file,
      },
      checkNpy,
    );

    const npzSeeds = ['deflated.npz', 'stored.npz'].map((n) => fixture(DATA, 'npy', n));
    const npz = join(scratch.dir, 'mask.npz');
    fuzzReader('npz (mutated)', mutatedFiles(npzSeeds), (m) => parseNpz(m.bytes, npz), {
      runs: 300,
      allocLimit: bound(1100),
      faults: faultsOf,
    });
  });

  test('IDX images and labels (raw and gzipped)', () => {
    const images = idxFile(
      0x803,
      [6, 4, 5],
      Uint8Array.from({ length: 120 }, (_, i) => i),
    );
    const labels = idxFile(0x801, [6], Uint8Array.from([0, 1, 2, 3, 4, 5]));
    const imagesPath = join(scratch.dir, 'train-images-idx3-ubyte');
    const labelsPath = join(scratch.dir, 'train-labels-idx1-ubyte');
    const cases = fc.tuple(mutatedFiles([images, labels]), fc.boolean(), fc.boolean()).map(([m, inLabels, gz]) => {
      const bytes = gz ? new Uint8Array(gzipSync(m.bytes)) : m.bytes;
      return { bytes, faults: m.faults, images: inLabels ? images : bytes, labels: inLabels ? bytes : labels };
    });
    const read = (c: { images: Uint8Array; labels: Uint8Array }): ReturnType<typeof readIdxPair> => {
      writeFileSync(imagesPath, c.images);
      writeFileSync(labelsPath, c.labels);
      return readIdxPair(imagesPath, labelsPath);
    };
    const checkIdx = (ds: ReturnType<typeof readIdxPair>): void => {
      assert.equal(ds.images.length, ds.count * ds.height * ds.width * ds.channels);
      assert.equal(ds.labels.length, ds.count);
    };
    fuzzReader('IDX (mutated)', cases, read, { runs: 300, allocLimit: bound(4), faults: faultsOf }, checkIdx);

    const dims = fc.array(fc.oneof(fc.integer({ min: 0, max: 6 }), fc.constantFrom(0xffffffff, 0x80000000, 65536)), {
      minLength: 0,
      maxLength: 5,
    });
    const generatedIdx = fc
      .record({
        magic: fc.oneof(fc.constantFrom(0x801, 0x803, 0x804, 0x805, 0xd03), fc.nat()),
        dims,
        data: fc.uint8Array({ maxLength: 400 }),
        exact: fc.boolean(),
      })
      .map(({ magic, dims: given, data, exact }) => {
        // Half the cases hold exactly the data their dims declare (as many dims as the magic's rank), with as many labels as images.
        const rank = magic & 0xff;
        const d = exact && rank <= 5 ? Array.from({ length: rank }, (_, i) => given[i] ?? 3) : given;
        const need = d.reduce((a, b) => a * b, 1);
        const body = exact && need <= 4096 ? new Uint8Array(need).map((_, i) => data[i % Math.max(1, data.length)] ?? 0) : data;
        const bytes = idxFile(magic, d, body);
        const count = d[0] ?? 0;
        return { bytes, images: bytes, labels: idxFile(0x801, [count], new Uint8Array(count <= 4096 ? count : 0)) };
      });
    fuzzReader('IDX (generated headers)', generatedIdx, read, { runs: 300, allocLimit: bound(4), faults: generated }, checkIdx);
  });

  test('CIFAR-10 and CIFAR-100 binaries', () => {
    const file = join(scratch.dir, 'data_batch_1.bin');
    fuzzReader('CIFAR-10', mutatedFiles([cifarSeed(3073, 3)]), (m) => decodeCifarBinary(m.bytes, file), {
      runs: 300,
      allocLimit: bound(4),
      faults: faultsOf,
      file: () => file,
    });
    fuzzReader('CIFAR-100', mutatedFiles([cifarSeed(3074, 3)]), (m) => decodeCifar100Binary(m.bytes, file, 'fine'), {
      runs: 300,
      allocLimit: bound(4),
      faults: faultsOf,
      file: () => file,
    });
  });

  test('images: PNG, JPEG, PPM', () => {
    const png = pngFile(8, 6);
    const jpegSeed = fixture(DATA, 'tiny-imagenet', 'tiny-imagenet-200', 'train', 'n01443537', 'images', 'n01443537_0.JPEG');
    const pngPath = join(scratch.dir, 'a.png');
    const readImage = (m: { bytes: Uint8Array }): ReturnType<typeof decodeImageFile> => {
      writeFileSync(pngPath, m.bytes);
      return decodeImageFile(pngPath);
    };
    const checkRgb = (img: { width: number; height: number; rgb: Uint8Array }): void =>
      assert.equal(img.rgb.length, img.width * img.height * 3);
    fuzzReader(
      'image folder: PNG/JPEG (mutated)',
      mutatedFiles([png, jpegSeed]),
      readImage,
      {
        runs: 300,
        allocLimit: bound(1100),
        faults: faultsOf,
        file: () => pngPath,
      },
      checkRgb,
    );

    const huge = fc.oneof(fc.integer({ min: 0, max: 64 }), fc.constantFrom(0x7fffffff, 65535, 100_000, 0xffffffff));
    const pngHeaders = fc
      .record({ w: huge, h: huge, depth: fc.constantFrom(1, 2, 4, 8, 16, 3), colour: fc.constantFrom(0, 2, 3, 4, 6, 5) })
      .map(({ w, h, depth, colour }) => ({ bytes: pngWithHeader(png, w, h, depth, colour) }));
    fuzzReader(
      'image folder: PNG (generated headers)',
      pngHeaders,
      readImage,
      {
        runs: 200,
        allocLimit: bound(1100),
        faults: generated,
        file: () => pngPath,
      },
      checkRgb,
    );

    const jpg = join(scratch.dir, 'a.JPEG');
    fuzzReader(
      'JPEG as Pillow (mutated)',
      mutatedFiles([jpegSeed]),
      (m) => decodeJpegAsPillow(m.bytes, jpg),
      {
        runs: 200,
        allocLimit: bound(1100),
        faults: faultsOf,
        file: () => jpg,
      },
      checkRgb,
    );

    const ppmSeed = new Uint8Array([...enc.encode('P6\n# c\n4 3\n255\n'), ...Array.from({ length: 36 }, (_, i) => i)]);
    const ppm = join(scratch.dir, 'a.ppm');
    fuzzReader(
      'PPM (mutated)',
      mutatedFiles([ppmSeed]),
      (m) => decodePpm(m.bytes, ppm),
      {
        runs: 300,
        allocLimit: bound(4),
        faults: faultsOf,
        file: () => ppm,
      },
      checkRgb,
    );
  });

  test('GTSRB annotation CSV', () => {
    const csv = join(scratch.dir, 'GT-final_test.csv');
    const seed = enc.encode(
      'Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId\n00000.ppm;53;54;6;5;48;49;16\n00001.ppm;42;45;5;5;36;40;1\n',
    );
    fuzzReader('GTSRB CSV (mutated)', mutatedFiles([seed]), (m) => parseGtsrbCsv(new TextDecoder().decode(m.bytes), csv, scratch.dir), {
      runs: 300,
      allocLimit: bound(64),
      faults: faultsOf,
      file: () => csv,
    });
  });

  test('config files (*.nad.json)', () => {
    const file = join(scratch.dir, 'job.nad.json');
    const valid = parseConfigFile(file, JSON.stringify({ kind: 'train', data: 'data', out: 'out' }));
    const seed = enc.encode(configFileText(valid, file));
    const text = (m: { bytes: Uint8Array }): string => new TextDecoder().decode(m.bytes);
    fuzzReader('config file (mutated)', mutatedFiles([seed]), (m) => parseConfigFile(file, text(m)), {
      runs: 300,
      allocLimit: bound(64),
      faults: faultsOf,
      file: () => file,
    });
    const jsonCases = fc
      .oneof(
        fc.jsonValue(),
        fc
          .record(
            { kind: fc.constantFrom('train', 'finetune', 'erase', 'defend', 'eval', 'attention', 'imageAttention', 'x') },
            { requiredKeys: [] },
          )
          .chain((base) =>
            fc
              .dictionary(
                fc.constantFrom(
                  'data',
                  'model',
                  'teacher',
                  'training',
                  'backdoor',
                  'attack',
                  'defense',
                  'seed',
                  'backend',
                  'arch',
                  'epochs',
                ),
                fc.jsonValue({ maxDepth: 2 }),
              )
              .map((extra) => ({ ...extra, ...base })),
          ),
      )
      .map((v) => ({ bytes: enc.encode(JSON.stringify(v) ?? 'null') }));
    const plausible = fc
      .record(
        {
          kind: fc.constantFrom('train', 'finetune', 'eval', 'attention'),
          data: fc.constantFrom('data', '../d', ''),
          out: fc.constantFrom('out', 'o'),
          seed: fc.oneof(fc.integer(), fc.double()),
          backend: fc.constantFrom('auto', 'wasm', 'gpu'),
        },
        { requiredKeys: ['kind', 'data'] },
      )
      .map((v) => ({ bytes: enc.encode(JSON.stringify(v)) }));
    fuzzReader('config file (generated plausible configs)', plausible, (m) => parseConfigFile(file, text(m)), {
      runs: 200,
      allocLimit: bound(64),
      faults: generated,
      file: () => file,
    });
    fuzzReader('config file (generated JSON)', jsonCases, (m) => parseConfigFile(file, text(m)), {
      runs: 300,
      allocLimit: bound(64),
      faults: generated,
      file: () => file,
    });
  });

  test('run folders (status.json, config.json, metrics.jsonl)', () => {
    const runs = join(scratch.dir, 'runs');
    const dir = join(runs, '20260101-000000-train-abcd');
    mkdirSync(dir, { recursive: true });
    const status = enc.encode(JSON.stringify({ state: 'finished', kind: 'train', startedAt: '2026-01-01T00:00:00Z', pid: 1, host: 'h' }));
    const config = enc.encode(JSON.stringify({ kind: 'train', data: 'd' }));
    const metrics = enc.encode(
      [
        JSON.stringify({ type: 'epoch', epoch: 1, phase: 'train', loss: 0.5, acc: 0.9 }),
        JSON.stringify({ type: 'log', message: 'hi' }),
        '',
      ].join('\n'),
    );
    const store = new RunStore(scratch.dir, runs);
    const cases = fc.tuple(fc.constantFrom(0, 1, 2), mutatedFiles([status, config, metrics])).map(([which, m]) => ({ which, ...m }));
    fuzzReader(
      'run folder (mutated)',
      cases,
      (c) => {
        writeFileSync(join(dir, 'status.json'), c.which === 0 ? c.bytes : status);
        writeFileSync(join(dir, 'config.json'), c.which === 1 ? c.bytes : config);
        writeFileSync(join(dir, 'metrics.jsonl'), c.which === 2 ? c.bytes : metrics);
        const read = store.read('20260101-000000-train-abcd');
        return { read, events: readRunEvents(dir), listed: store.list() };
      },
      {
        runs: 300,
        allocLimit: bound(64),
        faults: faultsOf,
        // The run store refuses by value: a broken run (named problem) or a metrics line it could not read.
        isRefusal: (r) => 'problem' in r.read || r.events.problems.length > 0,
      },
      (r) => assert.equal(r.listed.runs.length + r.listed.broken.length, 1),
    );
  });

  test('every reader ran all of its cases, and some of them were read in full', () => {
    for (const s of stats) {
      assert.equal(s.crashes, 0, s.reader);
      assert.equal(s.valid + s.refused, s.cases, `${s.reader}: every case is either valid or refused`);
      assert.ok(s.refused > 0, `${s.reader}: the faults must make some cases refused`);
    }
  });
});

// Each fault the fuzzer found, kept as a plain regression test with its numbers.
describe('regressions found by the fuzzer', () => {
  const rejects = (fn: () => unknown, file: string, pattern: RegExp): void => {
    const t0 = performance.now();
    assert.throws(fn, (e: unknown) => {
      assert.ok(e instanceof InputError, `expected InputError, got ${String(e)}`);
      assert.equal(e.file, file);
      assert.match(e.message, pattern);
      return true;
    });
    assert.ok(performance.now() - t0 < 1000, 'refused at once');
  };

  test('a torch zip whose zip64 directory claims 2^48 entries is refused at once (it ran out of memory listing them)', () => {
    const bytes = fixture(CKPT, 'tensors_zip.pt');
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let at = bytes.length - 22;
    while (at > 0 && view.getUint32(at, true) !== 0x06064b50) at--;
    assert.ok(at > 0, 'the fixture has a zip64 end record (torch writes one)');
    view.setUint32(at + 32, 0xffffffff, true); // total entries, low half
    view.setUint32(at + 36, 0xffff, true);
    rejects(() => parseTorchCheckpoint(bytes, 'many.pt'), 'many.pt', /lists more than \d+ entries, more than a \d+-byte file holds/);
  });

  test('a tensor whose stride 0 would expand a 16-element storage to 2^20 elements is refused', () => {
    const pkl = [OP.PROTO, 2, OP.EMPTY_DICT, ...shortUnicode('w'), ...global('torch._utils', '_rebuild_tensor_v2'), OP.MARK];
    pkl.push(OP.MARK, ...shortUnicode('storage'), ...global('torch', 'FloatStorage'), ...shortUnicode('0'), ...shortUnicode('cpu'));
    pkl.push(...binint(16), OP.TUPLE, OP.BINPERSID, ...binint(0), OP.MARK, ...binint(1 << 20), OP.TUPLE, OP.MARK, ...binint(0), OP.TUPLE);
    pkl.push(OP.NEWFALSE, ...global('collections', 'OrderedDict'), OP.EMPTY_TUPLE, OP.REDUCE, OP.TUPLE, OP.REDUCE, OP.SETITEM, OP.STOP);
    const bytes = zipSync({ 'a/data.pkl': new Uint8Array(pkl), 'a/data/0': new Uint8Array(64) }, { level: 0 });
    rejects(() => parseTorchCheckpoint(bytes, 'wide.pt'), 'wide.pt', /tensor w claims 1048576 elements but its storage 0 holds 16/);
  });

  test('many tensors viewing one storage, more elements in all than twice the file, are refused', () => {
    const pkl = [OP.PROTO, 2, OP.EMPTY_DICT, OP.MARK];
    for (let t = 0; t < 12; t++) {
      pkl.push(...shortUnicode(`w${t}`), ...global('torch._utils', '_rebuild_tensor_v2'), OP.MARK, OP.MARK, ...shortUnicode('storage'));
      pkl.push(...global('torch', 'FloatStorage'), ...shortUnicode('0'), ...shortUnicode('cpu'), ...binint(1000), OP.TUPLE, OP.BINPERSID);
      pkl.push(...binint(0), OP.MARK, ...binint(1000), OP.TUPLE, OP.MARK, ...binint(1), OP.TUPLE, OP.NEWFALSE);
      pkl.push(...global('collections', 'OrderedDict'), OP.EMPTY_TUPLE, OP.REDUCE, OP.TUPLE, OP.REDUCE);
    }
    pkl.push(OP.SETITEMS, OP.STOP);
    const bytes = zipSync({ 'a/data.pkl': new Uint8Array(pkl), 'a/data/0': new Uint8Array(4000) }, { level: 0 });
    rejects(
      () => parseTorchCheckpoint(bytes, 'tied.pt'),
      'tied.pt',
      /its tensors claim \d+ elements in all, more than twice the file's \d+ bytes/,
    );
  });

  test('a PNG declaring more pixels than 64 megapixels, or than its bytes can inflate to, is refused before decoding', () => {
    const seed = pngFile(8, 6);
    const path = join(scratch.dir, 'big.png');
    writeFileSync(path, pngWithHeader(seed, 100_000, 100_000, 8, 2));
    rejects(() => decodeImageFile(path), path, /declares 100000x100000 pixels, more than the limit of 67108864/);
    writeFileSync(path, pngWithHeader(seed, 4000, 4000, 8, 6));
    rejects(
      () => decodeImageFile(path),
      path,
      /declares 4000x4000 pixels \(64004000 bytes of pixel rows\), more than a \d+-byte file can hold/,
    );
  });

  test('a JPEG declaring more pixels than its bytes can code is refused before decoding (48 MB and 2 s for 901 bytes)', () => {
    const bytes = fixture(DATA, 'tiny-imagenet', 'tiny-imagenet-200', 'train', 'n01443537', 'images', 'n01443537_0.JPEG');
    let at = 2;
    while (bytes[at + 1] !== 0xc0 && bytes[at + 1] !== 0xc2) at += 2 + ((bytes[at + 2] << 8) | bytes[at + 3]);
    bytes.set([0x00, 0xf1, 0xf2, 0x40], at + 5); // 241 rows of 62016 pixels
    const path = join(scratch.dir, 'wide.jpg');
    writeFileSync(path, bytes);
    const pattern = /JPEG declares 62016x241 pixels, more than \d+ \(67108864 at most, and 512 per byte of a \d+-byte file\)/;
    rejects(() => decodeImageFile(path), path, pattern);
    rejects(() => decodeJpegAsPillow(bytes, 'wide.jpg'), 'wide.jpg', pattern);
  });

  test('an .npz member declaring more than deflate can expand to is refused before inflating', () => {
    const npy = fixture(DATA, 'npy', 'f4-c.npy');
    const bytes = zipSync({ 'x.npy': npy }, { level: 6 });
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    view.setUint32(22, 0x7fffffff, true); // local header: uncompressed size
    let at = bytes.length - 22;
    while (at > 0 && view.getUint32(at, true) !== 0x02014b50) at--;
    view.setUint32(at + 24, 0x7fffffff, true); // central directory: uncompressed size
    rejects(() => parseNpz(bytes, 'bomb.npz'), 'bomb.npz', /member x\.npy declares 2147483647 bytes from \d+ compressed/);
  });

  test('safetensors tensors that name the same bytes are refused (one block read many times over)', () => {
    const json = JSON.stringify({
      a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] },
      b: { dtype: 'F32', shape: [2], data_offsets: [8, 16] },
    });
    const bytes = new Uint8Array(8 + json.length + 16);
    new DataView(bytes.buffer).setUint32(0, json.length, true);
    bytes.set(enc.encode(json), 8);
    rejects(
      () => parseSafetensors(bytes, 'twice.safetensors'),
      'twice.safetensors',
      /tensors a \(bytes 0-16\) and b \(bytes 8-16\) overlap/,
    );
  });

  test('an .npy header whose shape needs more than the 1 GiB cap is refused with its numbers', () => {
    const bytes = npyFile("{'descr': '<f8', 'fortran_order': False, 'shape': (65536, 65536), }", new Uint8Array(8));
    rejects(() => parseNpy(bytes, 'huge.npy'), 'huge.npy', /needs 34359738368 bytes, over the limit of 1073741824/);
  });
});
