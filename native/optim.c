// The optimizer's update, fused.
#include "common.h"

// One SGD step as torch.optim.SGD: g = grad + wd*p; buf = momentum*buf + g;
// step = nesterov ? g + momentum*buf : buf; p -= lr*step. One pass instead of ~7 tfjs kernels.
EXPORT(sgd_update)
void sgd_update(const float* p, const float* grad, const float* buf, int n, float lr, float momentum, float wd, int nesterov,
                float* p_out, float* buf_out) {
  for (int i = 0; i < n; i++) {
    const float g = grad[i] + wd * p[i];
    const float b = momentum * buf[i] + g;
    const float step = nesterov ? g + momentum * b : b;
    buf_out[i] = b;
    p_out[i] = p[i] - lr * step;
  }
}
