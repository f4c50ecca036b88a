// core/cuda/runtime.cpp: the CUDA side of core/device.h. One process computes on one GPU (the
// one select_device made current); its work is queued on one stream.
//   Device memory: a caching allocator. Requests are rounded to size classes (512 B steps up to
//     1 MiB, 2 MiB steps above), freed blocks go to a per-class free list and are handed out
//     again; as every kernel runs on the one stream, a block freed by one op and reused by the
//     next is ordered by that stream. Plain cudaMalloc, never managed memory. When cudaMalloc
//     fails the cache is released and the call retried once; then the Error names the op, the
//     bytes asked for, the bytes cached and the device's free memory.
//   Pinned host memory: cudaHostAlloc blocks, each freed block reused only once the event
//     recorded at its release has completed (an upload reading it has finished).
//   Copies: host-to-device from pinned memory is asynchronous on the stream; every other copy
//     returns when the bytes have arrived.
#include <cuda_runtime.h>

#include <mutex>
#include <unordered_map>
#include <vector>

#include "core/cuda/cuda_backend.h"
#include "core/cuda/cuda_common.h"

namespace scconv {

namespace cuda {

namespace {
thread_local const char* t_op = nullptr;
}
const char* current_op() { return t_op ? t_op : "(no op)"; }
OpScope::OpScope(const char* op) : prev_(t_op) { t_op = op; }
OpScope::~OpScope() { t_op = prev_; }

void check(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return;
  cudaGetLastError();  // clear a non-sticky error so the next call starts clean
  SCCONV_FAIL("CUDA error in " << what << " (during " << current_op() << "): " << cudaGetErrorName(e) << ": "
                               << cudaGetErrorString(e));
}

cudaStream_t stream() {
  return per_device<cudaStream_t>([] {
    cudaStream_t s = nullptr;
    check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreate");
    return s;
  });
}

}  // namespace cuda

namespace {

size_t size_class(size_t bytes) {
  constexpr size_t kSmall = 512, kLarge = size_t(2) << 20;
  if (bytes <= (size_t(1) << 20)) return (bytes + kSmall - 1) / kSmall * kSmall;
  return (bytes + kLarge - 1) / kLarge * kLarge;
}

class CudaRuntime final : public DeviceRuntime {
 public:
  void* allocate(size_t bytes) override {
    if (bytes == 0) return nullptr;
    const size_t cls = size_class(bytes);
    std::lock_guard<std::mutex> lock(mu_);
    auto& list = free_[cls];
    if (!list.empty()) {
      void* p = list.back();
      list.pop_back();
      cached_ -= cls;
      return p;
    }
    void* p = nullptr;
    cudaError_t e = cudaMalloc(&p, cls);
    if (e == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      release_cache_locked();
      e = cudaMalloc(&p, cls);
    }
    if (e == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      size_t free_b = 0, total_b = 0;
      cudaMemGetInfo(&free_b, &total_b);
      SCCONV_FAIL("CUDA out of memory in " << cuda::current_op() << ": asked for " << bytes << " bytes ("
                  << cls << " with rounding); the cache held " << cached_before_release_
                  << " bytes (released and retried), the device has " << free_b << " of " << total_b
                  << " bytes free, this process holds " << held_ << " bytes in tensors. Use a smaller batch "
                  << "or model");
    }
    cuda::check(e, "cudaMalloc");
    held_ += cls;
    return p;
  }
  void deallocate(void* p, size_t bytes) override {
    if (!p) return;
    const size_t cls = size_class(bytes);
    std::lock_guard<std::mutex> lock(mu_);
    free_[cls].push_back(p);
    cached_ += cls;
  }

  void* allocate_pinned(size_t bytes) override {
    if (bytes == 0) return nullptr;
    const size_t cls = size_class(bytes);
    std::lock_guard<std::mutex> lock(mu_);
    auto& list = pinned_free_[cls];
    for (size_t i = 0; i < list.size(); ++i) {
      if (cudaEventQuery(list[i].done) != cudaSuccess) continue;  // an upload may still read it
      PinnedBlock b = list[i];
      list.erase(list.begin() + static_cast<std::ptrdiff_t>(i));
      cudaEventDestroy(b.done);
      return b.p;
    }
    cudaGetLastError();  // cudaErrorNotReady from the queries
    void* p = nullptr;
    cuda::check(cudaHostAlloc(&p, cls, cudaHostAllocDefault), "cudaHostAlloc (pinned host memory)");
    return p;
  }
  void deallocate_pinned(void* p, size_t bytes) override {
    if (!p) return;
    PinnedBlock b{p, nullptr};
    cuda::check(cudaEventCreateWithFlags(&b.done, cudaEventDisableTiming), "cudaEventCreate");
    cuda::check(cudaEventRecord(b.done, cuda::stream()), "cudaEventRecord");
    std::lock_guard<std::mutex> lock(mu_);
    pinned_free_[size_class(bytes)].push_back(b);
  }

  void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes,
                  bool src_pinned) override {
    if (bytes == 0) return;
    cudaMemcpyKind kind = src_device == Device::CPU
                              ? (dst_device == Device::CPU ? cudaMemcpyHostToHost : cudaMemcpyHostToDevice)
                              : (dst_device == Device::CPU ? cudaMemcpyDeviceToHost : cudaMemcpyDeviceToDevice);
    cudaStream_t s = cuda::stream();
    cuda::check(cudaMemcpyAsync(dst, src, bytes, kind, s), "cudaMemcpyAsync");
    const bool async = kind == cudaMemcpyDeviceToDevice || (kind == cudaMemcpyHostToDevice && src_pinned);
    if (!async) cuda::check(cudaStreamSynchronize(s), "cudaStreamSynchronize (after a copy)");
  }
  void synchronize() override { cuda::check(cudaStreamSynchronize(cuda::stream()), "cudaStreamSynchronize"); }

 private:
  struct PinnedBlock {
    void* p;
    cudaEvent_t done;
  };
  void release_cache_locked() {
    cached_before_release_ = cached_;
    cudaStreamSynchronize(cuda::stream());
    for (auto& [cls, list] : free_) {
      for (void* p : list) cudaFree(p);
      held_ -= cls * list.size();
      list.clear();
    }
    cached_ = 0;
  }
  std::mutex mu_;
  std::unordered_map<size_t, std::vector<void*>> free_;
  std::unordered_map<size_t, std::vector<PinnedBlock>> pinned_free_;
  size_t cached_ = 0, held_ = 0, cached_before_release_ = 0;
};

}  // namespace

// ---- hooks for core/dispatch.cpp -------------------------------------------------------------

int cuda_device_count(std::string* why) {
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    cudaGetLastError();
    if (why) *why = std::string("no CUDA GPU is visible: ") + cudaGetErrorString(e);
    return 0;
  }
  if (n == 0 && why) *why = "no CUDA GPU is visible (cudaGetDeviceCount found none)";
  return n;
}

DeviceRuntime& cuda_runtime() {
  static CudaRuntime* r = new CudaRuntime;  // never destroyed: blocks may outlive static destructors
  return *r;
}

void cuda_select_device(int index) {
  const int n = cuda_device_count(nullptr);
  SCCONV_CHECK(index >= 0 && index < n, "device cuda:" << index << ": this machine has " << n
                                                       << " CUDA GPU" << (n == 1 ? "" : "s") << " (cuda:0"
                                                       << (n > 1 ? " to cuda:" + std::to_string(n - 1) : std::string())
                                                       << ")");
  cuda::check(cudaSetDevice(index), "cudaSetDevice");
}

Backend& cuda_backend() {
  static CudaBackend b;
  return b;
}

}  // namespace scconv
