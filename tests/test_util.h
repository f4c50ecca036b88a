// tests/test_util.h: helpers shared by the test suites: random tensors, closeness checks with
// a message that names the worst element, and vector-Jacobian products through our autograd.
#pragma once
#include <doctest/doctest.h>

#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "core/rng.h"
#include "core/tensor.h"

namespace scconv::testing {

// Largest violation of |a - b| <= atol + rtol |b|, described; empty when all close.
inline std::string mismatch(const Tensor& a, const Tensor& b, double rtol, double atol) {
  std::ostringstream os;
  if (a.shape() != b.shape()) {
    os << "shape " << shape_str(a.shape()) << " vs " << shape_str(b.shape());
    return os.str();
  }
  std::vector<double> av = a.to(DType::F64).to_vector<double>(), bv = b.to(DType::F64).to_vector<double>();
  double worst = 0;
  int64_t at = -1;
  for (size_t i = 0; i < av.size(); ++i) {
    double excess = std::fabs(av[i] - bv[i]) - (atol + rtol * std::fabs(bv[i]));
    if (std::isnan(av[i]) != std::isnan(bv[i])) excess = INFINITY;
    if (excess > worst || (excess > 0 && at < 0)) { worst = excess; at = static_cast<int64_t>(i); }
  }
  if (at < 0) return "";
  os << "element " << at << ": " << av[at] << " vs " << bv[at] << " (of " << av.size() << ")";
  return os.str();
}

// Largest |value| of a tensor (the scale for absolute tolerances of large reductions).
inline double max_abs(const Tensor& t) {
  double m = 0;
  for (double v : t.to(DType::F64).to_vector<double>()) m = std::max(m, std::fabs(v));
  return m;
}

#define CHECK_CLOSE(a, b, rtol, atol, what)                                        \
  do {                                                                             \
    std::string m_ = ::scconv::testing::mismatch((a), (b), (rtol), (atol));        \
    CHECK_MESSAGE(m_.empty(), what << ": " << m_);                                 \
  } while (0)

// Runs f(inputs), then backward of sum(f * proj); returns {output, grad of each input}.
// Inputs are fresh leaves requiring grad.
template <class F>
std::vector<Tensor> forward_backward(F f, const std::vector<Tensor>& inputs, const Tensor& proj) {
  std::vector<Tensor> leaves;
  for (const Tensor& t : inputs) leaves.push_back(t.clone().set_requires_grad(true));
  Tensor y = f(leaves);
  std::vector<Tensor> out{y.detach()};
  Tensor p = proj.defined() ? proj : Tensor::ones(y.shape(), y.dtype());
  autograd::backward(sum(mul(y, p)));
  for (Tensor& l : leaves) out.push_back(l.grad().defined() ? l.grad() : Tensor::zeros(l.shape(), l.dtype()));
  return out;
}

// Central finite-difference check (float64) of the vector-Jacobian product of f with a random
// projection: for every input element, d sum(f * proj) / d x_i against
// (L(x + eps e_i) - L(x - eps e_i)) / (2 eps). Reports the worst element per input.
template <class F>
void gradcheck(const std::string& name, F f, const std::vector<Tensor>& inputs,
               double eps = 1e-6, double rtol = 1e-5, double atol = 1e-6) {
  for (const Tensor& t : inputs) REQUIRE(t.dtype() == DType::F64);
  Tensor y0;
  {
    autograd::NoGradGuard ng;
    y0 = f(inputs);
  }
  Generator g(12345);
  // in the output's layout, so that channels-last backward kernels see channels-last gradients
  Tensor proj = g.normal(y0.shape(), 0, 1, DType::F64).contiguous(y0.suggest_memory_format());
  std::vector<Tensor> fb = forward_backward(f, inputs, proj);
  auto loss = [&](const std::vector<Tensor>& xs) {
    autograd::NoGradGuard ng;
    return sum(mul(f(xs), proj)).item();
  };
  for (size_t k = 0; k < inputs.size(); ++k) {
    // numeric has the input's layout: memory index i is the same element in both
    Tensor numeric = Tensor::empty(inputs[k].shape(), DType::F64, Device::CPU, inputs[k].suggest_memory_format());
    for (int64_t i = 0; i < inputs[k].numel(); ++i) {
      std::vector<Tensor> xs = inputs;
      xs[k] = inputs[k].clone();  // same layout as inputs[k]
      double* p = xs[k].data<double>();
      const double orig = p[i];
      p[i] = orig + eps;
      double lp = loss(xs);
      p[i] = orig - eps;
      double lm = loss(xs);
      numeric.data<double>()[i] = (lp - lm) / (2 * eps);
    }
    CHECK_CLOSE(fb[k + 1], numeric, rtol, atol, name << ": gradient of input " << k);
  }
}

}  // namespace scconv::testing
