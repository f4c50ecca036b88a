// core/rng.h: seeded random numbers for initialisation, dropout and tests. A Generator is a
// (seed, counter) pair over the counter-based mixer of core/math/random.h, so its stream is
// reproducible, cheap to save in a checkpoint, and independent of the thread count.
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace scconv {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) : seed_(seed) {}
  void manual_seed(uint64_t seed) { seed_ = seed; offset_ = 0; }
  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }
  void set_state(uint64_t seed, uint64_t offset) { seed_ = seed; offset_ = offset; }

  double uniform();  // [0, 1)
  double normal();   // standard normal (Box-Muller)
  // Reserves n numbers of the stream and returns the first index (for counter-based kernels).
  uint64_t reserve(uint64_t n) { uint64_t o = offset_; offset_ += n; return o; }

  Tensor uniform(const Shape& shape, double lo, double hi, DType dtype = DType::F32);
  Tensor normal(const Shape& shape, double mean = 0, double std = 1, DType dtype = DType::F32);

 private:
  uint64_t seed_ = 0, offset_ = 0;
};

Generator& default_generator();
void manual_seed(uint64_t seed);

}  // namespace scconv
