// core/math/activations.h: scalar forward and backward formulas of the element-wise ops.
// Included by the reference loops, the fast CPU loops and (later) the CUDA kernels.
// Backward functions take what they need of x, y = f(x) and the upstream gradient g.
#pragma once
#include <cmath>

#include "core/math/host_device.h"

namespace scconv::math {

// NaN stays NaN (as torch.relu): written `x < 0 ? 0 : x`, not `x > 0 ? x : 0`, which maps NaN to
// 0 and hides a broken model from the loss. Both compile to one max instruction.
template <class T> SCCONV_HD T relu(T x) { return x < T(0) ? T(0) : x; }
template <class T> SCCONV_HD T relu_grad(T x, T g) { return x > T(0) ? g : T(0); }

// Branch-free so that loops over it vectorise. Safe at the extremes: for x -> -inf,
// exp(-x) -> inf and the result -> 0; for x -> +inf, exp(-x) -> 0 and the result -> 1.
template <class T> SCCONV_HD T sigmoid(T x) { return T(1) / (T(1) + std::exp(-x)); }
template <class T> SCCONV_HD T sigmoid_grad(T y, T g) { return g * y * (T(1) - y); }

template <class T> SCCONV_HD T exp_grad(T y, T g) { return g * y; }
template <class T> SCCONV_HD T log_grad(T x, T g) { return g / x; }
template <class T> SCCONV_HD T sqrt_grad(T y, T g) { return g / (T(2) * y); }

template <class T> SCCONV_HD T pow_scalar(T x, T p) {
  if (p == T(2)) return x * x;
  return std::pow(x, p);
}
template <class T> SCCONV_HD T pow_scalar_grad(T x, T p, T g) {
  if (p == T(2)) return g * T(2) * x;
  if (p == T(1)) return g;
  return g * p * std::pow(x, p - T(1));
}

template <class T> SCCONV_HD T clamp(T x, T lo, T hi) { return x < lo ? lo : (x > hi ? hi : x); }
// Gradient passes where lo <= x <= hi (PyTorch's convention at the bounds).
template <class T> SCCONV_HD T clamp_grad(T x, T lo, T hi, T g) {
  return (x >= lo && x <= hi) ? g : T(0);
}

}  // namespace scconv::math
