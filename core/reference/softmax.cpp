// core/reference/softmax.cpp: reference softmax / log-softmax along a dim, cross-entropy with
// label smoothing, and the dropout mask.
//
// Cross-entropy of one row with C classes, label y and smoothing e: the target distribution is
// q_c = (1 - e) [c == y] + e / C, the loss -sum_c q_c log p_c, and its gradient w.r.t. the
// logits (p - q). The batch loss is the mean over rows.
#include <cmath>

#include "core/math/loss.h"
#include "core/math/random.h"
#include "core/reference/reference_backend.h"

namespace scconv {

Tensor ReferenceBackend::softmax(const Tensor& x, int64_t dim, bool log) {
  AroundDim a = around_dim(x.shape(), dim);
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  SCCONV_DISPATCH_FLOAT(x.dtype(), "softmax", [&] {
    for (int64_t o = 0; o < a.outer; ++o)
      for (int64_t in = 0; in < a.inner; ++in) {
        auto idx = [&](int64_t k) { return (o * a.n + k) * a.inner + in; };
        double mx = -INFINITY, s = 0;
        for (int64_t k = 0; k < a.n; ++k) mx = std::max(mx, ref::get(x, idx(k)));
        for (int64_t k = 0; k < a.n; ++k) s += std::exp(ref::get(x, idx(k)) - mx);
        for (int64_t k = 0; k < a.n; ++k) {
          double v = ref::get(x, idx(k)) - mx;
          y.data<scalar_t>()[idx(k)] = static_cast<scalar_t>(log ? v - std::log(s) : std::exp(v) / s);
        }
      }
  });
  return y;
}

// softmax:     grad_x = y * (g - sum(g * y))
// log_softmax: grad_x = g - exp(y) * sum(g)
Tensor ReferenceBackend::softmax_backward(const Tensor& y, const Tensor& grad_y, int64_t dim,
                                          bool log) {
  AroundDim a = around_dim(y.shape(), dim);
  Tensor gx = Tensor::empty(y.shape(), y.dtype());
  SCCONV_DISPATCH_FLOAT(y.dtype(), "softmax_backward", [&] {
    for (int64_t o = 0; o < a.outer; ++o)
      for (int64_t in = 0; in < a.inner; ++in) {
        auto idx = [&](int64_t k) { return (o * a.n + k) * a.inner + in; };
        double s = 0;
        for (int64_t k = 0; k < a.n; ++k)
          s += log ? ref::get(grad_y, idx(k)) : ref::get(grad_y, idx(k)) * ref::get(y, idx(k));
        for (int64_t k = 0; k < a.n; ++k) {
          double g = ref::get(grad_y, idx(k)), v = ref::get(y, idx(k));
          gx.data<scalar_t>()[idx(k)] =
              static_cast<scalar_t>(log ? g - std::exp(v) * s : v * (g - s));
        }
      }
  });
  return gx;
}

Tensor ReferenceBackend::cross_entropy(const Tensor& logits, const Tensor& labels,
                                       double smoothing, Tensor& probs) {
  const int64_t N = logits.size(0), C = logits.size(1);
  Tensor logp = softmax(logits, 1, /*log=*/true);
  probs = Tensor::empty(logits.shape(), logits.dtype());
  double total = 0;
  for (int64_t n = 0; n < N; ++n) {
    int64_t y = static_cast<int64_t>(ref::get(labels, n));
    for (int64_t c = 0; c < C; ++c) {
      double lp = ref::get(logp, n * C + c);
      double q = math::smoothed_target(c, y, smoothing, C);
      total -= q * lp;
      SCCONV_DISPATCH_FLOAT(logits.dtype(), "cross_entropy", [&] {
        probs.data<scalar_t>()[n * C + c] = static_cast<scalar_t>(std::exp(lp));
      });
    }
  }
  return Tensor::scalar(total / N, logits.dtype());
}

Tensor ReferenceBackend::cross_entropy_backward(const Tensor& probs, const Tensor& labels,
                                                double smoothing, const Tensor& grad_loss) {
  const int64_t N = probs.size(0), C = probs.size(1);
  const double g = grad_loss.item() / N;
  Tensor gx = Tensor::empty(probs.shape(), probs.dtype());
  SCCONV_DISPATCH_FLOAT(probs.dtype(), "cross_entropy_backward", [&] {
    for (int64_t n = 0; n < N; ++n) {
      int64_t y = static_cast<int64_t>(ref::get(labels, n));
      for (int64_t c = 0; c < C; ++c) {
        double q = math::smoothed_target(c, y, smoothing, C);
        gx.data<scalar_t>()[n * C + c] = static_cast<scalar_t>((ref::get(probs, n * C + c) - q) * g);
      }
    }
  });
  return gx;
}

Tensor ReferenceBackend::dropout_mask(const Shape& shape, DType dtype, double p, uint64_t seed,
                                      uint64_t offset) {
  Tensor m = Tensor::empty(shape, dtype);
  const double keep = 1.0 / (1.0 - p);
  SCCONV_DISPATCH_FLOAT(dtype, "dropout", [&] {
    for (int64_t i = 0; i < m.numel(); ++i)
      m.data<scalar_t>()[i] = static_cast<scalar_t>(math::uniform01(seed, offset + i) >= p ? keep : 0.0);
  });
  return m;
}

}  // namespace scconv
