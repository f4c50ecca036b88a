// core/cuda/sgd.cu: the SGD update of every parameter in one launch (multi-tensor: block row y
// is parameter y), skipped on the device when the guard's flag says so. Reference: core/reference/sgd.cpp; formula: core/math/sgd.h, the same
// function the CPU loop calls. Parameters, gradients and buffers are dense and alike in layout
// (core/backend.h's contract; optim/sgd.cpp passes contiguous gradients of contiguous parameters).
#include <algorithm>
#include <vector>

#include "core/cuda/cuda_backend.h"
#include "core/cuda/kernels.cuh"
#include "core/math/sgd.h"

namespace scconv {

namespace {

template <class T>
struct SGDSegment {
  T* p;
  const T* g;
  T* buf;  // null without momentum
  int64_t n;
  double weight_decay;
  bool first;
};

template <class T>
__global__ void sgd_kernel(const SGDSegment<T>* segs, SGDHyper h, const double* skip) {
  if (skip && *skip != 0) return;  // (the guard's verdict, on the device)
  const SGDSegment<T> s = segs[blockIdx.y];
  T dummy = 0;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < s.n; i += int64_t(gridDim.x) * blockDim.x)
    math::sgd_step(s.p[i], s.g[i], s.buf ? s.buf[i] : dummy, s.first, h.lr, h.momentum, h.dampening,
                   s.weight_decay, h.nesterov);
}

template <class T>
void sgd_launch(const std::vector<const SGDParamUpdate*>& ps, const SGDHyper& h, const double* skip) {
  std::vector<SGDSegment<T>> segs;
  int64_t longest = 0;
  for (const SGDParamUpdate* u : ps) {
    const Tensor& p = u->param;
    SCCONV_CHECK(cuda::is_dense(p), "sgd_update: parameter " << p.str() << " is not dense");
    SCCONV_CHECK(u->grad.strides() == p.strides(),
                 "sgd_update: the gradient " << u->grad.str() << " of " << p.str() << " has another layout than its parameter");
    SCCONV_CHECK(!u->buffer.defined() || u->buffer.strides() == p.strides(),
                 "sgd_update: the momentum buffer of " << p.str() << " has another layout than its parameter");
    segs.push_back({const_cast<Tensor&>(p).device_data<T>(), u->grad.device_data<T>(),
                    u->buffer.defined() ? const_cast<Tensor&>(u->buffer).device_data<T>() : nullptr, p.numel(),
                    u->weight_decay, u->first});
    longest = std::max(longest, p.numel());
  }
  for (size_t at = 0; at < segs.size(); at += 65535) {  // gridDim.y's limit
    const size_t count = std::min<size_t>(65535, segs.size() - at);
    const Tensor table = cuda::upload(segs.data() + at, count * sizeof(SGDSegment<T>), "cudaMemcpyAsync (sgd table)");
    const dim3 grid(std::min<unsigned>(cuda::blocks_for(longest), 512), unsigned(count));
    sgd_kernel<T><<<grid, cuda::kThreads, 0, cuda::stream()>>>(
        static_cast<const SGDSegment<T>*>(table.raw_device_data()), h, skip);
    cuda::check_launch("sgd_kernel");
  }
}

}  // namespace

void CudaBackend::sgd_update(const std::vector<SGDParamUpdate>& ps, const SGDHyper& h, const Tensor& skip_in) {
  cuda::OpScope scope("sgd_update");
  SCCONV_CHECK(!skip_in.defined() || (skip_in.numel() == 1 && skip_in.device() == Device::CUDA),
               "sgd_update: skip must be one value on cuda, got " << skip_in.str());
  const Tensor skip = skip_in.defined() ? skip_in.to(DType::F64).contiguous() : Tensor();
  const double* sk = skip.defined() ? skip.device_data<double>() : nullptr;
  std::vector<const SGDParamUpdate*> f32, f64;
  for (const SGDParamUpdate& u : ps) {
    if (u.param.numel() == 0) continue;
    SCCONV_CHECK(u.grad.dtype() == u.param.dtype(), "sgd_update: gradient " << u.grad.str() << " of parameter "
                                                                            << u.param.str() << " differs in dtype");
    if (u.param.dtype() == DType::F32) f32.push_back(&u);
    else if (u.param.dtype() == DType::F64) f64.push_back(&u);
    else SCCONV_FAIL("sgd_update: expected float32 or float64 parameters, got " << u.param.str());
  }
  if (!f32.empty()) sgd_launch<float>(f32, h, sk);
  if (!f64.empty()) sgd_launch<double>(f64, h, sk);
}

}  // namespace scconv
