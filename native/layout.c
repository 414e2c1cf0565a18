// Data movement for the convolution gradients: transposes, dilation, filter flips, phase
// interleaving, and the ordered sum of per-chunk partial results.
#include "common.h"

// [n, p, c] -> [c, p, n] (batch and channels swapped; p = H*W). Per pixel, an n x c block transposed.
EXPORT(swap_batch_channels)
void swap_batch_channels(const float* x, int n, int p, int c, float* out) {
  const long row_in = (long)p * c, row_out = (long)p * n;
  for (int q = 0; q < p; q++) {
    for (int b = 0; b < n; b++) {
      const float* src = x + b * row_in + (long)q * c;
      for (int ch = 0; ch < c; ch++) out[ch * row_out + (long)q * n + b] = src[ch];
    }
  }
}

// [n, p, c] -> [p, n, c]: each image's channel vector moved, whole.
EXPORT(batch_to_inner)
void batch_to_inner(const float* x, int n, int p, int c, float* out) {
  for (int q = 0; q < p; q++)
    for (int b = 0; b < n; b++) __builtin_memcpy(out + ((long)q * n + b) * c, x + ((long)b * p + q) * c, (unsigned long)c * sizeof(float));
}

// [n, h, w, c] -> [n, oh, ow, c]: x[b, r, col] at row r*s, column col*s, zeros elsewhere (oh >= (h-1)s+1,
// ow >= (w-1)s+1: the extra rows and columns at the bottom and right are zero padding).
EXPORT(dilate)
void dilate(const float* x, int n, int h, int w, int c, int s, int oh, int ow, float* out) {
  __builtin_memset(out, 0, (unsigned long)n * oh * ow * c * sizeof(float));
  for (int b = 0; b < n; b++)
    for (int r = 0; r < h; r++)
      for (int col = 0; col < w; col++)
        __builtin_memcpy(out + (((long)b * oh + (long)r * s) * ow + (long)col * s) * c, x + (((long)b * h + r) * w + col) * c,
                         (unsigned long)c * sizeof(float));
}

// [kh, kw, ci, co] -> [kh, kw, co, ci] rotated by 180 degrees: the filter of the input gradient.
EXPORT(flip_filter)
void flip_filter(const float* f, int kh, int kw, int ci, int co, float* out) {
  for (int i = 0; i < kh; i++)
    for (int j = 0; j < kw; j++) {
      const float* src = f + ((long)i * kw + j) * ci * co;
      float* dst = out + ((long)(kh - 1 - i) * kw + (kw - 1 - j)) * co * ci;
      for (int c = 0; c < ci; c++)
        for (int d = 0; d < co; d++) dst[(long)d * ci + c] = src[(long)c * co + d];
    }
}

// Interleaves the four phases of a stride-2 map: out[n, 2a+u, 2b+v, c] = phase[2u+v][n, a, b, c].
EXPORT(interleave2)
void interleave2(const float* p00, const float* p01, const float* p10, const float* p11, int n, int h, int w, int c, float* out) {
  const float* ph[4] = {p00, p01, p10, p11};
  for (int img = 0; img < n; img++)
    for (int a = 0; a < h; a++)
      for (int u = 0; u < 2; u++)
        for (int b = 0; b < w; b++)
          for (int v = 0; v < 2; v++)
            __builtin_memcpy(out + ((((long)img * 2 * h + 2 * a + u) * 2 * w) + 2 * b + v) * c, ph[2 * u + v] + (((long)img * h + a) * w + b) * c,
                             (unsigned long)c * sizeof(float));
}

// The four phase filters of a stride-2 3x3 input gradient from the flipped filter f [3, 3, co, ci]:
// rows {1} or {0, 2} times columns {1} or {0, 2} -> [1,1], [1,2], [2,1], [2,2] x [co, ci].
EXPORT(phase_filters3x3)
void phase_filters3x3(const float* f, int co, int ci, float* p00, float* p01, float* p10, float* p11) {
  const long plane = (long)co * ci;
  float* out[4] = {p00, p01, p10, p11};
  for (int u = 0; u < 2; u++)
    for (int v = 0; v < 2; v++) {
      float* o = out[2 * u + v];
      for (int i = 1 - u; i < 3; i += 2)
        for (int j = 1 - v; j < 3; j += 2, o += plane) __builtin_memcpy(o, f + (long)(i * 3 + j) * plane, (unsigned long)plane * sizeof(float));
    }
}


// out = parts[0] + parts[1] + ... in this order: per-chunk partial sums combined deterministically,
// whichever thread computed which chunk.
EXPORT(sum_parts)
void sum_parts(const float* parts, int count, int size, float* out) {
  for (int i = 0; i < size; i++) {
    float s = 0.f;
    for (int c = 0; c < count; c++) s += parts[(long)c * size + i];
    out[i] = s;
  }
}
