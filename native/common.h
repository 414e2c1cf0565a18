// Shared by the kernel files: SIMD intrinsics, the export attribute, small helpers.
// No libc, no static data: the only memory a kernel touches is what the caller passes, plus a stack
// the loader places inside a buffer it allocated from the backend (see src/ml/kernels/simd.ts).
#pragma once
#include <wasm_simd128.h>

#define EXPORT(name) __attribute__((export_name(#name)))

// Per-channel sums run in float32 over blocks of BLOCK rows and in double across blocks.
#define BLOCK 32

static inline int min_i(int a, int b) { return a < b ? a : b; }

static inline void add_lanes(double* acc, v128_t s) {
  acc[0] += wasm_f32x4_extract_lane(s, 0);
  acc[1] += wasm_f32x4_extract_lane(s, 1);
  acc[2] += wasm_f32x4_extract_lane(s, 2);
  acc[3] += wasm_f32x4_extract_lane(s, 3);
}

// acc + a * b. With relaxed SIMD (the "-relaxed" builds), one fused multiply-add where the CPU has
// FMA (V8 lowers f32x4.relaxed_madd to vfmadd), else the same two instructions as without.
static inline v128_t madd(v128_t acc, v128_t a, v128_t b) {
#ifdef __wasm_relaxed_simd__
  return __builtin_wasm_relaxed_madd_f32x4(a, b, acc);
#else
  return wasm_f32x4_add(acc, wasm_f32x4_mul(a, b));
#endif
}

// One step of a 4 x 8 register tile: a[2r + h] += x[r * xs] * g[4h .. 4h + 3] for r < 4, h < 2 (the
// GEMM loops of the convolution kernels; `a` lives in registers once inlined).
static inline void tile4x8_step(v128_t a[8], const float* x, long xs, const float* g) {
  const v128_t g0 = wasm_v128_load(g), g1 = wasm_v128_load(g + 4);
  for (int r = 0; r < 4; r++) {
    const v128_t xr = wasm_v128_load32_splat(x + r * xs);
    a[2 * r] = madd(a[2 * r], xr, g0);
    a[2 * r + 1] = madd(a[2 * r + 1], xr, g1);
  }
}
