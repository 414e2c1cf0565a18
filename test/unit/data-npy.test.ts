// The .npy/.npz reader against files written by numpy itself (test/fixtures/data/npy, made by
// make_npy_fixtures.py) and against the paper's own mask files in ../shared.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../../src/engine/types';
import { parseNpy, readArrayFile, readNpy, readNpz } from '../../src/engine/data/npy';
import { FIXTURES, TRIGGER_DIR, hasShared, tempFolder } from '../fixtures/data/paths';

const NPY = join(FIXTURES, 'npy');
/** What make_npy_fixtures.py stores: arange(24) - 12 as (2, 3, 4), per dtype. */
const base = Array.from({ length: 24 }, (_, i) => i - 12);
const expected: Record<string, number[]> = {
  u1: base.map((v) => (v + 256) % 256),
  i1: base,
  i2: base,
  i4: base,
  i8: base,
  f4: base.map((v) => v / 4),
  f8: base.map((v) => v / 4),
  b1: base.map((v) => (((v % 3) + 3) % 3 === 0 ? 1 : 0)),
};
const dtypeOf: Record<string, string> = {
  u1: 'uint8',
  i1: 'int8',
  i2: 'int16',
  i4: 'int32',
  i8: 'int64',
  f4: 'float32',
  f8: 'float64',
  b1: 'bool',
};

test('npy: every supported dtype, C and Fortran order, read as C-order values', () => {
  for (const [code, values] of Object.entries(expected)) {
    for (const order of ['c', 'f']) {
      const arr = readNpy(join(NPY, `${code}-${order}.npy`));
      assert.equal(arr.dtype, dtypeOf[code], `${code}-${order}`);
      assert.deepEqual(arr.shape, [2, 3, 4]);
      assert.deepEqual([...arr.data], values, `${code}-${order} values`);
    }
  }
});

test('npy: format versions 2 and 3, 0-d arrays; npz stored and deflated', () => {
  for (const v of [2, 3]) assert.deepEqual([...readNpy(join(NPY, `f4-v${v}.npy`)).data], expected.f4);
  const scalar = readNpy(join(NPY, 'scalar.npy'));
  assert.deepEqual(scalar.shape, []);
  assert.deepEqual([...scalar.data], [2.5]);
  const stored = readNpz(join(NPY, 'stored.npz'));
  assert.deepEqual([...stored.keys()].sort(), ['x', 'y']);
  assert.deepEqual([...stored.get('x')!.data], base);
  assert.deepEqual([...readArrayFile(join(NPY, 'deflated.npz')).data], base);
  assert.deepEqual([...readArrayFile(join(NPY, 'stored.npz'), 'y').data], [0, 1, 2]);
  assert.throws(() => readArrayFile(join(NPY, 'stored.npz'), 'z'), /no array 'z'; the archive holds x, y/);
});

test('npy: bad input is an InputError naming the file', () => {
  const { dir, remove } = tempFolder('npy');
  try {
    const bad = join(dir, 'bad.npy');
    writeFileSync(bad, 'hello world');
    assert.throws(
      () => readArrayFile(bad),
      (e: unknown) => e instanceof InputError && e.file === bad && /neither a \.npy nor a \.npz/.test(e.message),
    );
    const bytes = readFileSync(join(NPY, 'f8-c.npy'));
    assert.throws(
      () => parseNpy(bytes.subarray(0, bytes.length - 8), 'cut.npy'),
      /\.npy data is 184 bytes but shape \(2, 3, 4\) of <f8 needs 192/,
    );
    const big = Buffer.from(bytes);
    big.write("'>f8'", big.indexOf("'<f8'"), 'latin1');
    assert.throws(() => parseNpy(big, 'be.npy'), /unsupported \.npy dtype '>f8'/);
    const v9 = Buffer.from(bytes);
    v9[6] = 9;
    assert.throws(() => parseNpy(v9, 'v9.npy'), /unsupported \.npy format version 9/);
    assert.throws(() => readNpy(join(dir, 'missing.npy')), /missing\.npy: file not found/);
  } finally {
    remove();
  }
});

test("the paper's mask files: signal uint8 (32, 32), trojan x float32 (3, 32, 32)", { skip: !hasShared() && '../shared absent' }, () => {
  const signal = readNpy(join(TRIGGER_DIR, 'signal_cifar10_mask.npy'));
  assert.equal(signal.dtype, 'uint8');
  assert.deepEqual(signal.shape, [32, 32]);
  assert.deepEqual([...signal.data.subarray(0, 8)], [0, 14, 19, 13, 255, 241, 237, 244]);
  // The same row repeated.
  for (let r = 1; r < 32; r++) assert.deepEqual([...signal.data.subarray(r * 32, r * 32 + 32)], [...signal.data.subarray(0, 32)]);
  const trojan = readArrayFile(join(TRIGGER_DIR, 'best_square_trigger_cifar10.npz'));
  assert.equal(trojan.dtype, 'float32');
  assert.deepEqual(trojan.shape, [3, 32, 32]);
  // Non-zero only at rows and columns 25..27; value checked with numpy: x[0, 25, 25] = 207.35342.
  for (let c = 0; c < 3; c++) {
    for (let r = 0; r < 32; r++) {
      for (let k = 0; k < 32; k++) {
        const inside = r >= 25 && r <= 27 && k >= 25 && k <= 27;
        if (!inside) assert.equal(trojan.data[(c * 32 + r) * 32 + k], 0);
      }
    }
  }
  assert.ok(Math.abs(trojan.data[25 * 32 + 25] - 207.35342) < 1e-4);
});
