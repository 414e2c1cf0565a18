// The kernels of native/*.c as one table of function pointers per instruction set: kernels.c is
// compiled once per ISA (NAD_ISA = avx512, avx2 or portable) and addon.c picks a table at load.
#pragma once

typedef struct {
  const char* isa;
  void (*bn_forward)(const float*, int, int, const float*, const float*, float, int, float*, float*, float*, float*);
  void (*bn_eval)(const float*, int, int, const float*, const float*, const float*, const float*, float, int, float*);
  void (*bn_backward)(const float*, const float*, const float*, int, int, int, const float*, const float*, const float*,
                      const float*, const float*, float*, float*, float*);
  void (*swap_batch_channels)(const float*, int, int, int, float*);
  void (*batch_to_inner)(const float*, int, int, int, float*);
  void (*dilate)(const float*, int, int, int, int, int, int, int, float*);
  void (*flip_filter)(const float*, int, int, int, int, float*);
  void (*interleave2)(const float*, const float*, const float*, const float*, int, int, int, int, float*);
  void (*phase_filters3x3)(const float*, int, int, float*, float*, float*, float*);
  void (*sum_parts)(const float*, int, int, float*);
  void (*sgd_update)(const float*, const float*, const float*, int, float, float, float, int, float*, float*);
  // x, dy, n, h, w, ci, ho, wo, co, kh, kw, stride, pad, out (written; native/*.c's versions add to it)
  void (*conv_filter_grad)(const float*, const float*, int, int, int, int, int, int, int, int, int, int, int, float*);
  void (*conv_filter_grad_winograd)(const float*, const float*, int, int, int, int, int, int, int, int, int, int, int, float*);
  // ... with a training-mode batch norm + ReLU on x made as it is read: then mean, scale (bn_train_scale), beta
  void (*conv_filter_grad_winograd_bn)(const float*, const float*, int, int, int, int, int, int, int, int, int, int, int, float*,
                                       const float*, const float*, const float*);
  // 3x3 Winograd convolution: U = winograd_filter(filter, ci, co) once per call (36 * ceil4(ci) * co floats), then
  // x, n, h, w, ci, U, co, y, and for a batch norm + ReLU in front mean, scale (winograd_bn_scale), beta (else 0)
  void (*winograd_filter)(const float*, int, int, float*);
  void (*winograd_bn_scale)(const float*, const float*, float, int, float*);
  // training mode: scale = gamma * inv_std (inv_std, gamma, ci, scale), for conv3x3_winograd and the filter gradient
  void (*bn_train_scale)(const float*, const float*, int, float*);
  void (*conv3x3_winograd)(const float*, int, int, int, int, const float*, int, float*, const float*, const float*, const float*);
  // x, n, h, w, ci, filter, kh, kw, co, stride, pad top, pad left, ho, wo, y (co % vector_width == 0, or co < vector_width at stride 1)
  void (*conv2d)(const float*, int, int, int, int, const float*, int, int, int, int, int, int, int, int, float*);
  // training_ops.c: x, rows, c, out; x, g, rows, c, out; mean, var, batch mean, batch var, c, keep, momentum, unbias, outs
  void (*channel_sum_squares)(const float*, int, int, float*);
  void (*channel_sum_squares_grad)(const float*, const float*, int, int, float*);
  void (*bn_running_update)(const float*, const float*, const float*, const float*, int, float, float, float, float*, float*);
  void (*bn_eval_input_grad)(const float*, const float*, const float*, int, int, int, float*);
  // da, x, mean, var, gamma, beta, eps, gscale, rows, c, dx
  void (*bn_eval_relu_grad_x)(const float*, const float*, const float*, const float*, const float*, const float*, float, const float*, int,
                              int, float*);
  // x, n, out
  void (*sign_exact)(const float*, int, float*);
  // batchnorm.c, the fused training path: x, m, c, eps, mean, var, inv_std; da, x, m, c, mean, inv_std, gamma, beta, dmean,
  // dvar, dx, dgamma, dbeta
  void (*bn_stats)(const float*, int, int, float, float*, float*, float*);
  void (*bn_relu_backward_x)(const float*, const float*, int, int, const float*, const float*, const float*, const float*, const float*,
                             const float*, float*, float*, float*);
  int vector_width;
  // WaNet's warp (warp.c): images, count, bytes per image, channels, taps' offsets and weights (4 per pixel,
  // checked by the caller), scratch of bytes per image x warp_lanes doubles
  void (*warp)(unsigned char*, int, long, int, const int*, const double*, double*);
  int warp_lanes;
} NadKernels;

extern const NadKernels nad_kernels_avx512, nad_kernels_avx2, nad_kernels_portable;
