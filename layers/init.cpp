// layers/init.cpp: see init.h.
#include "layers/init.h"

#include <cmath>

namespace scconv::init {

static int64_t receptive(const Shape& w) {
  int64_t r = 1;
  for (size_t i = 2; i < w.size(); ++i) r *= w[i];
  return r;
}
int64_t fan_in(const Shape& w) { return (w.size() > 1 ? w[1] : 1) * receptive(w); }
int64_t fan_out(const Shape& w) { return w[0] * receptive(w); }

Tensor kaiming_normal_fan_out(const Shape& w, Generator& g) {
  return g.normal(w, 0.0, std::sqrt(2.0 / double(fan_out(w))));
}
Tensor default_weight(const Shape& w, Generator& g) {
  double b = 1.0 / std::sqrt(double(fan_in(w)));
  return g.uniform(w, -b, b);
}
Tensor default_bias(int64_t n, int64_t fan, Generator& g) {
  double b = fan > 0 ? 1.0 / std::sqrt(double(fan)) : 0.0;
  return g.uniform({n}, -b, b);
}

}  // namespace scconv::init
