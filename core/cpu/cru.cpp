// core/cpu/cru.cpp: the fused CRU fuse on NCHW planes or on channels-last rows. Reference and
// formulas: core/reference/cru.cpp, core/math/cru.h. Forward: pass 1 pools every plane of y1
// and y2 (read straight from y2's parts), the (N, 2, C) weights follow, pass 2 writes
// y = b0 y1 + b1 y2. Backward: pass 1 sums grad_y * y1 and grad_y * y2 per plane, pass 2
// writes both input gradients. Each plane (channels-last: each sample) is summed by one
// thread in a fixed order: results do not depend on the thread count.
#include <vector>

#include "core/cpu/cpu_backend.h"
#include "core/cpu/vec.h"
#include "core/math/cru.h"
#include "core/parallel.h"

namespace scconv {

namespace {

// The planes of y1 and y2 (from its parts), contiguous, by (n, c).
struct Planes {
  std::vector<Tensor> parts;  // contiguous
  std::vector<int64_t> part, channel;
  int64_t N, C, S;
  Planes(const Tensor& y1, const std::vector<Tensor>& y2_parts)
      : N(y1.size(0)), C(y1.size(1)), S(y1.size(2) * y1.size(3)) {
    int64_t total = 0;
    for (size_t p = 0; p < y2_parts.size(); ++p) {
      const Tensor& t = y2_parts[p];
      SCCONV_CHECK(t.dim() == 4 && t.size(0) == N && t.size(2) == y1.size(2) && t.size(3) == y1.size(3),
                   "cru_fuse: part " << p << " of y2 " << t.str() << " does not match y1 " << y1.str());
      parts.push_back(t.contiguous());
      for (int64_t c = 0; c < t.size(1); ++c) {
        part.push_back(int64_t(p));
        channel.push_back(c);
      }
      total += t.size(1);
    }
    SCCONV_CHECK(total == C, "cru_fuse: the parts of y2 have " << total << " channels, y1 " << y1.str());
  }
  template <class T>
  T* y2(int64_t n, int64_t c) const {
    const Tensor& t = parts[part[c]];
    return const_cast<T*>(t.data<T>()) + (n * t.size(1) + channel[c]) * S;
  }
};

template <class T>
void weighted_sum(const T* __restrict a, const T* __restrict b, T wa, T wb, int64_t S, T* __restrict y) {
  for (int64_t i = 0; i < S; ++i) y[i] = wa * a[i] + wb * b[i];
}
template <class T>
void scaled_plus(const T* __restrict g, T w, T add, int64_t S, T* __restrict out) {
  for (int64_t i = 0; i < S; ++i) out[i] = w * g[i] + add;
}
int64_t plane_grain(int64_t S) { return std::max<int64_t>(1, 8192 / std::max<int64_t>(S, 1)); }

// ---- channels-last: sample n of y1, y2 and y is an (S pixels, C) row-major matrix. y2 is made
// one dense channels-last tensor (the CRU's fused path already passes it so; other callers'
// parts are joined by one copy), then every pass runs over blocks of rows with the per-channel
// weights tiled (cpu::block_rows), summing columns in a fixed order. ----

// y2 as one dense channels-last tensor.
Tensor dense_rows(const std::vector<Tensor>& y2_parts) {
  const MemoryFormat cl = MemoryFormat::ChannelsLast;
  if (y2_parts.size() == 1) return y2_parts[0].contiguous(cl);
  Shape s = y2_parts[0].shape();
  s[1] = 0;
  for (const Tensor& p : y2_parts) s[1] += p.size(1);
  Tensor y2 = Tensor::empty(s, y2_parts[0].dtype(), Device::CPU, cl);
  int64_t c0 = 0;
  for (const Tensor& p : y2_parts) {
    Tensor window = y2.slice_view(1, c0, c0 + p.size(1));
    window.copy_(p);
    c0 += p.size(1);
  }
  return y2;
}

template <class T>
void affine2(const T* __restrict a, const T* __restrict b, const T* __restrict wa,
             const T* __restrict wb, int64_t L, T* __restrict y) {
  for (int64_t e = 0; e < L; ++e) y[e] = wa[e] * a[e] + wb[e] * b[e];
}
template <class T>
void affine1(const T* __restrict g, const T* __restrict w, const T* __restrict add, int64_t L,
             T* __restrict out) {
  for (int64_t e = 0; e < L; ++e) out[e] = w[e] * g[e] + add[e];
}

// Per (n, c) column sums over the S rows of sample n: out[n * 2C + c] from a1 (times b1 if
// given), out[n * 2C + C + c] from a2 (times b2).
template <class T>
void column_sums2(const T* a1, const T* b1, const T* a2, const T* b2, int64_t N, int64_t C,
                  int64_t S, double* out) {
  const int64_t B = cpu::block_rows(C);
  parallel_for(N, per_thread(N), [&](int64_t lo, int64_t hi) {
    std::vector<T> acc(C);
    for (int64_t n = lo; n < hi; ++n) {
      double* o = out + n * 2 * C;
      std::fill(o, o + 2 * C, 0.0);
      for (int64_t r0 = 0; r0 < S; r0 += B) {
        const int64_t rows = std::min(B, S - r0), at = (n * S + r0) * C;
        cpu::add_columns<T>(a1 + at, b1 ? b1 + at : nullptr, C, rows, acc.data(), o);
        cpu::add_columns<T>(a2 + at, b2 ? b2 + at : nullptr, C, rows, acc.data(), o + C);
      }
    }
  });
}

// For each sample n and each block of its rows (values [at, at + L)): f(at, L, p0, p1, q0, q1),
// where p0, p1 are p[n][0][:], p[n][1][:] (p is (N, 2, C)) tiled over the block's rows, and q0,
// q1 the same of q (zeros when q is empty).
template <class T, class F>
void per_sample_blocks(int64_t N, int64_t C, int64_t S, const std::vector<double>& p,
                       const std::vector<double>& q, F f) {
  const int64_t B = cpu::block_rows(C);
  parallel_for(N, per_thread(N), [&](int64_t lo, int64_t hi) {
    std::vector<T> v(4 * C), t(4 * B * C);
    for (int64_t n = lo; n < hi; ++n) {
      for (int64_t i = 0; i < 2 * C; ++i) {
        v[i] = T(p[n * 2 * C + i]);
        v[2 * C + i] = q.empty() ? T(0) : T(q[n * 2 * C + i]);
      }
      for (int k = 0; k < 4; ++k) cpu::tile_rows(v.data() + k * C, C, B, t.data() + k * B * C);
      for (int64_t r0 = 0; r0 < S; r0 += B)
        f((n * S + r0) * C, std::min(B, S - r0) * C, t.data(), t.data() + B * C,
          t.data() + 2 * B * C, t.data() + 3 * B * C);
    }
  });
}

template <class T>
void nhwc_forward(const Tensor& y1, const Tensor& y2, math::CRUFuse kind, Tensor& y, std::vector<double>& b) {
  const int64_t N = y1.size(0), C = y1.size(1), S = y1.size(2) * y1.size(3);
  const T *Y1 = y1.data<T>(), *Y2 = y2.data<T>();
  std::vector<double> s(N * 2 * C);
  column_sums2<T>(Y1, nullptr, Y2, nullptr, N, C, S, s.data());  // the pools
  for (double& v : s) v /= double(S);
  math::cru_weights(kind, N, C, s.data(), b.data());
  T* Y = y.data<T>();
  per_sample_blocks<T>(N, C, S, b, {}, [&](int64_t at, int64_t L, const T* w0, const T* w1, const T*, const T*) {
    affine2(Y1 + at, Y2 + at, w0, w1, L, Y + at);
  });
}

template <class T>
void nhwc_backward(const Tensor& gy, const Tensor& y1, const Tensor& y2, math::CRUFuse kind,
                   const std::vector<double>& b, Tensor& grad_y1, Tensor& grad_y2) {
  const int64_t N = y1.size(0), C = y1.size(1), S = y1.size(2) * y1.size(3);
  const T *Y1 = y1.data<T>(), *Y2 = y2.data<T>(), *G = gy.data<T>();
  std::vector<double> grad_b(N * 2 * C), grad_s(N * 2 * C);
  column_sums2<T>(G, Y1, G, Y2, N, C, S, grad_b.data());
  math::cru_weights_backward(kind, N, C, b.data(), grad_b.data(), grad_s.data());
  for (double& v : grad_s) v /= double(S);  // through the pools
  T *G1 = grad_y1.data<T>(), *G2 = grad_y2.data<T>();
  per_sample_blocks<T>(N, C, S, b, grad_s, [&](int64_t at, int64_t L, const T* w0, const T* w1, const T* a0, const T* a1) {
    affine1(G + at, w0, a0, L, G1 + at);
    affine1(G + at, w1, a1, L, G2 + at);
  });
}

}  // namespace

Tensor CpuBackend::cru_fuse(const Tensor& y1_in, const std::vector<Tensor>& y2_parts, math::CRUFuse kind,
                            Tensor& b_out) {
  if (y1_in.suggest_memory_format() == MemoryFormat::ChannelsLast) {
    Tensor y1 = y1_in.contiguous(MemoryFormat::ChannelsLast);
    Tensor y2 = dense_rows(y2_parts);
    const int64_t N = y1.size(0), C = y1.size(1);
    std::vector<double> b(N * 2 * C);
    Tensor y = Tensor::empty(y1.shape(), y1.dtype(), Device::CPU, MemoryFormat::ChannelsLast);
    SCCONV_DISPATCH_FLOAT(y1.dtype(), "cru_fuse", [&] { nhwc_forward<scalar_t>(y1, y2, kind, y, b); });
    b_out = Tensor::from_vector(b, {N, 2, C}).to(y1.dtype());
    return y;
  }
  Tensor y1 = y1_in.contiguous();
  const Planes pl(y1, y2_parts);
  const int64_t N = pl.N, C = pl.C, S = pl.S;
  std::vector<double> s(N * 2 * C), b(N * 2 * C);
  Tensor y = Tensor::empty(y1.shape(), y1.dtype());
  SCCONV_DISPATCH_FLOAT(y1.dtype(), "cru_fuse", [&] {
    using T = scalar_t;
    const T* Y1 = y1.data<T>();
    parallel_for(N * C, plane_grain(S), [&](int64_t lo, int64_t hi) {
      for (int64_t p = lo; p < hi; ++p) {
        const int64_t n = p / C, c = p % C;
        s[n * 2 * C + c] = cpu::sum_run(Y1 + p * S, S) / double(S);
        s[n * 2 * C + C + c] = cpu::sum_run(pl.y2<T>(n, c), S) / double(S);
      }
    });
    math::cru_weights(kind, N, C, s.data(), b.data());
    T* Y = y.data<T>();
    parallel_for(N * C, plane_grain(S), [&](int64_t lo, int64_t hi) {
      for (int64_t p = lo; p < hi; ++p) {
        const int64_t n = p / C, c = p % C;
        weighted_sum<T>(Y1 + p * S, pl.y2<T>(n, c), T(b[n * 2 * C + c]), T(b[n * 2 * C + C + c]), S, Y + p * S);
      }
    });
  });
  b_out = Tensor::from_vector(b, {N, 2, C}).to(y1.dtype());
  return y;
}

CRUFuseGrads CpuBackend::cru_fuse_backward(const Tensor& grad_y_in, const Tensor& y1_in,
                                           const std::vector<Tensor>& y2_parts, math::CRUFuse kind,
                                           const Tensor& b_in) {
  if (y1_in.suggest_memory_format() == MemoryFormat::ChannelsLast) {
    const MemoryFormat cl = MemoryFormat::ChannelsLast;
    Tensor y1 = y1_in.contiguous(cl), gy = grad_y_in.contiguous(cl), y2 = dense_rows(y2_parts);
    std::vector<double> b = b_in.to(DType::F64).to_vector<double>();
    CRUFuseGrads out{Tensor::empty(y1.shape(), y1.dtype(), Device::CPU, cl), {}};
    Tensor grad_y2 = Tensor::empty(y2.shape(), y2.dtype(), Device::CPU, cl);
    SCCONV_DISPATCH_FLOAT(y1.dtype(), "cru_fuse_backward", [&] {
      nhwc_backward<scalar_t>(gy, y1, y2, kind, b, out.grad_y1, grad_y2);
    });
    int64_t c0 = 0;  // each part's gradient: its channels of grad_y2
    for (const Tensor& p : y2_parts) {
      Tensor g = grad_y2.slice_view(1, c0, c0 + p.size(1));
      out.grad_y2_parts.push_back(y2_parts.size() == 1 ? g : g.contiguous(cl));
      c0 += p.size(1);
    }
    return out;
  }
  Tensor y1 = y1_in.contiguous(), gy = grad_y_in.contiguous();
  const Planes pl(y1, y2_parts);
  const int64_t N = pl.N, C = pl.C, S = pl.S;
  std::vector<double> b = b_in.to(DType::F64).to_vector<double>(), grad_b(N * 2 * C), grad_s(N * 2 * C);
  CRUFuseGrads out{Tensor::empty(y1.shape(), y1.dtype()), {}};
  for (const Tensor& p : pl.parts) out.grad_y2_parts.push_back(Tensor::empty(p.shape(), p.dtype()));
  const Planes grad_pl(y1, out.grad_y2_parts);  // the same plane layout, for writing
  SCCONV_DISPATCH_FLOAT(y1.dtype(), "cru_fuse_backward", [&] {
    using T = scalar_t;
    const T *Y1 = y1.data<T>(), *G = gy.data<T>();
    parallel_for(N * C, plane_grain(S), [&](int64_t lo, int64_t hi) {
      for (int64_t p = lo; p < hi; ++p) {
        const int64_t n = p / C, c = p % C;
        grad_b[n * 2 * C + c] = cpu::dot_run(G + p * S, Y1 + p * S, S);
        grad_b[n * 2 * C + C + c] = cpu::dot_run(G + p * S, pl.y2<T>(n, c), S);
      }
    });
    math::cru_weights_backward(kind, N, C, b.data(), grad_b.data(), grad_s.data());
    T* G1 = out.grad_y1.data<T>();
    parallel_for(N * C, plane_grain(S), [&](int64_t lo, int64_t hi) {
      for (int64_t p = lo; p < hi; ++p) {
        const int64_t n = p / C, c = p % C, i0 = n * 2 * C + c, i1 = i0 + C;
        scaled_plus<T>(G + p * S, T(b[i0]), T(grad_s[i0] / double(S)), S, G1 + p * S);
        scaled_plus<T>(G + p * S, T(b[i1]), T(grad_s[i1] / double(S)), S, grad_pl.y2<T>(n, c));
      }
    });
  });
  return out;
}

}  // namespace scconv
