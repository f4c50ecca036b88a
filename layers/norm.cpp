// layers/norm.cpp: the normalisation modules (kernels: autograd/ops_norm.cpp).
#include "layers/norm.h"

#include "layers/summary.h"

namespace scconv {

BatchNorm2d::BatchNorm2d(int64_t c, double eps_, double momentum_) : eps(eps_), momentum(momentum_) {
  SCCONV_CHECK(c > 0, "BatchNorm2d: channels must be positive, got " << c);
  weight = register_parameter("weight", Tensor::ones({c}));
  bias = register_parameter("bias", Tensor::zeros({c}));
  running_mean = register_buffer("running_mean", Tensor::zeros({c}));
  running_var = register_buffer("running_var", Tensor::ones({c}));
  num_batches_tracked = register_buffer("num_batches_tracked", Tensor::zeros({}, DType::I64));
}

void BatchNorm2d::start_call(const Tensor& x) {
  SCCONV_CHECK(x.dim() >= 2 && x.size(1) == weight.size(0),
               describe(*this) << ": expected " << weight.size(0) << " channels, got input "
                               << x.str());
  if (training()) {
    num_batches_tracked.add_(Tensor::ones({}, DType::I64, num_batches_tracked.device()));
  }
}

Tensor BatchNorm2d::forward(const Tensor& x) {
  start_call(x);
  return batch_norm(x, weight, bias, running_mean, running_var, training(), momentum, eps);
}

Tensor BatchNorm2d::forward_relu(const Tensor& x, const Tensor& residual) {
  if (SummaryRecorder::active() || FiniteCheckGuard::active()) {
    Tensor y = (*this)(x);  // listed (and checked) as a call of its own
    return relu(residual.defined() ? add(y, residual) : y);
  }
  start_call(x);
  return batch_norm_relu(x, weight, bias, running_mean, running_var, training(), residual, momentum, eps);
}

GroupNorm::GroupNorm(int64_t groups_, int64_t c, double eps_) : groups(groups_), eps(eps_) {
  SCCONV_CHECK(groups > 0 && c > 0 && c % groups == 0,
               "GroupNorm: groups=" << groups << " must divide channels=" << c);
  weight = register_parameter("weight", Tensor::ones({c}));
  bias = register_parameter("bias", Tensor::zeros({c}));
}

Tensor GroupNorm::forward(const Tensor& x) { return group_norm(x, groups, weight, bias, eps); }

SeedGroupNorm::SeedGroupNorm(int64_t groups_, int64_t c, Generator& g, double eps_)
    : groups(groups_), eps(eps_) {
  SCCONV_CHECK(groups > 0 && c > 0 && c % groups == 0,
               "GroupBatchnorm2d: groups=" << groups << " must divide channels=" << c);
  gamma = register_parameter("gamma", g.normal({c, 1, 1}));
  beta = register_parameter("beta", Tensor::zeros({c, 1, 1}));
}

Tensor SeedGroupNorm::forward(const Tensor& x) { return group_norm_seed(x, groups, gamma, beta, eps); }

}  // namespace scconv
