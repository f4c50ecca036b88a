// layers/init.h: parameter initialisation as PyTorch does it, drawn from our own Generator.
#pragma once
#include "core/rng.h"

namespace scconv::init {

// fan_in = shape[1] * receptive field; fan_out = shape[0] * receptive field (PyTorch's rule).
int64_t fan_in(const Shape& w);
int64_t fan_out(const Shape& w);
// torchvision ResNets: kaiming_normal_(mode="fan_out", nonlinearity="relu"): N(0, 2 / fan_out).
Tensor kaiming_normal_fan_out(const Shape& w, Generator& g);
// nn.Conv2d / nn.Linear defaults: weight U(-b, b) with b = 1/sqrt(fan_in) (kaiming_uniform with
// a = sqrt(5)); bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
Tensor default_weight(const Shape& w, Generator& g);
Tensor default_bias(int64_t n, int64_t fan_in, Generator& g);

}  // namespace scconv::init
