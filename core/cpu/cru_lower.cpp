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

// ---- forward -------------------------------------------------------------------------------------

// Pass 2 over `rows` rows: y = b0 y1 + v^T low per row.
template <class T, int CC, int QQ>
void rows_forward(const T* __restrict y1, const T* __restrict low, const T* __restrict b0,
                  const T* __restrict v, int64_t C_, int64_t Q_, int64_t rows, T* __restrict y) {
  if constexpr (CC > 0) {  // per block of kW channels: QQ + 2 vectors of coefficients
    using V = typename cpu::VecOf<T, cpu::kW<T>>::type;
    for (int c0 = 0; c0 < CC; c0 += cpu::kW<T>) {
      const V vb0 = cpu::load_vec<V>(b0 + c0);
      V vv[QQ];
      for (int j = 0; j < QQ; ++j) vv[j] = cpu::load_vec<V>(v + j * CC + c0);
      for (int64_t r = 0; r < rows; ++r) {
        V acc = vb0 * cpu::load_vec<V>(y1 + r * CC + c0);
        for (int j = 0; j < QQ; ++j) acc += low[r * QQ + j] * vv[j];
        cpu::store_vec(y + r * CC + c0, acc);
      }
    }
  } else {
    const int64_t C = C_, Q = Q_;
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = 0; c < C; ++c) y[r * C + c] = b0[c] * y1[r * C + c];
      for (int64_t j = 0; j < Q; ++j) {
        const T lj = low[r * Q + j];
        for (int64_t c = 0; c < C; ++c) y[r * C + c] += lj * v[j * C + c];
      }
    }
  }
}

template <class T, int CC, int QQ>
void nhwc_forward(const T* Y1, const T* L, const std::vector<double>& w, int kind, int64_t N,
                  int64_t C, int64_t Q, int64_t S, T* Y, double* B) {
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
      for (int64_t c = 0; c < C; ++c) {
        double p = 0;
        for (int64_t j = 0; j < Q; ++j) p += w[c * Q + j] * sl[j];
        s[c] /= double(S);
        s[C + c] = p / double(S);
      }
      double* b = B + n * 2 * C;
      math::cru_weights(math::CRUFuse(kind), 1, C, s.data(), b);
      for (int64_t c = 0; c < C; ++c) {
        k.b0[c] = T(b[c]);
        for (int64_t j = 0; j < Q; ++j) k.v[j * C + c] = T(b[C + c] * w[c * Q + j]);
      }
      // pass 2: the output
      rows_forward<T, CC, QQ>(y1, low, k.b0.data(), k.v.data(), C, Q, S, Y + n * S * C);
    }
  });
}

// ---- backward ------------------------------------------------------------------------------------

// Pass 1 over a sample's rows: sg1 (C) += sum_r g y1 and sl (Q) += sum_r low[r][j] by column
// sums (cpu::add_columns), gl (Q, C) += sum_r low[r][j] g[r][c] summed in T over blocks of up
// to kSumRows rows, the blocks in double. A fixed order: the same bits at any thread count.
constexpr int64_t kSumRows = 256;
template <class T, int CC, int QQ>
void rows_sums(const T* __restrict g, const T* __restrict y1, const T* __restrict low, int64_t C_,
               int64_t Q_, int64_t S, T* __restrict acc, T* __restrict part,
               double* __restrict gl, double* __restrict sl, double* __restrict sg1) {
  const int64_t C = CC ? CC : C_, Q = QQ ? QQ : Q_, BR = cpu::block_rows(C);
  for (int64_t r0 = 0; r0 < S; r0 += BR) {
    const int64_t rows = std::min(BR, S - r0);
    cpu::add_columns<T>(g + r0 * C, y1 + r0 * C, C, rows, acc, sg1);
    cpu::add_columns<T>(low + r0 * Q, nullptr, Q, rows, acc, sl);
  }
  for (int64_t r0 = 0; r0 < S; r0 += kSumRows) {
    const int64_t r1 = std::min(S, r0 + kSumRows);
    if constexpr (CC > 0) {  // per block of kW channels: QQ vector accumulators
      using V = typename cpu::VecOf<T, cpu::kW<T>>::type;
      for (int c0 = 0; c0 < CC; c0 += cpu::kW<T>) {
        V p[QQ] = {};
        for (int64_t r = r0; r < r1; ++r) {
          const V gr = cpu::load_vec<V>(g + r * CC + c0);
          for (int j = 0; j < QQ; ++j) p[j] += low[r * QQ + j] * gr;
        }
        for (int j = 0; j < QQ; ++j)
          for (int c = 0; c < cpu::kW<T>; ++c) gl[j * CC + c0 + c] += double(p[j][c]);
      }
    } else {
      std::fill(part, part + Q * C, T(0));
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t j = 0; j < Q; ++j) {
          const T lj = low[r * Q + j];
          for (int64_t c = 0; c < C; ++c) part[j * C + c] += lj * g[r * C + c];
        }
      for (int64_t i = 0; i < Q * C; ++i) gl[i] += double(part[i]);
    }
  }
}

// Pass 2 over `rows` rows: grad_y1 = b0 g + a0; grad_low = u^T g + k (u (C, Q) = w b1).
template <class T, int CC, int QQ>
void rows_grads(const T* __restrict g, const T* __restrict b0, const T* __restrict a0,
                const T* __restrict u, const T* __restrict k, int64_t C_, int64_t Q_,
                int64_t rows, T* __restrict gy1, T* __restrict glow) {
  if constexpr (CC > 0) {  // grad_y1's row: a vector of CC lanes; grad_low's: of QQ lanes
    using VC = typename cpu::VecOf<T, CC>::type;
    using VQ = typename cpu::VecOf<T, QQ>::type;
    const VC vb0 = cpu::load_vec<VC>(b0), va0 = cpu::load_vec<VC>(a0);
    const VQ vk = cpu::load_vec<VQ>(k);
    for (int64_t r = 0; r < rows; ++r) {
      const T* gr = g + r * CC;
      cpu::store_vec(gy1 + r * CC, vb0 * cpu::load_vec<VC>(gr) + va0);
      VQ acc = vk;
      for (int c = 0; c < CC; ++c) acc += gr[c] * cpu::load_vec<VQ>(u + c * QQ);
      cpu::store_vec(glow + r * QQ, acc);
    }
  } else {
    const int64_t C = C_, Q = Q_;
    for (int64_t r = 0; r < rows; ++r) {
      const T* gr = g + r * C;
      for (int64_t c = 0; c < C; ++c) gy1[r * C + c] = b0[c] * gr[c] + a0[c];
      for (int64_t j = 0; j < Q; ++j) glow[r * Q + j] = k[j];
      for (int64_t c = 0; c < C; ++c)
        for (int64_t j = 0; j < Q; ++j) glow[r * Q + j] += gr[c] * u[c * Q + j];
    }
  }
}

template <class T, int CC, int QQ>
void nhwc_backward(const T* G, const T* Y1, const T* L, const std::vector<double>& w,
                   const std::vector<double>& b, int kind, int64_t N, int64_t C, int64_t Q,
                   int64_t S, T* GY1, T* GL, double* grad_w_per_sample) {
  parallel_for(N, per_thread(N), [&](int64_t lo, int64_t hi) {
    std::vector<T> acc(std::max(C, Q)), part(Q * C), b0(C), a0(C), u(C * Q), k(Q);
    std::vector<double> gl(Q * C), sl(Q), grad_b(2 * C), grad_s(2 * C), kd(Q);
    for (int64_t n = lo; n < hi; ++n) {
      const int64_t at = n * S * C, atq = n * S * Q;
      const double* bn = &b[n * 2 * C];
      // pass 1: the sums
      std::fill(gl.begin(), gl.end(), 0.0);
      std::fill(sl.begin(), sl.end(), 0.0);
      std::fill(grad_b.begin(), grad_b.end(), 0.0);
      rows_sums<T, CC, QQ>(G + at, Y1 + at, L + atq, C, Q, S, acc.data(), part.data(),
                           gl.data(), sl.data(), grad_b.data());
      for (int64_t c = 0; c < C; ++c)
        for (int64_t j = 0; j < Q; ++j) grad_b[C + c] += w[c * Q + j] * gl[j * C + c];
      math::cru_weights_backward(math::CRUFuse(kind), 1, C, bn, grad_b.data(), grad_s.data());
      // the coefficients of pass 2, and this sample's part of grad_w
      double* gw = &grad_w_per_sample[n * C * Q];
      std::fill(kd.begin(), kd.end(), 0.0);
      for (int64_t c = 0; c < C; ++c) {
        const double a1 = grad_s[C + c] / double(S);
        b0[c] = T(bn[c]);
        a0[c] = T(grad_s[c] / double(S));
        for (int64_t j = 0; j < Q; ++j) {
          u[c * Q + j] = T(w[c * Q + j] * bn[C + c]);
          kd[j] += w[c * Q + j] * a1;
          gw[c * Q + j] = bn[C + c] * gl[j * C + c] + a1 * sl[j];
        }
      }
      for (int64_t j = 0; j < Q; ++j) k[j] = T(kd[j]);
      // pass 2: the input gradients
      rows_grads<T, CC, QQ>(G + at, b0.data(), a0.data(), u.data(), k.data(), C, Q, S, GY1 + at,
                            GL + atq);
    }
  });
}

// Calls f.template operator()<CC, QQ>() with the widths as compile-time constants when they are
// those of the CIFAR ResNets' SCConv units (alpha 1/2, squeeze 2: Q = C / 4, and C / 8 in the
// stride-2 unit that starts a stage); otherwise with <0, 0> (runtime widths).
template <class F>
void with_widths(int64_t C, int64_t Q, F f) {
  if (C == 16 && Q == 4) f.template operator()<16, 4>();
  else if (C == 32 && Q == 8) f.template operator()<32, 8>();
  else if (C == 64 && Q == 16) f.template operator()<64, 16>();
  else if (C == 32 && Q == 4) f.template operator()<32, 4>();
  else if (C == 64 && Q == 8) f.template operator()<64, 8>();
  else f.template operator()<0, 0>();
}

std::vector<double> weight_matrix(const Tensor& w) {  // (C, Q, 1, 1) -> C x Q, row-major
  return w.contiguous().to(DType::F64).to_vector<double>();
}

}  // namespace

Tensor CpuBackend::cru_fuse_lower(const Tensor& y1_in, const Tensor& low_in, const Tensor& w_in,
                                  int kind, Tensor& b_out) {
  const MemoryFormat cl = MemoryFormat::ChannelsLast, fmt = y1_in.suggest_memory_format();
  Tensor y1 = y1_in.contiguous(cl), low = low_in.contiguous(cl);
  const int64_t N = y1.size(0), C = y1.size(1), Q = low.size(1), S = y1.size(2) * y1.size(3);
  const std::vector<double> w = weight_matrix(w_in);
  std::vector<double> b(N * 2 * C);
  Tensor y = Tensor::empty(y1.shape(), y1.dtype(), Device::CPU, cl);
  SCCONV_DISPATCH_FLOAT(y1.dtype(), "cru_fuse_lower", [&] {
    using T = scalar_t;
    with_widths(C, Q, [&]<int CC, int QQ>() {
      nhwc_forward<T, CC, QQ>(y1.data<T>(), low.data<T>(), w, kind, N, C, Q, S, y.data<T>(), b.data());
    });
  });
  b_out = Tensor::from_vector(b, {N, 2, C}).to(y1.dtype());
  return fmt == cl ? y : y.contiguous(fmt);
}

CRUFuseLowerGrads CpuBackend::cru_fuse_lower_backward(const Tensor& grad_y_in, const Tensor& y1_in,
                                                      const Tensor& low_in, const Tensor& w_in,
                                                      int kind, const Tensor& b_in) {
  const MemoryFormat cl = MemoryFormat::ChannelsLast, fmt = y1_in.suggest_memory_format();
  Tensor y1 = y1_in.contiguous(cl), low = low_in.contiguous(cl), gy = grad_y_in.contiguous(cl);
  const int64_t N = y1.size(0), C = y1.size(1), Q = low.size(1), S = y1.size(2) * y1.size(3);
  const std::vector<double> w = weight_matrix(w_in), b = b_in.to(DType::F64).to_vector<double>();
  // each sample's part of grad_w, written by the kernel (a tensor: its block is reused, not
  // fresh pages each call like a vector of this size)
  Tensor grad_w_per_sample = Tensor::empty({N, C * Q}, DType::F64);
  CRUFuseLowerGrads out{Tensor::empty(y1.shape(), y1.dtype(), Device::CPU, cl),
                        Tensor::empty(low.shape(), low.dtype(), Device::CPU, cl), Tensor()};
  SCCONV_DISPATCH_FLOAT(y1.dtype(), "cru_fuse_lower_backward", [&] {
    using T = scalar_t;
    with_widths(C, Q, [&]<int CC, int QQ>() {
      nhwc_backward<T, CC, QQ>(gy.data<T>(), y1.data<T>(), low.data<T>(), w, b, kind, N, C, Q, S,
                               out.grad_y1.data<T>(), out.grad_low.data<T>(),
                               grad_w_per_sample.data<double>());
    });
  });
  std::vector<double> grad_w(C * Q, 0.0);  // the samples' parts, in order
  const double* part = grad_w_per_sample.data<double>();
  for (int64_t n = 0; n < N; ++n)
    for (int64_t i = 0; i < C * Q; ++i) grad_w[i] += part[n * C * Q + i];
  out.grad_w = Tensor::from_vector(grad_w, w_in.shape()).to(w_in.dtype());
  if (fmt != cl) {
    out.grad_y1 = out.grad_y1.contiguous(fmt);
    out.grad_low = out.grad_low.contiguous(fmt);
  }
  return out;
}

}  // namespace scconv
