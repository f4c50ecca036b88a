// core/math/loss.h: the cross-entropy target distribution with label smoothing, shared by the
// CPU kernels and (later) CUDA. With C classes, label y and smoothing e:
//   q_c = (1 - e) [c == y] + e / C;  loss = -sum_c q_c log p_c;  d loss / d logit_c = p_c - q_c.
#pragma once
#include <cstdint>

#include "core/math/host_device.h"

namespace scconv::math {

SCCONV_HD double smoothed_target(int64_t c, int64_t label, double smoothing, int64_t classes) {
  return (c == label ? 1.0 - smoothing : 0.0) + smoothing / static_cast<double>(classes);
}

}  // namespace scconv::math
