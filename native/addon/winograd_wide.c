// Winograd F(4x4, 3x3) with the CPU's full vector width (native addon only; included by kernels.c after
// ../winograd.c, whose 128-bit transforms it widens and whose filter transform it reuses). Channels are
// taken VW at a time (16 with AVX-512, 8 with AVX2, 4 otherwise) and the GEMMs use R x NV register
// tiles of VW-wide vectors; the arithmetic per element is the wasm kernels' (same transforms, products
// summed over the same index in the same order), so results agree with them to rounding.
// Layouts, matrices and the tile blocking are winograd.c's; other channel counts, and CPUs with no
// vectors wider than 128 bits, use winograd.c's transforms and GEMM (its 4 x 8 tiles suit 16 registers better).

#if defined(__AVX512F__)
#define VW 16
#elif defined(__AVX__)
#define VW 8
#else
#define VW 4
#endif
#define WT 16  // tiles per block
// Floats between the 36 planes of a block's transformed tiles: a transform writes one vector to each plane,
// and planes a power of two apart (16 tiles x 16 channels = 1 KB) would put all 36 in the same few L1 sets.
#define PLANE_PAD 16

typedef float vf __attribute__((vector_size(VW * 4)));
typedef int vi __attribute__((vector_size(VW * 4)));

static inline vf ld(const float* p) {
  vf v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}
static inline void st(float* p, vf v) { __builtin_memcpy(p, &v, sizeof v); }
// Each lane s, as one broadcast (folded into the FMA in the GEMM's inner loop). `(vf){0} + s` added +0 to s first (not
// folded away: it turns -0 into +0), 8 scalar adds and 8 broadcasts beside the 8 FMAs of each step of micro_8_1.
#if VW == 16
#define SPLAT_INIT(s) {s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s}
#elif VW == 8
#define SPLAT_INIT(s) {s, s, s, s, s, s, s, s}
#else
#define SPLAT_INIT(s) {s, s, s, s}
#endif
static inline vf vsplat(float s) { return (vf)SPLAT_INIT(s); }
static inline vf relu0(vf v) { return (vf)((vi)v & (v > 0)); }

static inline void wb_1d(const vf d[6], vf t[6]) {  // t = B^T d
  const vf a = d[4] - 4.f * d[2], b = d[3] - 4.f * d[1], c = d[4] - d[2], e = 2.f * (d[3] - d[1]);
  t[0] = (4.f * d[0] - 5.f * d[2]) + d[4];
  t[1] = a + b;
  t[2] = a - b;
  t[3] = c + e;
  t[4] = c - e;
  t[5] = (4.f * d[1] - 5.f * d[3]) + d[5];
}
static inline void wa_1d(const vf m[6], vf y[4]) {  // y = A^T m
  const vf s12 = m[1] + m[2], d12 = m[1] - m[2], s34 = m[3] + m[4], d34 = m[3] - m[4];
  y[0] = (m[0] + s12) + s34;
  y[1] = d12 + 2.f * d34;
  y[2] = s12 + 4.f * s34;
  y[3] = (d12 + 8.f * d34) + m[5];
}
static inline void wat_1d(const vf y[4], vf e[6]) {  // e = A y
  const vf p = y[0] + y[2], q = y[1] + y[3], r = y[0] + 4.f * y[2], s = 2.f * y[1] + 8.f * y[3];
  e[0] = y[0];
  e[1] = p + q;
  e[2] = p - q;
  e[3] = r + s;
  e[4] = r - s;
  e[5] = y[3];
}
static inline void wgt_1d(const vf m[6], vf o[3]) {  // o = G^T m
  const vf s12 = m[1] + m[2], s34 = m[3] + m[4];
  const float sixth = 1.f / 6;
  o[0] = (0.25f * m[0] - sixth * s12) + (1.f / 24) * s34;
  o[1] = sixth * (m[2] - m[1]) + (1.f / 12) * (m[3] - m[4]);
  o[2] = sixth * (s34 - s12) + m[5];
}

static inline vf wload_in(const float* p, Prologue pro, int c) {
  const vf v = ld(p);
  if (!pro.scale) return v;
  return relu0((v - ld(pro.mean + c)) * ld(pro.scale + c) + ld(pro.beta + c));
}

static void ww_input(const float* x, int h, int w, int ci, int th, int tw, int t0, int nt, Prologue pro, long plane, float* v) {
  const vf zero = vsplat(0.f);
  for (int t = 0; t < nt; t++) {
    const Tile tl = tile_at(t0 + t, th, tw);
    const float* xi = x + (long)tl.img * h * w * ci;
    const int r0 = tl.r0 - 1, c0 = tl.c0 - 1;
    const int inside = r0 >= 0 && c0 >= 0 && r0 + 6 <= h && c0 + 6 <= w;
    for (int c = 0; c < ci; c += VW) {
      vf e[6][6];
      for (int r = 0; r < 6; r++) {
        vf d[6];
        const int rr = r0 + r;
        if (inside) {
          const float* p = xi + ((long)rr * w + c0) * ci + c;
          for (int s = 0; s < 6; s++) d[s] = wload_in(p + (long)s * ci, pro, c);
        } else {
          for (int s = 0; s < 6; s++) {
            const int cc = c0 + s;
            d[s] = rr >= 0 && rr < h && cc >= 0 && cc < w ? wload_in(xi + ((long)rr * w + cc) * ci + c, pro, c) : zero;
          }
        }
        wb_1d(d, e[r]);
      }
      float* o = v + (long)t * ci + c;
      for (int s = 0; s < 6; s++) {
        vf col[6], out[6];
        for (int r = 0; r < 6; r++) col[r] = e[r][s];
        wb_1d(col, out);
        for (int r = 0; r < 6; r++) st(o + (long)(r * 6 + s) * plane, out[r]);
      }
    }
  }
}

// C[r][j*VW ..] (+)= sum_k A[r*as + k*ak] * B[k*bs + j*VW ..] for r < R, j < NV: a register tile.
#define MICRO(R, NV)                                                                                                     \
  static inline void micro_##R##_##NV(const float* a, long as, long ak, const float* b, long bs, int K, float* c, long cs, \
                                      int accumulate) {                                                                  \
    vf acc[R][NV];                                                                                                       \
    for (int r = 0; r < R; r++)                                                                                          \
      for (int j = 0; j < NV; j++) acc[r][j] = accumulate ? ld(c + r * cs + j * VW) : vsplat(0.f);                      \
    for (int k = 0; k < K; k++) {                                                                                        \
      vf bv[NV];                                                                                                         \
      for (int j = 0; j < NV; j++) bv[j] = ld(b + k * bs + j * VW);                                                      \
      for (int r = 0; r < R; r++) {                                                                                      \
        const vf ar = vsplat(a[r * as + k * ak]);                                                                        \
        for (int j = 0; j < NV; j++) acc[r][j] += ar * bv[j];                                                            \
      }                                                                                                                  \
    }                                                                                                                    \
    for (int r = 0; r < R; r++)                                                                                          \
      for (int j = 0; j < NV; j++) st(c + r * cs + j * VW, acc[r][j]);                                                   \
  }
MICRO(8, 2)
MICRO(8, 1)
MICRO(1, 2)
MICRO(1, 1)

// C (rows x cols) (+)= A (rows x K, strides as, ak) * B (K x cols, row stride bs); cols % VW == 0.
static void gemm(const float* a, long as, long ak, const float* b, long bs, int rows, int cols, int K, float* c, long cs, int accumulate) {
  int j = 0;
  for (; j + 2 * VW <= cols; j += 2 * VW) {
    int r = 0;
    for (; r + 8 <= rows; r += 8) micro_8_2(a + r * as, as, ak, b + j, bs, K, c + r * cs + j, cs, accumulate);
    for (; r < rows; r++) micro_1_2(a + r * as, as, ak, b + j, bs, K, c + r * cs + j, cs, accumulate);
  }
  for (; j < cols; j += VW) {
    int r = 0;
    for (; r + 8 <= rows; r += 8) micro_8_1(a + r * as, as, ak, b + j, bs, K, c + r * cs + j, cs, accumulate);
    for (; r < rows; r++) micro_1_1(a + r * as, as, ak, b + j, bs, K, c + r * cs + j, cs, accumulate);
  }
}

static void ww_output(const float* m, int h, int w, int co, int th, int tw, int t0, int nt, long plane, float* y) {
  for (int t = 0; t < nt; t++) {
    const Tile tl = tile_at(t0 + t, th, tw);
    float* yi = y + (long)tl.img * h * w * co;
    const int rows = min_i(4, h - tl.r0), cols = min_i(4, w - tl.c0);
    for (int d = 0; d < co; d += VW) {
      const float* p = m + (long)t * co + d;
      vf q[4][6];
      for (int s = 0; s < 6; s++) {
        vf col[6], out[4];
        for (int r = 0; r < 6; r++) col[r] = ld(p + (long)(r * 6 + s) * plane);
        wa_1d(col, out);
        for (int i = 0; i < 4; i++) q[i][s] = out[i];
      }
      for (int i = 0; i < rows; i++) {
        vf out[4];
        wa_1d(q[i], out);
        float* o = yi + ((long)(tl.r0 + i) * w + tl.c0) * co + d;
        for (int j = 0; j < cols; j++) st(o + (long)j * co, out[j]);
      }
    }
  }
}

// V as w4_input makes it, for ci % 4 != 0 (an RGB input layer): channel groups of 4 read ci % 4 channels in
// the last group and zeros after them, so V has ci rounded up to 4 channels (as if the input had zero
// channels appended: the GEMM adds 0 for them, the same sums as convolving a zero-padded copy).
static void w4_input_partial(const float* x, int h, int w, int ci, int th, int tw, int t0, int nt, float* v) {
  const int cp = (ci + 3) & ~3;
  const long plane = (long)nt * cp;
  for (int t = 0; t < nt; t++) {
    const Tile tl = tile_at(t0 + t, th, tw);
    const float* xi = x + (long)tl.img * h * w * ci;
    for (int c = 0; c < cp; c += 4) {
      const int k = min_i(4, ci - c);
      v128_t e[6][6];
      for (int r = 0; r < 6; r++) {
        v128_t d[6], row[6];
        const int rr = tl.r0 - 1 + r;
        for (int s = 0; s < 6; s++) {
          const int cc = tl.c0 - 1 + s;
          float q[4] = {0.f, 0.f, 0.f, 0.f};
          if (rr >= 0 && rr < h && cc >= 0 && cc < w)
            for (int i = 0; i < k; i++) q[i] = xi[((long)rr * w + cc) * ci + c + i];
          d[s] = wasm_v128_load(q);
        }
        b4_1d(d, row);
        for (int s = 0; s < 6; s++) e[r][s] = row[s];
      }
      float* o = v + (long)t * cp + c;
      for (int s = 0; s < 6; s++) {
        v128_t col[6], out[6];
        for (int r = 0; r < 6; r++) col[r] = e[r][s];
        b4_1d(col, out);
        for (int r = 0; r < 6; r++) wasm_v128_store(o + (long)(r * 6 + s) * plane, out[r]);
      }
    }
  }
}

// U [36][cp][co] for a filter [3][3][ci][co], cp = ci rounded up to 4 (zero rows for the extra channels).
static void winograd_filter(const float* f, int ci, int co, float* u) {
  const int cp = (ci + 3) & ~3;
  if (cp == ci) {
    w4_filter(f, ci, co, u);
    return;
  }
  float padded[9 * cp * co];
  __builtin_memset(padded, 0, sizeof padded);
  for (int k = 0; k < 9; k++) __builtin_memcpy(padded + (long)k * cp * co, f + (long)k * ci * co, sizeof(float) * ci * co);
  w4_filter(padded, cp, co, u);
}

// scale[c] = gamma[c] / sqrt(var[c] + eps): the Prologue's scale, as conv3x3_winograd computes it.
static void winograd_bn_scale(const float* var, const float* gamma, float eps, int ci, float* scale) {
  for (int c = 0; c < ci; c++) scale[c] = gamma[c] / __builtin_sqrtf(var[c] + eps);
}

// Scratch of at least `floats` floats in one of SCRATCH_SLOTS buffers, kept per thread for its next call (never
// freed: the pool's threads live as long as the process). None of the wide kernels' scratch is on the stack, so
// any channel count fits the calling thread's: the filter gradient's M is 36 x ci x co floats (9.4 MB for 256
// channels, more than a main thread's 8 MB), and a block of transformed tiles 36 x 16 x (ci + co) (2.4 MB for 512).
enum { SCRATCH_M, SCRATCH_V, SCRATCH_D, SCRATCH_SLOTS };
static float* thread_scratch(int slot, long floats) {
  static __thread float* buf[SCRATCH_SLOTS];
  static __thread long cap[SCRATCH_SLOTS];
  if (floats > cap[slot]) {
    free(buf[slot]);
    buf[slot] = aligned_alloc(64, (floats * sizeof(float) + 63) & ~63L);  // malloc's 16 would split vectors over cache lines
    cap[slot] = buf[slot] ? floats : 0;
  }
  return buf[slot];
}

// The convolution given U = winograd_filter(filter) (made once per call and shared by the threads' chunks of
// images: for 64 channels on 8x8 maps, transforming it again for every chunk cost as much as the GEMMs) and,
// with `mean`, the evaluation-mode batch norm's scale (winograd_bn_scale; see Prologue). Any ci without a
// batch norm (ci % 4 != 0: w4_input_partial), ci % 4 == 0 with one; co % 8 == 0. The transforms and GEMMs run
// at the full vector width where the channels allow it, else winograd.c's 128-bit ones, on the same layouts.
static void conv3x3_winograd_pre(const float* x, int n, int h, int w, int ci, const float* u, int co, float* y, const float* mean,
                                 const float* scale, const float* beta) {
  const Prologue pro = mean ? (Prologue){mean, scale, beta} : (Prologue){0, 0, 0};
  const int cp = (ci + 3) & ~3, wide_in = VW > 4 && ci % VW == 0, wide_out = VW > 4 && co % VW == 0;
  const int th = (h + 3) / 4, tw = (w + 3) / 4, tiles = n * th * tw;
  // Wide planes get one vector of padding (see PLANE_PAD); winograd.c's 128-bit loops take them unpadded.
  const int pad = wide_in && wide_out ? PLANE_PAD : 0;
  float *v = thread_scratch(SCRATCH_V, 36L * (WT * cp + pad)), *m = thread_scratch(SCRATCH_D, 36L * (WT * co + pad));
  if (!v || !m) {  // out of memory: NaN, on which training stops (train.ts: a non-finite loss)
    for (long i = 0; i < (long)n * h * w * co; i++) y[i] = __builtin_nanf("");
    return;
  }
  for (int t0 = 0; t0 < tiles; t0 += WT) {
    const int nt = min_i(WT, tiles - t0);
    const long pv = (long)nt * cp + pad, pm = (long)nt * co + pad;
    if (wide_in)
      ww_input(x, h, w, ci, th, tw, t0, nt, pro, pv, v);
    else if (cp == ci)
      w4_input(x, h, w, ci, th, tw, t0, nt, pro, v);
    else
      w4_input_partial(x, h, w, ci, th, tw, t0, nt, v);
    if (wide_out) {
      for (int xi = 0; xi < 36; xi++) gemm(v + xi * pv, cp, 1, u + (long)xi * cp * co, co, nt, co, cp, m + xi * pm, co, 0);
      ww_output(m, h, w, co, th, tw, t0, nt, pm, y);
    } else {
      w4_gemm(v, u, nt, cp, co, m);
      w4_output(m, h, w, co, th, tw, t0, nt, y);
    }
  }
}

static void ww_dy(const float* dy, int h, int w, int co, int th, int tw, int t0, int nt, long plane, float* out) {
  const vf zero = vsplat(0.f);
  for (int t = 0; t < nt; t++) {
    const Tile tl = tile_at(t0 + t, th, tw);
    const float* gi = dy + (long)tl.img * h * w * co;
    for (int d = 0; d < co; d += VW) {
      vf e[6][4];
      for (int j = 0; j < 4; j++) {
        vf col[4], o6[6];
        for (int i = 0; i < 4; i++) {
          const int rr = tl.r0 + i, cc = tl.c0 + j;
          col[i] = rr < h && cc < w ? ld(gi + ((long)rr * w + cc) * co + d) : zero;
        }
        wat_1d(col, o6);
        for (int i = 0; i < 6; i++) e[i][j] = o6[i];
      }
      float* o = out + (long)t * co + d;
      for (int i = 0; i < 6; i++) {
        vf row[6];
        wat_1d(e[i], row);
        for (int j = 0; j < 6; j++) st(o + (long)(i * 6 + j) * plane, row[j]);
      }
    }
  }
}

// Tiles per GEMM of the filter gradient: WTG_FLOATS / max(ci, co), at least WT (128 tiles for 16 channels, 32 for
// 64), so that M (36 x ci x co) is loaded and stored once per many tiles rather than once per WT. Each M element is
// still the sum over the tiles in order (the micro kernel's running sum is stored and reloaded unchanged).
// Measured 512-4096 (min of 60 calls): within 5% of each other; 16 tiles (WT) was 5-10% slower.
#define WTG_FLOATS 2048

// Writes out (9 x ci x co), where winograd.c's version adds to it: the first block's GEMM starts from zero instead
// of a zeroed M, and G^T M G is stored. The same sums in the same order (0 + x is x, but for a -0 that would have
// become +0: the addon's in-order sum of the parts starts from +0, so it comes out the same).
// With `pro` (mean, scale, beta), the input is relu(batch norm(x)) made as the tiles are read (see Prologue).
static void filter_grad_wide(const float* x, const float* dy, int n, int h, int w, int ci, int co, Prologue pro, float* out) {
  if (VW == 4 || ci % VW || co % VW) {
    __builtin_memset(out, 0, sizeof(float) * 9 * ci * co);
    w4_filter_grad(x, dy, n, h, w, ci, co, pro, out);
    return;
  }
  const long plane = (long)ci * co;
  const int th = (h + 3) / 4, tw = (w + 3) / 4, tiles = n * th * tw;
  const int per = WTG_FLOATS / (ci > co ? ci : co), wtg = min_i(tiles, per > WT ? per : WT);
  float *m = thread_scratch(SCRATCH_M, 36 * plane), *v = thread_scratch(SCRATCH_V, 36L * (wtg * ci + PLANE_PAD)),
        *dd = thread_scratch(SCRATCH_D, 36L * (wtg * co + PLANE_PAD));
  if (!m || !v || !dd) {  // out of memory: NaN, on which training stops (train.ts: a non-finite loss)
    for (long i = 0; i < 9 * plane; i++) out[i] = __builtin_nanf("");
    return;
  }
  for (int t0 = 0; t0 < tiles; t0 += wtg) {
    const int nt = min_i(wtg, tiles - t0);
    const long pv = (long)nt * ci + PLANE_PAD, pd = (long)nt * co + PLANE_PAD;
    ww_input(x, h, w, ci, th, tw, t0, nt, pro, pv, v);
    ww_dy(dy, h, w, co, th, tw, t0, nt, pd, dd);
    // M[xi] (ci x co) (+)= V[xi]^T (ci x nt) * D[xi] (nt x co)
    for (int xi = 0; xi < 36; xi++) gemm(v + xi * pv, 1, ci, dd + xi * pd, co, ci, co, nt, m + (long)xi * plane, co, t0 > 0);
  }
  for (long q = 0; q < plane; q += VW) {  // dW = G^T M G
    vf t[3][6];
    for (int j = 0; j < 6; j++) {
      vf col[6], o3[3];
      for (int i = 0; i < 6; i++) col[i] = ld(m + (long)(i * 6 + j) * plane + q);
      wgt_1d(col, o3);
      for (int i = 0; i < 3; i++) t[i][j] = o3[i];
    }
    for (int i = 0; i < 3; i++) {
      vf o3[3];
      wgt_1d(t[i], o3);
      for (int j = 0; j < 3; j++) st(out + (long)(i * 3 + j) * plane + q, o3[j]);
    }
  }
}

static void conv_filter_grad_winograd_wide(const float* x, const float* dy, int n, int h, int w, int ci, int ho, int wo, int co, int kh,
                                           int kw, int s, int p, float* out) {
  (void)ho, (void)wo, (void)kh, (void)kw, (void)s, (void)p;
  filter_grad_wide(x, dy, n, h, w, ci, co, (Prologue){0, 0, 0}, out);
}

// The filter gradient of conv3x3_winograd_bn (training-mode batch norm + ReLU in front): the 14 arguments, then the
// batch mean, scale (bn_train_scale: gamma * inv_std) and beta; ci % 4 == 0.
static void conv_filter_grad_winograd_bn_wide(const float* x, const float* dy, int n, int h, int w, int ci, int ho, int wo, int co, int kh,
                                              int kw, int s, int p, float* out, const float* mean, const float* scale, const float* beta) {
  (void)ho, (void)wo, (void)kh, (void)kw, (void)s, (void)p;
  filter_grad_wide(x, dy, n, h, w, ci, co, (Prologue){mean, scale, beta}, out);
}

// out = parts[0] + parts[1] + ... as layout.c's sum_parts adds them (each element from +0, over the parts in
// order), a vector of elements at a time: that one goes element by element across the parts, unvectorised.
static void sum_parts_wide(const float* parts, int count, int size, float* out) {
  if (size % VW) {
    sum_parts(parts, count, size, out);
    return;
  }
  for (int i = 0; i < size; i += VW) {
    vf s = vsplat(0.f);
    for (int c = 0; c < count; c++) s += ld(parts + (long)c * size + i);
    st(out + i, s);
  }
}

// The direct filter gradient (conv_grad.c's loop order: per image, output row and tap, the x row and dy
// row stay in L1) with the GEMM above: out[i, j] (ci x co) += X (ci x taps' columns) * dY (columns x co).
// Writes out: zeroes it first (in the thread that fills it, rather than the caller zeroing every part).
static void conv_filter_grad_wide(const float* x, const float* dy, int n, int h, int w, int ci, int ho, int wo, int co, int kh, int kw,
                                  int s, int p, float* out) {
  __builtin_memset(out, 0, sizeof(float) * kh * kw * ci * co);
  if (VW == 4 || co % VW) {
    conv_filter_grad(x, dy, n, h, w, ci, ho, wo, co, kh, kw, s, p, out);
    return;
  }
  for (int img = 0; img < n; img++) {
    for (int a = 0; a < ho; a++) {
      const float* dyrow = dy + ((long)img * ho + a) * wo * co;
      for (int i = 0; i < kh; i++) {
        const int r = s * a + i - p;
        if (r < 0 || r >= h) continue;
        const float* xrow = x + ((long)img * h + r) * w * ci;
        for (int j = 0; j < kw; j++) {
          int b0 = 0;
          while (b0 < wo && s * b0 + j - p < 0) b0++;
          int b1 = wo;
          while (b1 > b0 && s * (b1 - 1) + j - p >= w) b1--;
          if (b0 >= b1) continue;
          gemm(xrow + (long)(s * b0 + j - p) * ci, 1, (long)s * ci, dyrow + (long)b0 * co, co, ci, co, b1 - b0,
               out + ((long)i * kw + j) * ci * co, co, 1);
        }
      }
    }
  }
}

// A direct convolution (NHWC x, HWIO filter, stride s, zero padding pt/pl, output ho x wo) with the GEMM
// above: per output row and tap, Y row (columns x co) += X (columns x ci, every s-th) * W[i, j] (ci x co).
// The native backend's Conv2D (the convolutions Winograd does not take: strided, 1x1, the input layer,
// the stride-2 input gradient's phases); co % VW == 0 (else the caller keeps tfjs-wasm's).
static void conv2d_direct(const float* x, int n, int h, int w, int ci, const float* f, int kh, int kw, int co, int s, int pt, int pl,
                          int ho, int wo, float* y) {
  for (int img = 0; img < n; img++) {
    for (int a = 0; a < ho; a++) {
      float* yrow = y + ((long)img * ho + a) * wo * co;
      __builtin_memset(yrow, 0, (unsigned long)wo * co * sizeof(float));
      for (int i = 0; i < kh; i++) {
        const int r = s * a + i - pt;
        if (r < 0 || r >= h) continue;
        const float* xrow = x + ((long)img * h + r) * w * ci;
        for (int j = 0; j < kw; j++) {
          int b0 = 0;
          while (b0 < wo && s * b0 + j - pl < 0) b0++;
          int b1 = wo;
          while (b1 > b0 && s * (b1 - 1) + j - pl >= w) b1--;
          if (b0 >= b1) continue;
          gemm(xrow + (long)(s * b0 + j - pl) * ci, (long)s * ci, 1, f + ((long)i * kw + j) * ci * co, co, b1 - b0, co, ci,
               yrow + (long)b0 * co, co, 1);
        }
      }
    }
  }
}
