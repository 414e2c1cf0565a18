// The augmentation's random rotation (WaNet's PostTensorTransform: RandomRotation(10), p 0.5) against PyTorch:
// test/fixtures/data/make_rotation_fixture.py rotates seeded random images with F.affine_grid + F.grid_sample
// (bilinear, zeros, align_corners=True), which is kornia's rotate for square images. Then: augmentBatch without
// rotation draws what it drew before, and with it rotates about half the images, reproducibly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ImageDataset } from '../../src/engine/types';
import { Rng } from '../../src/engine/rng';
import { augmentBatch, rotateInPlace } from '../../src/engine/data/augment';
import { validateTraining } from '../../src/runs/config';
import { BADNET_TRAINING } from '../../src/engine/schedules';

interface Case {
  size: number;
  channels: number;
  degrees: number;
  image: string;
  rotated: string;
}
const fixture = JSON.parse(readFileSync(join(__dirname, '..', 'fixtures', 'data', 'rotation.json'), 'utf8')) as { cases: Case[] };
const f32 = (b64: string): Float32Array => {
  const b = Buffer.from(b64, 'base64');
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
};

test('rotateInPlace equals F.grid_sample on F.affine_grid (bilinear, zeros, align_corners=True)', () => {
  assert.equal(fixture.cases.length, 8);
  for (const c of fixture.cases) {
    const img = f32(c.image);
    const want = f32(c.rotated);
    const got = new Float32Array(img.length + 5).fill(7);
    got.set(img, 5); // at an offset inside a larger batch buffer
    rotateInPlace(got, 5, c.size, c.size, c.channels, c.degrees);
    let max = 0;
    for (let i = 0; i < want.length; i++) max = Math.max(max, Math.abs(got[5 + i] - want[i]));
    assert.ok(max < 2e-5, `${c.size}x${c.size}x${c.channels} at ${c.degrees} deg: max |diff| ${max}`);
    assert.deepEqual(Array.from(got.subarray(0, 5)), [7, 7, 7, 7, 7], 'values before the image untouched');
    // Not the identity: the rotation moved pixels (zeros came in at the corners).
    assert.ok(want.some((v, i) => Math.abs(v - img[i]) > 0.1));
  }
});

function randomImages(n: number, seed: number): ImageDataset {
  const r = new Rng(seed);
  const images = Uint8Array.from({ length: n * 32 * 32 * 3 }, () => r.int(256));
  return { images, labels: new Int32Array(n), count: n, height: 32, width: 32, channels: 3, numClasses: 10, source: 'synthetic' };
}

test('augmentBatch: rotation 0 draws the batches of before; rotation > 0 rotates about half, reproducibly', () => {
  const ds = randomImages(64, 3);
  const idx = Int32Array.from({ length: 64 }, (_, i) => i);
  const plain = augmentBatch(ds, idx, new Rng(11));
  assert.deepEqual(augmentBatch(ds, idx, new Rng(11), undefined, { rotation: 0 }), plain);
  const rotated = augmentBatch(ds, idx, new Rng(11), undefined, { rotation: 10, cutoutHoles: 0 });
  assert.deepEqual(augmentBatch(ds, idx, new Rng(11), undefined, { rotation: 10, cutoutHoles: 0 }), rotated, 'same seed, same batch');
  // An unrotated image is a crop of the source: every value is k/255 exactly; a rotated one has interpolated values.
  const size = 32 * 32 * 3;
  let turned = 0;
  for (let k = 0; k < 64; k++) {
    const img = rotated.subarray(k * size, (k + 1) * size);
    const offGrid = img.filter((v) => Math.abs(v * 255 - Math.round(v * 255)) > 1e-3).length;
    if (offGrid > size / 4) turned++;
    else assert.equal(offGrid, 0, `image ${k}: neither a crop nor a rotation`);
  }
  assert.ok(turned >= 20 && turned <= 44, `${turned} of 64 images rotated (p 0.5)`);
});

test('validateTraining names a bad rotation, and rotation without augmentation', () => {
  const base = { ...BADNET_TRAINING, augment: true };
  validateTraining({ ...base, rotation: 10 }, 'config.json');
  assert.throws(() => validateTraining({ ...base, rotation: -1 }, 'config.json'), /config\.json: rotation .* must be in 0\.\.180, got -1/);
  assert.throws(() => validateTraining({ ...base, rotation: Number.NaN }, 'config.json'), /rotation/);
  assert.throws(() => validateTraining({ ...base, augment: false, rotation: 10 }, 'config.json'), /augmentation, which is off/);
});
