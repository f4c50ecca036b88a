// core/cpu/softmax.cpp: fast softmax / log-softmax along a dim, fused log-softmax +
// cross-entropy, and the dropout mask. Rows are independent, so they spread over the pool.
// Reference: core/reference/softmax.cpp.
#include <cmath>
#include <vector>

#include "core/cpu/cpu_backend.h"
#include "core/math/loss.h"
#include "core/math/random.h"
#include "core/parallel.h"

namespace scconv {

Tensor CpuBackend::softmax(const Tensor& x_in, int64_t dim, bool log) {
  Tensor x = x_in.contiguous();
  AroundDim a = around_dim(x.shape(), dim);
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  SCCONV_DISPATCH_FLOAT(x.dtype(), "softmax", [&] {
    using T = scalar_t;
    const T* X = x.data<T>();
    T* Y = y.data<T>();
    parallel_for(a.outer * a.inner, std::max<int64_t>(1, 4096 / a.n), [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        const int64_t base = (r / a.inner) * a.n * a.inner + r % a.inner, st = a.inner;
        T mx = X[base];
        for (int64_t k = 1; k < a.n; ++k) mx = std::max(mx, X[base + k * st]);
        double s = 0;
        for (int64_t k = 0; k < a.n; ++k) s += std::exp(double(X[base + k * st] - mx));
        if (log) {
          const T lse = static_cast<T>(std::log(s));
          for (int64_t k = 0; k < a.n; ++k) Y[base + k * st] = X[base + k * st] - mx - lse;
        } else {
          const T inv = static_cast<T>(1.0 / s);
          for (int64_t k = 0; k < a.n; ++k) Y[base + k * st] = std::exp(X[base + k * st] - mx) * inv;
        }
      }
    });
  });
  return y;
}

Tensor CpuBackend::softmax_backward(const Tensor& y_in, const Tensor& grad_y_in, int64_t dim,
                                    bool log) {
  Tensor y = y_in.contiguous(), g = grad_y_in.contiguous();
  AroundDim a = around_dim(y.shape(), dim);
  Tensor gx = Tensor::empty(y.shape(), y.dtype());
  SCCONV_DISPATCH_FLOAT(y.dtype(), "softmax_backward", [&] {
    using T = scalar_t;
    const T *Y = y.data<T>(), *G = g.data<T>();
    T* GX = gx.data<T>();
    parallel_for(a.outer * a.inner, std::max<int64_t>(1, 4096 / a.n), [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        const int64_t base = (r / a.inner) * a.n * a.inner + r % a.inner, st = a.inner;
        double s = 0;
        for (int64_t k = 0; k < a.n; ++k)
          s += log ? double(G[base + k * st]) : double(G[base + k * st]) * Y[base + k * st];
        const T sv = static_cast<T>(s);
        for (int64_t k = 0; k < a.n; ++k) {
          const int64_t i = base + k * st;
          GX[i] = log ? G[i] - std::exp(Y[i]) * sv : Y[i] * (G[i] - sv);
        }
      }
    });
  });
  return gx;
}

Tensor CpuBackend::cross_entropy(const Tensor& logits_in, const Tensor& labels_in,
                                 double smoothing, Tensor& probs) {
  Tensor logits = logits_in.contiguous(), labels = labels_in.contiguous();
  const int64_t N = logits.size(0), C = logits.size(1);
  probs = Tensor::empty(logits.shape(), logits.dtype());
  std::vector<double> row_loss(N);
  SCCONV_DISPATCH_FLOAT(logits.dtype(), "cross_entropy", [&] {
    using T = scalar_t;
    const T* X = logits.data<T>();
    const int64_t* L = labels.data<int64_t>();
    T* P = probs.data<T>();
    parallel_for(N, 64, [&](int64_t b, int64_t e) {
      for (int64_t n = b; n < e; ++n) {
        const T* x = X + n * C;
        double mx = x[0];
        for (int64_t c = 1; c < C; ++c) mx = std::max(mx, double(x[c]));
        double s = 0;
        for (int64_t c = 0; c < C; ++c) s += std::exp(double(x[c]) - mx);
        const double lse = mx + std::log(s);
        double loss = 0;
        for (int64_t c = 0; c < C; ++c) {
          const double lp = double(x[c]) - lse;
          loss -= math::smoothed_target(c, L[n], smoothing, C) * lp;
          P[n * C + c] = static_cast<T>(std::exp(lp));
        }
        row_loss[n] = loss;
      }
    });
  });
  double total = 0;
  for (double v : row_loss) total += v;
  return Tensor::scalar(total / N, logits.dtype());
}

Tensor CpuBackend::cross_entropy_backward(const Tensor& probs_in, const Tensor& labels_in,
                                          double smoothing, const Tensor& grad_loss) {
  Tensor probs = probs_in.contiguous(), labels = labels_in.contiguous();
  const int64_t N = probs.size(0), C = probs.size(1);
  const double g = grad_loss.item() / N;
  Tensor gx = Tensor::empty(probs.shape(), probs.dtype());
  SCCONV_DISPATCH_FLOAT(probs.dtype(), "cross_entropy_backward", [&] {
    using T = scalar_t;
    const T* P = probs.data<T>();
    const int64_t* L = labels.data<int64_t>();
    T* GX = gx.data<T>();
    parallel_for(N, 64, [&](int64_t b, int64_t e) {
      for (int64_t n = b; n < e; ++n)
        for (int64_t c = 0; c < C; ++c)
          GX[n * C + c] =
              static_cast<T>((P[n * C + c] - math::smoothed_target(c, L[n], smoothing, C)) * g);
    });
  });
  return gx;
}

Tensor CpuBackend::dropout_mask(const Shape& shape, DType dtype, double p, uint64_t seed,
                                uint64_t offset) {
  Tensor m = Tensor::empty(shape, dtype);
  const double keep = 1.0 / (1.0 - p);
  SCCONV_DISPATCH_FLOAT(dtype, "dropout", [&] {
    using T = scalar_t;
    T* M = m.data<T>();
    parallel_for(m.numel(), 32768, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i)
        M[i] = static_cast<T>(math::uniform01(seed, offset + i) >= p ? keep : 0.0);
    });
  });
  return m;
}

}  // namespace scconv
