// layers/norm.h: BatchNorm2d, GroupNorm (PyTorch semantics) and SeedGroupNorm (the seeds'
// GroupBatchnorm2d: (x - mean) / (unbiased std + eps), gamma and beta of shape (C, 1, 1)).
#pragma once
#include "layers/module.h"

namespace scconv {

// weight 1, bias 0; buffers running_mean 0, running_var 1, num_batches_tracked (int64, as
// PyTorch's state_dict). Training: batch statistics and the running update; eval: running stats.
class BatchNorm2d : public Module {
 public:
  explicit BatchNorm2d(int64_t channels, double eps = 1e-5, double momentum = 0.1);
  Tensor forward(const Tensor& x) override;  // (N, C, H, W) -> same
  // relu(forward(x) + residual) as one fused op (autograd batch_norm_relu; residual may be
  // undefined): the tail of a ResNet block. While a summary is recorded it runs as this module's
  // call followed by the add and ReLU, so that the table lists the layer.
  Tensor forward_relu(const Tensor& x, const Tensor& residual = Tensor());
  std::string type() const override { return "BatchNorm2d"; }
  Tensor weight, bias, running_mean, running_var, num_batches_tracked;
  double eps, momentum;

 private:
  void start_call(const Tensor& x);  // checks x, counts the batch
};

// weight 1, bias 0 (C); statistics per (sample, group) with biased variance.
class GroupNorm : public Module {
 public:
  GroupNorm(int64_t groups, int64_t channels, double eps = 1e-5);
  Tensor forward(const Tensor& x) override;
  std::string type() const override { return "GroupNorm"; }
  Tensor weight, bias;
  int64_t groups;
  double eps;
};

// gamma ~ N(0, 1) and beta 0, both (C, 1, 1), as the seeds' code; eps 1e-10.
class SeedGroupNorm : public Module {
 public:
  SeedGroupNorm(int64_t groups, int64_t channels, Generator& g, double eps = 1e-10);
  Tensor forward(const Tensor& x) override;
  std::string type() const override { return "GroupBatchnorm2d"; }
  Tensor gamma, beta;
  int64_t groups;
  double eps;
};

}  // namespace scconv
