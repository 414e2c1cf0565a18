// One instruction set's build of the shared kernel sources (native/*.c, unchanged) plus the wide
// Winograd and WaNet's warp: compiled once per ISA by native/build-addon.mjs with -DNAD_ISA=<name> and that ISA's
// flags. Every kernel becomes static here, so the three builds link side by side into one addon.
#include <stdlib.h>

#include "../common.h"
#undef EXPORT
#define EXPORT(name) static __attribute__((unused))
#include "../batchnorm.c"
#include "../conv_grad.c"
#include "../layout.c"
#include "../optim.c"
#include "../training_ops.c"
#include "../winograd.c"
#include "winograd_wide.c"
#include "conv_narrow.c"
#include "warp.c"
#include "kernels.h"

#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define STR2(a) #a
#define STR(a) STR2(a)

const NadKernels CAT(nad_kernels_, NAD_ISA) = {
    .isa = STR(NAD_ISA),
    .bn_forward = bn_forward,
    .bn_eval = bn_eval,
    .bn_backward = bn_backward,
    .swap_batch_channels = swap_batch_channels,
    .batch_to_inner = batch_to_inner,
    .dilate = dilate,
    .flip_filter = flip_filter,
    .interleave2 = interleave2,
    .phase_filters3x3 = phase_filters3x3,
    .sum_parts = sum_parts_wide,
    .sgd_update = sgd_update,
    .conv_filter_grad = conv_filter_grad_wide,
    .conv_filter_grad_winograd = conv_filter_grad_winograd_wide,
    .conv_filter_grad_winograd_bn = conv_filter_grad_winograd_bn_wide,
    .winograd_filter = winograd_filter,
    .winograd_bn_scale = winograd_bn_scale,
    .bn_train_scale = bn_train_scale,
    .conv3x3_winograd = conv3x3_winograd_pre,
    .conv2d = conv2d_any,
    .channel_sum_squares = channel_sum_squares,
    .channel_sum_squares_grad = channel_sum_squares_grad,
    .bn_running_update = bn_running_update,
    .bn_eval_input_grad = bn_eval_input_grad,
    .bn_eval_relu_grad_x = bn_eval_relu_grad_x,
    .sign_exact = sign_exact,
    .bn_stats = bn_stats,
    .bn_relu_backward_x = bn_relu_backward_x,
    .vector_width = VW,
    .warp = warp_images,
    .warp_lanes = WV,
};
