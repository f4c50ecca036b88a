// core/cuda/norm.cu: batch norm (with its ReLU / residual epilogue) and group norm on the GPU,
// forward and backward. Reference: core/reference/norm.cpp; formulas: core/math/norm.h.
//   batch norm: one block per channel sums its N * S elements (double), then an element-wise pass
//   group norm: one block per (sample, group) (norm_stats.cuh), then an element-wise pass;
//               backward: one block per (sample, group) for grad_x, one per channel for gamma/beta
#include "core/cuda/cuda_backend.h"
#include "core/cuda/norm_stats.cuh"
#include "core/math/activations.h"

namespace scconv {

using cuda::NCS;

namespace {

// (C) parameters of any shape as dense vectors
Tensor vec(const Tensor& t) { return t.contiguous(); }

// ---- batch norm ------------------------------------------------------------------------------

// Block c: the batch mean and rstd of channel c.
template <class T>
__global__ void bn_stats_kernel(NCS v, double eps, const T* x, T* mean, T* invstd) {
  __shared__ double shared[32];
  const int64_t c = blockIdx.x, M = v.N * v.S;
  double s = 0;
  for (int64_t r = threadIdx.x; r < M; r += blockDim.x) s += static_cast<double>(x[v.at(r / v.S, c, r % v.S)]);
  const double m = cuda::block_sum(s, shared) / double(M);
  double ssd = 0;
  for (int64_t r = threadIdx.x; r < M; r += blockDim.x) {
    const double d = static_cast<double>(x[v.at(r / v.S, c, r % v.S)]) - m;
    ssd += d * d;
  }
  ssd = cuda::block_sum(ssd, shared);
  if (threadIdx.x == 0) {
    mean[c] = static_cast<T>(m);
    invstd[c] = static_cast<T>(math::rstd_biased(ssd, double(M), eps));
  }
}

// y = act((x - mean) invstd gamma + beta + residual); res null without a residual.
template <class T>
__global__ void bn_apply_kernel(NCS vx, NCS vy, NCS vr, bool relu, const T* x, const T* mean, const T* invstd,
                                const T* gamma, const T* beta, const T* res, T* y) {
  SCCONV_GRID_LOOP(i, vx.N * vx.C * vx.S) {
    int64_t n, c, k;
    vx.decode(i, n, c, k);
    const double xhat = (static_cast<double>(x[vx.at(n, c, k)]) - double(mean[c])) * double(invstd[c]);
    double o = xhat * double(gamma[c]) + double(beta[c]);
    if (res) o += static_cast<double>(res[vr.at(n, c, k)]);
    y[vy.at(n, c, k)] = static_cast<T>(relu ? math::relu(o) : o);
  }
}

// grad_y masked by the epilogue's ReLU (y null: no ReLU)
template <class T>
__device__ __forceinline__ double bn_grad_out(const NCS& vg, const NCS& vyy, const T* gy, const T* y, int64_t n,
                                              int64_t c, int64_t k) {
  const double g = static_cast<double>(gy[vg.at(n, c, k)]);
  return y ? math::relu_grad(static_cast<double>(y[vyy.at(n, c, k)]), g) : g;
}

// Block c: sum_g = sum(grad_y), sum_gx = sum(grad_y * xhat) -> grad_beta, grad_gamma, sums (C, 2).
template <class T>
__global__ void bn_backward_reduce_kernel(NCS vg, NCS vx, NCS vyy, const T* gy, const T* x, const T* y,
                                          const T* mean, const T* invstd, T* grad_gamma, T* grad_beta,
                                          double* sums) {
  __shared__ double shared[32];
  const int64_t c = blockIdx.x, M = vx.N * vx.S;
  const double m = double(mean[c]), rs = double(invstd[c]);
  double sg = 0, sgx = 0;
  for (int64_t r = threadIdx.x; r < M; r += blockDim.x) {
    const int64_t n = r / vx.S, k = r % vx.S;
    const double g = bn_grad_out(vg, vyy, gy, y, n, c, k);
    sg += g;
    sgx += g * (static_cast<double>(x[vx.at(n, c, k)]) - m) * rs;
  }
  sg = cuda::block_sum(sg, shared);
  sgx = cuda::block_sum(sgx, shared);
  if (threadIdx.x == 0) {
    grad_gamma[c] = static_cast<T>(sgx);
    grad_beta[c] = static_cast<T>(sg);
    sums[2 * c] = sg;
    sums[2 * c + 1] = sgx;
  }
}

template <class T>
__global__ void bn_backward_x_kernel(NCS vg, NCS vx, NCS vyy, NCS vo, NCS vres, bool training, const T* gy,
                                     const T* x, const T* y, const T* mean, const T* invstd, const T* gamma,
                                     const double* sums, T* gx, T* grad_res) {
  const int64_t M = vx.N * vx.S;
  SCCONV_GRID_LOOP(i, vx.N * vx.C * vx.S) {
    int64_t n, c, k;
    vx.decode(i, n, c, k);
    const double g = bn_grad_out(vg, vyy, gy, y, n, c, k), ga = double(gamma[c]), rs = double(invstd[c]);
    const double gh = g * ga, xhat = (static_cast<double>(x[vx.at(n, c, k)]) - double(mean[c])) * rs;
    gx[vo.at(n, c, k)] = training ? static_cast<T>(math::norm_grad_x<double>(
                                        gh, xhat, rs, ga * sums[2 * c], ga * sums[2 * c + 1], double(M)))
                                  : static_cast<T>(gh * rs);
    if (grad_res) grad_res[vres.at(n, c, k)] = static_cast<T>(g);
  }
}

// ---- group norm ------------------------------------------------------------------------------

template <class T>
__global__ void gn_apply_kernel(NCS vx, NCS vy, int64_t G, const T* x, const T* mean, const T* rstd,
                                const T* gamma, const T* beta, T* y) {
  const int64_t Cg = vx.C / G;
  SCCONV_GRID_LOOP(i, vx.N * vx.C * vx.S) {
    int64_t n, c, k;
    vx.decode(i, n, c, k);
    const int64_t ng = n * G + c / Cg;
    const double xhat = (static_cast<double>(x[vx.at(n, c, k)]) - double(mean[ng])) * double(rstd[ng]);
    y[vy.at(n, c, k)] = static_cast<T>(xhat * double(gamma[c]) + double(beta[c]));
  }
}

// Block (n, g): the set sums, then grad_x of the set's elements.
template <class T>
__global__ void gn_backward_x_kernel(NCS vg, NCS vx, NCS vo, int64_t G, double eps, math::GroupNormKind kind,
                                     const T* gy, const T* x, const T* gamma, const T* mean, const T* rstd, T* gx) {
  __shared__ double shared[32];
  const int64_t ng = blockIdx.x, n = ng / G, g = ng % G, Cg = vx.C / G, M = Cg * vx.S;
  const double m = double(mean[ng]), r = double(rstd[ng]);
  double s_gh = 0, s_ghx = 0, s_ghd = 0;
  for (int64_t e = threadIdx.x; e < M; e += blockDim.x) {
    int64_t cl, k;
    cuda::group_element(vx, Cg, e, cl, k);
    const int64_t c = g * Cg + cl;
    const double d = static_cast<double>(x[vx.at(n, c, k)]) - m;
    const double gh = static_cast<double>(gy[vg.at(n, c, k)]) * double(gamma[c]);
    s_gh += gh;
    s_ghx += gh * d * r;
    s_ghd += gh * d;
  }
  s_gh = cuda::block_sum(s_gh, shared);
  s_ghx = cuda::block_sum(s_ghx, shared);
  s_ghd = cuda::block_sum(s_ghd, shared);
  for (int64_t e = threadIdx.x; e < M; e += blockDim.x) {
    int64_t cl, k;
    cuda::group_element(vx, Cg, e, cl, k);
    const int64_t c = g * Cg + cl;
    const double d = static_cast<double>(x[vx.at(n, c, k)]) - m;
    const double gh = static_cast<double>(gy[vg.at(n, c, k)]) * double(gamma[c]);
    const double v = kind == math::GroupNormKind::Torch
                         ? math::norm_grad_x<double>(gh, d * r, r, s_gh, s_ghx, double(M))
                         : math::seed_norm_grad_x<double>(gh, d, r, eps, s_gh, s_ghd, double(M));
    gx[vo.at(n, c, k)] = static_cast<T>(v);
  }
}

// Block c: grad_gamma[c] = sum grad_y * xhat, grad_beta[c] = sum grad_y over samples and pixels.
template <class T>
__global__ void gn_backward_affine_kernel(NCS vg, NCS vx, int64_t G, const T* gy, const T* x, const T* mean,
                                          const T* rstd, T* grad_gamma, T* grad_beta) {
  __shared__ double shared[32];
  const int64_t c = blockIdx.x, Cg = vx.C / G, M = vx.N * vx.S;
  double sg = 0, sgx = 0;
  for (int64_t r = threadIdx.x; r < M; r += blockDim.x) {
    const int64_t n = r / vx.S, k = r % vx.S, ng = n * G + c / Cg;
    const double g = static_cast<double>(gy[vg.at(n, c, k)]);
    sg += g;
    sgx += g * (static_cast<double>(x[vx.at(n, c, k)]) - double(mean[ng])) * double(rstd[ng]);
  }
  sg = cuda::block_sum(sg, shared);
  sgx = cuda::block_sum(sgx, shared);
  if (threadIdx.x == 0) {
    grad_gamma[c] = static_cast<T>(sgx);
    grad_beta[c] = static_cast<T>(sg);
  }
}

template <class T>
const T* ptr_or_null(const Tensor& t) { return t.defined() ? t.device_data<T>() : nullptr; }

}  // namespace

// ---- batch norm ------------------------------------------------------------------------------

Tensor CudaBackend::batch_norm_train(const Tensor& x_in, const Tensor& gamma, const Tensor& beta, double eps,
                                     Tensor& mean, Tensor& invstd, const NormEpilogue& ep) {
  cuda::OpScope scope("batch_norm");
  const Tensor x = cuda::ncs_ready(x_in);
  const NCS v = cuda::ncs_of(x);
  mean = Tensor::empty({v.C}, x.dtype(), Device::CUDA);
  invstd = Tensor::empty({v.C}, x.dtype(), Device::CUDA);
  SCCONV_CUDA_FLOAT(x.dtype(), "batch_norm",
                    bn_stats_kernel<scalar_t><<<unsigned(v.C), cuda::kThreads, 0, cuda::stream()>>>(
                        v, eps, x.device_data<scalar_t>(), mean.device_data<scalar_t>(),
                        invstd.device_data<scalar_t>()));
  cuda::check_launch("bn_stats_kernel");
  return batch_norm_apply(x, gamma, beta, mean, invstd, ep);
}

Tensor CudaBackend::batch_norm_apply(const Tensor& x_in, const Tensor& gamma_in, const Tensor& beta_in,
                                     const Tensor& mean_in, const Tensor& invstd_in, const NormEpilogue& ep) {
  cuda::OpScope scope("batch_norm");
  const Tensor x = cuda::ncs_ready(x_in);
  const Tensor gamma = vec(gamma_in), beta = vec(beta_in), mean = vec(mean_in), invstd = vec(invstd_in);
  const Tensor res = ep.residual.defined() ? cuda::ncs_ready(ep.residual) : Tensor();
  Tensor y = cuda::empty_like_layout(x, x.dtype());
  const NCS vx = cuda::ncs_of(x), vy = cuda::ncs_of(y), vr = res.defined() ? cuda::ncs_of(res) : vx;
  const int64_t n = x.numel();
  if (n == 0) return y;
  SCCONV_CUDA_FLOAT(x.dtype(), "batch_norm",
                    bn_apply_kernel<scalar_t><<<cuda::blocks_for(n), cuda::kThreads, 0, cuda::stream()>>>(
                        vx, vy, vr, ep.relu, x.device_data<scalar_t>(), mean.device_data<scalar_t>(),
                        invstd.device_data<scalar_t>(), gamma.device_data<scalar_t>(), beta.device_data<scalar_t>(),
                        ptr_or_null<scalar_t>(res), y.device_data<scalar_t>()));
  cuda::check_launch("bn_apply_kernel");
  return y;
}

BatchNormGrads CudaBackend::batch_norm_backward(const Tensor& grad_y_in, const Tensor& x_in, const Tensor& gamma_in,
                                                const Tensor& mean_in, const Tensor& invstd_in, bool training,
                                                const Tensor& y_in, bool want_residual) {
  cuda::OpScope scope("batch_norm_backward");
  const Tensor x = cuda::ncs_ready(x_in), gy = cuda::ncs_ready(grad_y_in);
  const Tensor y = y_in.defined() ? cuda::ncs_ready(y_in) : Tensor();
  const Tensor gamma = vec(gamma_in), mean = vec(mean_in), invstd = vec(invstd_in);
  const NCS vx = cuda::ncs_of(x), vg = cuda::ncs_of(gy), vyy = y.defined() ? cuda::ncs_of(y) : vx;
  BatchNormGrads g{cuda::empty_like_layout(x, x.dtype()), Tensor::empty({vx.C}, x.dtype(), Device::CUDA),
                   Tensor::empty({vx.C}, x.dtype(), Device::CUDA),
                   want_residual ? cuda::empty_like_layout(gy, x.dtype()) : Tensor()};
  Tensor sums = Tensor::empty({vx.C, 2}, DType::F64, Device::CUDA);
  const NCS vo = cuda::ncs_of(g.grad_x), vres = want_residual ? cuda::ncs_of(g.grad_residual) : vx;
  SCCONV_CUDA_FLOAT(x.dtype(), "batch_norm_backward", {
    bn_backward_reduce_kernel<scalar_t><<<unsigned(vx.C), cuda::kThreads, 0, cuda::stream()>>>(
        vg, vx, vyy, gy.device_data<scalar_t>(), x.device_data<scalar_t>(), ptr_or_null<scalar_t>(y),
        mean.device_data<scalar_t>(), invstd.device_data<scalar_t>(), g.grad_gamma.device_data<scalar_t>(),
        g.grad_beta.device_data<scalar_t>(), sums.device_data<double>());
    cuda::check_launch("bn_backward_reduce_kernel");
    bn_backward_x_kernel<scalar_t><<<cuda::blocks_for(x.numel()), cuda::kThreads, 0, cuda::stream()>>>(
        vg, vx, vyy, vo, vres, training, gy.device_data<scalar_t>(), x.device_data<scalar_t>(),
        ptr_or_null<scalar_t>(y), mean.device_data<scalar_t>(), invstd.device_data<scalar_t>(),
        gamma.device_data<scalar_t>(), sums.device_data<double>(), g.grad_x.device_data<scalar_t>(),
        want_residual ? g.grad_residual.device_data<scalar_t>() : nullptr);
    cuda::check_launch("bn_backward_x_kernel");
  });
  return g;
}

// ---- group norm ------------------------------------------------------------------------------

Tensor CudaBackend::group_norm(const Tensor& x_in, const Tensor& gamma_in, const Tensor& beta_in, int64_t groups,
                               double eps, GroupNormKind kind, Tensor& mean, Tensor& rstd) {
  cuda::OpScope scope("group_norm");
  const Tensor x = cuda::ncs_ready(x_in), gamma = vec(gamma_in), beta = vec(beta_in);
  const NCS vx = cuda::ncs_of(x);
  mean = Tensor::empty({vx.N, groups}, x.dtype(), Device::CUDA);
  rstd = Tensor::empty({vx.N, groups}, x.dtype(), Device::CUDA);
  Tensor y = cuda::empty_like_layout(x, x.dtype());
  if (x.numel() == 0) return y;
  const NCS vy = cuda::ncs_of(y);
  SCCONV_CUDA_FLOAT(x.dtype(), "group_norm", {
    cuda::group_stats_kernel<scalar_t><<<unsigned(vx.N * groups), cuda::kThreads, 0, cuda::stream()>>>(
        vx, groups, eps, kind, x.device_data<scalar_t>(), mean.device_data<scalar_t>(), rstd.device_data<scalar_t>());
    cuda::check_launch("group_stats_kernel");
    gn_apply_kernel<scalar_t><<<cuda::blocks_for(x.numel()), cuda::kThreads, 0, cuda::stream()>>>(
        vx, vy, groups, x.device_data<scalar_t>(), mean.device_data<scalar_t>(), rstd.device_data<scalar_t>(),
        gamma.device_data<scalar_t>(), beta.device_data<scalar_t>(), y.device_data<scalar_t>());
    cuda::check_launch("gn_apply_kernel");
  });
  return y;
}

GroupNormGrads CudaBackend::group_norm_backward(const Tensor& grad_y_in, const Tensor& x_in, const Tensor& gamma_in,
                                                int64_t groups, double eps, GroupNormKind kind, const Tensor& mean_in,
                                                const Tensor& rstd_in) {
  cuda::OpScope scope("group_norm_backward");
  const Tensor x = cuda::ncs_ready(x_in), gy = cuda::ncs_ready(grad_y_in), gamma = vec(gamma_in);
  const Tensor mean = vec(mean_in), rstd = vec(rstd_in);
  const NCS vx = cuda::ncs_of(x), vg = cuda::ncs_of(gy);
  GroupNormGrads out{cuda::empty_like_layout(x, x.dtype()), Tensor::empty({vx.C}, x.dtype(), Device::CUDA),
                     Tensor::empty({vx.C}, x.dtype(), Device::CUDA)};
  if (x.numel() == 0) return out;
  const NCS vo = cuda::ncs_of(out.grad_x);
  SCCONV_CUDA_FLOAT(x.dtype(), "group_norm_backward", {
    gn_backward_x_kernel<scalar_t><<<unsigned(vx.N * groups), cuda::kThreads, 0, cuda::stream()>>>(
        vg, vx, vo, groups, eps, kind, gy.device_data<scalar_t>(), x.device_data<scalar_t>(),
        gamma.device_data<scalar_t>(), mean.device_data<scalar_t>(), rstd.device_data<scalar_t>(),
        out.grad_x.device_data<scalar_t>());
    cuda::check_launch("gn_backward_x_kernel");
    gn_backward_affine_kernel<scalar_t><<<unsigned(vx.C), cuda::kThreads, 0, cuda::stream()>>>(
        vg, vx, groups, gy.device_data<scalar_t>(), x.device_data<scalar_t>(), mean.device_data<scalar_t>(),
        rstd.device_data<scalar_t>(), out.grad_gamma.device_data<scalar_t>(), out.grad_beta.device_data<scalar_t>());
    cuda::check_launch("gn_backward_affine_kernel");
  });
  return out;
}

}  // namespace scconv
