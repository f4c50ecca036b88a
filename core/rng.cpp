// core/rng.cpp: the Generator (see rng.h).
#include "core/rng.h"

#include <cmath>

#include "core/math/random.h"

namespace scconv {

double Generator::uniform() { return math::uniform01(seed_, offset_++); }

double Generator::normal() {
  double u1 = uniform(), u2 = uniform();
  if (u1 < 1e-300) u1 = 1e-300;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

Tensor Generator::uniform(const Shape& shape, double lo, double hi, DType dtype) {
  Tensor t = Tensor::empty(shape, dtype);
  SCCONV_DISPATCH_FLOAT(dtype, "Generator::uniform", [&] {
    scalar_t* p = t.data<scalar_t>();
    for (int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<scalar_t>(lo + (hi - lo) * uniform());
  });
  return t;
}

Tensor Generator::normal(const Shape& shape, double mean, double std, DType dtype) {
  Tensor t = Tensor::empty(shape, dtype);
  SCCONV_DISPATCH_FLOAT(dtype, "Generator::normal", [&] {
    scalar_t* p = t.data<scalar_t>();
    for (int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<scalar_t>(mean + std * normal());
  });
  return t;
}

Generator& default_generator() {
  static Generator g(0);
  return g;
}
void manual_seed(uint64_t seed) { default_generator().manual_seed(seed); }

}  // namespace scconv
