// Winograd F(4x4, 3x3) convolution and filter gradient for 3x3, stride-1, pad-1 layers: each 4x4
// output tile costs 36 multiplies per (ci, co) instead of 144 directly (4x fewer; F(2x2, 3x3) saves
// 2.25x). Tiles are taken in blocks of up to W4_T across images and tile rows, so that small maps
// (8x8: 4 tiles per image) still feed full GEMMs. Matrices (Lavin & Gray 2016):
//   B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]
//   G   = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1]
//   A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]
// Requires ci % 4 == 0 and co % 8 == 0 (the caller checks).
#include "common.h"

#define W4_T 16

static inline v128_t splat(float v) { return wasm_f32x4_splat(v); }

// t = B^T d for one 6-vector (SIMD over 4 channels).
static inline void b4_1d(const v128_t d[6], v128_t t[6]) {
  const v128_t four = splat(4.f), two = splat(2.f), five = splat(5.f);
  const v128_t a = wasm_f32x4_sub(d[4], wasm_f32x4_mul(four, d[2]));
  const v128_t b = wasm_f32x4_sub(d[3], wasm_f32x4_mul(four, d[1]));
  const v128_t c = wasm_f32x4_sub(d[4], d[2]);
  const v128_t e = wasm_f32x4_mul(two, wasm_f32x4_sub(d[3], d[1]));
  t[0] = wasm_f32x4_add(wasm_f32x4_sub(wasm_f32x4_mul(four, d[0]), wasm_f32x4_mul(five, d[2])), d[4]);
  t[1] = wasm_f32x4_add(a, b);
  t[2] = wasm_f32x4_sub(a, b);
  t[3] = wasm_f32x4_add(c, e);
  t[4] = wasm_f32x4_sub(c, e);
  t[5] = wasm_f32x4_add(wasm_f32x4_sub(wasm_f32x4_mul(four, d[1]), wasm_f32x4_mul(five, d[3])), d[5]);
}

// y = A^T m for one 6-vector.
static inline void a4_1d(const v128_t m[6], v128_t y[4]) {
  const v128_t s12 = wasm_f32x4_add(m[1], m[2]), d12 = wasm_f32x4_sub(m[1], m[2]);
  const v128_t s34 = wasm_f32x4_add(m[3], m[4]), d34 = wasm_f32x4_sub(m[3], m[4]);
  y[0] = wasm_f32x4_add(wasm_f32x4_add(m[0], s12), s34);
  y[1] = wasm_f32x4_add(d12, wasm_f32x4_mul(splat(2.f), d34));
  y[2] = wasm_f32x4_add(s12, wasm_f32x4_mul(splat(4.f), s34));
  y[3] = wasm_f32x4_add(wasm_f32x4_add(d12, wasm_f32x4_mul(splat(8.f), d34)), m[5]);
}

// t = G g for one 3-vector.
static inline void g4_1d(const v128_t g[3], v128_t t[6]) {
  const v128_t s02 = wasm_f32x4_add(g[0], g[2]);
  t[0] = wasm_f32x4_mul(splat(0.25f), g[0]);
  t[1] = wasm_f32x4_mul(splat(-1.f / 6), wasm_f32x4_add(s02, g[1]));
  t[2] = wasm_f32x4_mul(splat(-1.f / 6), wasm_f32x4_sub(s02, g[1]));
  const v128_t p = wasm_f32x4_add(wasm_f32x4_mul(splat(1.f / 24), g[0]), wasm_f32x4_mul(splat(1.f / 6), g[2]));
  const v128_t q = wasm_f32x4_mul(splat(1.f / 12), g[1]);
  t[3] = wasm_f32x4_add(p, q);
  t[4] = wasm_f32x4_sub(p, q);
  t[5] = g[2];
}

// e = A y for one 4-vector (A = (A^T)^T, 6 x 4).
static inline void at4_1d(const v128_t y[4], v128_t e[6]) {
  const v128_t p = wasm_f32x4_add(y[0], y[2]), q = wasm_f32x4_add(y[1], y[3]);
  const v128_t r = wasm_f32x4_add(y[0], wasm_f32x4_mul(splat(4.f), y[2]));
  const v128_t s = wasm_f32x4_add(wasm_f32x4_mul(splat(2.f), y[1]), wasm_f32x4_mul(splat(8.f), y[3]));
  e[0] = y[0];
  e[1] = wasm_f32x4_add(p, q);
  e[2] = wasm_f32x4_sub(p, q);
  e[3] = wasm_f32x4_add(r, s);
  e[4] = wasm_f32x4_sub(r, s);
  e[5] = y[3];
}

// o = G^T m for one 6-vector.
static inline void gt4_1d(const v128_t m[6], v128_t o[3]) {
  const v128_t s12 = wasm_f32x4_add(m[1], m[2]), s34 = wasm_f32x4_add(m[3], m[4]);
  const v128_t sixth = splat(1.f / 6);
  o[0] = wasm_f32x4_add(wasm_f32x4_sub(wasm_f32x4_mul(splat(0.25f), m[0]), wasm_f32x4_mul(sixth, s12)), wasm_f32x4_mul(splat(1.f / 24), s34));
  o[1] = wasm_f32x4_add(wasm_f32x4_mul(sixth, wasm_f32x4_sub(m[2], m[1])), wasm_f32x4_mul(splat(1.f / 12), wasm_f32x4_sub(m[3], m[4])));
  o[2] = wasm_f32x4_add(wasm_f32x4_mul(sixth, wasm_f32x4_sub(s34, s12)), m[5]);
}

// U[xi][c][d] = (G g G^T) for the whole filter [3][3][ci][co].
static void w4_filter(const float* f, int ci, int co, float* u /* [36][ci][co] */) {
  const long plane = (long)ci * co;
  for (int c = 0; c < ci; c++) {
    for (int d = 0; d < co; d += 4) {
      v128_t t[6][3];
      for (int j = 0; j < 3; j++) {  // t[:, j] = G g[:, j]
        v128_t g[3], col[6];
        for (int i = 0; i < 3; i++) g[i] = wasm_v128_load(f + ((long)(i * 3 + j) * ci + c) * co + d);
        g4_1d(g, col);
        for (int i = 0; i < 6; i++) t[i][j] = col[i];
      }
      for (int i = 0; i < 6; i++) {  // U[i, :] = G t[i, :]
        v128_t row[6];
        g4_1d(t[i], row);
        for (int j = 0; j < 6; j++) wasm_v128_store(u + (long)(i * 6 + j) * plane + (long)c * co + d, row[j]);
      }
    }
  }
}

// Where tile `flat` of a chunk lies: image, top-left output row and column.
typedef struct {
  int img, r0, c0;
} Tile;

static inline Tile tile_at(int flat, int th, int tw) {
  const int per = th * tw, img = flat / per, rem = flat - img * per;
  return (Tile){img, 4 * (rem / tw), 4 * (rem % tw)};
}

// The input as the convolution sees it: x, or max((x - mean) * scale + beta, 0) per channel when
// `scale` is given: an evaluation-mode batch norm and ReLU before the convolution, fused into its
// input with bn_eval's arithmetic (the same float operations, so the same values).
typedef struct {
  const float* mean;
  const float* scale;
  const float* beta;
} Prologue;

static inline v128_t load_in(const float* p, Prologue pro, int c) {
  const v128_t v = wasm_v128_load(p);
  if (!pro.scale) return v;
  const v128_t bn = wasm_f32x4_add(wasm_f32x4_mul(wasm_f32x4_sub(v, wasm_v128_load(pro.mean + c)), wasm_v128_load(pro.scale + c)), wasm_v128_load(pro.beta + c));
  return wasm_f32x4_max(bn, wasm_f32x4_splat(0.f));
}

// V[xi][t][c] = (B^T d B) for tiles t0 .. t0+nt-1 (d: the 6x6 input patch at (r0 - 1, c0 - 1), zero outside).
static void w4_input(const float* x, int h, int w, int ci, int th, int tw, int t0, int nt, Prologue pro, float* v /* [36][nt][ci] */) {
  const long plane = (long)nt * ci;
  const v128_t zero = splat(0.f);
  for (int t = 0; t < nt; t++) {
    const Tile tl = tile_at(t0 + t, th, tw);
    const float* xi = x + (long)tl.img * h * w * ci;
    const int r0 = tl.r0 - 1, c0 = tl.c0 - 1;
    const int inside = r0 >= 0 && c0 >= 0 && r0 + 6 <= h && c0 + 6 <= w;
    for (int c = 0; c < ci; c += 4) {
      v128_t e[6][6];
      for (int r = 0; r < 6; r++) {  // e[r, :] = d[r, :] B
        v128_t d[6], row[6];
        const int rr = r0 + r;
        if (inside) {
          const float* p = xi + ((long)rr * w + c0) * ci + c;
          for (int s = 0; s < 6; s++) d[s] = load_in(p + (long)s * ci, pro, c);
        } else {
          for (int s = 0; s < 6; s++) {
            const int cc = c0 + s;
            d[s] = rr >= 0 && rr < h && cc >= 0 && cc < w ? load_in(xi + ((long)rr * w + cc) * ci + c, pro, c) : zero;
          }
        }
        b4_1d(d, row);
        for (int s = 0; s < 6; s++) e[r][s] = row[s];
      }
      float* o = v + (long)t * ci + c;
      for (int s = 0; s < 6; s++) {  // V[:, s] = B^T e[:, s]
        v128_t col[6], out[6];
        for (int r = 0; r < 6; r++) col[r] = e[r][s];
        b4_1d(col, out);
        for (int r = 0; r < 6; r++) wasm_v128_store(o + (long)(r * 6 + s) * plane, out[r]);
      }
    }
  }
}

// M[xi] (nt x co) = V[xi] (nt x ci) * U[xi] (ci x co) for the 36 xi, 4 x 8 register tiles.
static void w4_gemm(const float* v, const float* u, int nt, int ci, int co, float* m) {
  for (int xi = 0; xi < 36; xi++) {
    const float* vx = v + (long)xi * nt * ci;
    const float* ux = u + (long)xi * ci * co;
    float* mx = m + (long)xi * nt * co;
    for (int d0 = 0; d0 < co; d0 += 8) {
      int t = 0;
      for (; t + 4 <= nt; t += 4) {
        v128_t a[8];
        for (int q = 0; q < 8; q++) a[q] = splat(0.f);
        const float* vp = vx + (long)t * ci;
        const float* up = ux + d0;
        for (int k = 0; k < ci; k++, up += co) tile4x8_step(a, vp + k, ci, up);
        float* mp = mx + (long)t * co + d0;
        for (int r = 0; r < 4; r++, mp += co) wasm_v128_store(mp, a[2 * r]), wasm_v128_store(mp + 4, a[2 * r + 1]);
      }
      for (; t < nt; t++) {
        v128_t a0 = splat(0.f), a1 = a0;
        const float* vp = vx + (long)t * ci;
        const float* up = ux + d0;
        for (int k = 0; k < ci; k++, up += co) {
          const v128_t xk = wasm_v128_load32_splat(vp + k);
          a0 = madd(a0, xk, wasm_v128_load(up));
          a1 = madd(a1, xk, wasm_v128_load(up + 4));
        }
        wasm_v128_store(mx + (long)t * co + d0, a0);
        wasm_v128_store(mx + (long)t * co + d0 + 4, a1);
      }
    }
  }
}

// Y = A^T M A for tiles t0 .. t0+nt-1, clipped to the map.
static void w4_output(const float* m, int h, int w, int co, int th, int tw, int t0, int nt, float* y) {
  const long plane = (long)nt * co;
  for (int t = 0; t < nt; t++) {
    const Tile tl = tile_at(t0 + t, th, tw);
    float* yi = y + (long)tl.img * h * w * co;
    const int rows = min_i(4, h - tl.r0), cols = min_i(4, w - tl.c0);
    for (int d = 0; d < co; d += 4) {
      const float* p = m + (long)t * co + d;
      v128_t q[4][6];
      for (int s = 0; s < 6; s++) {  // q[:, s] = A^T M[:, s]
        v128_t col[6], out[4];
        for (int r = 0; r < 6; r++) col[r] = wasm_v128_load(p + (long)(r * 6 + s) * plane);
        a4_1d(col, out);
        for (int i = 0; i < 4; i++) q[i][s] = out[i];
      }
      for (int i = 0; i < rows; i++) {  // Y[i, :] = q[i, :] A
        v128_t out[4];
        a4_1d(q[i], out);
        float* o = yi + ((long)(tl.r0 + i) * w + tl.c0) * co + d;
        for (int j = 0; j < cols; j++) wasm_v128_store(o + (long)j * co, out[j]);
      }
    }
  }
}

// The convolution of x, or of relu(batch norm(x)) as `pro` gives it (see Prologue).
static void w4_conv(const float* x, int n, int h, int w, int ci, const float* f, int co, float* y, Prologue pro) {
  float u[36 * ci * co];
  w4_filter(f, ci, co, u);
  float v[36 * W4_T * ci], m[36 * W4_T * co];
  const int th = (h + 3) / 4, tw = (w + 3) / 4, tiles = n * th * tw;
  for (int t0 = 0; t0 < tiles; t0 += W4_T) {
    const int nt = min_i(W4_T, tiles - t0);
    w4_input(x, h, w, ci, th, tw, t0, nt, pro, v);
    w4_gemm(v, u, nt, ci, co, m);
    w4_output(m, h, w, co, th, tw, t0, nt, y);
  }
}

// With `mean` (else 0), relu(batch norm(x)) in evaluation mode is what gets convolved (see Prologue).
EXPORT(conv3x3_winograd)
void conv3x3_winograd(const float* x, int n, int h, int w, int ci, const float* f, int co, float* y, const float* mean, const float* var,
                      const float* gamma, const float* beta, float eps) {
  float scale[ci];
  Prologue pro = {0, 0, 0};
  if (mean) {
    for (int c = 0; c < ci; c++) scale[c] = gamma[c] / __builtin_sqrtf(var[c] + eps);
    pro = (Prologue){mean, scale, beta};
  }
  w4_conv(x, n, h, w, ci, f, co, y, pro);
}

// scale[c] = gamma[c] * inv_std[c]: a training-mode batch norm's scale, as bn_forward computes it, so that the
// Prologue gives bn_forward's relu'd output bit for bit (the batch's mean and inv_std from bn_stats).
static void bn_train_scale(const float* inv_std, const float* gamma, int ci, float* scale) {
  for (int c = 0; c < ci; c++) scale[c] = gamma[c] * inv_std[c];
}

// conv3x3_winograd of relu(batch norm(x)) in training mode (the batch's statistics, bn_stats): the activation
// is made while the input tiles are read and never written out.
EXPORT(conv3x3_winograd_bn)
void conv3x3_winograd_bn(const float* x, int n, int h, int w, int ci, const float* f, int co, float* y, const float* mean,
                         const float* inv_std, const float* gamma, const float* beta) {
  float scale[ci];
  bn_train_scale(inv_std, gamma, ci, scale);
  w4_conv(x, n, h, w, ci, f, co, y, (Prologue){mean, scale, beta});
}

// Filter gradient by F(4x4, 3x3): dL/dg = G^T [sum over tiles (B^T d B) . (A dY A^T)] G. Same
// signature and accumulation into `out` as conv_filter_grad (kh, kw, s, p must be 3, 3, 1, 1).

// D[xi][t][d] = (A dY A^T) for the 4x4 dy tiles t0 .. t0+nt-1 (zero beyond the map).
static void w4_dy(const float* dy, int h, int w, int co, int th, int tw, int t0, int nt, float* out) {
  const long plane = (long)nt * co;
  const v128_t zero = splat(0.f);
  for (int t = 0; t < nt; t++) {
    const Tile tl = tile_at(t0 + t, th, tw);
    const float* gi = dy + (long)tl.img * h * w * co;
    for (int d = 0; d < co; d += 4) {
      v128_t e[6][4];
      for (int j = 0; j < 4; j++) {  // e[:, j] = A dY[:, j]
        v128_t col[4], o6[6];
        for (int i = 0; i < 4; i++) {
          const int rr = tl.r0 + i, cc = tl.c0 + j;
          col[i] = rr < h && cc < w ? wasm_v128_load(gi + ((long)rr * w + cc) * co + d) : zero;
        }
        at4_1d(col, o6);
        for (int i = 0; i < 6; i++) e[i][j] = o6[i];
      }
      float* o = out + (long)t * co + d;
      for (int i = 0; i < 6; i++) {  // D[i, :] = A e[i, :]
        v128_t row[6];
        at4_1d(e[i], row);
        for (int j = 0; j < 6; j++) wasm_v128_store(o + (long)(i * 6 + j) * plane, row[j]);
      }
    }
  }
}

// M[xi] (ci x co) += V[xi]^T (ci x nt) * D[xi] (nt x co), 4 x 8 register tiles.
static void w4_gemm_at(const float* v, const float* dd, int nt, int ci, int co, float* m) {
  for (int xi = 0; xi < 36; xi++) {
    const float* vx = v + (long)xi * nt * ci;
    const float* dx = dd + (long)xi * nt * co;
    float* mx = m + (long)xi * ci * co;
    for (int c0 = 0; c0 < ci; c0 += 4) {
      for (int d0 = 0; d0 < co; d0 += 8) {
        float* mp = mx + (long)c0 * co + d0;
        v128_t a[8];
        for (int r = 0; r < 4; r++) a[2 * r] = wasm_v128_load(mp + (long)r * co), a[2 * r + 1] = wasm_v128_load(mp + (long)r * co + 4);
        const float* vp = vx + c0;
        const float* dp = dx + d0;
        for (int t = 0; t < nt; t++, vp += ci, dp += co) tile4x8_step(a, vp, 1, dp);
        for (int r = 0; r < 4; r++) wasm_v128_store(mp + (long)r * co, a[2 * r]), wasm_v128_store(mp + (long)r * co + 4, a[2 * r + 1]);
      }
    }
  }
}

// The filter gradient with the input x, or relu(batch norm(x)) as `pro` gives it; adds to out.
static void w4_filter_grad(const float* x, const float* dy, int n, int h, int w, int ci, int co, Prologue pro, float* out) {
  const long plane = (long)ci * co;
  float m[36 * plane];
  __builtin_memset(m, 0, sizeof(m));
  float v[36 * W4_T * ci], dd[36 * W4_T * co];
  const int th = (h + 3) / 4, tw = (w + 3) / 4, tiles = n * th * tw;
  for (int t0 = 0; t0 < tiles; t0 += W4_T) {
    const int nt = min_i(W4_T, tiles - t0);
    w4_input(x, h, w, ci, th, tw, t0, nt, pro, v);
    w4_dy(dy, h, w, co, th, tw, t0, nt, dd);
    w4_gemm_at(v, dd, nt, ci, co, m);
  }
  for (long q = 0; q < plane; q += 4) {  // dW += G^T M G
    v128_t t[3][6];
    for (int j = 0; j < 6; j++) {  // t[:, j] = G^T M[:, j]
      v128_t col[6], o3[3];
      for (int i = 0; i < 6; i++) col[i] = wasm_v128_load(m + (long)(i * 6 + j) * plane + q);
      gt4_1d(col, o3);
      for (int i = 0; i < 3; i++) t[i][j] = o3[i];
    }
    for (int i = 0; i < 3; i++) {  // dW[i, :] += t[i, :] G
      v128_t o3[3];
      gt4_1d(t[i], o3);
      for (int j = 0; j < 3; j++) {
        float* o = out + (long)(i * 3 + j) * plane + q;
        wasm_v128_store(o, wasm_f32x4_add(wasm_v128_load(o), o3[j]));
      }
    }
  }
}

EXPORT(conv_filter_grad_winograd)
void conv_filter_grad_winograd(const float* x, const float* dy, int n, int h, int w, int ci, int ho, int wo, int co, int kh, int kw,
                                int s, int p, float* out) {
  (void)ho, (void)wo, (void)kh, (void)kw, (void)s, (void)p;
  w4_filter_grad(x, dy, n, h, w, ci, co, (Prologue){0, 0, 0}, out);
}

// conv_filter_grad_winograd where the convolution's input was relu(batch norm(x)) in training mode (conv3x3_winograd_bn):
// the activation is recomputed from x as the tiles are read. The same 14 arguments first (the callers' chunking), then
// the batch norm's.
EXPORT(conv_filter_grad_winograd_bn)
void conv_filter_grad_winograd_bn(const float* x, const float* dy, int n, int h, int w, int ci, int ho, int wo, int co, int kh, int kw,
                                   int s, int p, float* out, const float* mean, const float* inv_std, const float* gamma,
                                   const float* beta) {
  (void)ho, (void)wo, (void)kh, (void)kw, (void)s, (void)p;
  float scale[ci];
  bn_train_scale(inv_std, gamma, ci, scale);
  w4_filter_grad(x, dy, n, h, w, ci, co, (Prologue){mean, scale, beta}, out);
}
