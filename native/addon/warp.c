// WaNet's warp (src/engine/triggers/warp-plan.ts) on uint8 HWC images, in place, byte for byte the JS
// path's result (native addon only; included by kernels.c, once per instruction set). Per output value:
// the float64 sum w0*s0 + w1*s1 + w2*s2 + w3*s3 + 1e-3 in that order, truncated to uint8. The vectors
// run over images, not pixels: a block of WV images (WV doubles per vector) is first transposed to
// doubles, value-major, so that each tap of a pixel is one contiguous vector load for the whole block;
// the products and sums are the scalar ones lane by lane, so no lane can differ from JS.

#if defined(__AVX512F__)
#define WV 8
#elif defined(__AVX__)
#define WV 4
#else
#define WV 2
#endif

// The sums must round as JS's do: never fused into FMA (GCC contracts by default with -mfma, clang
// within an expression), whatever the build's flags. test/unit/warp-native.test.ts compares the bytes.
#if defined(__clang__)
#define WARP_NO_CONTRACT _Pragma("clang fp contract(off)")
#else
#define WARP_NO_CONTRACT
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
#endif

#define WARP_EPS 1e-3

// Bytes are moved four at a time through ints, low byte first.
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "warp.c assumes a little-endian CPU"
#endif

typedef double warp_vd __attribute__((vector_size(WV * 8)));
typedef int warp_vi __attribute__((vector_size(WV * 4)));
typedef unsigned warp_vu __attribute__((vector_size(WV * 4)));

static inline warp_vd warp_ld(const double* p) {
  warp_vd v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}

static inline int warp_ld32(const unsigned char* p) {
  int v;
  __builtin_memcpy(&v, p, 4);
  return v;
}

// Channel ch of the output pixel with taps o[k..k+3], w[k..k+3], for the block's lanes (t: transposed block).
static inline warp_vi warp_sum(const double* t, const int* o, const double* w, long k, int ch) {
  WARP_NO_CONTRACT
  const warp_vd a = w[k] * warp_ld(t + ((long)o[k] + ch) * WV) + w[k + 1] * warp_ld(t + ((long)o[k + 1] + ch) * WV) +
                    w[k + 2] * warp_ld(t + ((long)o[k + 2] + ch) * WV) + w[k + 3] * warp_ld(t + ((long)o[k + 3] + ch) * WV) +
                    WARP_EPS;
  // Truncation toward zero, as a Uint8Array store of a value in [0, 256) does.
  return __builtin_convertvector(a, warp_vi);
}

// The m <= WV images at img (n = pixels * c bytes each), warped in place; t holds n * WV doubles.
static inline __attribute__((always_inline)) void warp_block(unsigned char* img, int m, long n, int c, const int* o, const double* w,
                                                              double* t) {
  long v = 0;
  // t[v * WV + j] = image j's value v: four values of each image per load, split by shifts.
  for (; v + 4 <= n; v += 4) {
    warp_vi x = {0};
    for (int j = 0; j < m; j++) x[j] = warp_ld32(img + j * n + v);
    for (int b = 0; b < 4; b++) {
      const warp_vd d = __builtin_convertvector((x >> (8 * b)) & 0xFF, warp_vd);
      __builtin_memcpy(t + (v + b) * WV, &d, sizeof d);
    }
  }
  for (; v < n; v++) {
    warp_vd d = {0};
    for (int j = 0; j < m; j++) d[j] = img[j * n + v];
    __builtin_memcpy(t + v * WV, &d, sizeof d);
  }
  const long pixels = n / c;
  long p = 0;
  // Four pixels at a time (4c values, a whole number of 4-byte words): one word store per image and word.
  if (c <= 4)
    for (; p + 4 <= pixels; p += 4) {
      warp_vi r[16];
      for (int q = 0; q < 4; q++)
        for (int ch = 0; ch < c; ch++) r[q * c + ch] = warp_sum(t, o, w, 4 * (p + q), ch);
      for (int g = 0; g < c; g++) {
        const warp_vu word = ((warp_vu)r[4 * g] & 0xFF) | ((warp_vu)r[4 * g + 1] & 0xFF) << 8 | ((warp_vu)r[4 * g + 2] & 0xFF) << 16 |
                             (warp_vu)r[4 * g + 3] << 24;
        for (int j = 0; j < m; j++) {
          const unsigned u = word[j];
          __builtin_memcpy(img + j * n + p * c + 4 * g, &u, 4);
        }
      }
    }
  for (; p < pixels; p++)
    for (int ch = 0; ch < c; ch++) {
      const warp_vi r = warp_sum(t, o, w, 4 * p, ch);
      for (int j = 0; j < m; j++) img[j * n + p * c + ch] = (unsigned char)r[j];
    }
}

static void warp_full_block(unsigned char* img, long n, int c, const int* o, const double* w, double* t) {
  warp_block(img, WV, n, c, o, w, t);
}

// One image alone, in scalars (a block's other lanes would be wasted work): src, n bytes, holds its copy.
static void warp_one(unsigned char* img, long n, int c, const int* o, const double* w, unsigned char* src) {
  WARP_NO_CONTRACT
  __builtin_memcpy(src, img, n);
  for (long k = 0, at = 0; at < n; k += 4, at += c)
    for (int ch = 0; ch < c; ch++)
      img[at + ch] = (unsigned char)(int)(w[k] * src[o[k] + ch] + w[k + 1] * src[o[k + 1] + ch] + w[k + 2] * src[o[k + 2] + ch] +
                                          w[k + 3] * src[o[k + 3] + ch] + WARP_EPS);
}

// count images of n bytes (n / c pixels, taps o and w: 4 per pixel, checked by the caller) warped in place;
// t: n * warp_lanes doubles of scratch.
static void warp_images(unsigned char* images, int count, long n, int c, const int* o, const double* w, double* t) {
  int i = 0;
  for (; i + WV <= count; i += WV) warp_full_block(images + i * n, n, c, o, w, t);
  if (count - i == 1)
    warp_one(images + i * n, n, c, o, w, (unsigned char*)t);
  else if (i < count)
    warp_block(images + i * n, count - i, n, c, o, w, t);
}

#if !defined(__clang__)
#pragma GCC pop_options
#endif
