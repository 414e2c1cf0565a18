// Winograd F(2x2, 3x3) convolution and filter gradient for 3x3, stride-1, pad-1 layers.
#include "common.h"

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
          a00 = madd(a00, x0, g0);
          a01 = madd(a01, x0, g1);
          a10 = madd(a10, x1, g0);
          a11 = madd(a11, x1, g1);
          a20 = madd(a20, x2, g0);
          a21 = madd(a21, x2, g1);
          a30 = madd(a30, x3, g0);
          a31 = madd(a31, x3, g1);
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
          a0 = madd(a0, xk, wasm_v128_load(up));
          a1 = madd(a1, xk, wasm_v128_load(up + 4));
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
          a00 = madd(a00, x0, g0);
          a01 = madd(a01, x0, g1);
          a10 = madd(a10, x1, g0);
          a11 = madd(a11, x1, g1);
          a20 = madd(a20, x2, g0);
          a21 = madd(a21, x2, g1);
          a30 = madd(a30, x3, g0);
          a31 = madd(a31, x3, g1);
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
