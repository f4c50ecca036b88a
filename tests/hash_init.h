// tests/hash_init.h: deterministic pseudo-random values from a tensor's name, identical to
// tools/scconv_torch.py's hash_fill, so the C++ tests and the PyTorch reference generator get
// the same weights and inputs without storing them. value_i = lo + (hi - lo) *
// uniform01(fnv1a64(name), i) with the counter-based generator of core/math/random.h.
#pragma once
#include <cmath>
#include <string>

#include "core/math/random.h"
#include "layers/module.h"

namespace scconv::testing {

inline uint64_t fnv1a64(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ULL;
  return h;
}

inline Tensor hash_uniform(const std::string& name, const Shape& shape, double lo, double hi,
                           DType dt) {
  Tensor t = Tensor::empty(shape, DType::F64);
  const uint64_t seed = fnv1a64(name);
  for (int64_t i = 0; i < t.numel(); ++i)
    t.data<double>()[i] = lo + (hi - lo) * math::uniform01(seed, static_cast<uint64_t>(i));
  return t.to(dt);
}

// The value rule, by name and rank (see tools/scconv_torch.py).
inline Tensor hash_fill(const std::string& name, const Tensor& like) {
  auto ends = [&](const char* s) {
    std::string e(s);
    return name.size() >= e.size() && name.compare(name.size() - e.size(), e.size(), e) == 0;
  };
  const Shape& s = like.shape();
  const DType dt = like.dtype();
  if (ends("num_batches_tracked")) return Tensor::zeros(s, DType::I64);
  if (ends("running_var")) return hash_uniform(name, s, 0.5, 1.5, dt);
  if (ends("running_mean")) return hash_uniform(name, s, -0.1, 0.1, dt);
  if (like.dim() == 2 || like.dim() == 4) {
    double b = std::sqrt(3.0 / double(like.numel() / s[0]));
    return hash_uniform(name, s, -b, b, dt);
  }
  if (ends("weight") || ends("gamma")) return hash_uniform(name, s, 0.8, 1.2, dt);
  return hash_uniform(name, s, -0.1, 0.1, dt);
}

// Fills every parameter and buffer of `m` (optionally converting it to `dt` first).
inline void hash_init(Module& m, const std::string& prefix = "") {
  autograd::NoGradGuard ng;
  for (auto& [n, t] : m.state_dict()) {
    Tensor v = hash_fill(prefix + n, t);
    Tensor target = t;
    target.copy_(v);
  }
}

}  // namespace scconv::testing
