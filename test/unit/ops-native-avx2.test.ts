// The native kernel suite with the AVX2+FMA build forced (8-wide Winograd), as on CPUs without AVX-512.
process.env.NAD_NATIVE_ISA = 'avx2';
// eslint-disable-next-line @typescript-eslint/no-require-imports
require('./ops-native.test');
