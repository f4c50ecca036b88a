// core/cuda/cuda_common.h: what every CUDA kernel file shares: error checks, the stream, the op
// scope that out-of-memory errors name, and two ways of addressing tensors of any strides:
//   StridedArgs<K>: K tensors walked together over one shape, in the memory order of the first
//                   (element-wise ops; broadcast operands have stride 0)
//   NCS:            an (N, C, H, W) or (N, C) tensor as (N, C, S) with three strides (norms,
//                   SRU, CRU, pooling; NCHW and channels-last both qualify)
// Included by .cu files (nvcc) and by the backend's .cpp files (the host compiler).
#pragma once
#include <cuda_runtime.h>

#include <array>
#include <cstdint>
#include <mutex>
#include <unordered_map>

#include "core/error.h"
#include "core/math/host_device.h"
#include "core/tensor.h"

namespace scconv::cuda {

// ---- errors ----------------------------------------------------------------------------------
// Throws Error("CUDA error in <what> (during op <current op>): <cuda's message>").
void check(cudaError_t e, const char* what);
// After a kernel launch: a launch error names the kernel.
inline void check_launch(const char* kernel) { check(cudaGetLastError(), kernel); }

// The op being computed on this thread (for error messages); OpScope sets it for a scope.
const char* current_op();
class OpScope {
 public:
  explicit OpScope(const char* op);
  ~OpScope();
  OpScope(const OpScope&) = delete;
  OpScope& operator=(const OpScope&) = delete;

 private:
  const char* prev_;
};

// The stream all work of the current GPU is queued on (one per device; the caching allocator's
// reuse is ordered by it).
cudaStream_t stream();

// One object per GPU (a stream, a cuBLAS or cuDNN handle), made by create() on the current
// device's first use. Each call site keeps its own table (the lambda's type is its own).
template <class H, class Create>
H per_device(Create create) {
  static std::mutex mu;
  static std::unordered_map<int, H> table;
  int dev = 0;
  check(cudaGetDevice(&dev), "cudaGetDevice");
  std::lock_guard<std::mutex> lock(mu);
  auto it = table.find(dev);
  if (it == table.end()) it = table.emplace(dev, create()).first;
  return it->second;
}

// Scratch device memory for the duration of an op (freed back to the cache, stream-ordered).
Tensor scratch(int64_t bytes);
// Scratch holding a copy of `bytes` host bytes (the pointer tables of multi-tensor launches),
// queued on the stream from a pinned staging block, so that the host never waits for it.
Tensor upload(const void* host, size_t bytes, const char* what);

// C (M, N) = op(A) (M, K) op(B) (K, N) on cuBLAS, all row-major as stored, with leading dims
// lda, ldb, ldc (of the stored matrices); `batch` products at element strides sa, sb, sc; beta 0
// (C overwritten) or 1 (C accumulated). float32 or float64 (core/cuda/blas.cpp).
void gemm(DType dt, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const void* A, int64_t lda, int64_t sa,
          const void* B, int64_t ldb, int64_t sb, double beta, void* C, int64_t ldc, int64_t sc, int64_t batch);

// Dense in one of the two layouts (a kernel may index it as one flat array).
inline bool is_dense(const Tensor& t) { return t.is_contiguous() || t.is_contiguous(MemoryFormat::ChannelsLast); }

// ---- launch shapes ---------------------------------------------------------------------------
constexpr int kThreads = 256;
inline unsigned blocks_for(int64_t n, int threads = kThreads) {
  int64_t b = (n + threads - 1) / threads;
  return static_cast<unsigned>(b < 1 ? 1 : (b > 65535 * 16 ? 65535 * 16 : b));
}

// ---- strided walks ---------------------------------------------------------------------------
constexpr int kMaxDims = 8;
template <int K>
struct StridedArgs {
  int ndim = 0;
  int64_t shape[kMaxDims] = {};
  int64_t stride[K][kMaxDims] = {};
  // Element offsets of linear index i (in the walk order) in each of the K tensors.
  SCCONV_HD void offsets(int64_t i, int64_t* off) const {
    for (int k = 0; k < K; ++k) off[k] = 0;
    for (int d = ndim - 1; d >= 0; --d) {
      const int64_t idx = i % shape[d];
      i /= shape[d];
      for (int k = 0; k < K; ++k) off[k] += idx * stride[k][d];
    }
  }
};
// Walks `shape` in the memory order of ts[0] (which must have that shape); every other tensor is
// broadcast to it. Dims of size 1 are dropped and adjacent dims that are dense in all tensors
// merged, so a dense walk is a single dim.
template <int K>
StridedArgs<K> strided_args(const Shape& shape, const std::array<const Tensor*, K>& ts);

// ---- (N, C, S) views -------------------------------------------------------------------------
struct NCS {
  int64_t N = 1, C = 1, S = 1, sN = 0, sC = 0, sS = 0;
  SCCONV_HD int64_t at(int64_t n, int64_t c, int64_t k) const { return n * sN + c * sC + k * sS; }
  // The walk order that follows memory: channels fastest for channels-last, pixels otherwise.
  SCCONV_HD bool channels_fast() const { return sC < sS || S == 1; }
  // Linear index i of an N*C*S walk -> (n, c, k), in memory order.
  SCCONV_HD void decode(int64_t i, int64_t& n, int64_t& c, int64_t& k) const {
    if (channels_fast()) {
      c = i % C; i /= C; k = i % S; n = i / S;
    } else {
      k = i % S; i /= S; c = i % C; n = i / C;
    }
  }
};
// t itself when its pixels (dims 2..) collapse to one stride, else a contiguous copy.
Tensor ncs_ready(const Tensor& t);
NCS ncs_of(const Tensor& t);  // t must be ncs_ready
// A new tensor of x's shape and layout on the GPU.
Tensor empty_like_layout(const Tensor& x, DType dtype);

// ---- dtype switches without lambdas (nvcc's extended lambdas are not needed) -----------------
#define SCCONV_CUDA_FLOAT(dtype, op, ...)                                                     \
  do {                                                                                        \
    switch (dtype) {                                                                          \
      case ::scconv::DType::F32: { using scalar_t = float; __VA_ARGS__; break; }              \
      case ::scconv::DType::F64: { using scalar_t = double; __VA_ARGS__; break; }             \
      default:                                                                                \
        SCCONV_FAIL(op << ": expected a float32 or float64 tensor on cuda, got "              \
                       << ::scconv::dtype_name(dtype));                                       \
    }                                                                                         \
  } while (0)
#define SCCONV_CUDA_ALL(dtype, alias, ...)                                                    \
  do {                                                                                        \
    switch (dtype) {                                                                          \
      case ::scconv::DType::F32: { using alias = float; __VA_ARGS__; break; }                 \
      case ::scconv::DType::F64: { using alias = double; __VA_ARGS__; break; }                \
      case ::scconv::DType::I64: { using alias = int64_t; __VA_ARGS__; break; }               \
      case ::scconv::DType::U8: { using alias = uint8_t; __VA_ARGS__; break; }                \
      case ::scconv::DType::BF16:                                                             \
        SCCONV_FAIL("bfloat16 tensors have no CUDA kernels yet: convert to float32 first");   \
    }                                                                                         \
  } while (0)

}  // namespace scconv::cuda
