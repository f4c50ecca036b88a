// core/math/random.h: a counter-based random number generator (SplitMix64 finaliser over
// seed and element index). Element i's number depends only on (seed, i), so results are the
// same for any thread count, and CUDA kernels can draw the same numbers.
#pragma once
#include <cstdint>

#include "core/math/host_device.h"

namespace scconv::math {

SCCONV_HD uint64_t mix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
// Uniform in [0, 1) with 53 random bits.
SCCONV_HD double uniform01(uint64_t seed, uint64_t index) {
  return static_cast<double>(mix64(seed ^ mix64(index)) >> 11) * (1.0 / 9007199254740992.0);
}

}  // namespace scconv::math
