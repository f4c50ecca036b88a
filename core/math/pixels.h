// core/math/pixels.h: the input convention of every scconv model, as torchvision's
// ToTensor() + Normalize(mean, std): an 8-bit pixel p of channel c (RGB, planes (C, H, W)) becomes
//   x = (p / 255 - mean[c]) / std[c]
// with mean and std given for pixels in [0, 1] (CIFAR-10: mean 0.4914/0.4822/0.4465, std
// 0.2470/0.2435/0.2616). The arithmetic is float32, in torchvision's order (divide, subtract,
// divide), so a PyTorch pipeline and ours feed a model the same values. Checkpoints record the
// convention in their metadata (kInputConvention) and readers check it.
#pragma once
#include <cstdint>

#include "core/math/host_device.h"

namespace scconv::math {

SCCONV_HD float normalise_pixel(uint8_t p, float mean, float std) {
  return (static_cast<float>(p) / 255.f - mean) / std;
}

// The value of metadata key "input" in every model file scconv writes.
inline constexpr const char* kInputConvention = "(pixel / 255 - mean) / std";

}  // namespace scconv::math
