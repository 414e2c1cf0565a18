// A direct stride-1 convolution for few output channels (co < VW: the input gradient of an RGB or grayscale
// input layer, 3 or 1 channels out), which conv2d_direct's GEMM (co in multiples of VW) does not take and
// tfjs-wasm's XNNPACK ran at 4.8 ms of a 46 ms PGD step (64 x 32 x 32 x 16 -> 3). Vectors run along an output
// row (VW pixels), over each input row transposed to [channel][column] with the padding columns zeroed, and take
// four output channels per pass (zero weights beyond co). Each output sums its taps' products in one fixed order
// (filter row, input channel, filter column): no transform, so a zero neighbourhood gives exactly 0 (a PGD step's
// sign keeps those pixels, as PyTorch's), and an image's outputs do not depend on the rest of the batch.
// Included by kernels.c after winograd_wide.c.

#define NG 4  // output channels per pass

// y [n, ho, wo, co] = conv(x [n, h, w, ci], f [kh, kw, ci, co]), stride 1, zero padding top pt, left pl.
static void conv2d_narrow(const float* x, int n, int h, int w, int ci, const float* f, int kh, int kw, int co, int pt, int pl, int ho,
                          int wo, float* y) {
  const int groups = (co + NG - 1) / NG, chunks = (wo + VW - 1) / VW;
  const int cols = chunks * VW + kw - 1;  // columns of a transposed row: every vector's reach, padding included
  float* ft = calloc((size_t)groups * kh * kw * ci * NG, sizeof(float));  // [group][i][j][k][NG]
  float* xt = calloc((size_t)h * ci * cols, sizeof(float));                 // one image: [row][k][column]
  if (!ft || !xt) {  // out of memory: NaN, on which training and attacks stop (a non-finite loss)
    for (long q = 0; q < (long)n * ho * wo * co; q++) y[q] = __builtin_nanf("");
    free(ft), free(xt);
    return;
  }
  for (int t = 0; t < kh * kw; t++)
    for (int k = 0; k < ci; k++)
      for (int c = 0; c < co; c++) ft[(((long)(c / NG) * kh * kw + t) * ci + k) * NG + c % NG] = f[((long)t * ci + k) * co + c];
  for (int img = 0; img < n; img++) {
    const float* xi = x + (long)img * h * w * ci;
    for (int r = 0; r < h; r++)  // column q holds input column q - pl (zero outside the image: calloc, never written)
      for (int q = pl > 0 ? pl : 0; q - pl < w && q < cols; q++)
        for (int k = 0; k < ci; k++) xt[((long)r * ci + k) * cols + q] = xi[((long)r * w + q - pl) * ci + k];
    for (int a = 0; a < ho; a++)
      for (int g = 0; g < groups; g++)
        for (int b0 = 0; b0 < wo; b0 += VW) {
          vf acc[NG] = {{0}};
          for (int i = 0; i < kh; i++) {
            const int r = a + i - pt;
            if (r < 0 || r >= h) continue;
            const float* fr = ft + ((long)g * kh + i) * kw * ci * NG;
            for (int k = 0; k < ci; k++) {
              const float* xr = xt + ((long)r * ci + k) * cols + b0;
              for (int j = 0; j < kw; j++) {
                const vf xv = ld(xr + j);
                const float* wt = fr + ((long)j * ci + k) * NG;
                for (int c = 0; c < NG; c++) acc[c] += xv * wt[c];
              }
            }
          }
          float lanes[NG][VW];
          __builtin_memcpy(lanes, acc, sizeof lanes);
          const int valid = wo - b0 < VW ? wo - b0 : VW, here = co - g * NG < NG ? co - g * NG : NG;
          float* yp = y + (((long)img * ho + a) * wo + b0) * co + g * NG;
          for (int l = 0; l < valid; l++)
            for (int c = 0; c < here; c++) yp[(long)l * co + c] = lanes[c][l];
        }
  }
  free(ft);
  free(xt);
}

// The addon's conv2d: the GEMM for co in multiples of VW, the row vectors above for co < VW at stride 1
// (js_conv2d refuses the rest).
static void conv2d_any(const float* x, int n, int h, int w, int ci, const float* f, int kh, int kw, int co, int s, int pt, int pl,
                       int ho, int wo, float* y) {
  if (co % VW)
    conv2d_narrow(x, n, h, w, ci, f, kh, kw, co, pt, pl, ho, wo, y);
  else
    conv2d_direct(x, n, h, w, ci, f, kh, kw, co, s, pt, pl, ho, wo, y);
}
