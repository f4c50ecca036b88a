// layers/conv.h: Conv2d and Linear.
#pragma once
#include "layers/module.h"

namespace scconv {

struct Conv2dOptions {
  int64_t in, out, kernel;
  int64_t stride = 1, padding = 0, dilation = 1, groups = 1;
  bool bias = false;
};

// weight (out, in/groups, k, k) Kaiming-normal (fan_out, as torchvision ResNets); bias (out)
// PyTorch's default uniform.
class Conv2d : public Module {
 public:
  Conv2d(const Conv2dOptions& o, Generator& g);
  Tensor forward(const Tensor& x) override;  // (N, in, H, W) -> (N, out, OH, OW)
  std::string type() const override { return "Conv2d"; }
  const Conv2dOptions& options() const { return o_; }
  Tensor weight, bias;

 private:
  Conv2dOptions o_;
};

// weight (out, in), bias (out): PyTorch's default uniform initialisation.
class Linear : public Module {
 public:
  Linear(int64_t in, int64_t out, bool bias, Generator& g);
  Tensor forward(const Tensor& x) override;  // (N, in) -> (N, out)
  std::string type() const override { return "Linear"; }
  Tensor weight, bias;
};

}  // namespace scconv
