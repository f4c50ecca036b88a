// core/dispatch.cpp: the single dispatch point from a device to its backend, and the
// thread-local switch that routes CPU ops to the reference kernels.
#include <atomic>

#include "core/cpu/cpu_backend.h"
#include "core/profile.h"
#include "core/reference/reference_backend.h"
#if SCCONV_WITH_CUDA
#include "core/cuda/cuda_backend.h"
#endif

namespace scconv {

namespace {
thread_local bool t_reference_mode = false;
}

ReferenceModeGuard::ReferenceModeGuard() : prev_(t_reference_mode) { t_reference_mode = true; }
ReferenceModeGuard::~ReferenceModeGuard() { t_reference_mode = prev_; }
bool reference_mode() { return t_reference_mode; }

Backend& reference_backend() {
  static ReferenceBackend b;
  return b;
}
Backend& cpu_backend() {
  static CpuBackend b;
  return b;
}

static Backend& device_backend(Device device) {
  if (device == Device::CPU) return t_reference_mode ? reference_backend() : cpu_backend();
#if SCCONV_WITH_CUDA
  return cuda_backend();
#else
  throw Error("no backend for device cuda: this build has SCCONV_CUDA=OFF");
#endif
}

Backend& backend_for(Device device) {
  Backend& b = device_backend(device);
  return profile::enabled() ? profile::profiling_backend(b) : b;
}

const char* unary_op_name(UnaryOp op) {
  static const char* names[] = {"neg", "relu", "sigmoid", "exp", "log", "sqrt", "pow", "clamp"};
  return names[static_cast<int>(op)];
}
const char* binary_op_name(BinaryOp op) {
  static const char* names[] = {"add", "sub", "mul", "div"};
  return names[static_cast<int>(op)];
}

namespace {
std::atomic<ConvAlgorithm> g_conv_algorithm{ConvAlgorithm::Auto};
}
void set_conv_algorithm(ConvAlgorithm a) { g_conv_algorithm = a; }
ConvAlgorithm conv_algorithm() { return g_conv_algorithm; }
const char* conv_algorithm_name(ConvAlgorithm a) {
  return a == ConvAlgorithm::Auto ? "auto" : a == ConvAlgorithm::Direct ? "direct" : "winograd";
}
ConvAlgorithm parse_conv_algorithm(const std::string& name) {
  for (ConvAlgorithm a : {ConvAlgorithm::Auto, ConvAlgorithm::Direct, ConvAlgorithm::Winograd})
    if (name == conv_algorithm_name(a)) return a;
  SCCONV_FAIL("conv_algorithm: unknown algorithm '" << name << "' (known: auto, direct, winograd)");
}

int64_t conv_out_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad, int64_t dilation) {
  return (in + 2 * pad - dilation * (kernel - 1) - 1) / stride + 1;
}
ConvDims conv_dims(const Shape& x, const Shape& w, const Conv2dParams& p) {
  ConvDims d{x[0], x[1], x[2], x[3], w[0], w[2], w[3], 0, 0, p.groups, x[1] / p.groups,
             w[0] / p.groups};
  d.OH = conv_out_size(d.H, d.KH, p.stride[0], p.padding[0], p.dilation[0]);
  d.OW = conv_out_size(d.W, d.KW, p.stride[1], p.padding[1], p.dilation[1]);
  return d;
}

}  // namespace scconv
