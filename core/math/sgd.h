// core/math/sgd.h: the per-element SGD update of torch.optim.SGD, shared by the CPU loop and
// (later) CUDA kernels. For parameter p, gradient g and momentum buffer b:
//   d = g + weight_decay * p
//   b = d (first step)  or  b = momentum * b + (1 - dampening) * d
//   d = d + momentum * b (nesterov)  or  d = b   (when momentum != 0)
//   p = p - lr * d
#pragma once
#include "core/math/host_device.h"

namespace scconv::math {

template <class T>
SCCONV_HD void sgd_step(T& p, T g, T& buf, bool first, double lr, double momentum,
                        double dampening, double weight_decay, bool nesterov) {
  double d = double(g) + weight_decay * double(p);
  if (momentum != 0) {
    double b = first ? d : momentum * double(buf) + (1.0 - dampening) * d;
    buf = static_cast<T>(b);
    d = nesterov ? d + momentum * b : b;
  }
  p = static_cast<T>(double(p) - lr * d);
}

}  // namespace scconv::math
