// layers/basic.h: modules without parameters, and containers: ReLU, MaxPool2d, AvgPool2d,
// GlobalAvgPool2d, Flatten, Identity, Sequential.
#pragma once
#include "layers/module.h"

namespace scconv {

class ReLU : public Module {
 public:
  Tensor forward(const Tensor& x) override { return relu(x); }
  std::string type() const override { return "ReLU"; }
};

class MaxPool2d : public Module {
 public:
  MaxPool2d(int64_t kernel, int64_t stride, int64_t padding = 0) : k_(kernel), s_(stride), p_(padding) {}
  Tensor forward(const Tensor& x) override { return max_pool2d(x, {k_, k_}, {s_, s_}, {p_, p_}); }
  std::string type() const override { return "MaxPool2d"; }
 private:
  int64_t k_, s_, p_;
};

class AvgPool2d : public Module {
 public:
  AvgPool2d(int64_t kernel, int64_t stride, int64_t padding = 0) : k_(kernel), s_(stride), p_(padding) {}
  Tensor forward(const Tensor& x) override { return avg_pool2d(x, {k_, k_}, {s_, s_}, {p_, p_}); }
  std::string type() const override { return "AvgPool2d"; }
 private:
  int64_t k_, s_, p_;
};

// (N, C, H, W) -> (N, C, 1, 1), PyTorch's AdaptiveAvgPool2d(1).
class GlobalAvgPool2d : public Module {
 public:
  Tensor forward(const Tensor& x) override { return global_avg_pool2d(x); }
  std::string type() const override { return "AdaptiveAvgPool2d"; }
};

class Flatten : public Module {
 public:
  Tensor forward(const Tensor& x) override { return flatten(x, 1); }
  std::string type() const override { return "Flatten"; }
};

class Identity : public Module {
 public:
  Tensor forward(const Tensor& x) override { return x; }
  std::string type() const override { return "Identity"; }
};

// Children named "0", "1", ... run in order.
class Sequential : public Module {
 public:
  template <class M>
  std::shared_ptr<M> add(std::shared_ptr<M> m) {
    return register_module(std::to_string(children().size()), std::move(m));
  }
  Tensor forward(const Tensor& x) override {
    Tensor y = x;
    for (auto& [n, m] : children()) y = (*m)(y);
    return y;
  }
  std::string type() const override { return "Sequential"; }
};

}  // namespace scconv
