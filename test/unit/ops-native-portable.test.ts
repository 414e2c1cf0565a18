// The native kernel suite with the portable build forced (128-bit vectors, as on CPUs the addon has no
// wider build for).
process.env.NAD_NATIVE_ISA = 'portable';
// eslint-disable-next-line @typescript-eslint/no-require-imports
require('./ops-native.test');
