// The direct filter gradient (any kernel size, stride and padding).
#include "common.h"

// Filter gradient of a convolution (NHWC x, HWIO filter, stride s, zero padding p), accumulated
// directly: out[i, j, ci, co] = sum_{n,a,b} x[n, s*a+i-p, s*b+j-p, ci] * dy[n, a, b, co].
// XNNPACK can compute this as a forward convolution, but one whose "filter" (dy) is megabytes large
// and is streamed again for every output tile; here each (image, output row) is a block of work whose
// x rows and dy row stay in L1 while all taps and channel tiles use them, with a 4 x 8 register tile.
// Requires co % 8 == 0 (the caller checks); ci tails (e.g. 3 input colours) take a 1 x 8 tile.
// Adds to out (the caller zeroes it), so that batches can be split into chunks and threads.
EXPORT(conv_filter_grad)
void conv_filter_grad(const float* x, const float* dy, int n, int h, int w, int ci, int ho, int wo, int co, int kh, int kw, int s, int p,
                      float* out) {
  for (int img = 0; img < n; img++) {
    for (int a = 0; a < ho; a++) {
      const float* dyrow = dy + ((long)img * ho + a) * wo * co;
      for (int i = 0; i < kh; i++) {
        const int r = s * a + i - p;
        if (r < 0 || r >= h) continue;
        const float* xrow = x + ((long)img * h + r) * w * ci;
        for (int j = 0; j < kw; j++) {
          // Output columns b whose input column s*b+j-p lies inside the image.
          int b0 = 0;
          while (b0 < wo && s * b0 + j - p < 0) b0++;
          int b1 = wo;
          while (b1 > b0 && s * (b1 - 1) + j - p >= w) b1--;
          if (b0 >= b1) continue;
          float* o = out + ((long)i * kw + j) * ci * co;
          int c0 = 0;
          for (; c0 + 4 <= ci; c0 += 4) {
            for (int d0 = 0; d0 < co; d0 += 8) {
              v128_t a[8];
              for (int q = 0; q < 8; q++) a[q] = wasm_f32x4_splat(0.f);
              const float* xp = xrow + (long)(s * b0 + j - p) * ci + c0;
              const float* dp = dyrow + (long)b0 * co + d0;
              for (int b = b0; b < b1; b++, xp += (long)s * ci, dp += co) tile4x8_step(a, xp, 1, dp);
              float* op = o + (long)c0 * co + d0;
              for (int r = 0; r < 4; r++, op += co) {
                wasm_v128_store(op, wasm_f32x4_add(wasm_v128_load(op), a[2 * r]));
                wasm_v128_store(op + 4, wasm_f32x4_add(wasm_v128_load(op + 4), a[2 * r + 1]));
              }
            }
          }
          for (; c0 < ci; c0++) {
            for (int d0 = 0; d0 < co; d0 += 8) {
              v128_t a0 = wasm_f32x4_splat(0.f), a1 = a0;
              const float* xp = xrow + (long)(s * b0 + j - p) * ci + c0;
              const float* dp = dyrow + (long)b0 * co + d0;
              for (int b = b0; b < b1; b++, xp += (long)s * ci, dp += co) {
                const v128_t xv = wasm_v128_load32_splat(xp);
                a0 = madd(a0, xv, wasm_v128_load(dp));
                a1 = madd(a1, xv, wasm_v128_load(dp + 4));
              }
              float* op = o + (long)c0 * co + d0;
              wasm_v128_store(op, wasm_f32x4_add(wasm_v128_load(op), a0));
              wasm_v128_store(op + 4, wasm_f32x4_add(wasm_v128_load(op + 4), a1));
            }
          }
        }
      }
    }
  }
}
