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
