// core/cuda/cru.cu: the fused CRU fuse on the GPU, forward and backward. Reference:
// core/reference/cru.cpp; the branch weights' softmax: core/math/cru.h. For y1 (N, C, S) and y2
// given as channel parts:
//   forward:  one block per (n, c) pools both branches -> s (N, 2, C) in double; one thread per
//             sample turns s into the weights b (math::cru_weights); y = b0 y1 + b1 y2 per element
//   backward: one block per (n, c) sums grad_y * y1 and grad_y * y2 -> grad_b; one thread per
//             sample: grad_s (math::cru_weights_backward); grad_y1, grad_y2 per element
// cru_fuse_lower builds y2 = conv1x1(low, w) with cuDNN first (as the reference does) and runs
// the same fuse; its backward adds the convolution's gradients. (The CPU folds the 1x1
// convolution into the fuse, core/cpu/cru_lower.cpp; on the GPU y2 is materialised.)
#include "core/cuda/cuda_backend.h"
#include "core/cuda/kernels.cuh"
#include "core/math/cru.h"

namespace scconv {

using cuda::NCS;

namespace {

constexpr int kMaxParts = 4;
// y2's channel parts: channel c of y2 is channel c - first[p] of part p.
template <class T>
struct Parts {
  int count = 0;
  const T* data[kMaxParts] = {};
  T* grad[kMaxParts] = {};
  NCS view[kMaxParts], grad_view[kMaxParts];
  int64_t first[kMaxParts + 1] = {};
  __device__ int find(int64_t c) const {
    int p = 0;
    while (p + 1 < count && c >= first[p + 1]) ++p;
    return p;
  }
  __device__ T y2(int64_t n, int64_t c, int64_t k) const {
    const int p = find(c);
    return data[p][view[p].at(n, c - first[p], k)];
  }
};

// Block (n, c): s[n][0][c] = mean of y1's plane, s[n][1][c] = mean of y2's plane. The same shape
// of kernel sums grad_y * y1 and grad_y * y2 when gy is given (then `out` is grad_b).
template <class T>
__global__ void cru_plane_sums_kernel(NCS v1, NCS vg, Parts<T> parts, const T* y1, const T* gy, double scale,
                                      double* out) {
  __shared__ double shared[32];
  const int64_t n = blockIdx.x / v1.C, c = blockIdx.x % v1.C;
  double a = 0, b = 0;
  for (int64_t k = threadIdx.x; k < v1.S; k += blockDim.x) {
    const double g = gy ? static_cast<double>(gy[vg.at(n, c, k)]) : 1.0;
    a += g * static_cast<double>(y1[v1.at(n, c, k)]);
    b += g * static_cast<double>(parts.y2(n, c, k));
  }
  a = cuda::block_sum(a, shared);
  b = cuda::block_sum(b, shared);
  if (threadIdx.x == 0) {
    out[n * 2 * v1.C + c] = a * scale;
    out[n * 2 * v1.C + v1.C + c] = b * scale;
  }
}

// One thread per sample (softmax groups never cross samples): b from s, or grad_s from grad_b.
__global__ void cru_weights_kernel(math::CRUFuse kind, int64_t N, int64_t C, const double* s, double* b) {
  SCCONV_GRID_LOOP(n, N) math::cru_weights(kind, 1, C, s + n * 2 * C, b + n * 2 * C);
}
__global__ void cru_weights_backward_kernel(math::CRUFuse kind, int64_t N, int64_t C, const double* b,
                                            const double* grad_b, double* grad_s) {
  SCCONV_GRID_LOOP(n, N) math::cru_weights_backward(kind, 1, C, b + n * 2 * C, grad_b + n * 2 * C, grad_s + n * 2 * C);
}

template <class T>
__global__ void cru_apply_kernel(NCS v1, NCS vy, Parts<T> parts, const T* y1, const double* b, T* y) {
  SCCONV_GRID_LOOP(i, v1.N * v1.C * v1.S) {
    int64_t n, c, k;
    v1.decode(i, n, c, k);
    const double b0 = b[n * 2 * v1.C + c], b1 = b[n * 2 * v1.C + v1.C + c];
    y[vy.at(n, c, k)] = static_cast<T>(b0 * double(y1[v1.at(n, c, k)]) + b1 * double(parts.y2(n, c, k)));
  }
}

template <class T>
__global__ void cru_backward_apply_kernel(NCS vg, NCS vo, Parts<T> parts, const T* gy, const double* b,
                                          const double* grad_s, T* g1) {
  const double inv_s = 1.0 / double(vg.S);
  SCCONV_GRID_LOOP(i, vg.N * vg.C * vg.S) {
    int64_t n, c, k;
    vg.decode(i, n, c, k);
    const int64_t j0 = n * 2 * vg.C + c, j1 = j0 + vg.C;
    const double g = static_cast<double>(gy[vg.at(n, c, k)]);
    g1[vo.at(n, c, k)] = static_cast<T>(b[j0] * g + grad_s[j0] * inv_s);
    const int p = parts.find(c);
    parts.grad[p][parts.grad_view[p].at(n, c - parts.first[p], k)] = static_cast<T>(b[j1] * g + grad_s[j1] * inv_s);
  }
}

template <class T>
Parts<T> make_parts(std::vector<Tensor>& ready, const std::vector<Tensor>& in, const NCS& v1) {
  SCCONV_CHECK(!in.empty() && in.size() <= size_t(kMaxParts),
               "cru_fuse: y2 in 1 to " << kMaxParts << " channel parts on cuda, got " << in.size());
  Parts<T> p;
  p.count = int(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    ready.push_back(cuda::ncs_ready(in[i]));
    p.data[i] = ready.back().device_data<T>();
    p.view[i] = cuda::ncs_of(ready.back());
    p.first[i + 1] = p.first[i] + p.view[i].C;
  }
  SCCONV_CHECK(p.first[p.count] == v1.C, "cru_fuse: y2's parts have " << p.first[p.count] << " channels, y1 has " << v1.C);
  return p;
}

template <class T>
Tensor fuse_forward(const Tensor& y1, const std::vector<Tensor>& y2_parts, math::CRUFuse kind, Tensor& b_out) {
  const NCS v1 = cuda::ncs_of(y1);
  std::vector<Tensor> ready;
  const Parts<T> parts = make_parts<T>(ready, y2_parts, v1);
  Tensor s = Tensor::empty({v1.N, 2, v1.C}, DType::F64, Device::CUDA);
  Tensor b = Tensor::empty({v1.N, 2, v1.C}, DType::F64, Device::CUDA);
  Tensor y = cuda::empty_like_layout(y1, y1.dtype());
  cru_plane_sums_kernel<T><<<unsigned(v1.N * v1.C), 128, 0, cuda::stream()>>>(
      v1, v1, parts, y1.device_data<T>(), nullptr, 1.0 / double(v1.S), s.device_data<double>());
  cuda::check_launch("cru_plane_sums_kernel");
  cru_weights_kernel<<<cuda::blocks_for(v1.N, 64), 64, 0, cuda::stream()>>>(kind, v1.N, v1.C, s.device_data<double>(),
                                                                            b.device_data<double>());
  cuda::check_launch("cru_weights_kernel");
  cru_apply_kernel<T><<<cuda::blocks_for(y1.numel()), cuda::kThreads, 0, cuda::stream()>>>(
      v1, cuda::ncs_of(y), parts, y1.device_data<T>(), b.device_data<double>(), y.device_data<T>());
  cuda::check_launch("cru_apply_kernel");
  b_out = b.to(y1.dtype());
  return y;
}

template <class T>
CRUFuseGrads fuse_backward(const Tensor& gy, const Tensor& y1, const std::vector<Tensor>& y2_parts,
                           math::CRUFuse kind, const Tensor& b_in) {
  const NCS v1 = cuda::ncs_of(y1), vg = cuda::ncs_of(gy);
  std::vector<Tensor> ready;
  Parts<T> parts = make_parts<T>(ready, y2_parts, v1);
  const Tensor b = b_in.to(DType::F64).contiguous();
  Tensor grad_b = Tensor::empty({v1.N, 2, v1.C}, DType::F64, Device::CUDA);
  Tensor grad_s = Tensor::empty({v1.N, 2, v1.C}, DType::F64, Device::CUDA);
  CRUFuseGrads out{cuda::empty_like_layout(y1, y1.dtype()), {}};
  for (int p = 0; p < parts.count; ++p) {
    out.grad_y2_parts.push_back(cuda::empty_like_layout(ready[p], y1.dtype()));
    parts.grad[p] = out.grad_y2_parts.back().device_data<T>();
    parts.grad_view[p] = cuda::ncs_of(out.grad_y2_parts.back());
  }
  cru_plane_sums_kernel<T><<<unsigned(v1.N * v1.C), 128, 0, cuda::stream()>>>(
      v1, vg, parts, y1.device_data<T>(), gy.device_data<T>(), 1.0, grad_b.device_data<double>());
  cuda::check_launch("cru_plane_sums_kernel (backward)");
  cru_weights_backward_kernel<<<cuda::blocks_for(v1.N, 64), 64, 0, cuda::stream()>>>(
      kind, v1.N, v1.C, b.device_data<double>(), grad_b.device_data<double>(), grad_s.device_data<double>());
  cuda::check_launch("cru_weights_backward_kernel");
  cru_backward_apply_kernel<T><<<cuda::blocks_for(gy.numel()), cuda::kThreads, 0, cuda::stream()>>>(
      vg, cuda::ncs_of(out.grad_y1), parts, gy.device_data<T>(), b.device_data<double>(), grad_s.device_data<double>(),
      out.grad_y1.device_data<T>());
  cuda::check_launch("cru_backward_apply_kernel");
  return out;
}

}  // namespace

Tensor CudaBackend::cru_fuse(const Tensor& y1_in, const std::vector<Tensor>& y2_parts, math::CRUFuse kind, Tensor& b) {
  cuda::OpScope scope("cru_fuse");
  const Tensor y1 = cuda::ncs_ready(y1_in);
  Tensor y;
  SCCONV_CUDA_FLOAT(y1.dtype(), "cru_fuse", y = fuse_forward<scalar_t>(y1, y2_parts, kind, b));
  return y;
}

CRUFuseGrads CudaBackend::cru_fuse_backward(const Tensor& grad_y, const Tensor& y1_in,
                                            const std::vector<Tensor>& y2_parts, math::CRUFuse kind, const Tensor& b) {
  cuda::OpScope scope("cru_fuse_backward");
  const Tensor y1 = cuda::ncs_ready(y1_in), gy = cuda::ncs_ready(grad_y);
  CRUFuseGrads g;
  SCCONV_CUDA_FLOAT(y1.dtype(), "cru_fuse_backward",
                    g = fuse_backward<scalar_t>(gy, y1, y2_parts, kind, b));
  return g;
}

Tensor CudaBackend::cru_fuse_lower(const Tensor& y1, const Tensor& low, const Tensor& w, math::CRUFuse kind, Tensor& b) {
  const Tensor y2 = conv2d(low, w, Tensor(), Conv2dParams{});
  return cru_fuse(y1, {y2}, kind, b);
}

CRUFuseLowerGrads CudaBackend::cru_fuse_lower_backward(const Tensor& grad_y, const Tensor& y1, const Tensor& low,
                                                       const Tensor& w, math::CRUFuse kind, const Tensor& b) {
  const Conv2dParams p;
  const Tensor y2 = conv2d(low, w, Tensor(), p);  // recomputed: the forward did not keep it
  CRUFuseGrads g = cru_fuse_backward(grad_y, y1, {y2}, kind, b);
  const Tensor& g2 = g.grad_y2_parts[0];
  return {g.grad_y1, conv2d_backward_data(g2, w, low.shape(), p),
          conv2d_backward_weights(g2, low, w.shape(), false, p).first};
}

}  // namespace scconv
