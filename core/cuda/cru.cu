// core/cuda/cru.cu: the fused CRU fuse on the GPU, forward and backward. Reference:
// core/reference/cru.cpp; the branch weights' softmax: core/math/cru.h. For y1 (N, C, S) and y2
// given as channel parts:
//   forward:  one block per (n, c) pools both branches -> s (N, 2, C) in double; one thread per
//             sample turns s into the weights b (math::cru_weights); y = b0 y1 + b1 y2 per element
//   backward: one block per (n, c) sums grad_y * y1 and grad_y * y2 -> grad_b; one thread per
//             sample: grad_s (math::cru_weights_backward); grad_y1, grad_y2 per element
// cru_fuse_lower folds the lower 1x1 convolution y2 = w low (w (C, Q)) into the fuse, so y2 is
// never written (as core/cpu/cru_lower.cpp does on the CPU):
//   forward:  y2's plane means are w times low's (s1 = w mean(low)); with the weights b, per
//             sample n: y = b0 y1 + W_n low, W_n = diag(b1[n]) w, one batched cuBLAS product
//             accumulated onto b0 y1
//   backward: M_n = gy_n low_n^T (C, Q), batched; grad_b1 = rows of w * M_n summed; from grad_s:
//             grad_y1 = b0 gy + grad_s0 / S; grad_low = W_n^T gy + w^T grad_s1 / S (batched
//             product accumulated onto that per-channel constant); grad_w = sum_n diag(b1[n]) M_n
//             + grad_s1^T mean(low)
#include "core/cuda/cuda_backend.h"
#include "core/cuda/kernels.cuh"
#include "core/math/cru.h"

namespace scconv {

using cuda::gemm;
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

// ---- cru_fuse_lower: the 1x1 convolution folded in ---------------------------------------------
// Block (n, c) of a: out[n * out_stride + c] = scale * sum_k a[n, c, k] (* b[n, c, k] when given).
template <class T>
__global__ void plane_dot_kernel(NCS va, const T* a, NCS vb, const T* b, double scale, double* out, int64_t out_stride) {
  __shared__ double shared[32];
  const int64_t n = blockIdx.x / va.C, c = blockIdx.x % va.C;
  double acc = 0;
  for (int64_t k = threadIdx.x; k < va.S; k += blockDim.x)
    acc += static_cast<double>(a[va.at(n, c, k)]) * (b ? static_cast<double>(b[vb.at(n, c, k)]) : 1.0);
  acc = cuda::block_sum(acc, shared);
  if (threadIdx.x == 0) out[n * out_stride + c] = acc * scale;
}

// Thread (n, c): s[n][1][c] = sum_q w[c, q] mean_low[n, q] (y2's plane mean), or with M given
// (N, C, Q): grad_b[n][1][c] = sum_q w[c, q] M[n, c, q].
template <class T>
__global__ void lower_rowdot_kernel(int64_t N, int64_t C, int64_t Q, const T* w, const double* mean_low, const T* M,
                                    double* out) {
  SCCONV_GRID_LOOP(i, N * C) {
    const int64_t n = i / C, c = i % C;
    double acc = 0;
    for (int64_t q = 0; q < Q; ++q)
      acc += static_cast<double>(w[c * Q + q]) * (M ? static_cast<double>(M[i * Q + q]) : mean_low[n * Q + q]);
    out[n * 2 * C + C + c] = acc;
  }
}

// W_n[c, q] = b[n][1][c] w[c, q], (N, C, Q).
template <class T>
__global__ void lower_scaled_weights_kernel(int64_t N, int64_t C, int64_t Q, const T* w, const double* b, T* wn) {
  SCCONV_GRID_LOOP(i, N * C * Q) {
    const int64_t n = i / (C * Q), c = (i / Q) % C;
    wn[i] = static_cast<T>(b[n * 2 * C + C + c] * static_cast<double>(w[i % (C * Q)]));
  }
}

// out = b[n][0][c] y1 (+ grad_s[n][0][c] / S when grad_s is given: grad_y1 from gy).
template <class T>
__global__ void lower_branch0_kernel(NCS vin, NCS vout, const T* in, const double* b, const double* grad_s, T* out) {
  const double inv_s = 1.0 / double(vin.S);
  SCCONV_GRID_LOOP(i, vin.N * vin.C * vin.S) {
    int64_t n, c, k;
    vin.decode(i, n, c, k);
    const int64_t j = n * 2 * vin.C + c;
    const double v = b[j] * static_cast<double>(in[vin.at(n, c, k)]) + (grad_s ? grad_s[j] * inv_s : 0.0);
    out[vout.at(n, c, k)] = static_cast<T>(v);
  }
}

// Thread (n, q): r[n, q] = sum_c w[c, q] grad_s[n][1][c] / S, the part of grad_low that the
// plane means give (the same at every pixel).
template <class T>
__global__ void lower_grad_low_base_kernel(int64_t N, int64_t C, int64_t Q, double inv_s, const T* w,
                                           const double* grad_s, double* r) {
  SCCONV_GRID_LOOP(i, N * Q) {
    const int64_t n = i / Q, q = i % Q;
    double acc = 0;
    for (int64_t c = 0; c < C; ++c) acc += static_cast<double>(w[c * Q + q]) * grad_s[n * 2 * C + C + c];
    r[i] = acc * inv_s;
  }
}
// out[n, q, k] = r[n, q] at every pixel k.
template <class T>
__global__ void broadcast_planes_kernel(NCS v, const double* r, T* out) {
  SCCONV_GRID_LOOP(i, v.N * v.C * v.S) {
    int64_t n, q, k;
    v.decode(i, n, q, k);
    out[v.at(n, q, k)] = static_cast<T>(r[n * v.C + q]);
  }
}

// Thread (c, q): grad_w[c, q] = sum_n b[n][1][c] M[n, c, q] + grad_s[n][1][c] mean_low[n, q].
template <class T>
__global__ void lower_grad_w_kernel(int64_t N, int64_t C, int64_t Q, const double* b, const T* M, const double* grad_s,
                                    const double* mean_low, T* grad_w) {
  SCCONV_GRID_LOOP(i, C * Q) {
    const int64_t c = i / Q, q = i % Q;
    double acc = 0;
    for (int64_t n = 0; n < N; ++n) {
      const int64_t j = n * 2 * C + C + c;
      acc += b[j] * static_cast<double>(M[(n * C + c) * Q + q]) + grad_s[j] * mean_low[n * Q + q];
    }
    grad_w[i] = static_cast<T>(acc);
  }
}

// The fold's operands, dense in y1's layout (channels-last or NCHW), and its per-sample GEMM
// shapes: pixels times channels for channels-last, channels times pixels for NCHW.
struct LowerShape {
  bool cl;
  int64_t N, C, Q, S;
};
LowerShape lower_shape(const Tensor& y1, const Tensor& low) {
  return {y1.suggest_memory_format() == MemoryFormat::ChannelsLast, y1.size(0), y1.size(1), low.size(1),
          y1.size(2) * y1.size(3)};
}
MemoryFormat format_of(const LowerShape& sh) { return sh.cl ? MemoryFormat::ChannelsLast : MemoryFormat::Contiguous; }
Tensor dense_as(const LowerShape& sh, const Tensor& t) { return t.contiguous(format_of(sh)); }
Tensor empty_as(const LowerShape& sh, const Shape& shape, DType dt) {
  return Tensor::empty(shape, dt, Device::CUDA, format_of(sh));
}

template <class T>
void launch_plane_means(const Tensor& x, double* out, int64_t out_stride) {  // x dense
  const NCS v = cuda::ncs_of(x);
  plane_dot_kernel<T><<<unsigned(v.N * v.C), 128, 0, cuda::stream()>>>(v, x.device_data<T>(), v, nullptr,
                                                                       1.0 / double(v.S), out, out_stride);
  cuda::check_launch("plane_dot_kernel");
}

template <class T>
Tensor lower_scaled_weights(const LowerShape& sh, const Tensor& w, const double* b) {  // (N, C, Q)
  Tensor wn = Tensor::empty({sh.N, sh.C, sh.Q}, w.dtype(), Device::CUDA);
  lower_scaled_weights_kernel<T><<<cuda::blocks_for(wn.numel()), cuda::kThreads, 0, cuda::stream()>>>(
      sh.N, sh.C, sh.Q, w.device_data<T>(), b, wn.device_data<T>());
  cuda::check_launch("lower_scaled_weights_kernel");
  return wn;
}

template <class T>
Tensor lower_forward(const Tensor& y1_in, const Tensor& low_in, const Tensor& w_in, math::CRUFuse kind, Tensor& b_out) {
  const LowerShape sh = lower_shape(y1_in, low_in);
  const Tensor y1 = cuda::ncs_ready(y1_in), low = dense_as(sh, low_in), w = w_in.contiguous();
  const NCS v1 = cuda::ncs_of(y1);
  Tensor s = Tensor::empty({sh.N, 2, sh.C}, DType::F64, Device::CUDA);
  Tensor b = Tensor::empty({sh.N, 2, sh.C}, DType::F64, Device::CUDA);
  Tensor mean_low = Tensor::empty({sh.N, sh.Q}, DType::F64, Device::CUDA);
  plane_dot_kernel<T><<<unsigned(sh.N * sh.C), 128, 0, cuda::stream()>>>(v1, y1.device_data<T>(), v1, nullptr,
                                                                         1.0 / double(sh.S), s.device_data<double>(), 2 * sh.C);
  cuda::check_launch("plane_dot_kernel");
  launch_plane_means<T>(low, mean_low.device_data<double>(), sh.Q);
  lower_rowdot_kernel<T><<<cuda::blocks_for(sh.N * sh.C), cuda::kThreads, 0, cuda::stream()>>>(
      sh.N, sh.C, sh.Q, w.device_data<T>(), mean_low.device_data<double>(), nullptr, s.device_data<double>());
  cuda::check_launch("lower_rowdot_kernel");
  cru_weights_kernel<<<cuda::blocks_for(sh.N, 64), 64, 0, cuda::stream()>>>(kind, sh.N, sh.C, s.device_data<double>(),
                                                                            b.device_data<double>());
  cuda::check_launch("cru_weights_kernel");
  const Tensor wn = lower_scaled_weights<T>(sh, w, b.device_data<double>());
  Tensor y = empty_as(sh, y1.shape(), y1.dtype());
  lower_branch0_kernel<T><<<cuda::blocks_for(y.numel()), cuda::kThreads, 0, cuda::stream()>>>(
      v1, cuda::ncs_of(y), y1.device_data<T>(), b.device_data<double>(), nullptr, y.device_data<T>());
  cuda::check_launch("lower_branch0_kernel");
  const int64_t C = sh.C, Q = sh.Q, S = sh.S;
  if (sh.cl)  // y_n (S, C) += low_n (S, Q) W_n^T
    gemm(y.dtype(), false, true, S, C, Q, low.raw_device_data(), Q, S * Q, wn.raw_device_data(), Q, C * Q, 1.0,
         y.raw_device_data(), C, S * C, sh.N);
  else  // y_n (C, S) += W_n (C, Q) low_n (Q, S)
    gemm(y.dtype(), false, false, C, S, Q, wn.raw_device_data(), Q, C * Q, low.raw_device_data(), S, Q * S, 1.0,
         y.raw_device_data(), S, C * S, sh.N);
  b_out = b.to(y1.dtype());
  return y;
}

template <class T>
CRUFuseLowerGrads lower_backward(const Tensor& gy_in, const Tensor& y1_in, const Tensor& low_in, const Tensor& w_in,
                                 math::CRUFuse kind, const Tensor& b_in) {
  const LowerShape sh = lower_shape(y1_in, low_in);
  const Tensor y1 = cuda::ncs_ready(y1_in), low = dense_as(sh, low_in), gy = dense_as(sh, gy_in), w = w_in.contiguous();
  const Tensor b = b_in.to(DType::F64).contiguous();
  const NCS v1 = cuda::ncs_of(y1), vg = cuda::ncs_of(gy);
  const int64_t N = sh.N, C = sh.C, Q = sh.Q, S = sh.S;
  // grad_b: branch 0 from gy and y1, branch 1 from M_n = gy_n low_n^T (C, Q)
  Tensor grad_b = Tensor::empty({N, 2, C}, DType::F64, Device::CUDA);
  Tensor grad_s = Tensor::empty({N, 2, C}, DType::F64, Device::CUDA);
  Tensor mean_low = Tensor::empty({N, Q}, DType::F64, Device::CUDA);
  Tensor M = Tensor::empty({N, C, Q}, y1.dtype(), Device::CUDA);
  plane_dot_kernel<T><<<unsigned(N * C), 128, 0, cuda::stream()>>>(vg, gy.device_data<T>(), v1, y1.device_data<T>(), 1.0,
                                                                   grad_b.device_data<double>(), 2 * C);
  cuda::check_launch("plane_dot_kernel (backward)");
  if (sh.cl)  // M_n = gy_n^T (C, S) low_n (S, Q)
    gemm(M.dtype(), true, false, C, Q, S, gy.raw_device_data(), C, S * C, low.raw_device_data(), Q, S * Q, 0.0,
         M.raw_device_data(), Q, C * Q, N);
  else  // M_n = gy_n (C, S) low_n^T (S, Q)
    gemm(M.dtype(), false, true, C, Q, S, gy.raw_device_data(), S, C * S, low.raw_device_data(), S, Q * S, 0.0,
         M.raw_device_data(), Q, C * Q, N);
  lower_rowdot_kernel<T><<<cuda::blocks_for(N * C), cuda::kThreads, 0, cuda::stream()>>>(
      N, C, Q, w.device_data<T>(), nullptr, M.device_data<T>(), grad_b.device_data<double>());
  cuda::check_launch("lower_rowdot_kernel (backward)");
  cru_weights_backward_kernel<<<cuda::blocks_for(N, 64), 64, 0, cuda::stream()>>>(
      kind, N, C, b.device_data<double>(), grad_b.device_data<double>(), grad_s.device_data<double>());
  cuda::check_launch("cru_weights_backward_kernel");
  CRUFuseLowerGrads out{empty_as(sh, y1.shape(), y1.dtype()), empty_as(sh, low.shape(), y1.dtype()),
                        Tensor::empty(w_in.shape(), y1.dtype(), Device::CUDA)};
  lower_branch0_kernel<T><<<cuda::blocks_for(gy.numel()), cuda::kThreads, 0, cuda::stream()>>>(
      vg, cuda::ncs_of(out.grad_y1), gy.device_data<T>(), b.device_data<double>(), grad_s.device_data<double>(),
      out.grad_y1.device_data<T>());
  cuda::check_launch("lower_branch0_kernel (backward)");
  // grad_low = (w^T grad_s1 / S at every pixel) + W_n^T gy_n
  const Tensor wn = lower_scaled_weights<T>(sh, w, b.device_data<double>());
  Tensor r = Tensor::empty({N, Q}, DType::F64, Device::CUDA);
  lower_grad_low_base_kernel<T><<<cuda::blocks_for(N * Q), cuda::kThreads, 0, cuda::stream()>>>(
      N, C, Q, 1.0 / double(S), w.device_data<T>(), grad_s.device_data<double>(), r.device_data<double>());
  cuda::check_launch("lower_grad_low_base_kernel");
  broadcast_planes_kernel<T><<<cuda::blocks_for(out.grad_low.numel()), cuda::kThreads, 0, cuda::stream()>>>(
      cuda::ncs_of(out.grad_low), r.device_data<double>(), out.grad_low.device_data<T>());
  cuda::check_launch("broadcast_planes_kernel");
  if (sh.cl)  // grad_low_n (S, Q) += gy_n (S, C) W_n (C, Q)
    gemm(M.dtype(), false, false, S, Q, C, gy.raw_device_data(), C, S * C, wn.raw_device_data(), Q, C * Q, 1.0,
         out.grad_low.raw_device_data(), Q, S * Q, N);
  else  // grad_low_n (Q, S) += W_n^T (Q, C) gy_n (C, S)
    gemm(M.dtype(), true, false, Q, S, C, wn.raw_device_data(), Q, C * Q, gy.raw_device_data(), S, C * S, 1.0,
         out.grad_low.raw_device_data(), S, Q * S, N);
  launch_plane_means<T>(low, mean_low.device_data<double>(), Q);
  lower_grad_w_kernel<T><<<cuda::blocks_for(C * Q), cuda::kThreads, 0, cuda::stream()>>>(
      N, C, Q, b.device_data<double>(), M.device_data<T>(), grad_s.device_data<double>(), mean_low.device_data<double>(),
      out.grad_w.device_data<T>());
  cuda::check_launch("lower_grad_w_kernel");
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
  cuda::OpScope scope("cru_fuse_lower");
  SCCONV_CHECK(y1.dim() == 4 && low.dim() == 4 && w.dim() == 4 && w.size(0) == y1.size(1) && w.size(1) == low.size(1) &&
                   w.size(2) == 1 && w.size(3) == 1 && low.size(0) == y1.size(0) && low.size(2) == y1.size(2) &&
                   low.size(3) == y1.size(3),
               "cru_fuse_lower: y1 " << y1.str() << ", low " << low.str() << " and w " << w.str()
                                     << " do not fit y2 = conv1x1(low, w) of y1's shape");
  Tensor y;
  SCCONV_CUDA_FLOAT(y1.dtype(), "cru_fuse_lower", y = lower_forward<scalar_t>(y1, low, w, kind, b));
  return y;
}

CRUFuseLowerGrads CudaBackend::cru_fuse_lower_backward(const Tensor& grad_y, const Tensor& y1, const Tensor& low,
                                                       const Tensor& w, math::CRUFuse kind, const Tensor& b) {
  cuda::OpScope scope("cru_fuse_lower_backward");
  CRUFuseLowerGrads g;
  SCCONV_CUDA_FLOAT(y1.dtype(), "cru_fuse_lower_backward", g = lower_backward<scalar_t>(grad_y, y1, low, w, kind, b));
  return g;
}

}  // namespace scconv
