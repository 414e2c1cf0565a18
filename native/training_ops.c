// Small training-step operations that tfjs runs as several generic kernels each: the attention map's sum of
// squares over channels and its input gradient, batch norm's running-statistics update, and an evaluation-mode
// batch norm's input gradient. Each gives what the tfjs ops it replaces give on the cpu backend,
// bit for bit (the same float32 operations in the same order, no fused multiply-adds: contraction is off
// below; the channel sums in double, as that backend sums).
#include "common.h"

#ifdef __clang__
#pragma clang fp contract(off)
#else
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
#endif

// out[r] = sum over c of x[r, c]^2 (tf.sum(tf.square(x), -1)) for rows of c channels: float32 squares summed in
// order in double, as tfjs's cpu backend sums, and rounded once. Four rows at a time, for four independent chains.
EXPORT(channel_sum_squares)
void channel_sum_squares(const float* x, int rows, int c, float* out) {
  long r = 0;
  for (; r + 4 <= rows; r += 4) {
    const float* xr = x + r * c;
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (int k = 0; k < c; k++) {
      const float q0 = xr[k] * xr[k], q1 = xr[c + k] * xr[c + k], q2 = xr[2 * c + k] * xr[2 * c + k], q3 = xr[3 * c + k] * xr[3 * c + k];
      s0 += q0, s1 += q1, s2 += q2, s3 += q3;
    }
    out[r] = (float)s0, out[r + 1] = (float)s1, out[r + 2] = (float)s2, out[r + 3] = (float)s3;
  }
  for (; r < rows; r++) {
    const float* xr = x + r * c;
    double s = 0;
    for (int k = 0; k < c; k++) {
      const float q = xr[k] * xr[k];
      s += q;
    }
    out[r] = (float)s;
  }
}

// out[r, c] = (x[r, c] * 2) * g[r]: the gradient of channel_sum_squares times g (tf.mul(tf.mul(x, 2), g[..., None])).
EXPORT(channel_sum_squares_grad)
void channel_sum_squares_grad(const float* x, const float* g, int rows, int c, float* out) {
  for (long r = 0; r < rows; r++) {
    const float* xr = x + r * c;
    float* o = out + r * c;
    const float gr = g[r];
    for (int k = 0; k < c; k++) o[k] = (xr[k] * 2.f) * gr;
  }
}

// PyTorch's running statistics after a training-mode batch norm, as ParamSet.applyBatchNorm's tfjs ops:
// mean' = mean * keep + batch_mean * momentum, var' = var * keep + (batch_var * unbias) * momentum.
EXPORT(bn_running_update)
void bn_running_update(const float* mean, const float* var, const float* batch_mean, const float* batch_var, int c, float keep,
                              float momentum, float unbias, float* mean_out, float* var_out) {
  for (int k = 0; k < c; k++) {
    const float a = mean[k] * keep, b = batch_mean[k] * momentum;
    mean_out[k] = a + b;
    const float u = batch_var[k] * unbias;
    const float p = var[k] * keep, q = u * momentum;
    var_out[k] = p + q;
  }
}

// dx = (dy * step(y)) * scale[c] with relu, else dy * scale[c]: the input gradient of an evaluation-mode batch norm
// (+ ReLU) whose output is y, as ops/batchnorm.ts's tfjs ops compute it (tf.step: 1 above 0, 0 at or below, NaN for
// NaN). Attacks and trigger searches take input gradients through frozen models (CL's PGD, Neural Cleanse): three
// passes of stock kernels per layer there, one here.
EXPORT(bn_eval_input_grad)
void bn_eval_input_grad(const float* dy, const float* y, const float* scale, int rows, int c, int relu, float* dx) {
  for (long r = 0; r < rows; r++) {
    const float* g = dy + r * c;
    float* o = dx + r * c;
    if (relu) {
      const float* yr = y + r * c;
      for (int k = 0; k < c; k++) {
        const float s = yr[k] > 0.f ? 1.f : (yr[k] != yr[k] ? yr[k] : 0.f);
        o[k] = (g[k] * s) * scale[k];
      }
    } else {
      for (int k = 0; k < c; k++) o[k] = g[k] * scale[k];
    }
  }
}

// out[i] = (x[i] > 0) - (x[i] < 0): torch.sign's +1, -1 or 0 (0 for NaN), as ops/sign.ts's exactSign compares and
// subtracts (tfjs-wasm's Sign returns 0 below FLT_EPSILON). Signed-gradient steps (CL's PGD, ANP's perturbation) take
// it once per step: five stock kernels and four temporaries there, one pass here.
EXPORT(sign_exact)
void sign_exact(const float* x, int n, float* out) {
  for (int i = 0; i < n; i++) out[i] = (float)(x[i] > 0.f) - (float)(x[i] < 0.f);
}

#ifndef __clang__
#pragma GCC pop_options
#endif
