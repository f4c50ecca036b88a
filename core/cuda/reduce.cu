// core/cuda/reduce.cu: sum over dims, the finiteness check of many tensors and row argmax on the
// GPU. Reference: core/reference/reduce.cpp. Sums accumulate in double, one block per output
// element; the finiteness check covers every tensor in one launch and reads back one int.
#include <algorithm>
#include <vector>

#include "core/cuda/cuda_backend.h"
#include "core/cuda/kernels.cuh"

namespace scconv {

using cuda::StridedArgs;

namespace {

// ---- sum -------------------------------------------------------------------------------------
// Output j starts at input offset kept.offsets(j); its R reduced elements are at red.offsets(r)
// from there.
template <class T>
__global__ void sum_kernel(int64_t outputs, StridedArgs<1> kept, StridedArgs<1> red, int64_t R, const T* x,
                           T* y) {
  __shared__ double shared[32];
  for (int64_t j = blockIdx.x; j < outputs; j += gridDim.x) {
    int64_t base;
    kept.offsets(j, &base);
    double acc = 0;
    for (int64_t r = threadIdx.x; r < R; r += blockDim.x) {
      int64_t off;
      red.offsets(r, &off);
      acc += static_cast<double>(x[base + off]);
    }
    acc = cuda::block_sum(acc, shared);
    if (threadIdx.x == 0) y[j] = static_cast<T>(acc);
  }
}

// ---- nonfinite_index -------------------------------------------------------------------------
struct FiniteSegment {
  const void* p;
  int64_t n;
  int32_t index;  // position in the caller's list
  bool is_double;
};

__global__ void nonfinite_kernel(const FiniteSegment* segs, int* first) {  // *first starts at INT32_MAX
  const FiniteSegment s = segs[blockIdx.y];
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < s.n; i += int64_t(gridDim.x) * blockDim.x) {
    const double v = s.is_double ? static_cast<const double*>(s.p)[i] : static_cast<const float*>(s.p)[i];
    if (!isfinite(v)) {
      atomicMin(first, s.index);
      return;
    }
  }
}

// The answer as int64: -1 when no segment had a NaN or an Inf.
__global__ void nonfinite_result_kernel(const int* first, int64_t* out) { *out = *first == INT32_MAX ? -1 : *first; }

// ---- argmax ----------------------------------------------------------------------------------
template <class T>
__global__ void argmax_kernel(int64_t N, int64_t K, int64_t s0, int64_t s1, const T* x, int64_t* out) {
  SCCONV_GRID_LOOP(n, N) {
    int64_t best = 0;
    T bv = x[n * s0];
    for (int64_t k = 1; k < K; ++k) {
      const T v = x[n * s0 + k * s1];
      if (v > bv) { bv = v; best = k; }
    }
    out[n] = best;
  }
}

}  // namespace

Tensor CudaBackend::sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  cuda::OpScope scope("sum");
  const int64_t nd = x.dim();
  SCCONV_CHECK(nd <= cuda::kMaxDims,
               "sum: tensors of more than " << cuda::kMaxDims << " dims are not supported on cuda, got " << x.str());
  std::vector<bool> reduced(nd, false);
  for (int64_t d : dims) reduced[wrap_dim(d, nd, "sum")] = true;
  Shape kept_shape(nd), red_shape(nd), out_shape;
  for (int64_t d = 0; d < nd; ++d) {
    kept_shape[d] = reduced[d] ? 1 : x.shape()[d];
    red_shape[d] = reduced[d] ? x.shape()[d] : 1;
    if (!reduced[d] || keepdim) out_shape.push_back(kept_shape[d]);
  }
  Tensor y = Tensor::empty(out_shape, x.dtype(), Device::CUDA);
  const int64_t outputs = numel_of(kept_shape), R = numel_of(red_shape);
  if (outputs == 0) return y;
  if (R == 0) {
    fill(y, 0.0);
    return y;
  }
  // row-major walks of x's strides over the kept dims (output j is written densely) and over
  // the reduced dims
  StridedArgs<1> kx, rx;
  for (int64_t d = 0; d < nd; ++d) {
    StridedArgs<1>& w = reduced[d] ? rx : kx;
    if (x.shape()[d] == 1) continue;
    w.shape[w.ndim] = x.shape()[d];
    w.stride[0][w.ndim] = x.strides()[d];
    ++w.ndim;
  }
  const int threads = R >= 256 ? 256 : (R >= 64 ? 64 : 32);
  const unsigned blocks = static_cast<unsigned>(std::min<int64_t>(outputs, 1 << 20));
  SCCONV_CUDA_FLOAT(x.dtype(), "sum",
                    sum_kernel<scalar_t><<<blocks, threads, 0, cuda::stream()>>>(
                        outputs, kx, rx, R, x.device_data<scalar_t>(), y.device_data<scalar_t>()));
  cuda::check_launch("sum_kernel");
  return y;
}

Tensor CudaBackend::nonfinite_index(const std::vector<Tensor>& ts) {
  cuda::OpScope scope("nonfinite_index");
  std::vector<FiniteSegment> segs;
  std::vector<Tensor> keep;  // dense copies of strided tensors, alive until the check is read
  int64_t longest = 0;
  for (size_t k = 0; k < ts.size(); ++k) {
    if (!is_floating(ts[k].dtype()) || ts[k].numel() == 0) continue;
    Tensor t = cuda::is_dense(ts[k]) ? ts[k] : ts[k].contiguous();
    keep.push_back(t);
    segs.push_back({t.raw_device_data(), t.numel(), static_cast<int32_t>(k), t.dtype() == DType::F64});
    longest = std::max(longest, t.numel());
  }
  Tensor out = Tensor::empty({}, DType::I64, Device::CUDA);
  if (segs.empty()) return out.fill_(-1.0);
  SCCONV_CHECK(segs.size() <= 65535, "nonfinite_index: at most 65535 tensors per call, got " << segs.size());
  const int none = INT32_MAX;
  const Tensor table = cuda::upload(segs.data(), segs.size() * sizeof(FiniteSegment), "cudaMemcpyAsync (finiteness table)");
  const Tensor flag = cuda::upload(&none, sizeof(int), "cudaMemcpyAsync (finiteness flag)");
  int* first = static_cast<int*>(flag.raw_device_data());
  const dim3 grid(std::min<unsigned>(cuda::blocks_for(longest), 1024), static_cast<unsigned>(segs.size()));
  nonfinite_kernel<<<grid, cuda::kThreads, 0, cuda::stream()>>>(
      static_cast<const FiniteSegment*>(table.raw_device_data()), first);
  cuda::check_launch("nonfinite_kernel");
  nonfinite_result_kernel<<<1, 1, 0, cuda::stream()>>>(first, out.device_data<int64_t>());
  cuda::check_launch("nonfinite_result_kernel");
  return out;  // (the table and the flag go back to the cache stream-ordered: no wait here)
}

Tensor CudaBackend::argmax_rows(const Tensor& x) {
  cuda::OpScope scope("argmax_rows");
  SCCONV_CHECK(x.dim() == 2 && x.size(1) > 0, "argmax_rows: expected (N, K) with K > 0, got " << x.str());
  const int64_t N = x.size(0), K = x.size(1);
  Tensor out = Tensor::empty({N}, DType::I64, Device::CUDA);
  if (N == 0) return out;
  SCCONV_CUDA_FLOAT(x.dtype(), "argmax_rows",
                    argmax_kernel<scalar_t><<<cuda::blocks_for(N), cuda::kThreads, 0, cuda::stream()>>>(
                        N, K, x.strides()[0], x.strides()[1], x.device_data<scalar_t>(), out.device_data<int64_t>()));
  cuda::check_launch("argmax_kernel");
  return out;
}

}  // namespace scconv
