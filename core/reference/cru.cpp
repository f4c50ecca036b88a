// core/reference/cru.cpp: the fused CRU fuse as plain loops in double. For y1 (N, C, H, W) and
// y2 = cat(parts) (N, C, H, W), S = H * W:
//   forward:  s = the global average pools (N, 2, C), b = softmax groups of s (core/math/cru.h),
//             y = b[n][0][c] y1 + b[n][1][c] y2
//   backward: grad_b = sum over each plane of grad_y * y1 (resp. y2), grad_s from the softmax
//             backward, then grad_y1 = b0 grad_y + grad_s0 / S, grad_y2 = b1 grad_y + grad_s1 / S.
// The fast kernel (core/cpu/cru.cpp) runs the same steps as two passes each way.
// cru_fuse_lower is the same fuse with y2 = conv1x1(low, w) (low (N, Q, H, W), w (C, Q, 1, 1)):
// here y2 is built first (the reference convolution) and the steps above follow; backward adds
// the convolution's gradients of low and w (core/cpu/cru_lower.cpp never builds y2).
#include <vector>

#include "core/math/cru.h"
#include "core/reference/reference_backend.h"

namespace scconv {

namespace {
// y2 is given as channel parts: where channel c of y2 lives.
struct PartIndex {
  std::vector<int64_t> part, channel, count;  // per channel c: part, channel inside it; C of each part
  explicit PartIndex(const std::vector<Tensor>& parts) {
    for (size_t p = 0; p < parts.size(); ++p) {
      count.push_back(parts[p].size(1));
      for (int64_t c = 0; c < parts[p].size(1); ++c) {
        part.push_back(int64_t(p));
        channel.push_back(c);
      }
    }
  }
};
}  // namespace

Tensor ReferenceBackend::cru_fuse(const Tensor& y1, const std::vector<Tensor>& parts, math::CRUFuse kind,
                                  Tensor& b_out) {
  const int64_t N = y1.size(0), C = y1.size(1), S = y1.size(2) * y1.size(3);
  const PartIndex ix(parts);
  auto y2 = [&](int64_t n, int64_t c, int64_t k) {
    const int64_t p = ix.part[c];
    return ref::get(parts[p], (n * ix.count[p] + ix.channel[c]) * S + k);
  };
  std::vector<double> s(N * 2 * C), b(N * 2 * C), y(y1.numel());
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t k = 0; k < S; ++k) {
        s[n * 2 * C + c] += ref::get(y1, (n * C + c) * S + k) / double(S);
        s[n * 2 * C + C + c] += y2(n, c, k) / double(S);
      }
  math::cru_weights(kind, N, C, s.data(), b.data());
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t k = 0; k < S; ++k)
        y[(n * C + c) * S + k] = b[n * 2 * C + c] * ref::get(y1, (n * C + c) * S + k) +
                                 b[n * 2 * C + C + c] * y2(n, c, k);
  b_out = Tensor::from_vector(b, {N, 2, C}).to(y1.dtype());
  return Tensor::from_vector(y, y1.shape()).to(y1.dtype());
}

CRUFuseGrads ReferenceBackend::cru_fuse_backward(const Tensor& grad_y, const Tensor& y1,
                                                 const std::vector<Tensor>& parts, math::CRUFuse kind,
                                                 const Tensor& b_in) {
  const int64_t N = y1.size(0), C = y1.size(1), S = y1.size(2) * y1.size(3);
  const PartIndex ix(parts);
  auto y2 = [&](int64_t n, int64_t c, int64_t k) {
    const int64_t p = ix.part[c];
    return ref::get(parts[p], (n * ix.count[p] + ix.channel[c]) * S + k);
  };
  std::vector<double> b(N * 2 * C), grad_b(N * 2 * C), grad_s(N * 2 * C);
  for (int64_t i = 0; i < N * 2 * C; ++i) b[i] = ref::get(b_in, i);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t k = 0; k < S; ++k) {
        const double g = ref::get(grad_y, (n * C + c) * S + k);
        grad_b[n * 2 * C + c] += g * ref::get(y1, (n * C + c) * S + k);
        grad_b[n * 2 * C + C + c] += g * y2(n, c, k);
      }
  math::cru_weights_backward(kind, N, C, b.data(), grad_b.data(), grad_s.data());
  std::vector<double> g1(y1.numel());
  std::vector<std::vector<double>> g2;
  for (const Tensor& p : parts) g2.emplace_back(p.numel());
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t k = 0; k < S; ++k) {
        const double g = ref::get(grad_y, (n * C + c) * S + k);
        g1[(n * C + c) * S + k] = b[n * 2 * C + c] * g + grad_s[n * 2 * C + c] / double(S);
        const int64_t p = ix.part[c];
        g2[p][(n * ix.count[p] + ix.channel[c]) * S + k] =
            b[n * 2 * C + C + c] * g + grad_s[n * 2 * C + C + c] / double(S);
      }
  CRUFuseGrads out{Tensor::from_vector(g1, y1.shape()).to(y1.dtype()), {}};
  for (size_t p = 0; p < parts.size(); ++p)
    out.grad_y2_parts.push_back(Tensor::from_vector(g2[p], parts[p].shape()).to(y1.dtype()));
  return out;
}

// ---- the fuse with the lower branch's 1x1 convolution folded in ----------------------------------
// y2 and the 1x1 convolution's gradients by the reference convolution loops, in float64.

Tensor ReferenceBackend::cru_fuse_lower(const Tensor& y1, const Tensor& low, const Tensor& w,
                                        math::CRUFuse kind, Tensor& b_out) {
  const Tensor y2 = ReferenceBackend::conv2d(low.to(DType::F64), w.to(DType::F64), Tensor(), Conv2dParams{});
  Tensor y = ReferenceBackend::cru_fuse(y1.to(DType::F64), {y2}, kind, b_out);
  b_out = b_out.to(y1.dtype());
  return y.to(y1.dtype());
}

CRUFuseLowerGrads ReferenceBackend::cru_fuse_lower_backward(const Tensor& grad_y, const Tensor& y1,
                                                            const Tensor& low, const Tensor& w,
                                                            math::CRUFuse kind, const Tensor& b) {
  const Conv2dParams p;
  const Tensor low64 = low.to(DType::F64), w64 = w.to(DType::F64);
  // in float64 throughout: y1's dtype decides the gradients' dtype
  CRUFuseGrads g = ReferenceBackend::cru_fuse_backward(
      grad_y, y1.to(DType::F64), {ReferenceBackend::conv2d(low64, w64, Tensor(), p)}, kind, b);
  const Tensor& g2 = g.grad_y2_parts[0];  // (N, C, H, W)
  return {g.grad_y1.to(y1.dtype()),
          ReferenceBackend::conv2d_backward_data(g2, w64, low.shape(), p).to(low.dtype()),
          ReferenceBackend::conv2d_backward_weights(g2, low64, w.shape(), false, p).first.to(w.dtype())};
}

}  // namespace scconv
