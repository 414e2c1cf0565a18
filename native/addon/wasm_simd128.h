// The subset of clang's <wasm_simd128.h> that native/*.c uses, mapped to native 128-bit vectors, so that
// the same kernel sources compile for the Node-API addon (native/addon/). x86-64: SSE (with -mfma the
// compiler contracts mul+add into FMA, as relaxed SIMD does in the wasm build); elsewhere (arm64 NEON,
// others) GCC/clang vector extensions, which lower to the target's 128-bit SIMD.
#pragma once
#include <string.h>

#if defined(__SSE2__)
#include <immintrin.h>
typedef __m128 v128_t;
static inline v128_t wasm_v128_load(const void* p) { return _mm_loadu_ps((const float*)p); }
static inline void wasm_v128_store(void* p, v128_t v) { _mm_storeu_ps((float*)p, v); }
static inline v128_t wasm_v128_load32_splat(const void* p) { return _mm_set1_ps(*(const float*)p); }
static inline v128_t wasm_f32x4_splat(float v) { return _mm_set1_ps(v); }
static inline v128_t wasm_f32x4_add(v128_t a, v128_t b) { return _mm_add_ps(a, b); }
static inline v128_t wasm_f32x4_sub(v128_t a, v128_t b) { return _mm_sub_ps(a, b); }
static inline v128_t wasm_f32x4_mul(v128_t a, v128_t b) { return _mm_mul_ps(a, b); }
// wasm's f32x4.max propagates NaN; kernels only take max with 0 after arithmetic on finite values.
static inline v128_t wasm_f32x4_max(v128_t a, v128_t b) { return _mm_max_ps(a, b); }
static inline v128_t wasm_f32x4_gt(v128_t a, v128_t b) { return _mm_cmpgt_ps(a, b); }
static inline v128_t wasm_v128_and(v128_t a, v128_t b) { return _mm_and_ps(a, b); }
static inline v128_t wasm_f32x4_ne(v128_t a, v128_t b) { return _mm_cmpneq_ps(a, b); }
static inline v128_t wasm_v128_or(v128_t a, v128_t b) { return _mm_or_ps(a, b); }
#define wasm_f32x4_extract_lane(v, i) ((v)[i])
#else
typedef float v128_t __attribute__((vector_size(16), aligned(4)));
typedef int nad_i32x4 __attribute__((vector_size(16)));
static inline v128_t wasm_v128_load(const void* p) {
  v128_t v;
  memcpy(&v, p, sizeof v);
  return v;
}
static inline void wasm_v128_store(void* p, v128_t v) { memcpy(p, &v, sizeof v); }
static inline v128_t wasm_f32x4_splat(float v) { return (v128_t){v, v, v, v}; }
static inline v128_t wasm_v128_load32_splat(const void* p) { return wasm_f32x4_splat(*(const float*)p); }
static inline v128_t wasm_f32x4_add(v128_t a, v128_t b) { return a + b; }
static inline v128_t wasm_f32x4_sub(v128_t a, v128_t b) { return a - b; }
static inline v128_t wasm_f32x4_mul(v128_t a, v128_t b) { return a * b; }
static inline v128_t wasm_f32x4_max(v128_t a, v128_t b) {
  const nad_i32x4 m = a > b;
  return (v128_t)(((nad_i32x4)a & m) | ((nad_i32x4)b & ~m));
}
static inline v128_t wasm_f32x4_gt(v128_t a, v128_t b) { return (v128_t)(a > b); }
static inline v128_t wasm_v128_and(v128_t a, v128_t b) { return (v128_t)((nad_i32x4)a & (nad_i32x4)b); }
static inline v128_t wasm_f32x4_ne(v128_t a, v128_t b) { return (v128_t)(a != b); }
static inline v128_t wasm_v128_or(v128_t a, v128_t b) { return (v128_t)((nad_i32x4)a | (nad_i32x4)b); }
#define wasm_f32x4_extract_lane(v, i) ((v)[i])
#endif
