// core/reference/norm.cpp: reference batch norm and group norm, forward and backward.
// Both normalise "sets" of elements: batch norm one set per channel (over N and space), group
// norm one set per (sample, group of C/G channels) (over those channels and space). The scalar
// formulas are in core/math/norm.h.
#include "core/math/activations.h"
#include "core/math/norm.h"
#include "core/reference/reference_backend.h"

namespace scconv {

namespace {
// Per-element helpers on a contiguous (N, C, S) view: S = product of the dims after C.
int64_t spatial(const Tensor& x) { return numel_from(x.shape(), 2); }
}  // namespace

// ---- batch norm ------------------------------------------------------------------------------

Tensor ReferenceBackend::batch_norm_train(const Tensor& x, const Tensor& gamma,
                                          const Tensor& beta, double eps, Tensor& mean,
                                          Tensor& invstd, const NormEpilogue& ep) {
  const int64_t N = x.size(0), C = x.size(1), S = spatial(x), M = N * S;
  mean = Tensor::empty({C}, x.dtype());
  invstd = Tensor::empty({C}, x.dtype());
  for (int64_t c = 0; c < C; ++c) {
    double s = 0, ssd = 0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < S; ++k) s += ref::get(x, (n * C + c) * S + k);
    double m = s / M;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < S; ++k) {
        double dv = ref::get(x, (n * C + c) * S + k) - m;
        ssd += dv * dv;
      }
    SCCONV_DISPATCH_FLOAT(x.dtype(), "batch_norm", [&] {
      mean.data<scalar_t>()[c] = static_cast<scalar_t>(m);
      invstd.data<scalar_t>()[c] = static_cast<scalar_t>(math::rstd_biased(ssd, M, eps));
    });
  }
  return batch_norm_apply(x, gamma, beta, mean, invstd, ep);
}

Tensor ReferenceBackend::batch_norm_apply(const Tensor& x, const Tensor& gamma,
                                          const Tensor& beta, const Tensor& mean,
                                          const Tensor& invstd, const NormEpilogue& ep) {
  const int64_t C = x.size(1), S = spatial(x);
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  SCCONV_DISPATCH_FLOAT(x.dtype(), "batch_norm", [&] {
    scalar_t* Y = y.data<scalar_t>();
    for (int64_t i = 0; i < x.numel(); ++i) {
      int64_t c = (i / S) % C;
      double xhat = (ref::get(x, i) - ref::get(mean, c)) * ref::get(invstd, c);
      double v = xhat * ref::get(gamma, c) + ref::get(beta, c);
      if (ep.residual.defined()) v += ref::get(ep.residual, i);  // the epilogue
      Y[i] = static_cast<scalar_t>(ep.relu ? math::relu(v) : v);
    }
  });
  return y;
}

BatchNormGrads ReferenceBackend::batch_norm_backward(const Tensor& grad_y_in, const Tensor& x,
                                                     const Tensor& gamma, const Tensor& mean,
                                                     const Tensor& invstd, bool training,
                                                     const Tensor& y, bool want_residual) {
  const int64_t N = x.size(0), C = x.size(1), S = spatial(x), M = N * S;
  // The epilogue's backward first: the ReLU passes grad_y where the output is positive; the
  // residual's gradient is that masked grad_y.
  Tensor grad_y = grad_y_in;
  if (y.defined()) {
    grad_y = Tensor::empty(x.shape(), x.dtype());
    SCCONV_DISPATCH_FLOAT(x.dtype(), "batch_norm_backward", [&] {
      for (int64_t i = 0; i < x.numel(); ++i)
        grad_y.data<scalar_t>()[i] = static_cast<scalar_t>(math::relu_grad(ref::get(y, i), ref::get(grad_y_in, i)));
    });
  }
  BatchNormGrads g{Tensor::empty(x.shape(), x.dtype()), Tensor::empty({C}, x.dtype()),
                   Tensor::empty({C}, x.dtype()), want_residual ? grad_y.contiguous() : Tensor()};
  SCCONV_DISPATCH_FLOAT(x.dtype(), "batch_norm_backward", [&] {
    for (int64_t c = 0; c < C; ++c) {
      double m = ref::get(mean, c), rs = ref::get(invstd, c), ga = ref::get(gamma, c);
      double sum_g = 0, sum_gx = 0;  // sum(grad_y), sum(grad_y * xhat)
      for (int64_t n = 0; n < N; ++n)
        for (int64_t k = 0; k < S; ++k) {
          int64_t i = (n * C + c) * S + k;
          sum_g += ref::get(grad_y, i);
          sum_gx += ref::get(grad_y, i) * (ref::get(x, i) - m) * rs;
        }
      g.grad_gamma.data<scalar_t>()[c] = static_cast<scalar_t>(sum_gx);
      g.grad_beta.data<scalar_t>()[c] = static_cast<scalar_t>(sum_g);
      for (int64_t n = 0; n < N; ++n)
        for (int64_t k = 0; k < S; ++k) {
          int64_t i = (n * C + c) * S + k;
          double gh = ref::get(grad_y, i) * ga, xhat = (ref::get(x, i) - m) * rs;
          g.grad_x.data<scalar_t>()[i] =
              training ? math::norm_grad_x<double>(gh, xhat, rs, ga * sum_g, ga * sum_gx, M)
                       : static_cast<scalar_t>(gh * rs);
        }
    }
  });
  return g;
}

// ---- group norm ------------------------------------------------------------------------------

Tensor ReferenceBackend::group_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                    int64_t groups, double eps, GroupNormKind kind, Tensor& mean,
                                    Tensor& rstd) {
  const int64_t N = x.size(0), C = x.size(1), S = spatial(x), Cg = C / groups, M = Cg * S;
  mean = Tensor::empty({N, groups}, x.dtype());
  rstd = Tensor::empty({N, groups}, x.dtype());
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  SCCONV_DISPATCH_FLOAT(x.dtype(), "group_norm", [&] {
    for (int64_t n = 0; n < N; ++n)
      for (int64_t g = 0; g < groups; ++g) {
        int64_t base = (n * C + g * Cg) * S;  // a group is M consecutive elements
        double s = 0, ssd = 0;
        for (int64_t k = 0; k < M; ++k) s += ref::get(x, base + k);
        double m = s / M;
        for (int64_t k = 0; k < M; ++k) ssd += (ref::get(x, base + k) - m) * (ref::get(x, base + k) - m);
        double r = kind == GroupNormKind::Torch ? math::rstd_biased(ssd, M, eps)
                                                : math::rstd_seed(ssd, M, eps);
        mean.data<scalar_t>()[n * groups + g] = static_cast<scalar_t>(m);
        rstd.data<scalar_t>()[n * groups + g] = static_cast<scalar_t>(r);
        for (int64_t k = 0; k < M; ++k) {
          int64_t c = g * Cg + k / S;
          double xhat = (ref::get(x, base + k) - m) * r;
          y.data<scalar_t>()[base + k] =
              static_cast<scalar_t>(xhat * ref::get(gamma, c) + ref::get(beta, c));
        }
      }
  });
  return y;
}

GroupNormGrads ReferenceBackend::group_norm_backward(const Tensor& grad_y, const Tensor& x,
                                                     const Tensor& gamma, int64_t groups,
                                                     double eps, GroupNormKind kind,
                                                     const Tensor& mean, const Tensor& rstd) {
  const int64_t N = x.size(0), C = x.size(1), S = spatial(x), Cg = C / groups, M = Cg * S;
  std::vector<double> dgamma(C, 0.0), dbeta(C, 0.0);
  GroupNormGrads out{Tensor::empty(x.shape(), x.dtype()), Tensor::empty({C}, x.dtype()),
                     Tensor::empty({C}, x.dtype())};
  SCCONV_DISPATCH_FLOAT(x.dtype(), "group_norm_backward", [&] {
    for (int64_t n = 0; n < N; ++n)
      for (int64_t g = 0; g < groups; ++g) {
        int64_t base = (n * C + g * Cg) * S;
        double m = ref::get(mean, n * groups + g), r = ref::get(rstd, n * groups + g);
        double sum_gh = 0, sum_ghx = 0, sum_ghd = 0;
        for (int64_t k = 0; k < M; ++k) {
          int64_t c = g * Cg + k / S;
          double gy = ref::get(grad_y, base + k), d = ref::get(x, base + k) - m;
          double gh = gy * ref::get(gamma, c);
          sum_gh += gh;
          sum_ghx += gh * d * r;
          sum_ghd += gh * d;
          dgamma[c] += gy * d * r;
          dbeta[c] += gy;
        }
        for (int64_t k = 0; k < M; ++k) {
          int64_t c = g * Cg + k / S;
          double d = ref::get(x, base + k) - m;
          double gh = ref::get(grad_y, base + k) * ref::get(gamma, c);
          double gx = kind == GroupNormKind::Torch
                          ? math::norm_grad_x<double>(gh, d * r, r, sum_gh, sum_ghx, M)
                          : math::seed_norm_grad_x<double>(gh, d, r, eps, sum_gh, sum_ghd, M);
          out.grad_x.data<scalar_t>()[base + k] = static_cast<scalar_t>(gx);
        }
      }
    for (int64_t c = 0; c < C; ++c) {
      out.grad_gamma.data<scalar_t>()[c] = static_cast<scalar_t>(dgamma[c]);
      out.grad_beta.data<scalar_t>()[c] = static_cast<scalar_t>(dbeta[c]);
    }
  });
  return out;
}

}  // namespace scconv
