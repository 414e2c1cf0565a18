// The Node-API addon around the kernel tables (kernels.c): picks the widest instruction set this CPU
// runs (AVX-512, AVX2+FMA, else portable; NAD_NATIVE_ISA=avx2|portable forces a narrower one), works
// in place on tfjs-wasm's heap (heap(): a typed array over the wasm memory; pointer arguments are byte
// offsets into it, 0 meaning none), and splits the big kernels over its own threads.
// Node-API version 8: ABI-stable, so one build loads in Node >= 12.22 and in VS Code's Electron.
#define NAPI_VERSION 8
#include <node_api.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

static const NadKernels* K;
static char* heap_base;
static size_t heap_bytes;

// ---- threads: workers that claim chunks of a job alongside the calling thread ----

typedef struct Job {
  void (*run)(const struct Job*, int start, int count);
  const double* a;  // the call's arguments
  float* parts;     // filter gradients: one partial sum per chunk; Winograd: the transformed filter
  const float* scale;  // a filter gradient through a training-mode batch norm + ReLU: its scale (else NULL)
  long part_size;
  int images, chunk;
  atomic_int next;
} Job;

#define MAX_THREADS 64
static int pool_threads = 1;  // including the caller
static pthread_t workers[MAX_THREADS];
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_wake = PTHREAD_COND_INITIALIZER, pool_done = PTHREAD_COND_INITIALIZER;
static Job* pool_job;  // the job workers may still join; NULL once its caller has claimed every chunk
static long pool_seq;
static int pool_active;  // workers inside a job's claim loop

static void claim(Job* j) {
  for (;;) {
    const int start = atomic_fetch_add(&j->next, j->chunk);
    if (start >= j->images) return;
    j->run(j, start, j->images - start < j->chunk ? j->images - start : j->chunk);
  }
}

static void* worker_main(void* arg) {
  (void)arg;
  long seen = 0;
  pthread_mutex_lock(&pool_lock);
  for (;;) {
    while (pool_seq == seen) pthread_cond_wait(&pool_wake, &pool_lock);
    seen = pool_seq;
    Job* j = pool_job;
    if (!j) continue;  // woke too late: the caller did the whole job
    pool_active++;
    pthread_mutex_unlock(&pool_lock);
    claim(j);
    pthread_mutex_lock(&pool_lock);
    if (--pool_active == 0) pthread_cond_signal(&pool_done);
  }
  return NULL;
}

static int start_threads(int n) {
  if (n > MAX_THREADS) n = MAX_THREADS;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  // Kernels keep their scratch on the stack (Winograd: transformed filter and tiles, a few MB at most).
  pthread_attr_setstacksize(&attr, 16 << 20);
  for (int i = pool_threads - 1; i < n - 1; i++) {
    if (pthread_create(&workers[i], &attr, worker_main, NULL)) break;
    pthread_detach(workers[i]);
    pool_threads = i + 2;
  }
  pthread_attr_destroy(&attr);
  return pool_threads;
}

static void run_job(Job* j, int parallel) {
  atomic_store(&j->next, 0);
  if (!parallel || pool_threads < 2) {
    claim(j);
    return;
  }
  pthread_mutex_lock(&pool_lock);
  pool_job = j;
  pool_seq++;
  pthread_cond_broadcast(&pool_wake);
  pthread_mutex_unlock(&pool_lock);
  claim(j);
  // Every chunk is claimed: wait only for the workers running one. A worker not yet awake (its core busy
  // with another process) finds no job and sleeps again, instead of holding this thread up.
  pthread_mutex_lock(&pool_lock);
  pool_job = NULL;
  while (pool_active > 0) pthread_cond_wait(&pool_done, &pool_lock);
  pthread_mutex_unlock(&pool_lock);
}

// ---- arguments ----

#define MAX_ARGS 20
static napi_value undefined(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

static int read_args(napi_env env, napi_callback_info info, size_t want, double* a) {
  size_t argc = MAX_ARGS;
  napi_value argv[MAX_ARGS];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != want) {
    napi_throw_type_error(env, NULL, "nad kernels: wrong number of arguments");
    return 0;
  }
  if (!heap_base) {
    napi_throw_error(env, NULL, "nad kernels: heap() was not called");
    return 0;
  }
  for (size_t i = 0; i < want; i++)
    if (napi_get_value_double(env, argv[i], &a[i]) != napi_ok) {
      napi_throw_type_error(env, NULL, "nad kernels: arguments must be numbers");
      return 0;
    }
  return 1;
}

#define P(i) ((float*)(a[i] == 0 ? NULL : heap_base + (size_t)a[i]))
#define I(i) ((int)a[i])
#define F(i) ((float)a[i])

#define WRAP(name, n, call)                                        \
  static napi_value js_##name(napi_env env, napi_callback_info info) { \
    double a[MAX_ARGS];                                            \
    if (!read_args(env, info, n, a)) return NULL;                  \
    call;                                                          \
    return undefined(env);                                         \
  }

WRAP(bn_forward, 11, K->bn_forward(P(0), I(1), I(2), P(3), P(4), F(5), I(6), P(7), P(8), P(9), P(10)))
WRAP(bn_eval, 10, K->bn_eval(P(0), I(1), I(2), P(3), P(4), P(5), P(6), F(7), I(8), P(9)))
WRAP(bn_backward, 14,
     K->bn_backward(P(0), P(1), P(2), I(3), I(4), I(5), P(6), P(7), P(8), P(9), P(10), P(11), P(12), P(13)))
WRAP(swap_batch_channels, 5, K->swap_batch_channels(P(0), I(1), I(2), I(3), P(4)))
WRAP(batch_to_inner, 5, K->batch_to_inner(P(0), I(1), I(2), I(3), P(4)))
WRAP(dilate, 9, K->dilate(P(0), I(1), I(2), I(3), I(4), I(5), I(6), I(7), P(8)))
WRAP(flip_filter, 6, K->flip_filter(P(0), I(1), I(2), I(3), I(4), P(5)))
WRAP(interleave2, 9, K->interleave2(P(0), P(1), P(2), P(3), I(4), I(5), I(6), I(7), P(8)))
WRAP(phase_filters3x3, 7, K->phase_filters3x3(P(0), I(1), I(2), P(3), P(4), P(5), P(6)))
WRAP(sgd_update, 10, K->sgd_update(P(0), P(1), P(2), I(3), F(4), F(5), F(6), I(7), P(8), P(9)))
WRAP(channel_sum_squares, 4, K->channel_sum_squares(P(0), I(1), I(2), P(3)))
WRAP(channel_sum_squares_grad, 5, K->channel_sum_squares_grad(P(0), P(1), I(2), I(3), P(4)))
WRAP(bn_running_update, 10, K->bn_running_update(P(0), P(1), P(2), P(3), I(4), F(5), F(6), F(7), P(8), P(9)))
WRAP(bn_eval_input_grad, 7, K->bn_eval_input_grad(P(0), P(1), P(2), I(3), I(4), I(5), P(6)))
WRAP(bn_eval_relu_grad_x, 11, K->bn_eval_relu_grad_x(P(0), P(1), P(2), P(3), P(4), P(5), F(6), P(7), I(8), I(9), P(10)))
WRAP(sign_exact, 3, K->sign_exact(P(0), I(1), P(2)))
WRAP(bn_stats, 7, K->bn_stats(P(0), I(1), I(2), F(3), P(4), P(5), P(6)))
WRAP(bn_relu_backward_x, 13,
     K->bn_relu_backward_x(P(0), P(1), I(2), I(3), P(4), P(5), P(6), P(7), P(8), P(9), P(10), P(11), P(12)))

// Big enough to be worth waking the other threads (~1 M multiply-adds), as the wasm path decides.
#define SPLIT_MIN_MACS (1L << 20)

// conv3x3_winograd(x, n, h, w, ci, filter, co, y, mean, var, gamma, beta, eps): the filter transformed once
// (and the batch norm's scale computed once), then images shared between threads. `parts` holds U, then the scale.
static void winograd_chunk(const Job* j, int start, int count) {
  const double* a = j->a;
  const long in = (long)I(2) * I(3) * I(4), out = (long)I(2) * I(3) * I(6);
  const float* scale = a[8] == 0 ? NULL : j->parts + j->part_size;
  K->conv3x3_winograd(P(0) + start * in, count, I(2), I(3), I(4), j->parts, I(6), P(7) + start * out, P(8), scale, P(11));
}

// train: conv3x3_winograd_bn(x, n, h, w, ci, filter, co, y, mean, invStd, gamma, beta), a training-mode batch norm
// (the batch's mean and inv_std from bn_stats) whose scale is gamma * invStd; the chunks are winograd_chunk's.
static napi_value conv3x3_job(napi_env env, napi_callback_info info, int train) {
  double a[MAX_ARGS];
  if (!read_args(env, info, train ? 12 : 13, a)) return NULL;
  const int n = I(1), ci = I(4), co = I(6);
  if (co % 8 || (ci % 4 && a[8] != 0)) {
    napi_throw_range_error(env, NULL, "nad kernels: conv3x3_winograd needs co % 8 == 0, and ci % 4 == 0 with a batch norm");
    return NULL;
  }
  const long size = 36L * ((ci + 3) & ~3) * co;
  float* u = malloc((size + ci) * sizeof(float));
  if (!u) {
    napi_throw_error(env, NULL, "nad kernels: out of memory");
    return NULL;
  }
  K->winograd_filter(P(5), ci, co, u);
  if (a[8] != 0) train ? K->bn_train_scale(P(9), P(10), ci, u + size) : K->winograd_bn_scale(P(9), P(10), F(12), ci, u + size);
  // Chunks of at least one block of tiles (winograd_wide.c's WT, 16): every block reads all of U, which for 512
  // channels (37.7 MB) is the cost; at 4x4 a chunk of n / 16 images was 4 tiles, 4x the reads of U.
  const int per_image = ((I(2) + 3) / 4) * ((I(3) + 3) / 4), whole_block = (16 + per_image - 1) / per_image;
  const int chunk = n < 16 ? 1 : (n + 15) / 16;
  Job j = {.run = winograd_chunk, .a = a, .parts = u, .part_size = size, .images = n, .chunk = chunk > whole_block ? chunk : whole_block};
  run_job(&j, n >= 2 && (long)n * I(2) * I(3) * I(4) * I(6) * 4 >= SPLIT_MIN_MACS);
  free(u);
  return undefined(env);
}

static napi_value js_conv3x3_winograd(napi_env env, napi_callback_info info) { return conv3x3_job(env, info, 0); }
static napi_value js_conv3x3_winograd_bn(napi_env env, napi_callback_info info) { return conv3x3_job(env, info, 1); }

// Filter gradients (x, dy, n, h, w, ci, ho, wo, co, kh, kw, stride, pad, out, winograd): fixed chunks of
// FILTER_GRAD_CHUNK images, each written into its own part, the parts summed in order, so that the
// result does not depend on the thread count (the wasm path's scheme, same chunk size).
#define FILTER_GRAD_CHUNK 8
static int use_winograd_grad(const double* a) { return a[14] != 0 && I(9) == 3 && I(10) == 3 && I(11) == 1 && I(12) == 1 && I(5) % 4 == 0; }

static void filter_grad_chunk(const Job* j, int start, int count) {
  const double* a = j->a;
  const long in = (long)I(3) * I(4) * I(5), out = (long)I(6) * I(7) * I(8);
  float* part = j->parts + (start / j->chunk) * j->part_size;
  if (j->scale) {
    K->conv_filter_grad_winograd_bn(P(0) + start * in, P(1) + start * out, count, I(3), I(4), I(5), I(6), I(7), I(8), I(9), I(10), I(11),
                                    I(12), part, P(14), j->scale, P(17));
    return;
  }
  (use_winograd_grad(a) ? K->conv_filter_grad_winograd : K->conv_filter_grad)(
      P(0) + start * in, P(1) + start * out, count, I(3), I(4), I(5), I(6), I(7), I(8), I(9), I(10), I(11), I(12), part);
}

// train: conv_filter_grad_bn(the 14 arguments, mean, invStd, gamma, beta), the filter gradient of conv3x3_winograd_bn
// (Winograd only: 3x3, stride 1, pad 1, ci % 4 == 0), the batch norm's scale computed once for all chunks.
static napi_value filter_grad_job(napi_env env, napi_callback_info info, int train) {
  double a[MAX_ARGS];
  // The kernel's 14 arguments, then whether 3x3/stride 1/pad 1 (with ci % 4 == 0) may use Winograd.
  if (!read_args(env, info, train ? 18 : 15, a)) return NULL;
  if (train && (I(9) != 3 || I(10) != 3 || I(11) != 1 || I(12) != 1 || I(5) % 4 || I(8) % 8)) {
    napi_throw_range_error(env, NULL, "nad kernels: conv_filter_grad_bn needs 3x3, stride 1, pad 1, ci % 4 == 0, co % 8 == 0");
    return NULL;
  }
  const int n = I(2);
  const long size = (long)I(9) * I(10) * I(5) * I(8);
  const int count = (n + FILTER_GRAD_CHUNK - 1) / FILTER_GRAD_CHUNK;
  float* parts = malloc(((size_t)count * size + (train ? I(5) : 0)) * sizeof(float));  // the kernels write their part whole
  if (!parts) {
    napi_throw_error(env, NULL, "nad kernels: out of memory");
    return NULL;
  }
  float* scale = train ? parts + (size_t)count * size : NULL;
  if (train) K->bn_train_scale(P(15), P(16), I(5), scale);
  Job j = {.run = filter_grad_chunk, .a = a, .parts = parts, .scale = scale, .part_size = size, .images = n, .chunk = FILTER_GRAD_CHUNK};
  run_job(&j, count > 1 && (long)n * I(6) * I(7) * I(5) * I(8) * I(9) * I(10) >= SPLIT_MIN_MACS);
  K->sum_parts(parts, count, (int)size, P(13));
  free(parts);
  return undefined(env);
}

static napi_value js_conv_filter_grad(napi_env env, napi_callback_info info) { return filter_grad_job(env, info, 0); }
static napi_value js_conv_filter_grad_bn(napi_env env, napi_callback_info info) { return filter_grad_job(env, info, 1); }

// conv2d(x, n, h, w, ci, filter, kh, kw, co, stride, padTop, padLeft, ho, wo, y): images shared between threads.
static void conv2d_chunk(const Job* j, int start, int count) {
  const double* a = j->a;
  const long in = (long)I(2) * I(3) * I(4), out = (long)I(12) * I(13) * I(8);
  K->conv2d(P(0) + start * in, count, I(2), I(3), I(4), P(5), I(6), I(7), I(8), I(9), I(10), I(11), I(12), I(13), P(14) + start * out);
}

static napi_value js_conv2d(napi_env env, napi_callback_info info) {
  double a[MAX_ARGS];
  if (!read_args(env, info, 15, a)) return NULL;
  if (I(8) % K->vector_width && (I(8) > K->vector_width || I(9) != 1)) {
    napi_throw_range_error(env, NULL,
                           "nad kernels: conv2d needs output channels in multiples of the vector width (convVectorWidth), or fewer at stride 1");
    return NULL;
  }
  const int n = I(1);
  Job j = {.run = conv2d_chunk, .a = a, .images = n, .chunk = n < 16 ? 1 : (n + 15) / 16};
  run_job(&j, n >= 2 && (long)n * I(12) * I(13) * I(4) * I(8) * I(6) * I(7) >= SPLIT_MIN_MACS);
  return undefined(env);
}

// ---- WaNet's warp: on JS typed arrays, not the heap (the attack's images are plain Uint8Arrays) ----

static int typed(napi_env env, napi_value v, napi_typedarray_type want, size_t* length, void** data) {
  napi_typedarray_type type;
  napi_value buffer;
  size_t offset;
  return napi_get_typedarray_info(env, v, &type, length, data, &buffer, &offset) == napi_ok && type == want;
}

// warp(images: Uint8Array, count, channels, offsets: Int32Array, weights: Float64Array): the first count
// images (HWC, offsets.length / 4 pixels each) warped in place with a plan's taps (warp-plan.ts's warpPlan).
// Every tap is checked first, so that no plan can make the kernel read outside an image.
static napi_value js_warp(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  size_t n_images = 0, n_offsets = 0, n_weights = 0;
  void *images = NULL, *offsets = NULL, *weights = NULL;
  double count_d = -1, channels_d = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 5 ||
      !typed(env, argv[0], napi_uint8_array, &n_images, &images) || napi_get_value_double(env, argv[1], &count_d) != napi_ok ||
      napi_get_value_double(env, argv[2], &channels_d) != napi_ok || !typed(env, argv[3], napi_int32_array, &n_offsets, &offsets) ||
      !typed(env, argv[4], napi_float64_array, &n_weights, &weights)) {
    napi_throw_type_error(env, NULL, "nad kernels: warp(images: Uint8Array, count, channels, offsets: Int32Array, weights: Float64Array)");
    return NULL;
  }
  // Whole numbers in range before any cast (a NaN or huge double cast to long is undefined).
  const int fits = channels_d >= 1 && channels_d <= 1024 && channels_d == (int)channels_d && count_d >= 0 && count_d <= INT32_MAX &&
                   count_d == (int)count_d && n_offsets % 4 == 0 && n_weights == n_offsets;
  const long pixels = (long)(n_offsets / 4), channels = fits ? (long)channels_d : 0, count = fits ? (long)count_d : 0, n = pixels * channels;
  if (!fits || (n > 0 && (size_t)count > n_images / (size_t)n)) {
    napi_throw_range_error(env, NULL, "nad kernels: warp: the images, count, channels and taps do not fit together");
    return NULL;
  }
  const int* o = offsets;
  const double* w = weights;
  for (size_t k = 0; k < n_offsets; k++)
    if (o[k] < 0 || o[k] > n - channels || !(w[k] >= 0 && w[k] <= 1)) {
      napi_throw_range_error(env, NULL, "nad kernels: warp: a tap lies outside the image or weighs outside [0, 1]");
      return NULL;
    }
  if (count == 0 || n == 0) return undefined(env);
  double* scratch = malloc((size_t)n * K->warp_lanes * sizeof(double));
  if (!scratch) {
    napi_throw_error(env, NULL, "nad kernels: out of memory");
    return NULL;
  }
  K->warp(images, (int)count, n, (int)channels, o, w, scratch);
  free(scratch);
  return undefined(env);
}

// ---- setup ----

static napi_value js_heap(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_typedarray_type type;
  size_t length;
  void* data;
  napi_value buffer;
  size_t offset;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 1 ||
      napi_get_typedarray_info(env, argv[0], &type, &length, &data, &buffer, &offset) != napi_ok || type != napi_uint8_array ||
      !data) {
    napi_throw_type_error(env, NULL, "nad kernels: heap() takes a Uint8Array over the whole wasm memory");
    return NULL;
  }
  heap_base = (char*)data - offset;
  heap_bytes = length + offset;
  return undefined(env);
}

static napi_value js_set_threads(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  int32_t n = 1;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc == 1) napi_get_value_int32(env, argv[0], &n);
  napi_create_int32(env, start_threads(n < 1 ? 1 : n), &result);
  return result;
}

static const NadKernels* pick(void) {
  const char* want = getenv("NAD_NATIVE_ISA");
#if defined(__x86_64__)
  __builtin_cpu_init();
  const int avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
  const int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (avx512 && (!want || !strcmp(want, "avx512"))) return &nad_kernels_avx512;
  if (avx2 && (!want || !strcmp(want, "avx512") || !strcmp(want, "avx2"))) return &nad_kernels_avx2;
#endif
  (void)want;
  return &nad_kernels_portable;
}

static napi_value init(napi_env env, napi_value exports) {
  K = pick();
  napi_value isa, width, narrow;
  napi_create_string_utf8(env, K->isa, NAPI_AUTO_LENGTH, &isa);
  napi_create_int32(env, K->vector_width, &width);
  napi_get_boolean(env, 1, &narrow);
  napi_property_descriptor props[] = {
      {"isa", NULL, NULL, NULL, NULL, isa, napi_enumerable, NULL},
      {"convVectorWidth", NULL, NULL, NULL, NULL, width, napi_enumerable, NULL},
      // conv2d also takes fewer output channels than convVectorWidth at stride 1 (absent in older builds)
      {"conv2dNarrow", NULL, NULL, NULL, NULL, narrow, napi_enumerable, NULL},
      {"heap", NULL, js_heap, NULL, NULL, NULL, napi_default, NULL},
      {"setThreads", NULL, js_set_threads, NULL, NULL, NULL, napi_default, NULL},
#define FN(name) {#name, NULL, js_##name, NULL, NULL, NULL, napi_default, NULL}
      FN(bn_forward), FN(bn_eval), FN(bn_backward), FN(swap_batch_channels), FN(batch_to_inner), FN(dilate), FN(flip_filter),
      FN(interleave2), FN(phase_filters3x3), FN(sgd_update), FN(conv3x3_winograd), FN(conv_filter_grad), FN(conv2d), FN(warp),
      FN(channel_sum_squares), FN(channel_sum_squares_grad), FN(bn_running_update), FN(bn_eval_input_grad), FN(bn_eval_relu_grad_x), FN(bn_stats),
      FN(bn_relu_backward_x), FN(conv3x3_winograd_bn), FN(conv_filter_grad_bn), FN(sign_exact),
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
