// Batch norm (+ ReLU) forward, evaluation and backward over m rows of c channels (NHWC flattened).
// They replace tfjs-wasm kernels that are scalar or generic: FusedBatchNorm costs ~10 ns per element,
// broadcasting Sub/Mul ~2 ns, and tfjs's gradient chains 7 broadcasting ops.
#include "common.h"

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

// bn_forward's statistics without its output: mean, biased variance and 1/sqrt(var + eps) per channel, for a
// training-mode batch norm that a kernel applies as it reads x (conv3x3_winograd_bn).
EXPORT(bn_stats)
void bn_stats(const float* x, int m, int c, float eps, float* mean, float* var, float* inv_std) {
  moments(x, m, c, mean, var);
  for (int ch = 0; ch < c; ch++) inv_std[ch] = 1.f / __builtin_sqrtf(var[ch] + eps);
}

// Evaluation-mode batch norm (+ optional ReLU) with given statistics.
EXPORT(bn_eval)
void bn_eval(const float* x, int m, int c, const float* mean, const float* var, const float* gamma, const float* beta, float eps,
             int relu, float* y) {
  float scale[c];
  for (int ch = 0; ch < c; ch++) scale[ch] = gamma[ch] / __builtin_sqrtf(var[ch] + eps);
  normalize(x, m, c, mean, scale, beta, relu, y);
}

// The ReLU's mask for 4 channels at element i: y > 0 from the forward output y, or (from_x) the same test on
// (x - mean) * scale + beta recomputed with normalize's arithmetic (max(v, 0) > 0 exactly when v > 0; NaN in neither).
static inline __attribute__((always_inline)) v128_t relu_mask(int from_x, const float* x, const float* y, long i, const float* mean,
                                                              const float* scale, const float* beta, int ch) {
  const v128_t zero = wasm_f32x4_splat(0.f);
  if (!from_x) return wasm_f32x4_gt(wasm_v128_load(y + i), zero);
  const v128_t v = wasm_f32x4_add(wasm_f32x4_mul(wasm_f32x4_sub(wasm_v128_load(x + i), wasm_v128_load(mean + ch)), wasm_v128_load(scale + ch)),
                                  wasm_v128_load(beta + ch));
  return wasm_f32x4_gt(v, zero);
}

static inline __attribute__((always_inline)) int relu_pass(int from_x, const float* x, const float* y, long i, const float* mean,
                                                           const float* scale, const float* beta, int ch) {
  if (!from_x) return y[i] > 0.f;
  const float v = (x[i] - mean[ch]) * scale[ch] + beta[ch];
  return v > 0.f;
}

// Backward of bn_forward. g = dy, masked by y > 0 when relu (y = the forward output). With
// xc = x - mean, M = m:  dbeta = sum g,  dgamma = inv_std * sum g*xc,
// dx = a*g + b*xc + k,  a = gamma*inv_std,  b = -a*inv_std^2*sum(g*xc)/M + 2*dvar/M,  k = -a*sum(g)/M + dmean/M
// (dmean, dvar: gradients reaching the returned statistics, usually zero). from_x: the mask comes from x, scale
// and beta (relu_mask) instead of y; the arithmetic is otherwise the same.
static inline __attribute__((always_inline)) void bn_backward_impl(int from_x, const float* dy, const float* x, const float* y, int m, int c,
                                                                   int relu, const float* mean, const float* inv_std, const float* gamma,
                                                                   const float* scale, const float* beta, const float* dmean,
                                                                   const float* dvar, float* dx, float* dgamma, float* dbeta) {
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
        if (relu) g = wasm_v128_and(g, relu_mask(from_x, x, y, i, mean, scale, beta, ch));
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
        const float g = relu && !relu_pass(from_x, x, y, i, mean, scale, beta, ch) ? 0.f : dy[i];
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
      if (relu) g = wasm_v128_and(g, relu_mask(from_x, x, y, i, mean, scale, beta, ch));
      const v128_t xc = wasm_f32x4_sub(wasm_v128_load(x + i), wasm_v128_load(mean + ch));
      const v128_t v = wasm_f32x4_add(wasm_f32x4_add(wasm_f32x4_mul(g, wasm_v128_load(a + ch)), wasm_f32x4_mul(xc, wasm_v128_load(b + ch))),
                                      wasm_v128_load(k + ch));
      wasm_v128_store(dx + i, v);
    }
    for (; ch < c; ch++) {
      const long i = base + ch;
      const float g = relu && !relu_pass(from_x, x, y, i, mean, scale, beta, ch) ? 0.f : dy[i];
      dx[i] = g * a[ch] + (x[i] - mean[ch]) * b[ch] + k[ch];
    }
  }
}

EXPORT(bn_backward)
void bn_backward(const float* dy, const float* x, const float* y, int m, int c, int relu, const float* mean, const float* inv_std,
                 const float* gamma, const float* dmean, const float* dvar, float* dx, float* dgamma, float* dbeta) {
  bn_backward_impl(0, dy, x, y, m, c, relu, mean, inv_std, gamma, 0, 0, dmean, dvar, dx, dgamma, dbeta);
}

// bn_backward (relu) for a batch norm + ReLU whose output was never stored (conv3x3_winograd_bn made it as it read x):
// da, the gradient reaching the activation, is masked by the ReLU recomputed from x (the forward's arithmetic, with
// scale = gamma * inv_std as bn_forward has it), so dx, dgamma and dbeta are bn_backward's bit for bit.
EXPORT(bn_relu_backward_x)
void bn_relu_backward_x(const float* da, const float* x, int m, int c, const float* mean, const float* inv_std, const float* gamma,
                        const float* beta, const float* dmean, const float* dvar, float* dx, float* dgamma, float* dbeta) {
  float scale[c];
  for (int ch = 0; ch < c; ch++) scale[ch] = gamma[ch] * inv_std[ch];
  bn_backward_impl(1, da, x, 0, m, c, 1, mean, inv_std, gamma, scale, beta, dmean, dvar, dx, dgamma, dbeta);
}

// bn_eval_input_grad (relu) for an evaluation-mode batch norm + ReLU whose output was never stored (conv3x3_winograd
// with a batch norm made it as it read x: ops/conv.ts's bnReluConv3x3EvalGrad): da, the gradient reaching the
// activation, times step(v) with v = (x - mean) * scale + beta as bn_eval computes it (scale = gamma / sqrt(var + eps),
// as bn_eval and winograd_bn_scale have it; 1 above 0, 0 at or below, NaN for NaN, as tf.step), times gscale[c] (the
// backward's gamma * rsqrt(var + eps), ops/batchnorm.ts's): bn_eval_input_grad's dx without y.
EXPORT(bn_eval_relu_grad_x)
void bn_eval_relu_grad_x(const float* da, const float* x, const float* mean, const float* var, const float* gamma, const float* beta,
                         float eps, const float* gscale, int rows, int c, float* dx) {
  float scale[c];
  for (int ch = 0; ch < c; ch++) scale[ch] = gamma[ch] / __builtin_sqrtf(var[ch] + eps);
  for (long r = 0; r < rows; r++) {
    const long base = r * c;
    int ch = 0;
    for (; ch + 4 <= c; ch += 4) {
      const long i = base + ch;
      const v128_t v = wasm_f32x4_add(wasm_f32x4_mul(wasm_f32x4_sub(wasm_v128_load(x + i), wasm_v128_load(mean + ch)), wasm_v128_load(scale + ch)),
                                      wasm_v128_load(beta + ch));
      // step(v): 1.0 where v > 0, v itself where it is NaN (v != v), else 0
      const v128_t s = wasm_v128_or(wasm_v128_and(wasm_f32x4_gt(v, wasm_f32x4_splat(0.f)), wasm_f32x4_splat(1.f)),
                                    wasm_v128_and(wasm_f32x4_ne(v, v), v));
      wasm_v128_store(dx + i, wasm_f32x4_mul(wasm_f32x4_mul(wasm_v128_load(da + i), s), wasm_v128_load(gscale + ch)));
    }
    for (; ch < c; ch++) {
      const long i = base + ch;
      const float v = (x[i] - mean[ch]) * scale[ch] + beta[ch];
      const float s = v > 0.f ? 1.f : (v != v ? v : 0.f);
      dx[i] = (da[i] * s) * gscale[ch];
    }
  }
}
