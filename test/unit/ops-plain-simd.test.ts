// The ops suite again with the plain SIMD kernels (no relaxed-SIMD fused multiply-add), as on runtimes
// that do not validate relaxed SIMD: both builds must give the cpu backend's results.
process.env.NAD_RELAXED_SIMD = '0';
// eslint-disable-next-line @typescript-eslint/no-require-imports
require('./ops.test');
