// core/math/bf16.h: bfloat16, the 16-bit float that bf16 training multiplies in: float32's sign
// and 8-bit exponent (same range) with 7 stored mantissa bits, 8 significant bits with the
// implicit one, so one rounding from float32 has a relative error of at most half a unit in the
// 8th bit: 2^-8 (float32's 24 bits give 2^-24). Conversion rounds to
// the nearest, ties to even, as PyTorch's and oneDNN's do; NaN stays NaN (quiet), infinities stay
// infinite. Shared by the CPU loops and (later) CUDA kernels.
#pragma once
#include <cstdint>
#include <cstring>

#include "core/math/host_device.h"

namespace scconv {

struct bfloat16 {
  uint16_t bits = 0;

  bfloat16() = default;
  SCCONV_HD bfloat16(float f) : bits(round_bits(f)) {}  // NOLINT: implicit, like float's
  template <class T>
  SCCONV_HD explicit bfloat16(T v) : bits(round_bits(static_cast<float>(v))) {}
  SCCONV_HD operator float() const { return to_float(bits); }  // NOLINT: exact widening

  SCCONV_HD bfloat16& operator+=(float v) { return *this = bfloat16(float(*this) + v); }

  static SCCONV_HD bfloat16 from_bits(uint16_t b) {
    bfloat16 h;
    h.bits = b;
    return h;
  }
  // float32 -> the nearest bfloat16's bits (ties to even)
  static SCCONV_HD uint16_t round_bits(float f) {
    const uint32_t u0 = float_bits(f);
    uint32_t u = u0;
    if ((u0 & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40u);  // NaN: keep it quiet
    u += 0x7fffu + ((u >> 16) & 1u);
    return uint16_t(u >> 16);
  }
  static SCCONV_HD float to_float(uint16_t b) {
    return bits_float(uint32_t(b) << 16);
  }
  static SCCONV_HD uint32_t float_bits(float f) {
#if defined(__CUDA_ARCH__)
    return __float_as_uint(f);
#else
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
#endif
  }
  static SCCONV_HD float bits_float(uint32_t u) {
#if defined(__CUDA_ARCH__)
    return __uint_as_float(u);
#else
    float f;
    std::memcpy(&f, &u, 4);
    return f;
#endif
  }
};
static_assert(sizeof(bfloat16) == 2, "bfloat16 is two bytes");

// The largest relative error of rounding one float32 to bfloat16 (its unit roundoff, 2^-8).
inline constexpr double kBf16UnitRoundoff = 1.0 / 256.0;

}  // namespace scconv
