// core/dispatch.cpp: the single dispatch point from a device to its backend, and the
// thread-local switch that routes CPU ops to the reference kernels.
#include <atomic>
#include <string>

#include "core/cpu/cpu_backend.h"
#include "core/device.h"
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

// An Error "<what>: <why>" unless tensors can live on `d` (so every device entry point gives the
// same reason; in a build without CUDA it always throws).
static void require_available(Device d, const std::string& what) {
  std::string why;
  SCCONV_CHECK(device_available(d, &why), what << ": " << why);
}

static Backend& device_backend(Device device) {
  if (device == Device::CPU) return t_reference_mode ? reference_backend() : cpu_backend();
  require_available(device, std::string("no backend for device ") + device_name(device));
#if SCCONV_WITH_CUDA
  return cuda_backend();
#else
  SCCONV_FAIL("unreachable: no CUDA in this build");
#endif
}

// ---- devices ---------------------------------------------------------------------------------

bool device_available(Device d, std::string* why) {
  if (d == Device::CPU) return true;
#if SCCONV_WITH_CUDA
  return cuda_device_count(why) > 0;
#else
  if (why) *why = "this build has SCCONV_CUDA=OFF (configure with -DSCCONV_CUDA=ON on a machine with nvcc)";
  return false;
#endif
}

DeviceRuntime& device_runtime(Device d) {
  SCCONV_CHECK(d != Device::CPU, "device_runtime: the CPU has none (host memory comes from core/storage.cpp)");
  require_available(d, std::string("device ") + device_name(d));
#if SCCONV_WITH_CUDA
  return cuda_runtime();
#else
  SCCONV_FAIL("unreachable: no CUDA in this build");
#endif
}

DeviceSpec parse_device(const std::string& name) {
  if (name == "cpu") return {Device::CPU, 0};
  if (name == "cuda") return {Device::CUDA, 0};
  if (name.rfind("cuda:", 0) == 0 && name.size() > 5 && name.size() <= 8 &&
      name.find_first_not_of("0123456789", 5) == std::string::npos)
    return {Device::CUDA, std::stoi(name.substr(5))};
  SCCONV_USAGE_CHECK(false, "device: unknown device '" << name << "' (known: cpu, cuda, cuda:N)");
  return {};
}
std::string device_spec_name(const DeviceSpec& d) {
  return d.type == Device::CPU ? "cpu" : "cuda:" + std::to_string(d.index);
}

void select_device(const DeviceSpec& d) {
  if (d.type == Device::CPU) return;
  require_available(d.type, "device " + device_spec_name(d));
#if SCCONV_WITH_CUDA
  cuda_select_device(d.index);
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
int64_t Backend::first_nonfinite(const std::vector<Tensor>& ts) {
  return static_cast<int64_t>(nonfinite_index(ts).to(Device::CPU).item());
}

void set_conv_algorithm(ConvAlgorithm a) { g_conv_algorithm = a; }
ConvAlgorithm conv_algorithm() { return g_conv_algorithm; }
const char* conv_algorithm_name(ConvAlgorithm a) {
  return a == ConvAlgorithm::Auto ? "auto" : a == ConvAlgorithm::Direct ? "direct" : "winograd";
}
namespace {
std::atomic<bool> g_cudnn_measure{false}, g_cudnn_deterministic{false};
}
void set_cudnn_options(const CudnnOptions& o) {
  g_cudnn_measure = o.measure;
  g_cudnn_deterministic = o.deterministic;
}
CudnnOptions cudnn_options() { return {g_cudnn_measure.load(), g_cudnn_deterministic.load()}; }

ConvAlgorithm parse_conv_algorithm(const std::string& name) {
  for (ConvAlgorithm a : {ConvAlgorithm::Auto, ConvAlgorithm::Direct, ConvAlgorithm::Winograd})
    if (name == conv_algorithm_name(a)) return a;
  SCCONV_FAIL("conv_algorithm: unknown algorithm '" << name << "' (known: auto, direct, winograd)");
}

Precision parse_precision(const std::string& name) {
  for (Precision p : {Precision::Float32, Precision::BFloat16})
    if (name == precision_name(p)) return p;
  SCCONV_FAIL("precision: unknown precision '" << name << "' (known: fp32, bf16)");
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
