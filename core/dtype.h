// core/dtype.h: element types and devices.
// float32 trains, float64 runs gradient checks, int64 holds labels, uint8 holds images and masks,
// bfloat16 (core/math/bf16.h) is a storage type: files and conversions (bf16 training multiplies
// in it inside the backend's convolutions and matmuls, on float32 tensors: autograd/autocast.h).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/math/bf16.h"

namespace scconv {

enum class DType : uint8_t { F32, F64, I64, U8, BF16 };
enum class Device : uint8_t { CPU, CUDA };

inline size_t dtype_size(DType t) {
  switch (t) {
    case DType::F32: return 4;
    case DType::F64: return 8;
    case DType::I64: return 8;
    case DType::U8: return 1;
    case DType::BF16: return 2;
  }
  return 0;
}

inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "float32";
    case DType::F64: return "float64";
    case DType::I64: return "int64";
    case DType::U8: return "uint8";
    case DType::BF16: return "bfloat16";
  }
  return "?";
}

// The precision a float32 convolution or matmul multiplies in (what PyTorch's CPU autocast does):
//   Float32:  float32 throughout.
//   BFloat16: both operands rounded to bfloat16, the products summed in float32, the result
//             float32. Norms, activations, the loss and every stored tensor stay float32.
// Float64 tensors ignore it (gradient checks stay exact). Training configs: `precision`.
enum class Precision : uint8_t { Float32, BFloat16 };
inline const char* precision_name(Precision p) { return p == Precision::BFloat16 ? "bf16" : "fp32"; }

inline const char* device_name(Device d) { return d == Device::CPU ? "cpu" : "cuda"; }

inline bool is_floating(DType t) { return t == DType::F32 || t == DType::F64; }

template <class T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::F32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::F64; };
template <> struct dtype_of<int64_t> { static constexpr DType value = DType::I64; };
template <> struct dtype_of<uint8_t> { static constexpr DType value = DType::U8; };
template <> struct dtype_of<bfloat16> { static constexpr DType value = DType::BF16; };

}  // namespace scconv

// Runs BODY with `scalar_t` bound to the C++ type of a floating dtype; other dtypes are an error
// naming OP.
#define SCCONV_DISPATCH_FLOAT(dtype, op, ...)                                               \
  [&] {                                                                                     \
    switch (dtype) {                                                                        \
      case ::scconv::DType::F32: { using scalar_t = float; return __VA_ARGS__(); }          \
      case ::scconv::DType::F64: { using scalar_t = double; return __VA_ARGS__(); }         \
      default:                                                                              \
        throw ::scconv::Error(std::string(op) + ": expected a float32 or float64 tensor, got " + \
                              ::scconv::dtype_name(dtype));                                 \
    }                                                                                       \
  }()

#define SCCONV_DISPATCH_ALL(dtype, op, ...)                                                 \
  [&] {                                                                                     \
    switch (dtype) {                                                                        \
      case ::scconv::DType::F32: { using scalar_t = float; return __VA_ARGS__(); }          \
      case ::scconv::DType::F64: { using scalar_t = double; return __VA_ARGS__(); }         \
      case ::scconv::DType::I64: { using scalar_t = int64_t; return __VA_ARGS__(); }        \
      case ::scconv::DType::U8: { using scalar_t = uint8_t; return __VA_ARGS__(); }         \
      case ::scconv::DType::BF16: { using scalar_t = ::scconv::bfloat16; return __VA_ARGS__(); } \
    }                                                                                       \
    throw ::scconv::Error(std::string(op) + ": unknown dtype");                             \
  }()
