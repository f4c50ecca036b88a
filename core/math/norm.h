// core/math/norm.h: scalar formulas of the normalisations (batch norm, group norm in PyTorch's
// and in the seeds' form). Shared by reference loops, fast CPU loops and CUDA kernels.
//
// With M elements in a normalisation set, mean m and the centred values d_i = x_i - m:
//   PyTorch (BatchNorm2d, GroupNorm):  xhat = d * rstd,  rstd = 1 / sqrt(var_biased + eps)
//   seeds' GroupBatchnorm2d:           xhat = d * rstd,  rstd = 1 / (std_unbiased + eps)
// and y = xhat * gamma + beta. In backward, with gh_i = grad_y_i * gamma:
//   PyTorch:  grad_x_i = rstd * (gh_i - mean(gh) - xhat_i * mean(gh * xhat))
//   seeds':   grad_x_i = rstd * (gh_i - mean(gh))
//                        - d_i * rstd^2 * sum(gh * d) / ((M - 1) * std_unbiased)
#pragma once
#include <cmath>
#include <cstdint>

#include "core/math/host_device.h"

namespace scconv::math {

// Which group norm: PyTorch's nn.GroupNorm, or the seeds' GroupBatchnorm2d (formulas above).
enum class GroupNormKind : uint8_t { Torch, Seed };

// rstd from the sum of squared deviations `ssd` over `m` elements.
SCCONV_HD double rstd_biased(double ssd, double m, double eps) {
  return 1.0 / std::sqrt(ssd / m + eps);
}
SCCONV_HD double rstd_seed(double ssd, double m, double eps) {
  return 1.0 / (std::sqrt(ssd / (m - 1.0)) + eps);
}
// Unbiased variance for running statistics (PyTorch's BatchNorm update).
SCCONV_HD double unbiased_var(double ssd, double m) { return m > 1 ? ssd / (m - 1.0) : ssd; }
SCCONV_HD double running_update(double running, double batch, double momentum) {
  return (1.0 - momentum) * running + momentum * batch;
}

// PyTorch-form backward of one element, given the set sums sum_gh = sum(gh) and
// sum_ghx = sum(gh * xhat) over the m elements.
template <class T>
SCCONV_HD T norm_grad_x(T gh, T xhat, double rstd, double sum_gh, double sum_ghx, double m) {
  return static_cast<T>(rstd * (gh - sum_gh / m - xhat * sum_ghx / m));
}
// Seed-form backward of one element, given d = x - mean, sum_gh and sum_ghd = sum(gh * d).
template <class T>
SCCONV_HD T seed_norm_grad_x(T gh, T d, double rstd, double eps, double sum_gh, double sum_ghd,
                             double m) {
  double stdu = 1.0 / rstd - eps;
  double coeff = stdu > 0 ? rstd * rstd * sum_ghd / ((m - 1.0) * stdu) : 0.0;
  return static_cast<T>(rstd * (gh - sum_gh / m) - d * coeff);
}

}  // namespace scconv::math

namespace scconv::math {

// The PyTorch-form backward of a whole set in which gamma is constant (batch norm: one set per
// channel) is affine in (grad_y, x): grad_x = k_g * grad_y + k_x * x + k_0. Fast kernels use these
// coefficients; they equal norm_grad_x above with gh = grad_y * gamma.
struct AffineGrad {
  double k_g, k_x, k_0;
};
SCCONV_HD AffineGrad norm_grad_affine(double gamma, double mean, double rstd, double sum_g,
                                      double sum_gxhat, double m) {
  AffineGrad a;
  a.k_g = rstd * gamma;
  a.k_x = -rstd * gamma * rstd * sum_gxhat / m;
  a.k_0 = -rstd * gamma * sum_g / m - a.k_x * mean;
  return a;
}

// The same affine form of the seeds' group norm backward for one set, with gh = grad_y * gamma
// already taken: grad_x = k_g * gh + k_x * x + k_0 (equals seed_norm_grad_x above).
SCCONV_HD AffineGrad seed_norm_grad_affine(double mean, double rstd, double eps, double sum_gh,
                                           double sum_ghd, double m) {
  const double stdu = 1.0 / rstd - eps;
  const double coeff = stdu > 0 ? rstd * rstd * sum_ghd / ((m - 1.0) * stdu) : 0.0;
  AffineGrad a;
  a.k_g = rstd;
  a.k_x = -coeff;
  a.k_0 = -rstd * sum_gh / m + coeff * mean;
  return a;
}

}  // namespace scconv::math
