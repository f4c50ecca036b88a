// core/cpu/cru_lower.cpp: the CRU fuse with the lower branch's 1x1 convolution folded in, on
// channels-last rows. The CRU's lower branch is Y2 = cat(PWC2(X_low'), X_low'), one 1x1
// convolution of the squeezed X_low' (Q channels) with w = [PWC2; identity] (C, Q)
// (CRU::lower_weight), and the fuse reads Y2 only through per-pixel sums. So Y2 (C channels,
// 4x more than X_low') is never stored: each pass computes what it needs of it from X_low'.
// For sample n, with rows r of y1 (C values), low (Q values) and S = H W:
//   forward   pass 1  pools: GAP(y1)[c]; GAP(Y2)[c] = sum_j w[c][j] GAP(low)[j]; then the branch
//                     weights b0, b1 (core/math/cru.h)
//             pass 2  y[r][c] = b0[c] y1[r][c] + sum_j (b1[c] w[c][j]) low[r][j]
//   backward  pass 1  sums: grad_b0[c] = sum_r g y1, GL[j][c] = sum_r g[r][c] low[r][j] (so
//                     grad_b1[c] = sum_j w[c][j] GL[j][c]), sum_r low[r][j]; the softmax backward
//                     gives a0, a1 = grad_s / S
//             pass 2  grad_y1[r][c] = b0[c] g[r][c] + a0[c]
//                     grad_low[r][j] = sum_c (w[c][j] b1[c]) g[r][c] + sum_c w[c][j] a1[c]
//   grad_w[c][j] = sum_n (b1[c] GL[j][c] + a1[c] sum_r low[r][j])   (per sample, then over n)
// Measured against the fuse of a stored Y2 after a oneDNN 1x1 convolution (batch 128, 2 threads,
// forward + backward, ms): (C, Q) = (16, 4) at 32x32 1.23 vs 1.80 + 0.83 for the convolution's
// three passes; (32, 8) at 16x16 0.73 vs 0.86 + 0.39; (64, 16) at 8x8 0.78 vs 0.73 + 0.27.
// In the model it saves more (ResNet-20 + SCConv: ~9 ms of a ~147 ms training step), since Y2's
// 8 MB at the first stage are neither written nor read back from memory, forward or backward.
// Those kernels have compile-time widths, the (C, Q) of the CIFAR ResNets' units; other widths
// (ResNet-50's, 128 channels and more) run oneDNN's 1x1 convolution and the fuse of cru.cpp,
// whose passes at those widths are bound by the convolutions around them, not by this.
// Each sample is summed by one thread in a fixed order: the same bits at any thread count.
// Plain loops: ReferenceBackend::cru_fuse_lower (core/reference/cru.cpp); tests compare both.
#include <algorithm>
#include <vector>

#include "core/cpu/cpu_backend.h"
#include "core/cpu/vec.h"
#include "core/math/cru.h"
#include "core/parallel.h"

namespace scconv {

namespace {

// Per sample: the branch weights and what the passes multiply by, in T.
template <class T>
struct SampleCoef {
  std::vector<T> b0, v;  // b0 (C); v (Q, C): v[j][c] = b1[c] w[c][j]
};

// Vectors of kW lanes (one 64-byte register) and of a row of Q values.
template <class T>
using VW = typename cpu::VecOf<T, cpu::kW<T>>::type;

// ---- forward -------------------------------------------------------------------------------------

// Pass 2 over `rows` rows: y = b0 y1 + v^T low per row, a block of kW channels at a time with
// its Q + 1 vectors of coefficients in registers.
template <class T, int C, int Q>
void rows_forward(const T* __restrict y1, const T* __restrict low, const T* __restrict b0,
                  const T* __restrict v, int64_t rows, T* __restrict y) {
  using V = VW<T>;
  for (int c0 = 0; c0 < C; c0 += cpu::kW<T>) {
    const V vb0 = cpu::load_vec<V>(b0 + c0);
    V vv[Q];
    for (int j = 0; j < Q; ++j) vv[j] = cpu::load_vec<V>(v + j * C + c0);
    for (int64_t r = 0; r < rows; ++r) {
      V acc = vb0 * cpu::load_vec<V>(y1 + r * C + c0);
      for (int j = 0; j < Q; ++j) acc += low[r * Q + j] * vv[j];
      cpu::store_vec(y + r * C + c0, acc);
    }
  }
}

template <class T, int C, int Q>
void nhwc_forward(const T* Y1, const T* L, const std::vector<double>& w, math::CRUFuse kind, int64_t N,
                  int64_t S, T* Y, double* B) {
  const int64_t BR = cpu::block_rows(C);
  parallel_for(N, per_thread(N), [&](int64_t lo, int64_t hi) {
    std::vector<T> acc(std::max(C, Q));
    std::vector<double> s(2 * C), sl(Q);
    SampleCoef<T> k{std::vector<T>(C), std::vector<T>(Q * C)};
    for (int64_t n = lo; n < hi; ++n) {
      const T *y1 = Y1 + n * S * C, *low = L + n * S * Q;
      // pass 1: the pools
      std::fill(s.begin(), s.end(), 0.0);
      std::fill(sl.begin(), sl.end(), 0.0);
      for (int64_t r0 = 0; r0 < S; r0 += BR) {
        const int64_t rows = std::min(BR, S - r0);
        cpu::add_columns<T>(y1 + r0 * C, nullptr, C, rows, acc.data(), s.data());
        cpu::add_columns<T>(low + r0 * Q, nullptr, Q, rows, acc.data(), sl.data());
      }
      for (int c = 0; c < C; ++c) {
        double p = 0;
        for (int j = 0; j < Q; ++j) p += w[c * Q + j] * sl[j];
        s[c] /= double(S);
        s[C + c] = p / double(S);
      }
      double* b = B + n * 2 * C;
      math::cru_weights(kind, 1, C, s.data(), b);
      for (int c = 0; c < C; ++c) {
        k.b0[c] = T(b[c]);
        for (int j = 0; j < Q; ++j) k.v[j * C + c] = T(b[C + c] * w[c * Q + j]);
      }
      // pass 2: the output
      rows_forward<T, C, Q>(y1, low, k.b0.data(), k.v.data(), S, Y + n * S * C);
    }
  });
}

// ---- backward ------------------------------------------------------------------------------------

// Pass 1 over a sample's rows: sg1 (C) += sum_r g y1 and sl (Q) += sum_r low[r][j] by column
// sums (cpu::add_columns), gl (Q, C) += sum_r low[r][j] g[r][c] summed in T over blocks of up
// to kSumRows rows (per block of kW channels: Q vector accumulators), the blocks in double. A
// fixed order: the same bits at any thread count.
constexpr int64_t kSumRows = 256;
template <class T, int C, int Q>
void rows_sums(const T* __restrict g, const T* __restrict y1, const T* __restrict low, int64_t S,
               T* __restrict acc, double* __restrict gl, double* __restrict sl,
               double* __restrict sg1) {
  const int64_t BR = cpu::block_rows(C);
  for (int64_t r0 = 0; r0 < S; r0 += BR) {
    const int64_t rows = std::min(BR, S - r0);
    cpu::add_columns<T>(g + r0 * C, y1 + r0 * C, C, rows, acc, sg1);
    cpu::add_columns<T>(low + r0 * Q, nullptr, Q, rows, acc, sl);
  }
  using V = VW<T>;
  for (int64_t r0 = 0; r0 < S; r0 += kSumRows) {
    const int64_t r1 = std::min(S, r0 + kSumRows);
    for (int c0 = 0; c0 < C; c0 += cpu::kW<T>) {
      V p[Q] = {};
      for (int64_t r = r0; r < r1; ++r) {
        const V gr = cpu::load_vec<V>(g + r * C + c0);
        for (int j = 0; j < Q; ++j) p[j] += low[r * Q + j] * gr;
      }
      for (int j = 0; j < Q; ++j)
        for (int c = 0; c < cpu::kW<T>; ++c) gl[j * C + c0 + c] += double(p[j][c]);
    }
  }
}

// Pass 2 over `rows` rows: grad_y1 = b0 g + a0 (a row: C lanes); grad_low = u^T g + k (u (C, Q)
// = w b1; a row: one vector of Q lanes, one multiply-add per channel).
template <class T, int C, int Q>
void rows_grads(const T* __restrict g, const T* __restrict b0, const T* __restrict a0,
                const T* __restrict u, const T* __restrict k, int64_t rows, T* __restrict gy1,
                T* __restrict glow) {
  using VC = typename cpu::VecOf<T, C>::type;
  using VQ = typename cpu::VecOf<T, Q>::type;
  const VC vb0 = cpu::load_vec<VC>(b0), va0 = cpu::load_vec<VC>(a0);
  const VQ vk = cpu::load_vec<VQ>(k);
  for (int64_t r = 0; r < rows; ++r) {
    const T* gr = g + r * C;
    cpu::store_vec(gy1 + r * C, vb0 * cpu::load_vec<VC>(gr) + va0);
    VQ acc = vk;
    for (int c = 0; c < C; ++c) acc += gr[c] * cpu::load_vec<VQ>(u + c * Q);
    cpu::store_vec(glow + r * Q, acc);
  }
}

template <class T, int C, int Q>
void nhwc_backward(const T* G, const T* Y1, const T* L, const std::vector<double>& w,
                   const std::vector<double>& b, math::CRUFuse kind, int64_t N, int64_t S, T* GY1, T* GL,
                   double* grad_w_per_sample) {
  parallel_for(N, per_thread(N), [&](int64_t lo, int64_t hi) {
    std::vector<T> acc(std::max(C, Q)), b0(C), a0(C), u(C * Q), k(Q);
    std::vector<double> gl(Q * C), sl(Q), grad_b(2 * C), grad_s(2 * C), kd(Q);
    for (int64_t n = lo; n < hi; ++n) {
      const int64_t at = n * S * C, atq = n * S * Q;
      const double* bn = &b[n * 2 * C];
      // pass 1: the sums
      std::fill(gl.begin(), gl.end(), 0.0);
      std::fill(sl.begin(), sl.end(), 0.0);
      std::fill(grad_b.begin(), grad_b.end(), 0.0);
      rows_sums<T, C, Q>(G + at, Y1 + at, L + atq, S, acc.data(), gl.data(), sl.data(), grad_b.data());
      for (int c = 0; c < C; ++c)
        for (int j = 0; j < Q; ++j) grad_b[C + c] += w[c * Q + j] * gl[j * C + c];
      math::cru_weights_backward(kind, 1, C, bn, grad_b.data(), grad_s.data());
      // the coefficients of pass 2, and this sample's part of grad_w
      double* gw = &grad_w_per_sample[n * C * Q];
      std::fill(kd.begin(), kd.end(), 0.0);
      for (int c = 0; c < C; ++c) {
        const double a1 = grad_s[C + c] / double(S);
        b0[c] = T(bn[c]);
        a0[c] = T(grad_s[c] / double(S));
        for (int j = 0; j < Q; ++j) {
          u[c * Q + j] = T(w[c * Q + j] * bn[C + c]);
          kd[j] += w[c * Q + j] * a1;
          gw[c * Q + j] = bn[C + c] * gl[j * C + c] + a1 * sl[j];
        }
      }
      for (int j = 0; j < Q; ++j) k[j] = T(kd[j]);
      // pass 2: the input gradients
      rows_grads<T, C, Q>(G + at, b0.data(), a0.data(), u.data(), k.data(), S, GY1 + at, GL + atq);
    }
  });
}

// Whether (C, Q) has kernels: those of the CIFAR ResNets' SCConv units (alpha 1/2, squeeze 2:
// Q = C / 4, and C / 8 in the stride-2 unit that starts a stage). with_widths calls
// f.template operator()<C, Q>() with them as compile-time constants.
bool has_kernels(int64_t C, int64_t Q) {
  return (C == 16 && Q == 4) || (C == 32 && (Q == 8 || Q == 4)) || (C == 64 && (Q == 16 || Q == 8));
}
template <class F>
void with_widths(int64_t C, int64_t Q, F f) {
  if (C == 16) f.template operator()<16, 4>();
  else if (C == 32 && Q == 8) f.template operator()<32, 8>();
  else if (C == 32) f.template operator()<32, 4>();
  else if (Q == 16) f.template operator()<64, 16>();
  else f.template operator()<64, 8>();
}

std::vector<double> weight_matrix(const Tensor& w) {  // (C, Q, 1, 1) -> C x Q, row-major
  return w.contiguous().to(DType::F64).to_vector<double>();
}

}  // namespace

Tensor CpuBackend::cru_fuse_lower(const Tensor& y1_in, const Tensor& low_in, const Tensor& w_in,
                                  math::CRUFuse kind, Tensor& b_out) {
  const int64_t N = y1_in.size(0), C = y1_in.size(1), Q = low_in.size(1);
  if (!has_kernels(C, Q))  // other widths: Y2 by oneDNN, then the fuse
    return cru_fuse(y1_in, {conv2d(low_in, w_in, Tensor(), Conv2dParams{})}, kind, b_out);
  const MemoryFormat cl = MemoryFormat::ChannelsLast, fmt = y1_in.suggest_memory_format();
  Tensor y1 = y1_in.contiguous(cl), low = low_in.contiguous(cl);
  const int64_t S = y1.size(2) * y1.size(3);
  const std::vector<double> w = weight_matrix(w_in);
  std::vector<double> b(N * 2 * C);
  Tensor y = Tensor::empty(y1.shape(), y1.dtype(), Device::CPU, cl);
  SCCONV_DISPATCH_FLOAT(y1.dtype(), "cru_fuse_lower", [&] {
    using T = scalar_t;
    with_widths(C, Q, [&]<int CC, int QQ>() {
      nhwc_forward<T, CC, QQ>(y1.data<T>(), low.data<T>(), w, kind, N, S, y.data<T>(), b.data());
    });
  });
  b_out = Tensor::from_vector(b, {N, 2, C}).to(y1.dtype());
  return fmt == cl ? y : y.contiguous(fmt);
}

CRUFuseLowerGrads CpuBackend::cru_fuse_lower_backward(const Tensor& grad_y_in, const Tensor& y1_in,
                                                      const Tensor& low_in, const Tensor& w_in,
                                                      math::CRUFuse kind, const Tensor& b_in) {
  const int64_t N = y1_in.size(0), C = y1_in.size(1), Q = low_in.size(1);
  if (!has_kernels(C, Q)) {  // other widths: Y2 again by oneDNN, the fuse's backward, then oneDNN's
    const Conv2dParams p;
    CRUFuseGrads g = cru_fuse_backward(grad_y_in, y1_in, {conv2d(low_in, w_in, Tensor(), p)}, kind, b_in);
    const Tensor& g2 = g.grad_y2_parts[0];
    return {g.grad_y1, conv2d_backward_data(g2, w_in, low_in.shape(), p),
            conv2d_backward_weights(g2, low_in, w_in.shape(), false, p).first};
  }
  const MemoryFormat cl = MemoryFormat::ChannelsLast, fmt = y1_in.suggest_memory_format();
  Tensor y1 = y1_in.contiguous(cl), low = low_in.contiguous(cl), gy = grad_y_in.contiguous(cl);
  const int64_t S = y1.size(2) * y1.size(3);
  const std::vector<double> w = weight_matrix(w_in), b = b_in.to(DType::F64).to_vector<double>();
  // each sample's part of grad_w, written by the kernel (a tensor: its block is reused, not
  // fresh pages each call like a vector of this size)
  Tensor grad_w_per_sample = Tensor::empty({N, C * Q}, DType::F64);
  CRUFuseLowerGrads out{Tensor::empty(y1.shape(), y1.dtype(), Device::CPU, cl),
                        Tensor::empty(low.shape(), low.dtype(), Device::CPU, cl), Tensor()};
  SCCONV_DISPATCH_FLOAT(y1.dtype(), "cru_fuse_lower_backward", [&] {
    using T = scalar_t;
    with_widths(C, Q, [&]<int CC, int QQ>() {
      nhwc_backward<T, CC, QQ>(gy.data<T>(), y1.data<T>(), low.data<T>(), w, b, kind, N, S,
                               out.grad_y1.data<T>(), out.grad_low.data<T>(),
                               grad_w_per_sample.data<double>());
    });
  });
  out.grad_w = Tensor::from_vector(cpu::sum_in_sample_order(grad_w_per_sample.data<double>(), N, C * Q, C * Q),
                                  w_in.shape()).to(w_in.dtype());
  if (fmt != cl) {
    out.grad_y1 = out.grad_y1.contiguous(fmt);
    out.grad_low = out.grad_low.contiguous(fmt);
  }
  return out;
}

}  // namespace scconv
