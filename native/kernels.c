// SIMD kernels for tfjs's wasm backend, run on its heap (our module imports the backend's memory).
// They replace tfjs-wasm kernels that are scalar or generic: batch norm (FusedBatchNorm costs ~10 ns
// per element, broadcasting Sub/Mul ~2 ns), its backward pass (7 broadcasting ops in tfjs's gradient),
// the ReLU mask, and the transposes/dilation the convolution gradients need.
// No libc, no static data: the only memory we touch is what the caller passes, plus a stack the
// loader places inside a buffer it allocated from the backend (see src/ml/kernels/simd.ts).
// Build: node native/build.mjs (clang --target=wasm32 -msimd128).
#include <wasm_simd128.h>

#define EXPORT(name) __attribute__((export_name(#name)))

// Per-channel sums over m rows of c channels: out[ch] = sum_r f(row r, ch), accumulated in float32 over
// blocks of 32 rows and in double across blocks (tfjs sums in float32; this is at least as accurate).
#define BLOCK 32

static inline int min_i(int a, int b) { return a < b ? a : b; }

static inline void add_lanes(double* acc, v128_t s) {
  acc[0] += wasm_f32x4_extract_lane(s, 0);
  acc[1] += wasm_f32x4_extract_lane(s, 1);
  acc[2] += wasm_f32x4_extract_lane(s, 2);
  acc[3] += wasm_f32x4_extract_lane(s, 3);
}

// Mean and biased variance per channel, two passes (as tfjs's moments: mean, then mean of squares).
static void moments(const float* x, int m, int c, float* mean, float* var) {
  double acc[c];
  for (int ch = 0; ch < c; ch++) acc[ch] = 0;
  for (int r0 = 0; r0 < m; r0 += BLOCK) {
    const int r1 = min_i(m, r0 + BLOCK);
    int ch = 0;
    for (; ch + 4 <= c; ch += 4) {
      v128_t s = wasm_f32x4_splat(0.f);
      for (int r = r0; r < r1; r++) s = wasm_f32x4_add(s, wasm_v128_load(x + (long)r * c + ch));
      add_lanes(acc + ch, s);
    }
    for (; ch < c; ch++) {
      float s = 0.f;
      for (int r = r0; r < r1; r++) s += x[(long)r * c + ch];
      acc[ch] += s;
    }
  }
  for (int ch = 0; ch < c; ch++) mean[ch] = (float)(acc[ch] / m), acc[ch] = 0;
  for (int r0 = 0; r0 < m; r0 += BLOCK) {
    const int r1 = min_i(m, r0 + BLOCK);
    int ch = 0;
    for (; ch + 4 <= c; ch += 4) {
      const v128_t mu = wasm_v128_load(mean + ch);
      v128_t s = wasm_f32x4_splat(0.f);
      for (int r = r0; r < r1; r++) {
        const v128_t d = wasm_f32x4_sub(wasm_v128_load(x + (long)r * c + ch), mu);
        s = wasm_f32x4_add(s, wasm_f32x4_mul(d, d));
      }
      add_lanes(acc + ch, s);
    }
    for (; ch < c; ch++) {
      float s = 0.f;
      for (int r = r0; r < r1; r++) {
        const float d = x[(long)r * c + ch] - mean[ch];
        s += d * d;
      }
      acc[ch] += s;
    }
  }
  for (int ch = 0; ch < c; ch++) var[ch] = (float)(acc[ch] / m);
}

// y = (x - mean) * (gamma / sqrt(var + eps)) + beta, then max(y, 0) if relu.
static void normalize(const float* x, int m, int c, const float* mean, const float* scale, const float* beta, int relu, float* y) {
  const v128_t zero = wasm_f32x4_splat(0.f);
  for (int r = 0; r < m; r++) {
    const float* xr = x + (long)r * c;
    float* yr = y + (long)r * c;
    int ch = 0;
    for (; ch + 4 <= c; ch += 4) {
      v128_t v = wasm_f32x4_add(wasm_f32x4_mul(wasm_f32x4_sub(wasm_v128_load(xr + ch), wasm_v128_load(mean + ch)), wasm_v128_load(scale + ch)),
                                wasm_v128_load(beta + ch));
      if (relu) v = wasm_f32x4_max(v, zero);
      wasm_v128_store(yr + ch, v);
    }
    for (; ch < c; ch++) {
      const float v = (xr[ch] - mean[ch]) * scale[ch] + beta[ch];
      yr[ch] = relu && v < 0.f ? 0.f : v;
    }
  }
}

// Training-mode batch norm (+ optional ReLU) over m = N*H*W rows of c channels.
// Outputs y, the batch mean, the biased variance, and 1/sqrt(var + eps) for the backward pass.
EXPORT(bn_forward)
void bn_forward(const float* x, int m, int c, const float* gamma, const float* beta, float eps, int relu,
                float* y, float* mean, float* var, float* inv_std) {
  moments(x, m, c, mean, var);
  float scale[c];
  for (int ch = 0; ch < c; ch++) {
    inv_std[ch] = 1.f / __builtin_sqrtf(var[ch] + eps);
    scale[ch] = gamma[ch] * inv_std[ch];
  }
  normalize(x, m, c, mean, scale, beta, relu, y);
}

// Evaluation-mode batch norm (+ optional ReLU) with given statistics.
EXPORT(bn_eval)
void bn_eval(const float* x, int m, int c, const float* mean, const float* var, const float* gamma, const float* beta, float eps,
             int relu, float* y) {
  float scale[c];
  for (int ch = 0; ch < c; ch++) scale[ch] = gamma[ch] / __builtin_sqrtf(var[ch] + eps);
  normalize(x, m, c, mean, scale, beta, relu, y);
}

// Backward of bn_forward. g = dy, masked by y > 0 when relu (y = the forward output). With
// xc = x - mean, M = m:  dbeta = sum g,  dgamma = inv_std * sum g*xc,
// dx = a*g + b*xc + k,  a = gamma*inv_std,  b = -a*inv_std^2*sum(g*xc)/M + 2*dvar/M,  k = -a*sum(g)/M + dmean/M
// (dmean, dvar: gradients reaching the returned statistics, usually zero).
EXPORT(bn_backward)
void bn_backward(const float* dy, const float* x, const float* y, int m, int c, int relu, const float* mean, const float* inv_std,
                 const float* gamma, const float* dmean, const float* dvar, float* dx, float* dgamma, float* dbeta) {
  double sg[c], sgx[c];
  for (int ch = 0; ch < c; ch++) sg[ch] = 0, sgx[ch] = 0;
  const v128_t zero = wasm_f32x4_splat(0.f);
  for (int r0 = 0; r0 < m; r0 += BLOCK) {
    const int r1 = min_i(m, r0 + BLOCK);
    int ch = 0;
    for (; ch + 4 <= c; ch += 4) {
      const v128_t mu = wasm_v128_load(mean + ch);
      v128_t s1 = zero, s2 = zero;
      for (int r = r0; r < r1; r++) {
        const long i = (long)r * c + ch;
        v128_t g = wasm_v128_load(dy + i);
        if (relu) g = wasm_v128_and(g, wasm_f32x4_gt(wasm_v128_load(y + i), zero));
        s1 = wasm_f32x4_add(s1, g);
        s2 = wasm_f32x4_add(s2, wasm_f32x4_mul(g, wasm_f32x4_sub(wasm_v128_load(x + i), mu)));
      }
      add_lanes(sg + ch, s1);
      add_lanes(sgx + ch, s2);
    }
    for (; ch < c; ch++) {
      float s1 = 0.f, s2 = 0.f;
      for (int r = r0; r < r1; r++) {
        const long i = (long)r * c + ch;
        const float g = relu && !(y[i] > 0.f) ? 0.f : dy[i];
        s1 += g;
        s2 += g * (x[i] - mean[ch]);
      }
      sg[ch] += s1;
      sgx[ch] += s2;
    }
  }
  float a[c], b[c], k[c];
  for (int ch = 0; ch < c; ch++) {
    const float is = inv_std[ch];
    dbeta[ch] = (float)sg[ch];
    dgamma[ch] = (float)sgx[ch] * is;
    a[ch] = gamma[ch] * is;
    b[ch] = -a[ch] * is * is * (float)(sgx[ch] / m) + 2.f * dvar[ch] / m;
    k[ch] = -a[ch] * (float)(sg[ch] / m) + dmean[ch] / m;
  }
  for (int r = 0; r < m; r++) {
    const long base = (long)r * c;
    int ch = 0;
    for (; ch + 4 <= c; ch += 4) {
      const long i = base + ch;
      v128_t g = wasm_v128_load(dy + i);
      if (relu) g = wasm_v128_and(g, wasm_f32x4_gt(wasm_v128_load(y + i), zero));
      const v128_t xc = wasm_f32x4_sub(wasm_v128_load(x + i), wasm_v128_load(mean + ch));
      const v128_t v = wasm_f32x4_add(wasm_f32x4_add(wasm_f32x4_mul(g, wasm_v128_load(a + ch)), wasm_f32x4_mul(xc, wasm_v128_load(b + ch))),
                                      wasm_v128_load(k + ch));
      wasm_v128_store(dx + i, v);
    }
    for (; ch < c; ch++) {
      const long i = base + ch;
      const float g = relu && !(y[i] > 0.f) ? 0.f : dy[i];
      dx[i] = g * a[ch] + (x[i] - mean[ch]) * b[ch] + k[ch];
    }
  }
}

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

// [n, h, w, c] -> [n, (h-1)s+1, (w-1)s+1, c] with zeros between rows and between columns.
EXPORT(dilate)
void dilate(const float* x, int n, int h, int w, int c, int s, float* out) {
  const int oh = (h - 1) * s + 1, ow = (w - 1) * s + 1;
  __builtin_memset(out, 0, (unsigned long)n * oh * ow * c * sizeof(float));
  for (int b = 0; b < n; b++)
    for (int r = 0; r < h; r++)
      for (int col = 0; col < w; col++)
        __builtin_memcpy(out + (((long)b * oh + (long)r * s) * ow + (long)col * s) * c, x + (((long)b * h + r) * w + col) * c,
                         (unsigned long)c * sizeof(float));
}

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
              v128_t a00 = wasm_f32x4_splat(0.f), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00;
              const float* xp = xrow + (long)(s * b0 + j - p) * ci + c0;
              const float* dp = dyrow + (long)b0 * co + d0;
              for (int b = b0; b < b1; b++, xp += (long)s * ci, dp += co) {
                const v128_t g0 = wasm_v128_load(dp), g1 = wasm_v128_load(dp + 4);
                const v128_t x0 = wasm_v128_load32_splat(xp), x1 = wasm_v128_load32_splat(xp + 1);
                const v128_t x2 = wasm_v128_load32_splat(xp + 2), x3 = wasm_v128_load32_splat(xp + 3);
                a00 = wasm_f32x4_add(a00, wasm_f32x4_mul(x0, g0));
                a01 = wasm_f32x4_add(a01, wasm_f32x4_mul(x0, g1));
                a10 = wasm_f32x4_add(a10, wasm_f32x4_mul(x1, g0));
                a11 = wasm_f32x4_add(a11, wasm_f32x4_mul(x1, g1));
                a20 = wasm_f32x4_add(a20, wasm_f32x4_mul(x2, g0));
                a21 = wasm_f32x4_add(a21, wasm_f32x4_mul(x2, g1));
                a30 = wasm_f32x4_add(a30, wasm_f32x4_mul(x3, g0));
                a31 = wasm_f32x4_add(a31, wasm_f32x4_mul(x3, g1));
              }
              float* op = o + (long)c0 * co + d0;
              wasm_v128_store(op, wasm_f32x4_add(wasm_v128_load(op), a00));
              wasm_v128_store(op + 4, wasm_f32x4_add(wasm_v128_load(op + 4), a01));
              op += co;
              wasm_v128_store(op, wasm_f32x4_add(wasm_v128_load(op), a10));
              wasm_v128_store(op + 4, wasm_f32x4_add(wasm_v128_load(op + 4), a11));
              op += co;
              wasm_v128_store(op, wasm_f32x4_add(wasm_v128_load(op), a20));
              wasm_v128_store(op + 4, wasm_f32x4_add(wasm_v128_load(op + 4), a21));
              op += co;
              wasm_v128_store(op, wasm_f32x4_add(wasm_v128_load(op), a30));
              wasm_v128_store(op + 4, wasm_f32x4_add(wasm_v128_load(op + 4), a31));
            }
          }
          for (; c0 < ci; c0++) {
            for (int d0 = 0; d0 < co; d0 += 8) {
              v128_t a0 = wasm_f32x4_splat(0.f), a1 = a0;
              const float* xp = xrow + (long)(s * b0 + j - p) * ci + c0;
              const float* dp = dyrow + (long)b0 * co + d0;
              for (int b = b0; b < b1; b++, xp += (long)s * ci, dp += co) {
                const v128_t xv = wasm_v128_load32_splat(xp);
                a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(xv, wasm_v128_load(dp)));
                a1 = wasm_f32x4_add(a1, wasm_f32x4_mul(xv, wasm_v128_load(dp + 4)));
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

// 3x3, stride 1, pad 1 convolution by Winograd F(2x2, 3x3): each 2x2 output tile costs 16 multiplies
// per (ci, co) instead of 36, i.e. 2.25x fewer than any direct method (XNNPACK's included). Per block
// of up to WINO_T tiles of one tile row: input transform V = B^T d B (per channel, SIMD over
// channels), 16 GEMMs M[xi] = V[xi] (T x ci) * U[xi] (ci x co), output transform Y = A^T M A.
// U = G g G^T is computed once per call. Requires ci % 4 == 0 and co % 8 == 0 (the caller checks).
#define WINO_T 16

static void wino_filter(const float* f, int ci, int co, float* u /* [16][ci][co] */) {
  const long plane = (long)ci * co;
  for (int c = 0; c < ci; c++) {
    for (int d = 0; d < co; d += 4) {
      v128_t g[3][3], t[4][3];
      for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) g[i][j] = wasm_v128_load(f + ((long)(i * 3 + j) * ci + c) * co + d);
      const v128_t half = wasm_f32x4_splat(0.5f);
      for (int j = 0; j < 3; j++) {  // t = G g
        t[0][j] = g[0][j];
        t[1][j] = wasm_f32x4_mul(half, wasm_f32x4_add(wasm_f32x4_add(g[0][j], g[1][j]), g[2][j]));
        t[2][j] = wasm_f32x4_mul(half, wasm_f32x4_add(wasm_f32x4_sub(g[0][j], g[1][j]), g[2][j]));
        t[3][j] = g[2][j];
      }
      for (int i = 0; i < 4; i++) {  // U = t G^T
        float* o = u + (long)(i * 4) * plane + (long)c * co + d;
        wasm_v128_store(o, t[i][0]);
        wasm_v128_store(o + plane, wasm_f32x4_mul(half, wasm_f32x4_add(wasm_f32x4_add(t[i][0], t[i][1]), t[i][2])));
        wasm_v128_store(o + 2 * plane, wasm_f32x4_mul(half, wasm_f32x4_add(wasm_f32x4_sub(t[i][0], t[i][1]), t[i][2])));
        wasm_v128_store(o + 3 * plane, t[i][2]);
      }
    }
  }
}

// V[xi][t][c] for the tiles tx0 .. tx0+nt-1 of tile row ty of image img.
static void wino_input(const float* x, int h, int w, int ci, int ty, int tx0, int nt, float* v /* [16][nt][ci] */) {
  const long plane = (long)nt * ci;
  const v128_t zero = wasm_f32x4_splat(0.f);
  for (int t = 0; t < nt; t++) {
    const int r0 = 2 * ty - 1, c0 = 2 * (tx0 + t) - 1;
    for (int c = 0; c < ci; c += 4) {
      v128_t d[4][4];
      for (int r = 0; r < 4; r++)
        for (int s = 0; s < 4; s++) {
          const int rr = r0 + r, cc = c0 + s;
          d[r][s] = rr >= 0 && rr < h && cc >= 0 && cc < w ? wasm_v128_load(x + ((long)rr * w + cc) * ci + c) : zero;
        }
      v128_t e[4][4];
      for (int s = 0; s < 4; s++) {  // e = B^T d
        e[0][s] = wasm_f32x4_sub(d[0][s], d[2][s]);
        e[1][s] = wasm_f32x4_add(d[1][s], d[2][s]);
        e[2][s] = wasm_f32x4_sub(d[2][s], d[1][s]);
        e[3][s] = wasm_f32x4_sub(d[1][s], d[3][s]);
      }
      float* o = v + (long)t * ci + c;
      for (int r = 0; r < 4; r++) {  // V = e B
        wasm_v128_store(o + (long)(r * 4 + 0) * plane, wasm_f32x4_sub(e[r][0], e[r][2]));
        wasm_v128_store(o + (long)(r * 4 + 1) * plane, wasm_f32x4_add(e[r][1], e[r][2]));
        wasm_v128_store(o + (long)(r * 4 + 2) * plane, wasm_f32x4_sub(e[r][2], e[r][1]));
        wasm_v128_store(o + (long)(r * 4 + 3) * plane, wasm_f32x4_sub(e[r][1], e[r][3]));
      }
    }
  }
}

// M[xi] (nt x co) = V[xi] (nt x ci) * U[xi] (ci x co) for the 16 xi, 4 x 8 register tiles.
static void wino_gemm(const float* v, const float* u, int nt, int ci, int co, float* m) {
  for (int xi = 0; xi < 16; xi++) {
    const float* vx = v + (long)xi * nt * ci;
    const float* ux = u + (long)xi * ci * co;
    float* mx = m + (long)xi * nt * co;
    for (int d0 = 0; d0 < co; d0 += 8) {
      int t = 0;
      for (; t + 4 <= nt; t += 4) {
        v128_t a00 = wasm_f32x4_splat(0.f), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00;
        const float* vp = vx + (long)t * ci;
        const float* up = ux + d0;
        for (int k = 0; k < ci; k++, up += co) {
          const v128_t g0 = wasm_v128_load(up), g1 = wasm_v128_load(up + 4);
          const v128_t x0 = wasm_v128_load32_splat(vp + k), x1 = wasm_v128_load32_splat(vp + ci + k);
          const v128_t x2 = wasm_v128_load32_splat(vp + 2 * ci + k), x3 = wasm_v128_load32_splat(vp + 3 * ci + k);
          a00 = wasm_f32x4_add(a00, wasm_f32x4_mul(x0, g0));
          a01 = wasm_f32x4_add(a01, wasm_f32x4_mul(x0, g1));
          a10 = wasm_f32x4_add(a10, wasm_f32x4_mul(x1, g0));
          a11 = wasm_f32x4_add(a11, wasm_f32x4_mul(x1, g1));
          a20 = wasm_f32x4_add(a20, wasm_f32x4_mul(x2, g0));
          a21 = wasm_f32x4_add(a21, wasm_f32x4_mul(x2, g1));
          a30 = wasm_f32x4_add(a30, wasm_f32x4_mul(x3, g0));
          a31 = wasm_f32x4_add(a31, wasm_f32x4_mul(x3, g1));
        }
        float* mp = mx + (long)t * co + d0;
        wasm_v128_store(mp, a00), wasm_v128_store(mp + 4, a01), mp += co;
        wasm_v128_store(mp, a10), wasm_v128_store(mp + 4, a11), mp += co;
        wasm_v128_store(mp, a20), wasm_v128_store(mp + 4, a21), mp += co;
        wasm_v128_store(mp, a30), wasm_v128_store(mp + 4, a31);
      }
      for (; t < nt; t++) {
        v128_t a0 = wasm_f32x4_splat(0.f), a1 = a0;
        const float* vp = vx + (long)t * ci;
        const float* up = ux + d0;
        for (int k = 0; k < ci; k++, up += co) {
          const v128_t xk = wasm_v128_load32_splat(vp + k);
          a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(xk, wasm_v128_load(up)));
          a1 = wasm_f32x4_add(a1, wasm_f32x4_mul(xk, wasm_v128_load(up + 4)));
        }
        wasm_v128_store(mx + (long)t * co + d0, a0);
        wasm_v128_store(mx + (long)t * co + d0 + 4, a1);
      }
    }
  }
}

// Y = A^T M A into the output rows of tile row ty.
static void wino_output(const float* m, int h, int w, int co, int ty, int tx0, int nt, float* y) {
  const long plane = (long)nt * co;
  for (int t = 0; t < nt; t++) {
    const int r0 = 2 * ty, c0 = 2 * (tx0 + t);
    for (int d = 0; d < co; d += 4) {
      const float* p = m + (long)t * co + d;
      v128_t q[2][4];
      for (int s = 0; s < 4; s++) {  // q = A^T M
        const v128_t m0 = wasm_v128_load(p + (long)(0 * 4 + s) * plane), m1 = wasm_v128_load(p + (long)(1 * 4 + s) * plane);
        const v128_t m2 = wasm_v128_load(p + (long)(2 * 4 + s) * plane), m3 = wasm_v128_load(p + (long)(3 * 4 + s) * plane);
        q[0][s] = wasm_f32x4_add(wasm_f32x4_add(m0, m1), m2);
        q[1][s] = wasm_f32x4_sub(wasm_f32x4_sub(m1, m2), m3);
      }
      for (int i = 0; i < 2; i++) {
        if (r0 + i >= h) break;
        float* o = y + ((long)(r0 + i) * w + c0) * co + d;
        wasm_v128_store(o, wasm_f32x4_add(wasm_f32x4_add(q[i][0], q[i][1]), q[i][2]));
        if (c0 + 1 < w) wasm_v128_store(o + co, wasm_f32x4_sub(wasm_f32x4_sub(q[i][1], q[i][2]), q[i][3]));
      }
    }
  }
}

EXPORT(conv3x3_winograd)
void conv3x3_winograd(const float* x, int n, int h, int w, int ci, const float* f, int co, float* y) {
  float u[16 * ci * co];
  wino_filter(f, ci, co, u);
  float v[16 * WINO_T * ci], m[16 * WINO_T * co];
  const int th = (h + 1) / 2, tw = (w + 1) / 2;
  for (int img = 0; img < n; img++) {
    const float* xi = x + (long)img * h * w * ci;
    float* yi = y + (long)img * h * w * co;
    for (int ty = 0; ty < th; ty++) {
      for (int tx0 = 0; tx0 < tw; tx0 += WINO_T) {
        const int nt = min_i(WINO_T, tw - tx0);
        wino_input(xi, h, w, ci, ty, tx0, nt, v);
        wino_gemm(v, u, nt, ci, co, m);
        wino_output(m, h, w, co, ty, tx0, nt, yi);
      }
    }
  }
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

// One SGD step as torch.optim.SGD: g = grad + wd*p; buf = momentum*buf + g;
// step = nesterov ? g + momentum*buf : buf; p -= lr*step. One pass instead of ~7 tfjs kernels.
EXPORT(sgd_update)
void sgd_update(const float* p, const float* grad, const float* buf, int n, float lr, float momentum, float wd, int nesterov,
                float* p_out, float* buf_out) {
  for (int i = 0; i < n; i++) {
    const float g = grad[i] + wd * p[i];
    const float b = momentum * buf[i] + g;
    const float step = nesterov ? g + momentum * b : b;
    buf_out[i] = b;
    p_out[i] = p[i] - lr * step;
  }
}

// Filter gradient of a 3x3, stride-1, pad-1 convolution by Winograd F(2x2, 3x3): the forward is
// Y = A^T [(G g G^T) . (B^T d B)] A per tile, so dL/dg = G^T [sum over tiles (B^T d B) . (A dY A^T)] G:
// per block of tiles, 16 GEMMs accumulate V[xi]^T (ci x T) * D[xi] (T x co) into M[xi] (ci x co).
// 2.25x fewer multiplies than conv_filter_grad. Same signature and accumulation (kh, kw, s, p must be 3, 3, 1, 1);
// requires ci % 4 == 0 and co % 8 == 0.

// D[xi][t][d] = (A dY A^T) for the 2x2 dy tiles of tile row ty (zero beyond the map).
static void wino_dy(const float* dy, int h, int w, int co, int ty, int tx0, int nt, float* out) {
  const long plane = (long)nt * co;
  const v128_t zero = wasm_f32x4_splat(0.f);
  for (int t = 0; t < nt; t++) {
    const int r0 = 2 * ty, c0 = 2 * (tx0 + t);
    for (int d = 0; d < co; d += 4) {
      v128_t y[2][2];
      for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++)
          y[i][j] = r0 + i < h && c0 + j < w ? wasm_v128_load(dy + ((long)(r0 + i) * w + c0 + j) * co + d) : zero;
      v128_t e[4][2];
      for (int j = 0; j < 2; j++) {  // e = A y, A = [[1,0],[1,1],[1,-1],[0,-1]]
        e[0][j] = y[0][j];
        e[1][j] = wasm_f32x4_add(y[0][j], y[1][j]);
        e[2][j] = wasm_f32x4_sub(y[0][j], y[1][j]);
        e[3][j] = wasm_f32x4_neg(y[1][j]);
      }
      float* o = out + (long)t * co + d;
      for (int r = 0; r < 4; r++) {  // D = e A^T
        wasm_v128_store(o + (long)(r * 4 + 0) * plane, e[r][0]);
        wasm_v128_store(o + (long)(r * 4 + 1) * plane, wasm_f32x4_add(e[r][0], e[r][1]));
        wasm_v128_store(o + (long)(r * 4 + 2) * plane, wasm_f32x4_sub(e[r][0], e[r][1]));
        wasm_v128_store(o + (long)(r * 4 + 3) * plane, wasm_f32x4_neg(e[r][1]));
      }
    }
  }
}

// M[xi] (ci x co) += V[xi]^T (ci x nt) * D[xi] (nt x co), 4 x 8 register tiles.
static void wino_gemm_at(const float* v, const float* dd, int nt, int ci, int co, float* m) {
  for (int xi = 0; xi < 16; xi++) {
    const float* vx = v + (long)xi * nt * ci;
    const float* dx = dd + (long)xi * nt * co;
    float* mx = m + (long)xi * ci * co;
    for (int c0 = 0; c0 < ci; c0 += 4) {
      for (int d0 = 0; d0 < co; d0 += 8) {
        float* mp = mx + (long)c0 * co + d0;
        v128_t a00 = wasm_v128_load(mp), a01 = wasm_v128_load(mp + 4);
        v128_t a10 = wasm_v128_load(mp + co), a11 = wasm_v128_load(mp + co + 4);
        v128_t a20 = wasm_v128_load(mp + 2 * co), a21 = wasm_v128_load(mp + 2 * co + 4);
        v128_t a30 = wasm_v128_load(mp + 3 * co), a31 = wasm_v128_load(mp + 3 * co + 4);
        const float* vp = vx + c0;
        const float* dp = dx + d0;
        for (int t = 0; t < nt; t++, vp += ci, dp += co) {
          const v128_t g0 = wasm_v128_load(dp), g1 = wasm_v128_load(dp + 4);
          const v128_t x0 = wasm_v128_load32_splat(vp), x1 = wasm_v128_load32_splat(vp + 1);
          const v128_t x2 = wasm_v128_load32_splat(vp + 2), x3 = wasm_v128_load32_splat(vp + 3);
          a00 = wasm_f32x4_add(a00, wasm_f32x4_mul(x0, g0));
          a01 = wasm_f32x4_add(a01, wasm_f32x4_mul(x0, g1));
          a10 = wasm_f32x4_add(a10, wasm_f32x4_mul(x1, g0));
          a11 = wasm_f32x4_add(a11, wasm_f32x4_mul(x1, g1));
          a20 = wasm_f32x4_add(a20, wasm_f32x4_mul(x2, g0));
          a21 = wasm_f32x4_add(a21, wasm_f32x4_mul(x2, g1));
          a30 = wasm_f32x4_add(a30, wasm_f32x4_mul(x3, g0));
          a31 = wasm_f32x4_add(a31, wasm_f32x4_mul(x3, g1));
        }
        wasm_v128_store(mp, a00), wasm_v128_store(mp + 4, a01);
        wasm_v128_store(mp + co, a10), wasm_v128_store(mp + co + 4, a11);
        wasm_v128_store(mp + 2 * co, a20), wasm_v128_store(mp + 2 * co + 4, a21);
        wasm_v128_store(mp + 3 * co, a30), wasm_v128_store(mp + 3 * co + 4, a31);
      }
    }
  }
}

EXPORT(conv_filter_grad_winograd)
void conv_filter_grad_winograd(const float* x, const float* dy, int n, int h, int w, int ci, int ho, int wo, int co, int kh, int kw,
                               int s, int p, float* out) {
  (void)ho, (void)wo, (void)kh, (void)kw, (void)s, (void)p;
  const long plane = (long)ci * co;
  float m[16 * plane];
  __builtin_memset(m, 0, sizeof(m));
  float v[16 * WINO_T * ci], dd[16 * WINO_T * co];
  const int th = (h + 1) / 2, tw = (w + 1) / 2;
  for (int img = 0; img < n; img++) {
    const float* xi = x + (long)img * h * w * ci;
    const float* gi = dy + (long)img * h * w * co;
    for (int ty = 0; ty < th; ty++) {
      for (int tx0 = 0; tx0 < tw; tx0 += WINO_T) {
        const int nt = min_i(WINO_T, tw - tx0);
        wino_input(xi, h, w, ci, ty, tx0, nt, v);
        wino_dy(gi, h, w, co, ty, tx0, nt, dd);
        wino_gemm_at(v, dd, nt, ci, co, m);
      }
    }
  }
  // dW = G^T M G, G^T = [[1, .5, .5, 0], [0, .5, -.5, 0], [0, .5, .5, 1]].
  const v128_t half = wasm_f32x4_splat(0.5f);
  for (long q = 0; q < plane; q += 4) {
    v128_t mm[4][4], pp[3][4];
    for (int r = 0; r < 4; r++)
      for (int c = 0; c < 4; c++) mm[r][c] = wasm_v128_load(m + (long)(r * 4 + c) * plane + q);
    for (int c = 0; c < 4; c++) {
      const v128_t h1 = wasm_f32x4_mul(half, mm[1][c]), h2 = wasm_f32x4_mul(half, mm[2][c]);
      pp[0][c] = wasm_f32x4_add(wasm_f32x4_add(mm[0][c], h1), h2);
      pp[1][c] = wasm_f32x4_sub(h1, h2);
      pp[2][c] = wasm_f32x4_add(wasm_f32x4_add(h1, h2), mm[3][c]);
    }
    for (int i = 0; i < 3; i++) {
      const v128_t h1 = wasm_f32x4_mul(half, pp[i][1]), h2 = wasm_f32x4_mul(half, pp[i][2]);
      float* o = out + (long)(i * 3) * plane + q;
      wasm_v128_store(o, wasm_f32x4_add(wasm_v128_load(o), wasm_f32x4_add(wasm_f32x4_add(pp[i][0], h1), h2)));
      o += plane;
      wasm_v128_store(o, wasm_f32x4_add(wasm_v128_load(o), wasm_f32x4_sub(h1, h2)));
      o += plane;
      wasm_v128_store(o, wasm_f32x4_add(wasm_v128_load(o), wasm_f32x4_add(wasm_f32x4_add(h1, h2), pp[i][3])));
    }
  }
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
