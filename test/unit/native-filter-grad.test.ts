// The native addon's filter gradient (native/addon/addon.c, js_conv_filter_grad) keeps the wasm path's scheme:
// fixed chunks of 8 images, each chunk's part written by one thread, the parts added in order from +0. Checked bit
// for bit against that scheme rebuilt from the addon's own single-chunk results (one call per 8 images, summed in
// float32 here), with 1 and 2 threads, on WRN-16-1's three stride-1 3x3 shapes (Winograd) and by the direct
// kernel, with a partial last chunk, 3 -> 8 channels (no multiple of the vector width) and 256 channels (WRN-16-4).
// NAD_FILTER_GRAD_REFERENCE may name another build of the addon (e.g. the previous commit's) whose results must be
// the same bits. Skips, saying why, where the addon does not load.
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { loadNativeAddon } from '../../src/engine/kernels/native-addon';
import type { NativeKernelAddon } from '../../src/engine/kernels/simd-interfaces';
import { nativeAddonStatus } from '../fixtures/native-addon';

const { isa, problem } = nativeAddonStatus();
const CHUNK = 8; // FILTER_GRAD_CHUNK in addon.c and simd.ts
const reference = process.env.NAD_FILTER_GRAD_REFERENCE;

/** The addon's heap for these tests: x, dy and the output at fixed byte offsets (0 means none to the addon). */
const heap = new Uint8Array(48 << 20);
const f32 = new Float32Array(heap.buffer);
const X = 64;

function fill(offset: number, n: number, seed: number): void {
  let s = seed;
  for (let i = 0; i < n; i++) f32[offset / 4 + i] = ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
}

interface Case {
  n: number;
  hw: number;
  ci: number;
  co: number;
}

/** Lays out x and dy for a case (3x3, stride 1, pad 1) and returns a caller of the addon. */
function setUp({ n, hw, ci, co }: Case): {
  size: number;
  run: (k: NativeKernelAddon, start: number, count: number, winograd: number) => Uint32Array;
} {
  const [xImage, dyImage] = [hw * hw * ci, hw * hw * co];
  const dy = X + n * xImage * 4;
  const out = dy + n * dyImage * 4;
  fill(X, n * xImage, 1);
  fill(dy, n * dyImage, 2);
  const size = 9 * ci * co;
  const run = (k: NativeKernelAddon, start: number, count: number, winograd: number) => {
    f32.fill(Number.NaN, out / 4, out / 4 + size + 64); // every element must be written, and nothing after them
    k.conv_filter_grad(X + start * xImage * 4, dy + start * dyImage * 4, count, hw, hw, ci, hw, hw, co, 3, 3, 1, 1, out, winograd);
    assert.ok(f32.subarray(out / 4 + size, out / 4 + size + 64).every(Number.isNaN), 'wrote past the output');
    return new Uint32Array(heap.buffer.slice(out, out + size * 4));
  };
  return { size, run };
}

function firstDifference(a: Uint32Array, b: Uint32Array): string {
  const i = a.findIndex((v, j) => v !== b[j]);
  return i < 0 ? 'none' : `element ${i}: 0x${a[i].toString(16)} against 0x${b[i].toString(16)}`;
}

const CASES: Case[] = [
  { n: 64, hw: 32, ci: 16, co: 16 },
  { n: 64, hw: 16, ci: 32, co: 32 },
  { n: 64, hw: 8, ci: 64, co: 64 },
  { n: 29, hw: 8, ci: 64, co: 64 }, // a last chunk of 5 images
  { n: 19, hw: 9, ci: 3, co: 8 }, // 216 values: no multiple of 16 (direct only: ci % 4 != 0)
  { n: 9, hw: 4, ci: 256, co: 256 }, // M is 9.4 MB: more than the calling thread's stack
];
/** winograd.c's kernel (the portable build's) keeps M on the stack, as the addons before this test did. */
const stackM = (c: Case, winograd: number) => winograd === 1 && c.ci * c.co >= 256 * 256;

describe(`native filter gradient: chunks of ${CHUNK} summed in order (${problem ? 'addon not loaded' : isa})`, { skip: problem }, () => {
  let addon: NativeKernelAddon;
  before(() => {
    addon = loadNativeAddon();
    addon.heap(heap);
  });

  for (const c of CASES) {
    for (const winograd of [1, 0]) {
      const skip = isa === 'portable' && stackM(c, winograd) && 'the portable build keeps M (9.4 MB) on the stack';
      it(
        `${c.n} images of ${c.hw}x${c.hw}x${c.ci} -> ${c.co}, ${winograd ? 'Winograd' : 'direct'}: the in-order sum of the chunks' results`,
        { skip },
        () => {
          const { size, run } = setUp(c);
          const sum = new Float32Array(size); // +0, as the addon's sum starts
          for (let start = 0; start < c.n; start += CHUNK) {
            const part = new Float32Array(run(addon, start, Math.min(CHUNK, c.n - start), winograd).buffer);
            for (let i = 0; i < size; i++) sum[i] = Math.fround(sum[i] + part[i]);
          }
          const expected = new Uint32Array(sum.buffer);
          assert.ok(sum.every((v) => Number.isFinite(v) && v !== 0));
          for (const threads of [1, 2]) {
            addon.setThreads(threads);
            const got = run(addon, 0, c.n, winograd);
            assert.deepEqual(got, expected, `${threads} thread(s): first difference ${firstDifference(got, expected)}`);
          }
        },
      );
    }
  }

  it(
    'gives the same bits as the addon NAD_FILTER_GRAD_REFERENCE names',
    { skip: !reference && 'NAD_FILTER_GRAD_REFERENCE not set' },
    () => {
      const module = { exports: {} as NativeKernelAddon };
      process.dlopen(module, reference!);
      const old = module.exports;
      assert.equal(old.isa, addon.isa);
      old.heap(heap);
      old.setThreads(2);
      addon.setThreads(2);
      for (const c of CASES) {
        const { run } = setUp(c);
        for (const winograd of [1, 0]) {
          if (stackM(c, winograd)) continue;
          const got = run(addon, 0, c.n, winograd);
          const expected = run(old, 0, c.n, winograd);
          assert.deepEqual(
            got,
            expected,
            `${c.hw}x${c.hw}x${c.ci} -> ${c.co} ${winograd}: first difference ${firstDifference(got, expected)}`,
          );
        }
      }
    },
  );
});
