// The ops suite (ops.test.ts) on the `native` backend: each kernel of the Node-API addon (the widest
// instruction set this CPU runs, or NAD_NATIVE_ISA's) against the cpu backend, within the wasm kernels'
// tolerances, with the addon's 2 threads. Skips, saying why, where the addon does not load.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { nativeAddonStatus } from '../fixtures/native-addon';

process.env.NAD_TEST_KERNEL_BACKEND = 'native';
process.env.NAD_NATIVE_THREADS = '2';
const { isa, problem } = nativeAddonStatus();

describe(`native kernels (${problem ? 'not loaded' : isa})`, { skip: problem }, () => {
  it('runs the instruction set asked for', () => {
    const asked = process.env.NAD_NATIVE_ISA;
    if (asked === 'portable' || asked === 'avx2') assert.equal(isa, asked);
    else assert.ok(['avx512', 'avx2', 'portable'].includes(isa), isa);
  });
});
// eslint-disable-next-line @typescript-eslint/no-require-imports
if (!problem) require('./ops.test');
