// core/math/cru.h: the branch weights of the CRU fuse (spec "CRU", step 5), shared by the
// reference loops, the fast CPU loops and future CUDA kernels. With the global average pools
// s (N, 2, C) of the two branches (s[n][0][c] = GAP(Y1)[n][c], s[n][1][c] = GAP(Y2)[n][c]),
// the weights b (N, 2, C) are a softmax over
//   branch_softmax (paper Eq. 8-9): each pair (s[n][0][c], s[n][1][c])
//   channel_softmax (the seeds):    all 2C values of a sample
// and the fused output is y = b[n][0][c] Y1 + b[n][1][c] Y2. Arrays are plain (N, 2, C) in
// double; the backward turns grad_b (the sums of grad_y * Y over each plane) into grad_s.
#pragma once
#include <cmath>
#include <cstdint>

#include "core/math/host_device.h"

namespace scconv::math {

// SplitConv is the CRU variant whose branches are split convolutions (layers/cru.cpp); it fuses
// with branch_softmax weights. BranchFC (seed 004) weighs each branch as a whole by a softmax of
// a linear layer on the pooled branches; layers/cru.cpp runs it as separate ops. The kernels take
// the two softmax kinds only.
enum class CRUFuse : uint8_t { BranchSoftmax, ChannelSoftmax, SplitConv, BranchFC };

// Calls f(base, count, stride) for every softmax group of an (N, 2, C) array.
template <class F>
SCCONV_HD void cru_softmax_groups(CRUFuse kind, int64_t N, int64_t C, F f) {
  for (int64_t n = 0; n < N; ++n) {
    if (kind == CRUFuse::ChannelSoftmax) {
      f(n * 2 * C, 2 * C, int64_t(1));
    } else {
      for (int64_t c = 0; c < C; ++c) f(n * 2 * C + c, int64_t(2), C);
    }
  }
}

// b = softmax(s) per group (stable: the group maximum is subtracted first).
SCCONV_HD void cru_weights(CRUFuse kind, int64_t N, int64_t C, const double* s, double* b) {
  cru_softmax_groups(kind, N, C, [&](int64_t base, int64_t count, int64_t stride) {
    double m = s[base], z = 0;
    for (int64_t i = 1; i < count; ++i) m = std::fmax(m, s[base + i * stride]);
    for (int64_t i = 0; i < count; ++i) z += b[base + i * stride] = std::exp(s[base + i * stride] - m);
    for (int64_t i = 0; i < count; ++i) b[base + i * stride] /= z;
  });
}

// grad_s = b * (grad_b - sum(b * grad_b)) per group.
SCCONV_HD void cru_weights_backward(CRUFuse kind, int64_t N, int64_t C, const double* b,
                                    const double* grad_b, double* grad_s) {
  cru_softmax_groups(kind, N, C, [&](int64_t base, int64_t count, int64_t stride) {
    double dot = 0;
    for (int64_t i = 0; i < count; ++i) dot += b[base + i * stride] * grad_b[base + i * stride];
    for (int64_t i = 0; i < count; ++i) {
      const int64_t j = base + i * stride;
      grad_s[j] = b[j] * (grad_b[j] - dot);
    }
  });
}

}  // namespace scconv::math
