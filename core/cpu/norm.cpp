// core/cpu/norm.cpp: fast batch norm and group norm. Batch norm on NCHW works per channel over
// the N planes of that channel; on channels-last tensors over rows of C channels (vectorised
// across channels, summed in fixed chunks of rows so that results do not depend on the thread
// count). Group norm works per (sample, group) over one contiguous block of C/G*H*W elements.
// Statistics accumulate in double. Formulas: core/math/norm.h. Reference: core/reference/norm.cpp.
#include <algorithm>
#include <array>
#include <vector>

#include "core/cpu/cpu_backend.h"
#include "core/cpu/vec.h"
#include "core/math/activations.h"
#include "core/math/norm.h"
#include "core/parallel.h"

namespace scconv {

namespace {
int64_t spatial(const Tensor& x) { return numel_from(x.shape(), 2); }

// The batch norm epilogue of one element: v (+ residual), then ReLU (NormEpilogue).
template <class T>
inline T epilogue(T v, const T* residual, int64_t i, bool relu) {
  if (residual) v += residual[i];
  return relu ? math::relu(v) : v;
}

// Applies y = act(x * scale[c] + shift[c] (+ residual)) over contiguous (N, C, S).
template <class T>
void affine_per_channel(const T* X, T* Y, int64_t N, int64_t C, int64_t S,
                        const std::vector<T>& scale, const std::vector<T>& shift, const T* R, bool relu) {
  parallel_for(N * C, std::max<int64_t>(1, 16384 / std::max<int64_t>(S, 1)), [&](int64_t b, int64_t e) {
    for (int64_t p = b; p < e; ++p) {
      const T a = scale[p % C], s = shift[p % C];
      const T* __restrict xp = X + p * S;
      const T* __restrict rp = R ? R + p * S : nullptr;
      T* __restrict yp = Y + p * S;
      for (int64_t k = 0; k < S; ++k) yp[k] = epilogue(xp[k] * a + s, rp, k, relu);
    }
  });
}
// ---- channels-last: an (M rows, C) matrix -----------------------------------------------------------

// Per channel, sums over all M rows: add_block(r0, rows, acc, out) adds the column sums of rows
// [r0, r0 + rows) into out (C doubles; acc is C values of scratch), e.g. cpu::add_columns. Fixed
// chunks of rows spread over the threads, added in chunk order: the same at any thread count.
// K sums per channel: acc and out hold K * C values.
template <class T, int K = 1, class F>
std::vector<double> chunk_sums(int64_t M, int64_t C, F add_block) {
  const int64_t chunks = (M + cpu::kRowChunk - 1) / cpu::kRowChunk;
  std::vector<double> part(chunks * K * C, 0.0), sums(K * C, 0.0);
  parallel_for(chunks, 1, [&](int64_t b, int64_t e) {
    std::vector<T> acc(K * C);
    for (int64_t ch = b; ch < e; ++ch) {
      const int64_t r0 = ch * cpu::kRowChunk;
      add_block(r0, std::min(M - r0, cpu::kRowChunk), acc.data(), part.data() + ch * K * C);
    }
  });
  for (int64_t ch = 0; ch < chunks; ++ch)
    for (int64_t i = 0; i < K * C; ++i) sums[i] += part[ch * K * C + i];
  return sums;
}

// y = act(x * a[c] + b[c] (+ residual)) over rows of C.
template <class T>
void rows_affine(const T* X, T* Y, int64_t M, int64_t C, const std::vector<T>& a, const std::vector<T>& b,
                 const T* R, bool relu) {
  parallel_for(M, std::max<int64_t>(1, 16384 / C), [&](int64_t lo, int64_t hi) {
    const T* __restrict pa = a.data();
    const T* __restrict pb = b.data();
    for (int64_t r = lo; r < hi; ++r) {
      const T* __restrict xr = X + r * C;
      const T* __restrict rr = R ? R + r * C : nullptr;
      T* __restrict yr = Y + r * C;
      for (int64_t c = 0; c < C; ++c) yr[c] = epilogue(xr[c] * pa[c] + pb[c], rr, c, relu);
    }
  });
}

// A block of rows of the channels-last backward: out[c] += sum g, out[C + c] += sum g (x - mean),
// g = grad_y masked by the ReLU (y > 0) when Relu; two rows at a time (see cpu::add_columns).
template <class T, bool Relu>
void add_bn_grad_sums(const T* __restrict x, const T* __restrict gy, const T* __restrict y,
                      const T* __restrict mu, int64_t C, int64_t rows, T* __restrict acc,
                      double* out) {
  T* __restrict a0 = acc;
  T* __restrict a1 = acc + C;
  std::fill(acc, acc + 2 * C, T(0));
  auto grad = [&](int64_t i) { return Relu && !(y[i] > T(0)) ? T(0) : gy[i]; };
  int64_t r = 0;
  for (; r + 2 <= rows; r += 2) {
    const int64_t o = r * C;
    for (int64_t c = 0; c < C; ++c) {
      const T g0 = grad(o + c), g1 = grad(o + C + c);
      a0[c] += g0 + g1;
      a1[c] += g0 * (x[o + c] - mu[c]) + g1 * (x[o + C + c] - mu[c]);
    }
  }
  for (; r < rows; ++r)
    for (int64_t c = 0; c < C; ++c) {
      const T g = grad(r * C + c);
      a0[c] += g;
      a1[c] += g * (x[r * C + c] - mu[c]);
    }
  for (int64_t i = 0; i < 2 * C; ++i) out[i] += acc[i];
}
// grad_x = kg g + kx x + k0 for one row; grad_residual = g when gr is given.
template <class T, bool Relu>
void bn_grad_x_row(const T* __restrict x, const T* __restrict gy, const T* __restrict y,
                   const T* __restrict kg, const T* __restrict kx, const T* __restrict k0,
                   T* __restrict gx, T* __restrict gr, int64_t C) {
  for (int64_t c = 0; c < C; ++c) {
    const T g = Relu && !(y[c] > T(0)) ? T(0) : gy[c];
    gx[c] = kg[c] * g + kx[c] * x[c] + k0[c];
  }
  if (gr)
    for (int64_t c = 0; c < C; ++c) gr[c] = Relu && !(y[c] > T(0)) ? T(0) : gy[c];
}
template <class F>
void with_relu(bool relu, F f) {
  if (relu) f.template operator()<true>();
  else f.template operator()<false>();
}

bool channels_last(const Tensor& x) { return x.suggest_memory_format() == MemoryFormat::ChannelsLast; }

}  // namespace

// ---- batch norm ------------------------------------------------------------------------------

Tensor CpuBackend::batch_norm_train(const Tensor& x_in, const Tensor& gamma, const Tensor& beta,
                                    double eps, Tensor& mean, Tensor& invstd, const NormEpilogue& ep) {
  if (channels_last(x_in)) {
    Tensor x = x_in.contiguous(MemoryFormat::ChannelsLast);
    const int64_t C = x.size(1), M = x.numel() / C;
    mean = Tensor::empty({C}, x.dtype());
    invstd = Tensor::empty({C}, x.dtype());
    SCCONV_DISPATCH_FLOAT(x.dtype(), "batch_norm", [&] {
      using T = scalar_t;
      const T* X = x.data<T>();
      const std::vector<double> s = chunk_sums<T>(M, C, [&](int64_t r0, int64_t rows, T* acc, double* out) {
        cpu::add_columns<T>(X + r0 * C, nullptr, C, rows, acc, out);
      });
      std::vector<T> m(C);
      for (int64_t c = 0; c < C; ++c) m[c] = T(s[c] / double(M));
      const std::vector<double> ssd = chunk_sums<T>(M, C, [&](int64_t r0, int64_t rows, T* acc, double* out) {
        cpu::add_sq_dev_columns<T>(X + r0 * C, m.data(), C, rows, acc, out);
      });
      for (int64_t c = 0; c < C; ++c) {
        mean.data<T>()[c] = m[c];
        invstd.data<T>()[c] = T(math::rstd_biased(ssd[c], double(M), eps));
      }
    });
    return batch_norm_apply(x, gamma, beta, mean, invstd, ep);
  }
  Tensor x = x_in.contiguous();
  const int64_t N = x.size(0), C = x.size(1), S = spatial(x), M = N * S;
  mean = Tensor::empty({C}, x.dtype());
  invstd = Tensor::empty({C}, x.dtype());
  SCCONV_DISPATCH_FLOAT(x.dtype(), "batch_norm", [&] {
    using T = scalar_t;
    const T* X = x.data<T>();
    parallel_for(C, 1, [&](int64_t b, int64_t e) {
      for (int64_t c = b; c < e; ++c) {
        double s = 0, ssd = 0;
        for (int64_t n = 0; n < N; ++n) s += cpu::sum_run(X + (n * C + c) * S, S);
        const double m = s / M;
        for (int64_t n = 0; n < N; ++n)
          ssd += cpu::sum_sq_dev_run(X + (n * C + c) * S, S, static_cast<T>(m));
        mean.data<T>()[c] = static_cast<T>(m);
        invstd.data<T>()[c] = static_cast<T>(math::rstd_biased(ssd, M, eps));
      }
    });
  });
  return batch_norm_apply(x, gamma, beta, mean, invstd, ep);
}

Tensor CpuBackend::batch_norm_apply(const Tensor& x_in, const Tensor& gamma, const Tensor& beta,
                                    const Tensor& mean, const Tensor& invstd, const NormEpilogue& ep) {
  const bool cl = channels_last(x_in);
  const MemoryFormat fmt = cl ? MemoryFormat::ChannelsLast : MemoryFormat::Contiguous;
  Tensor x = x_in.contiguous(fmt);
  Tensor res = ep.residual.defined() ? ep.residual.contiguous(fmt) : Tensor();
  const int64_t N = x.size(0), C = x.size(1), S = spatial(x);
  Tensor y = Tensor::empty(x.shape(), x.dtype(), Device::CPU, cl ? MemoryFormat::ChannelsLast : MemoryFormat::Contiguous);
  SCCONV_DISPATCH_FLOAT(x.dtype(), "batch_norm", [&] {
    using T = scalar_t;
    std::vector<T> scale(C), shift(C);
    Tensor g = gamma.contiguous(), bt = beta.contiguous(), m = mean.contiguous(),
           r = invstd.contiguous();
    for (int64_t c = 0; c < C; ++c) {
      double a = double(r.data<T>()[c]) * double(g.data<T>()[c]);
      scale[c] = static_cast<T>(a);
      shift[c] = static_cast<T>(double(bt.data<T>()[c]) - double(m.data<T>()[c]) * a);
    }
    const T* R = res.defined() ? res.data<T>() : nullptr;
    if (cl) rows_affine(x.data<T>(), y.data<T>(), N * S, C, scale, shift, R, ep.relu);
    else affine_per_channel(x.data<T>(), y.data<T>(), N, C, S, scale, shift, R, ep.relu);
  });
  return y;
}

BatchNormGrads CpuBackend::batch_norm_backward(const Tensor& grad_y_in, const Tensor& x_in,
                                               const Tensor& gamma_in, const Tensor& mean_in,
                                               const Tensor& invstd_in, bool training,
                                               const Tensor& y_in, bool want_residual) {
  const bool cl = channels_last(x_in);
  const MemoryFormat fmt = cl ? MemoryFormat::ChannelsLast : MemoryFormat::Contiguous;
  Tensor gy = grad_y_in.contiguous(fmt), x = x_in.contiguous(fmt), gamma = gamma_in.contiguous(),
         mean = mean_in.contiguous(), invstd = invstd_in.contiguous();
  const bool relu = y_in.defined();
  Tensor y = relu ? y_in.contiguous(fmt) : Tensor();
  const int64_t N = x.size(0), C = x.size(1), S = spatial(x), M = N * S;
  BatchNormGrads out{Tensor::empty(x.shape(), x.dtype(), Device::CPU, fmt), Tensor::empty({C}, x.dtype()),
                     Tensor::empty({C}, x.dtype()), Tensor()};
  if (want_residual) out.grad_residual = relu ? Tensor::empty(x.shape(), x.dtype(), Device::CPU, fmt) : gy;
  if (cl) {
    SCCONV_DISPATCH_FLOAT(x.dtype(), "batch_norm_backward", [&] {
      using T = scalar_t;
      const T *X = x.data<T>(), *G = gy.data<T>(), *MU = mean.data<T>();
      const T* Y = relu ? y.data<T>() : X;  // the ReLU's mask: grad_y counts where y > 0 (unread without)
      std::vector<double> s2;  // sum(grad_y), then sum(grad_y * (x - mean)), per channel
      with_relu(relu, [&]<bool Relu>() {
        s2 = chunk_sums<T, 2>(M, C, [&](int64_t r0, int64_t rows, T* acc, double* out) {
          const int64_t o = r0 * C;
          add_bn_grad_sums<T, Relu>(X + o, G + o, Y + o, MU, C, rows, acc, out);
        });
      });
      const std::array<const double*, 2> sums{s2.data(), s2.data() + C};
      std::vector<T> kg(C), kx(C), k0(C);
      for (int64_t c = 0; c < C; ++c) {
        const double rs = invstd.data<T>()[c], ga = gamma.data<T>()[c];
        out.grad_gamma.data<T>()[c] = T(sums[1][c] * rs);
        out.grad_beta.data<T>()[c] = T(sums[0][c]);
        math::AffineGrad a = training ? math::norm_grad_affine(ga, MU[c], rs, sums[0][c], sums[1][c] * rs, double(M))
                                      : math::AffineGrad{rs * ga, 0.0, 0.0};
        kg[c] = T(a.k_g);
        kx[c] = T(a.k_x);
        k0[c] = T(a.k_0);
      }
      T* GX = out.grad_x.data<T>();
      T* GR = relu && want_residual ? out.grad_residual.data<T>() : nullptr;
      with_relu(relu, [&]<bool Relu>() {
        parallel_for(M, std::max<int64_t>(1, 16384 / C), [&](int64_t lo, int64_t hi) {
          for (int64_t r = lo; r < hi; ++r)
            bn_grad_x_row<T, Relu>(X + r * C, G + r * C, Y + r * C, kg.data(), kx.data(), k0.data(),
                                   GX + r * C, GR ? GR + r * C : nullptr, C);
        });
      });
    });
    return out;
  }
  if (relu) {  // NCHW: the masked gradient first, then the plain backward
    Tensor masked = unary_backward(UnaryOp::Relu, y, y, gy, 0, 0);
    if (want_residual) out.grad_residual = masked;
    gy = masked;
  }
  SCCONV_DISPATCH_FLOAT(x.dtype(), "batch_norm_backward", [&] {
    using T = scalar_t;
    const T *X = x.data<T>(), *G = gy.data<T>();
    std::vector<T> kg(C), kx(C), k0(C);
    parallel_for(C, 1, [&](int64_t b, int64_t e) {
      for (int64_t c = b; c < e; ++c) {
        const T m = mean.data<T>()[c];
        double sum_g = 0, sum_gd = 0;  // sum(grad_y), sum(grad_y * (x - mean))
        for (int64_t n = 0; n < N; ++n)
          cpu::sum_g_gdev_run(G + (n * C + c) * S, X + (n * C + c) * S, S, m, sum_g, sum_gd);
        const double rs = invstd.data<T>()[c], ga = gamma.data<T>()[c];
        out.grad_gamma.data<T>()[c] = static_cast<T>(sum_gd * rs);
        out.grad_beta.data<T>()[c] = static_cast<T>(sum_g);
        math::AffineGrad a = training
                                 ? math::norm_grad_affine(ga, m, rs, sum_g, sum_gd * rs, double(M))
                                 : math::AffineGrad{rs * ga, 0.0, 0.0};
        kg[c] = static_cast<T>(a.k_g);
        kx[c] = static_cast<T>(a.k_x);
        k0[c] = static_cast<T>(a.k_0);
      }
    });
    T* GX = out.grad_x.data<T>();
    parallel_for(N * C, std::max<int64_t>(1, 16384 / std::max<int64_t>(S, 1)), [&](int64_t b, int64_t e) {
      for (int64_t p = b; p < e; ++p) {
        const int64_t c = p % C;
        const T a = kg[c], bx = kx[c], z = k0[c];
        const T *xp = X + p * S, *gp = G + p * S;
        T* op = GX + p * S;
        for (int64_t k = 0; k < S; ++k) op[k] = a * gp[k] + bx * xp[k] + z;
      }
    });
  });
  return out;
}

// ---- group norm ------------------------------------------------------------------------------

Tensor CpuBackend::group_norm(const Tensor& x_in, const Tensor& gamma_in, const Tensor& beta_in,
                              int64_t groups, double eps, GroupNormKind kind, Tensor& mean,
                              Tensor& rstd) {
  Tensor x = x_in.contiguous(), gamma = gamma_in.contiguous(), beta = beta_in.contiguous();
  const int64_t N = x.size(0), C = x.size(1), S = spatial(x), Cg = C / groups, M = Cg * S;
  mean = Tensor::empty({N, groups}, x.dtype());
  rstd = Tensor::empty({N, groups}, x.dtype());
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  SCCONV_DISPATCH_FLOAT(x.dtype(), "group_norm", [&] {
    using T = scalar_t;
    const T *X = x.data<T>(), *GA = gamma.data<T>(), *BE = beta.data<T>();
    T* Y = y.data<T>();
    parallel_for(N * groups, 1, [&](int64_t b, int64_t e) {
      for (int64_t ng = b; ng < e; ++ng) {
        const T* xp = X + ng * M;
        const double m = cpu::sum_run(xp, M) / M;
        const double ssd = cpu::sum_sq_dev_run(xp, M, static_cast<T>(m));
        const double r = kind == GroupNormKind::Torch ? math::rstd_biased(ssd, M, eps)
                                                      : math::rstd_seed(ssd, M, eps);
        mean.data<T>()[ng] = static_cast<T>(m);
        rstd.data<T>()[ng] = static_cast<T>(r);
        const int64_t c0 = (ng % groups) * Cg;
        for (int64_t cc = 0; cc < Cg; ++cc) {
          const T a = static_cast<T>(r * GA[c0 + cc]);
          const T sh = static_cast<T>(BE[c0 + cc] - m * r * GA[c0 + cc]);
          const T* p = xp + cc * S;
          T* q = Y + ng * M + cc * S;
          for (int64_t k = 0; k < S; ++k) q[k] = p[k] * a + sh;
        }
      }
    });
  });
  return y;
}

GroupNormGrads CpuBackend::group_norm_backward(const Tensor& grad_y_in, const Tensor& x_in,
                                               const Tensor& gamma_in, int64_t groups, double eps,
                                               GroupNormKind kind, const Tensor& mean_in,
                                               const Tensor& rstd_in) {
  Tensor gy = grad_y_in.contiguous(), x = x_in.contiguous(), gamma = gamma_in.contiguous(),
         mean = mean_in.contiguous(), rstd = rstd_in.contiguous();
  const int64_t N = x.size(0), C = x.size(1), S = spatial(x), Cg = C / groups, M = Cg * S;
  GroupNormGrads out{Tensor::empty(x.shape(), x.dtype()), Tensor::empty({C}, x.dtype()),
                     Tensor::empty({C}, x.dtype())};
  std::vector<double> dgamma(N * C), dbeta(N * C);  // per (n, c), summed over n below
  SCCONV_DISPATCH_FLOAT(x.dtype(), "group_norm_backward", [&] {
    using T = scalar_t;
    const T *X = x.data<T>(), *G = gy.data<T>(), *GA = gamma.data<T>();
    T* GX = out.grad_x.data<T>();
    parallel_for(N * groups, 1, [&](int64_t b, int64_t e) {
      for (int64_t ng = b; ng < e; ++ng) {
        const int64_t n = ng / groups, c0 = (ng % groups) * Cg;
        const double m = mean.data<T>()[ng], r = rstd.data<T>()[ng];
        double sum_gh = 0, sum_ghd = 0;
        for (int64_t cc = 0; cc < Cg; ++cc) {
          const T *xp = X + ng * M + cc * S, *gp = G + ng * M + cc * S;
          double sg = 0, sgd = 0;
          cpu::sum_g_gdev_run(gp, xp, S, static_cast<T>(m), sg, sgd);
          dgamma[n * C + c0 + cc] = sgd * r;
          dbeta[n * C + c0 + cc] = sg;
          sum_gh += sg * GA[c0 + cc];
          sum_ghd += sgd * GA[c0 + cc];
        }
        for (int64_t cc = 0; cc < Cg; ++cc) {
          const T ga = GA[c0 + cc];
          const T *xp = X + ng * M + cc * S, *gp = G + ng * M + cc * S;
          T* op = GX + ng * M + cc * S;
          if (kind == GroupNormKind::Torch) {
            for (int64_t k = 0; k < S; ++k)
              op[k] = math::norm_grad_x<T>(gp[k] * ga, static_cast<T>((xp[k] - m) * r), r, sum_gh,
                                           sum_ghd * r, double(M));
          } else {
            for (int64_t k = 0; k < S; ++k)
              op[k] = math::seed_norm_grad_x<T>(gp[k] * ga, static_cast<T>(xp[k] - m), r, eps,
                                                sum_gh, sum_ghd, double(M));
          }
        }
      }
    });
    for (int64_t c = 0; c < C; ++c) {
      double sg = 0, sb = 0;
      for (int64_t n = 0; n < N; ++n) {
        sg += dgamma[n * C + c];
        sb += dbeta[n * C + c];
      }
      out.grad_gamma.data<T>()[c] = static_cast<T>(sg);
      out.grad_beta.data<T>()[c] = static_cast<T>(sb);
    }
  });
  return out;
}

}  // namespace scconv
