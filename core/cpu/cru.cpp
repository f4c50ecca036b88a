// core/cpu/cru.cpp: the fused CRU fuse on NCHW planes or on channels-last rows. Reference and
// formulas: core/reference/cru.cpp, core/math/cru.h. Forward: pass 1 pools every plane of y1
// and y2 (read straight from y2's parts), the (N, 2, C) weights follow, pass 2 writes
// y = b0 y1 + b1 y2. Backward: pass 1 sums grad_y * y1 and grad_y * y2 per plane, pass 2
// writes both input gradients. Each plane is summed by one thread: results do not depend on
// the thread count.
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
template <class T>
double dot(const T* __restrict a, const T* __restrict b, int64_t S) {
  T acc[cpu::kLanes] = {};
  int64_t i = 0;
  for (; i + cpu::kLanes <= S; i += cpu::kLanes)
    for (int l = 0; l < cpu::kLanes; ++l) acc[l] += a[i + l] * b[i + l];
  double s = 0;
  for (int l = 0; l < cpu::kLanes; ++l) s += acc[l];
  for (; i < S; ++i) s += double(a[i]) * double(b[i]);
  return s;
}

int64_t plane_grain(int64_t S) { return std::max<int64_t>(1, 8192 / std::max<int64_t>(S, 1)); }

// ---- channels-last: each pixel a row of C channels; a part of y2 is any view with channels
// innermost (stride 1), such as the strided subsample of the lower branch -----------------------

struct RowParts {
  struct Part {
    Tensor t;
    int64_t c0, channels, sN, sH, sW;
  };
  std::vector<Part> parts;
  int64_t W;
  RowParts(const std::vector<Tensor>& y2_parts, int64_t width) : W(width) {
    int64_t c0 = 0;
    for (const Tensor& p : y2_parts) {
      Tensor t = p.strides()[1] == 1 ? p : p.contiguous(MemoryFormat::ChannelsLast);
      parts.push_back({t, c0, t.size(1), t.strides()[0], t.strides()[2], t.strides()[3]});
      c0 += t.size(1);
    }
  }
  template <class T>
  const T* row(size_t k, int64_t n, int64_t r) const {
    const Part& p = parts[k];
    return p.t.data<T>() + n * p.sN + (r / W) * p.sH + (r % W) * p.sW;
  }
};

template <class T>
void add_rows2(const T* __restrict a, const T* __restrict b, T* __restrict acc_a, T* __restrict acc_b, int64_t C) {
  for (int64_t c = 0; c < C; ++c) {
    acc_a[c] += a[c];
    acc_b[c] += b[c];
  }
}
template <class T>
void dot_rows(const T* __restrict g, const T* __restrict y, T* __restrict acc, int64_t C) {
  for (int64_t c = 0; c < C; ++c) acc[c] += g[c] * y[c];
}
template <class T>
void sum_row(const T* __restrict y, T* __restrict acc, int64_t C) {
  for (int64_t c = 0; c < C; ++c) acc[c] += y[c];
}
template <class T>
void weighted_row(const T* __restrict a, const T* __restrict b, const T* __restrict wa,
                  const T* __restrict wb, int64_t C, T* __restrict y) {
  for (int64_t c = 0; c < C; ++c) y[c] = wa[c] * a[c] + wb[c] * b[c];
}
template <class T>
void scaled_plus_row(const T* __restrict g, const T* __restrict w, const T* __restrict add, int64_t C,
                     T* __restrict out) {
  for (int64_t c = 0; c < C; ++c) out[c] = w[c] * g[c] + add[c];
}

// Forward on channels-last tensors: y (channels-last) from y1 and the parts of y2.
template <class T>
void nhwc_forward(const Tensor& y1, const RowParts& rp, int kind, Tensor& y, std::vector<double>& b) {
  const int64_t N = y1.size(0), C = y1.size(1), S = y1.size(2) * y1.size(3);
  const T* Y1 = y1.data<T>();
  std::vector<double> s(N * 2 * C);
  parallel_for(N, per_thread(N), [&](int64_t lo, int64_t hi) {
    for (int64_t n = lo; n < hi; ++n) {
      cpu::column_sums<T, 2>(0, S, C, [&](int64_t r, T* acc) {
        sum_row(Y1 + (n * S + r) * C, acc, C);
        for (size_t k = 0; k < rp.parts.size(); ++k)
          sum_row(rp.row<T>(k, n, r), acc + C + rp.parts[k].c0, rp.parts[k].channels);
      }, s.data() + n * 2 * C);
      for (int64_t i = 0; i < 2 * C; ++i) s[n * 2 * C + i] /= double(S);
    }
  });
  math::cru_weights(math::CRUFuse(kind), N, C, s.data(), b.data());
  T* Y = y.data<T>();
  parallel_for(N, per_thread(N), [&](int64_t lo, int64_t hi) {
    std::vector<T> w0(C), w1(C);
    for (int64_t n = lo; n < hi; ++n) {
      for (int64_t c = 0; c < C; ++c) w0[c] = T(b[n * 2 * C + c]), w1[c] = T(b[n * 2 * C + C + c]);
      for (int64_t r = 0; r < S; ++r)
        for (size_t k = 0; k < rp.parts.size(); ++k) {
          const int64_t c0 = rp.parts[k].c0;
          weighted_row(Y1 + (n * S + r) * C + c0, rp.row<T>(k, n, r), w0.data() + c0, w1.data() + c0,
                       rp.parts[k].channels, Y + (n * S + r) * C + c0);
        }
    }
  });
}

template <class T>
void nhwc_backward(const Tensor& gy, const Tensor& y1, const RowParts& rp, int kind,
                   const std::vector<double>& b, CRUFuseGrads& out) {
  const int64_t N = y1.size(0), C = y1.size(1), S = y1.size(2) * y1.size(3);
  const T *Y1 = y1.data<T>(), *G = gy.data<T>();
  std::vector<double> grad_b(N * 2 * C), grad_s(N * 2 * C);
  parallel_for(N, per_thread(N), [&](int64_t lo, int64_t hi) {
    for (int64_t n = lo; n < hi; ++n)
      cpu::column_sums<T, 2>(0, S, C, [&](int64_t r, T* acc) {
        const T* g = G + (n * S + r) * C;
        dot_rows(g, Y1 + (n * S + r) * C, acc, C);
        for (size_t k = 0; k < rp.parts.size(); ++k) {
          const int64_t c0 = rp.parts[k].c0;
          dot_rows(g + c0, rp.row<T>(k, n, r), acc + C + c0, rp.parts[k].channels);
        }
      }, grad_b.data() + n * 2 * C);
  });
  math::cru_weights_backward(math::CRUFuse(kind), N, C, b.data(), grad_b.data(), grad_s.data());
  T* G1 = out.grad_y1.data<T>();
  parallel_for(N, per_thread(N), [&](int64_t lo, int64_t hi) {
    std::vector<T> w0(C), w1(C), a0(C), a1(C);
    for (int64_t n = lo; n < hi; ++n) {
      for (int64_t c = 0; c < C; ++c) {
        const int64_t i0 = n * 2 * C + c, i1 = i0 + C;
        w0[c] = T(b[i0]), w1[c] = T(b[i1]);
        a0[c] = T(grad_s[i0] / double(S)), a1[c] = T(grad_s[i1] / double(S));
      }
      for (int64_t r = 0; r < S; ++r) {
        const T* g = G + (n * S + r) * C;
        scaled_plus_row(g, w0.data(), a0.data(), C, G1 + (n * S + r) * C);
        for (size_t k = 0; k < rp.parts.size(); ++k) {
          const int64_t c0 = rp.parts[k].c0, Ck = rp.parts[k].channels;
          scaled_plus_row(g + c0, w1.data() + c0, a1.data() + c0, Ck,
                          out.grad_y2_parts[k].data<T>() + (n * S + r) * Ck);
        }
      }
    }
  });
}

}  // namespace

Tensor CpuBackend::cru_fuse(const Tensor& y1_in, const std::vector<Tensor>& y2_parts, int kind,
                            Tensor& b_out) {
  if (y1_in.suggest_memory_format() == MemoryFormat::ChannelsLast) {
    Tensor y1 = y1_in.contiguous(MemoryFormat::ChannelsLast);
    const int64_t N = y1.size(0), C = y1.size(1);
    const RowParts rp(y2_parts, y1.size(3));
    std::vector<double> b(N * 2 * C);
    Tensor y = Tensor::empty(y1.shape(), y1.dtype(), Device::CPU, MemoryFormat::ChannelsLast);
    SCCONV_DISPATCH_FLOAT(y1.dtype(), "cru_fuse", [&] { nhwc_forward<scalar_t>(y1, rp, kind, y, b); });
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
    math::cru_weights(math::CRUFuse(kind), N, C, s.data(), b.data());
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
                                           const std::vector<Tensor>& y2_parts, int kind,
                                           const Tensor& b_in) {
  if (y1_in.suggest_memory_format() == MemoryFormat::ChannelsLast) {
    const MemoryFormat cl = MemoryFormat::ChannelsLast;
    Tensor y1 = y1_in.contiguous(cl), gy = grad_y_in.contiguous(cl);
    const RowParts rp(y2_parts, y1.size(3));
    std::vector<double> b = b_in.to(DType::F64).to_vector<double>();
    CRUFuseGrads out{Tensor::empty(y1.shape(), y1.dtype(), Device::CPU, cl), {}};
    for (const Tensor& p : y2_parts) out.grad_y2_parts.push_back(Tensor::empty(p.shape(), p.dtype(), Device::CPU, cl));
    SCCONV_DISPATCH_FLOAT(y1.dtype(), "cru_fuse_backward", [&] { nhwc_backward<scalar_t>(gy, y1, rp, kind, b, out); });
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
        grad_b[n * 2 * C + c] = dot(G + p * S, Y1 + p * S, S);
        grad_b[n * 2 * C + C + c] = dot(G + p * S, pl.y2<T>(n, c), S);
      }
    });
    math::cru_weights_backward(math::CRUFuse(kind), N, C, b.data(), grad_b.data(), grad_s.data());
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
