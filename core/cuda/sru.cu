// core/cuda/sru.cu: the fused SRU on the GPU, forward and backward. Reference:
// core/reference/sru.cpp (read it for the steps); gate formulas: core/math/sru.h; group norm:
// core/math/norm.h. For x (N, C, S), G groups of Cg channels, partner channel c' = (c + C/2) % C:
//   forward:  group statistics (one block per (n, group), norm_stats.cuh), then per element
//             y[c] = W1[c] x[c] + W2[c'] x[c'], everything else recomputed from x on the fly
//   backward: one block per channel sums grad_gamma, grad_beta, grad_w; one block per
//             (n, group) sums the group norm's set sums and writes grad_x (direct + norm parts)
#include "core/cuda/cuda_backend.h"
#include "core/cuda/norm_stats.cuh"
#include "core/math/sru.h"

namespace scconv {

using cuda::NCS;

namespace {

struct SRUArgs {
  int64_t G, Cg;
  double eps, threshold;
  math::GroupNormKind gn;
  math::SRUGate gate;
};

// Everything the forward computes at one element (ReferenceBackend's sru_element).
struct SRUElement {
  double x, xhat, gn, r, w1, w2;
};
template <class T>
__device__ SRUElement sru_element(const NCS& v, const SRUArgs& a, const T* x, const T* gamma, const T* beta,
                                  const T* w, const T* mean, const T* rstd, int64_t n, int64_t c, int64_t k) {
  const int64_t ng = n * a.G + c / a.Cg;
  SRUElement e;
  e.x = static_cast<double>(x[v.at(n, c, k)]);
  e.xhat = (e.x - double(mean[ng])) * double(rstd[ng]);
  e.gn = e.xhat * double(gamma[c]) + double(beta[c]);
  e.r = 1.0 / (1.0 + exp(-e.gn * double(w[c])));
  math::sru_gate(e.r, a.threshold, a.gate, e.w1, e.w2);
  return e;
}

template <class T>
__global__ void sru_forward_kernel(NCS v, NCS vy, SRUArgs a, const T* x, const T* gamma, const T* beta, const T* w,
                                   const T* mean, const T* rstd, T* y) {
  SCCONV_GRID_LOOP(i, v.N * v.C * v.S) {
    int64_t n, c, k;
    v.decode(i, n, c, k);
    const int64_t cp = (c + v.C / 2) % v.C;
    const SRUElement self = sru_element(v, a, x, gamma, beta, w, mean, rstd, n, c, k);
    const SRUElement other = sru_element(v, a, x, gamma, beta, w, mean, rstd, n, cp, k);
    y[vy.at(n, c, k)] = static_cast<T>(self.w1 * self.x + other.w2 * other.x);
  }
}

// The gate's backward at one element: grad_z (through the sigmoid) from g = grad_y[c], g2 = grad_y[c'].
__device__ __forceinline__ double sru_grad_z(const SRUElement& e, const SRUArgs& a, double g, double g2) {
  const double grad_r = math::sru_gate_grad(e.r, a.threshold, a.gate, g, g2, e.x);
  return grad_r * e.r * (1.0 - e.r);
}

// Block c: grad_w[c] = sum grad_z Gn, grad_beta[c] = sum grad_Gn, grad_gamma[c] = sum grad_Gn xhat.
template <class T>
__global__ void sru_backward_channel_kernel(NCS v, NCS vg, SRUArgs a, const T* gy, const T* x, const T* gamma,
                                            const T* beta, const T* w, const T* mean, const T* rstd, T* grad_gamma,
                                            T* grad_beta, T* grad_w) {
  __shared__ double shared[32];
  const int64_t c = blockIdx.x, cp = (c + v.C / 2) % v.C, M = v.N * v.S;
  double sw = 0, sb = 0, sg = 0;
  for (int64_t r = threadIdx.x; r < M; r += blockDim.x) {
    const int64_t n = r / v.S, k = r % v.S;
    const SRUElement e = sru_element(v, a, x, gamma, beta, w, mean, rstd, n, c, k);
    const double gz = sru_grad_z(e, a, double(gy[vg.at(n, c, k)]), double(gy[vg.at(n, cp, k)]));
    const double ggn = gz * double(w[c]);
    sw += gz * e.gn;
    sb += ggn;
    sg += ggn * e.xhat;
  }
  sw = cuda::block_sum(sw, shared);
  sb = cuda::block_sum(sb, shared);
  sg = cuda::block_sum(sg, shared);
  if (threadIdx.x == 0) {
    grad_w[c] = static_cast<T>(sw);
    grad_beta[c] = static_cast<T>(sb);
    grad_gamma[c] = static_cast<T>(sg);
  }
}

// Block (n, g): grad_x = W1 g + W2 g' + the group norm's backward of grad_Gn over the group.
template <class T>
__global__ void sru_backward_x_kernel(NCS v, NCS vg, NCS vo, SRUArgs a, const T* gy, const T* x, const T* gamma,
                                      const T* beta, const T* w, const T* mean, const T* rstd, T* gx) {
  __shared__ double shared[32];
  const int64_t ng = blockIdx.x, n = ng / a.G, grp = ng % a.G, M = a.Cg * v.S;
  const double r = double(rstd[ng]);
  double s_gh = 0, s_ghx = 0;
  for (int64_t q = threadIdx.x; q < M; q += blockDim.x) {
    int64_t cl, k;
    cuda::group_element(v, a.Cg, q, cl, k);
    const int64_t c = grp * a.Cg + cl, cp = (c + v.C / 2) % v.C;
    const SRUElement e = sru_element(v, a, x, gamma, beta, w, mean, rstd, n, c, k);
    const double gh = sru_grad_z(e, a, double(gy[vg.at(n, c, k)]), double(gy[vg.at(n, cp, k)])) * double(w[c]) *
                      double(gamma[c]);
    s_gh += gh;
    s_ghx += gh * e.xhat;
  }
  s_gh = cuda::block_sum(s_gh, shared);
  s_ghx = cuda::block_sum(s_ghx, shared);
  for (int64_t q = threadIdx.x; q < M; q += blockDim.x) {
    int64_t cl, k;
    cuda::group_element(v, a.Cg, q, cl, k);
    const int64_t c = grp * a.Cg + cl, cp = (c + v.C / 2) % v.C;
    const SRUElement e = sru_element(v, a, x, gamma, beta, w, mean, rstd, n, c, k);
    const double g = double(gy[vg.at(n, c, k)]), g2 = double(gy[vg.at(n, cp, k)]);
    const double gh = sru_grad_z(e, a, g, g2) * double(w[c]) * double(gamma[c]);
    const double dev = e.x - double(mean[ng]);
    const double norm = a.gn == math::GroupNormKind::Torch
                            ? math::norm_grad_x<double>(gh, e.xhat, r, s_gh, s_ghx, double(M))
                            : math::seed_norm_grad_x<double>(gh, dev, r, a.eps, s_gh, s_ghx / r, double(M));
    gx[vo.at(n, c, k)] = static_cast<T>(e.w1 * g + e.w2 * g2 + norm);
  }
}

SRUArgs sru_args(const NCS& v, const SRUParams& p) {
  SCCONV_CHECK(p.groups > 0 && v.C % p.groups == 0,
               "sru: " << v.C << " channels do not split into " << p.groups << " groups");
  return {p.groups, v.C / p.groups, p.eps, p.threshold, p.gn, p.gate};
}

}  // namespace

Tensor CudaBackend::sru_forward(const Tensor& x_in, const Tensor& gamma_in, const Tensor& beta_in, const Tensor& w_in,
                                const SRUParams& p, Tensor& mean, Tensor& rstd) {
  cuda::OpScope scope("sru");
  const Tensor x = cuda::ncs_ready(x_in), gamma = gamma_in.contiguous(), beta = beta_in.contiguous(),
               w = w_in.contiguous();
  const NCS v = cuda::ncs_of(x);
  const SRUArgs a = sru_args(v, p);
  mean = Tensor::empty({v.N, p.groups}, x.dtype(), Device::CUDA);
  rstd = Tensor::empty({v.N, p.groups}, x.dtype(), Device::CUDA);
  Tensor y = cuda::empty_like_layout(x, x.dtype());
  if (x.numel() == 0) return y;
  const NCS vy = cuda::ncs_of(y);
  SCCONV_CUDA_FLOAT(x.dtype(), "sru", {
    cuda::group_stats_kernel<scalar_t><<<unsigned(v.N * p.groups), cuda::kThreads, 0, cuda::stream()>>>(
        v, p.groups, p.eps, p.gn, x.device_data<scalar_t>(), mean.device_data<scalar_t>(), rstd.device_data<scalar_t>());
    cuda::check_launch("group_stats_kernel (sru)");
    sru_forward_kernel<scalar_t><<<cuda::blocks_for(x.numel()), cuda::kThreads, 0, cuda::stream()>>>(
        v, vy, a, x.device_data<scalar_t>(), gamma.device_data<scalar_t>(), beta.device_data<scalar_t>(),
        w.device_data<scalar_t>(), mean.device_data<scalar_t>(), rstd.device_data<scalar_t>(), y.device_data<scalar_t>());
    cuda::check_launch("sru_forward_kernel");
  });
  return y;
}

SRUGrads CudaBackend::sru_backward(const Tensor& grad_y_in, const Tensor& x_in, const Tensor& gamma_in,
                                   const Tensor& beta_in, const Tensor& w_in, const SRUParams& p, const Tensor& mean_in,
                                   const Tensor& rstd_in) {
  cuda::OpScope scope("sru_backward");
  const Tensor x = cuda::ncs_ready(x_in), gy = cuda::ncs_ready(grad_y_in);
  const Tensor gamma = gamma_in.contiguous(), beta = beta_in.contiguous(), w = w_in.contiguous();
  const Tensor mean = mean_in.contiguous(), rstd = rstd_in.contiguous();
  const NCS v = cuda::ncs_of(x), vg = cuda::ncs_of(gy);
  const SRUArgs a = sru_args(v, p);
  SRUGrads g{cuda::empty_like_layout(x, x.dtype()), Tensor::empty({v.C}, x.dtype(), Device::CUDA),
             Tensor::empty({v.C}, x.dtype(), Device::CUDA), Tensor::empty({v.C}, x.dtype(), Device::CUDA)};
  if (x.numel() == 0) return g;
  const NCS vo = cuda::ncs_of(g.grad_x);
  SCCONV_CUDA_FLOAT(x.dtype(), "sru_backward", {
    sru_backward_channel_kernel<scalar_t><<<unsigned(v.C), cuda::kThreads, 0, cuda::stream()>>>(
        v, vg, a, gy.device_data<scalar_t>(), x.device_data<scalar_t>(), gamma.device_data<scalar_t>(),
        beta.device_data<scalar_t>(), w.device_data<scalar_t>(), mean.device_data<scalar_t>(),
        rstd.device_data<scalar_t>(), g.grad_gamma.device_data<scalar_t>(), g.grad_beta.device_data<scalar_t>(),
        g.grad_w.device_data<scalar_t>());
    cuda::check_launch("sru_backward_channel_kernel");
    sru_backward_x_kernel<scalar_t><<<unsigned(v.N * p.groups), cuda::kThreads, 0, cuda::stream()>>>(
        v, vg, vo, a, gy.device_data<scalar_t>(), x.device_data<scalar_t>(), gamma.device_data<scalar_t>(),
        beta.device_data<scalar_t>(), w.device_data<scalar_t>(), mean.device_data<scalar_t>(),
        rstd.device_data<scalar_t>(), g.grad_x.device_data<scalar_t>());
    cuda::check_launch("sru_backward_x_kernel");
  });
  return g;
}

}  // namespace scconv
