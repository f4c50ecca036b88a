// core/cpu/sru.cpp: the fused SRU on NCHW or channels-last (N, C, H, W). Reference and formulas:
// core/reference/sru.cpp. Nothing between the steps is stored; each pass recomputes the group
// norm, sigmoid and gate from x:
//   forward   pass 1  group statistics (per (n, group), in double)
//             pass 2  per (n, channel pair c, c + C/2): both outputs from both inputs
//   backward  pass 1  per (n, pair): the sums of grad_Gn, grad_Gn xhat and grad_z Gn per channel
//             pass 2  per (n, pair): grad_x = direct part + the group norm's affine backward
// Forward reads x twice and writes y once; backward reads x and grad_y twice and writes grad_x
// once. Work is split over (n, pair), each summed by one thread in a fixed order, so results
// do not depend on the thread count. Channels-last input runs the same passes per sample on
// rows of C channels (the second half of this file), with no transposes; at 16, 32 and 64
// channels a sample whose every z lies within [-2, 2] takes its sigmoid as a polynomial
// (cpu::sigmoid_small: no exp, no divide), decided alike in the forward and the backward.
#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "core/cpu/cpu_backend.h"
#include "core/cpu/vec.h"
#include "core/math/norm.h"
#include "core/math/sru.h"
#include "core/parallel.h"

namespace scconv {

namespace {

void check_sru_input(const Tensor& x, const SRUParams& p) {
  SCCONV_CHECK(x.dim() == 4 && x.size(1) % 2 == 0 && p.groups > 0 && x.size(1) % p.groups == 0,
               "sru: input " << x.str() << " must be (N, C, H, W) with C even and divisible by groups="
                             << p.groups);
}

// Per (n, c): gn = x * a + b (the group norm with gamma, beta folded in), z = gn * w.
template <class T>
struct ChannelCoef {
  T a, b, w, mean, rstd;
};

template <class T>
std::vector<ChannelCoef<T>> channel_coefs(const T* mean, const T* rstd, const Tensor& gamma,
                                          const Tensor& beta, const Tensor& w, int64_t N,
                                          int64_t C, int64_t G) {
  std::vector<ChannelCoef<T>> k(N * C);
  const T *GA = gamma.data<T>(), *BE = beta.data<T>(), *W = w.data<T>();
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c) {
      const int64_t ng = n * G + c / (C / G);
      const double a = double(rstd[ng]) * GA[c];
      k[n * C + c] = {T(a), T(BE[c] - double(mean[ng]) * a), W[c], mean[ng], rstd[ng]};
    }
  return k;
}

template <class T>
inline T sigmoid_fast(T z) {
  return T(1) / (T(1) + cpu::exp_approx(-z));
}
// Small: every z of the sample is known to lie within cpu::sigmoid_small's range.
template <class T, bool Small>
inline T sigmoid_of(T z) {
  if constexpr (Small) return cpu::sigmoid_small(z);
  else return sigmoid_fast(z);
}

// Both channels of a pair (c, c + C/2) at S pixels: each output reads both inputs.
// The group norm's statistics of one group: M contiguous values (a block of channel planes).
template <class T>
void group_stats(const T* block, int64_t M, const SRUParams& p, T& mean, T& rstd) {
  const double m = cpu::sum_run(block, M) / double(M);
  const double ssd = cpu::sum_sq_dev_run(block, M, T(m));
  mean = T(m);
  rstd = T(p.gn == GroupNormKind::Torch ? math::rstd_biased(ssd, M, p.eps) : math::rstd_seed(ssd, M, p.eps));
}

// The group norm's backward for group g of sample n, affine: grad_x = k_g gh + k_x x + k_0, from
// the per-channel sums of grad_Gn and grad_Gn * xhat (s_gn, s_gnx at n * C).
template <class T>
math::AffineGrad group_grad_affine(const double* s_gn, const double* s_gnx, const T* GA,
                                   const ChannelCoef<T>& kc, int64_t g, int64_t Cg, double M,
                                   const SRUParams& p) {
  double sum_gh = 0, sum_ghx = 0;
  for (int64_t c = g * Cg; c < (g + 1) * Cg; ++c) {
    sum_gh += s_gn[c] * GA[c];
    sum_ghx += s_gnx[c] * GA[c];
  }
  return p.gn == GroupNormKind::Torch
             ? math::norm_grad_affine(1.0, kc.mean, kc.rstd, sum_gh, sum_ghx, M)
             : math::seed_norm_grad_affine(kc.mean, kc.rstd, p.eps, sum_gh, sum_ghx / kc.rstd, M);
}

template <class T, math::SRUGate Gate>
void pair_forward(const T* __restrict x0, const T* __restrict x1, T* __restrict y0,
                  T* __restrict y1, const ChannelCoef<T> k0, const ChannelCoef<T> k1, T t, int64_t S) {
  for (int64_t i = 0; i < S; ++i) {
    const T r0 = sigmoid_fast((x0[i] * k0.a + k0.b) * k0.w);
    const T r1 = sigmoid_fast((x1[i] * k1.a + k1.b) * k1.w);
    T w10, w20, w11, w21;
    math::sru_gate(r0, t, Gate, w10, w20);
    math::sru_gate(r1, t, Gate, w11, w21);
    y0[i] = w10 * x0[i] + w21 * x1[i];
    y1[i] = w11 * x1[i] + w20 * x0[i];
  }
}

template <class T, math::SRUGate Gate>
void forward_pairs(const T* X, T* Y, const std::vector<ChannelCoef<T>>& k, int64_t N, int64_t C,
                   int64_t S, T t) {
  const int64_t h = C / 2;
  parallel_for(N * h, std::max<int64_t>(1, 4096 / std::max<int64_t>(S, 1)), [&](int64_t b, int64_t e) {
    for (int64_t pi = b; pi < e; ++pi) {
      const int64_t n = pi / h, c0 = pi % h, c1 = c0 + h;
      pair_forward<T, Gate>(X + (n * C + c0) * S, X + (n * C + c1) * S, Y + (n * C + c0) * S,
                            Y + (n * C + c1) * S, k[n * C + c0], k[n * C + c1], t, S);
    }
  });
}

// Per element of channel c (input x, own gradient g, partner's gradient g2): the direct part
// of grad_x, grad_Gn and (for the sums) grad_z * Gn.
template <class T, math::SRUGate Gate, bool Small = false>
inline void element_grads(T x, T g, T g2, T a, T b, T w, T t, T& direct, T& grad_gn, T& grad_z_gn) {
  const T gn = x * a + b;
  const T r = sigmoid_of<T, Small>(gn * w);
  T w1, w2;
  math::sru_gate(r, t, Gate, w1, w2);
  direct = w1 * g + w2 * g2;
  const T grad_z = math::sru_gate_grad(r, t, Gate, g, g2, x) * r * (T(1) - r);
  grad_gn = grad_z * w;
  grad_z_gn = grad_z * gn;
}

// Pass 1 for one channel: per pixel grad_Gn, grad_Gn * xhat and grad_z * Gn, to be summed.
template <class T, math::SRUGate Gate>
void channel_terms(const T* __restrict x, const T* __restrict g, const T* __restrict g2,
                   const ChannelCoef<T> k, T t, int64_t S, T* __restrict gn, T* __restrict gnx,
                   T* __restrict zgn) {
  for (int64_t i = 0; i < S; ++i) {
    T direct, grad_gn, grad_z_gn;
    element_grads<T, Gate>(x[i], g[i], g2[i], k.a, k.b, k.w, t, direct, grad_gn, grad_z_gn);
    gn[i] = grad_gn;
    gnx[i] = grad_gn * (x[i] - k.mean) * k.rstd;
    zgn[i] = grad_z_gn;
  }
}

// Pass 2 for one channel: grad_x = direct part + kg grad_Gn + kx x + k0 (the group norm's part).
template <class T, math::SRUGate Gate>
void channel_grad_x(const T* __restrict x, const T* __restrict g, const T* __restrict g2,
                    const ChannelCoef<T> k, T t, int64_t S, T kg, T kx, T k0, T* __restrict gx) {
  for (int64_t i = 0; i < S; ++i) {
    T direct, grad_gn, grad_z_gn;
    element_grads<T, Gate>(x[i], g[i], g2[i], k.a, k.b, k.w, t, direct, grad_gn, grad_z_gn);
    gx[i] = direct + kg * grad_gn + kx * x[i] + k0;
  }
}

template <class T, math::SRUGate Gate>
void backward(const T* X, const T* GY, T* GX, const std::vector<ChannelCoef<T>>& k,
              const T* GA, int64_t N, int64_t C, int64_t S, int64_t G, const SRUParams& p,
              std::vector<double>& s_gn, std::vector<double>& s_gnx, std::vector<double>& s_zgn) {
  const int64_t h = C / 2, Cg = C / G;
  const T t = T(p.threshold);
  const int64_t grain = std::max<int64_t>(1, 4096 / std::max<int64_t>(S, 1));
  // pass 1: per-channel sums of grad_Gn, grad_Gn * xhat, grad_z * Gn
  parallel_for(N * h, grain, [&](int64_t b, int64_t e) {
    std::vector<T> a1(S), a2(S), a3(S);
    for (int64_t pi = b; pi < e; ++pi) {
      const int64_t n = pi / h;
      for (int64_t c : {pi % h, pi % h + h}) {
        const int64_t cp = (c + h) % C;
        channel_terms<T, Gate>(X + (n * C + c) * S, GY + (n * C + c) * S, GY + (n * C + cp) * S,
                               k[n * C + c], t, S, a1.data(), a2.data(), a3.data());
        s_gn[n * C + c] = cpu::sum_run(a1.data(), S);
        s_gnx[n * C + c] = cpu::sum_run(a2.data(), S);
        s_zgn[n * C + c] = cpu::sum_run(a3.data(), S);
      }
    }
  });
  // the group norm's backward, as grad_x = k_g gh + k_x x + k_0 per (n, group)
  std::vector<math::AffineGrad> aff(N * G);
  const double M = double(Cg * S);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t g = 0; g < G; ++g)
      aff[n * G + g] = group_grad_affine(&s_gn[n * C], &s_gnx[n * C], GA, k[n * C + g * Cg], g, Cg, M, p);
  // pass 2: grad_x
  parallel_for(N * h, grain, [&](int64_t b, int64_t e) {
    for (int64_t pi = b; pi < e; ++pi) {
      const int64_t n = pi / h;
      for (int64_t c : {pi % h, pi % h + h}) {
        const int64_t cp = (c + h) % C;
        const math::AffineGrad& af = aff[n * G + c / Cg];
        channel_grad_x<T, Gate>(X + (n * C + c) * S, GY + (n * C + c) * S, GY + (n * C + cp) * S,
                                k[n * C + c], t, S, T(af.k_g * GA[c]), T(af.k_x), T(af.k_0),
                                GX + (n * C + c) * S);
      }
    }
  });
}

// ---- channels-last: sample n is an (S pixels, C) row-major matrix. The kernels walk it in
// blocks of whole rows (cpu::block_rows) and tile each per-channel coefficient over a
// block, so every loop is one long run that the compiler vectorises whatever C is (16 channels,
// ResNet-20's first stage, is a single vector per row). A value's partner (channel c + C/2
// mod C) is the same position in a copy of the block with the two halves of each row swapped.
// Per-channel sums add a block's rows in T and the blocks in double, in order: the same bits
// at any thread count (one thread per sample). ----

// out[r * C + c] = in[r * C + (c + C/2) % C]: each value's partner. (Plain loops, not memcpy:
// a library call per half row costs more than the copy at 16 channels.)
template <class T>
__attribute__((optimize("no-tree-loop-distribute-patterns")))
void swap_halves(const T* __restrict in, int64_t C, int64_t rows, T* __restrict out) {
  const int64_t h = C / 2;
  for (int64_t r = 0; r < rows; ++r) {
    const T* a = in + r * C;
    T* b = out + r * C;
    for (int64_t j = 0; j < h; ++j) b[j] = a[h + j];
    for (int64_t j = 0; j < h; ++j) b[h + j] = a[j];
  }
}

// The forward's per-value step: u = W1 x (kept in place), v = W2 x (goes to the partner).
template <class T, math::SRUGate Gate, bool Small = false>
inline void gate_value(T x, T a, T b, T w, T t, T& u, T& v) {
  const T r = sigmoid_of<T, Small>((x * a + b) * w);
  T w1, w2;
  math::sru_gate(r, t, Gate, w1, w2);
  u = w1 * x;
  v = w2 * x;
}
template <class T, math::SRUGate Gate>
void gate_values(const T* __restrict x, const T* __restrict a, const T* __restrict b,
                 const T* __restrict w, T t, int64_t L, T* __restrict u, T* __restrict v) {
  for (int64_t e = 0; e < L; ++e) gate_value<T, Gate>(x[e], a[e], b[e], w[e], t, u[e], v[e]);
}

// y[r * C + c] = u[r * C + c] + v[r * C + (c + C/2) % C]: the cross reconstruction.
template <class T>
void add_partners(const T* __restrict u, const T* __restrict v, int64_t C, int64_t rows,
                  T* __restrict y) {
  const int64_t h = C / 2;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t o = r * C;
    for (int64_t j = 0; j < h; ++j) y[o + j] = u[o + j] + v[o + h + j];
    for (int64_t j = 0; j < h; ++j) y[o + h + j] = u[o + h + j] + v[o + j];
  }
}

// The channel counts with fixed-width kernels (the CIFAR ResNets' widths), and a call of
// f.template operator()<C>() with C as a compile-time constant (one of them).
bool has_fixed_width(int64_t C) { return C == 16 || C == 32 || C == 64; }
template <class F>
void with_fixed_width(int64_t C, F f) {
  if (C == 16) f.template operator()<16>();
  else if (C == 32) f.template operator()<32>();
  else f.template operator()<64>();
}

// Whether every z = (x a + b) w of a sample's rows lies within cpu::sigmoid_small's range: z is
// monotone in x, so each channel's smallest and largest x bound it (in double, with a margin for
// z's rounding). The forward and the backward ask the same of the same values: they evaluate
// the gate alike. (The CIFAR ResNets' SCConv units: |z| stays well below 1.)
template <class T, int C>
bool rows_small(const T* __restrict x, int64_t S, const T* a, const T* b, const T* w) {
  constexpr int L = std::min(C, cpu::kW<T>), K = C / L;  // a row as K vectors of L lanes
  using V = typename cpu::VecOf<T, L>::type;
  V lo[K], hi[K];
  for (int k = 0; k < K; ++k) lo[k] = hi[k] = cpu::load_vec<V>(x + k * L);
  for (int64_t r = 1; r < S; ++r)
    for (int k = 0; k < K; ++k) {
      const V v = cpu::load_vec<V>(x + r * C + k * L);
      lo[k] = v < lo[k] ? v : lo[k];
      hi[k] = v > hi[k] ? v : hi[k];
    }
  const double bound = cpu::kSigmoidSmallRange * (1 - 1e-4);
  for (int c = 0; c < C; ++c)
    for (T v : {lo[c / L][c % L], hi[c / L][c % L]})
      if (!(std::abs((double(v) * a[c] + b[c]) * w[c]) <= bound)) return false;
  return true;
}

// Calls f.template operator()<Small>() with the sigmoid's choice as a compile-time constant.
template <class F>
void with_small(bool small, F f) {
  if (small) f.template operator()<true>();
  else f.template operator()<false>();
}

// The whole output of one sample when C is a compile-time constant (16, 32, 64: the CIFAR
// ResNets' widths): a row's values and its partner's sit in a few vector registers, and the
// coefficients (the first row of each tile) stay in registers across rows.
template <class T, int C, math::SRUGate Gate, bool Small>
void rows_output(const T* __restrict x, const T* __restrict a, const T* __restrict b,
                 const T* __restrict w, T t, int64_t rows, T* __restrict y) {
  constexpr int h = C / 2;
  for (int64_t r = 0; r < rows; ++r, x += C, y += C) {
    T u[C], v[C];
    for (int c = 0; c < C; ++c) gate_value<T, Gate, Small>(x[c], a[c], b[c], w[c], t, u[c], v[c]);
    for (int c = 0; c < h; ++c) {
      y[c] = u[c] + v[c + h];
      y[c + h] = u[c + h] + v[c];
    }
  }
}

// Per-channel coefficients of one sample, tiled over a block of rows.
template <class T>
struct Tiles {
  std::vector<T> a, b, w, mean, rstd;
  Tiles(const ChannelCoef<T>* k, int64_t C, int64_t rows) {
    std::vector<T> pa(C), pb(C), pw(C), pm(C), pr(C);
    for (int64_t c = 0; c < C; ++c) {
      pa[c] = k[c].a, pb[c] = k[c].b, pw[c] = k[c].w, pm[c] = k[c].mean, pr[c] = k[c].rstd;
    }
    for (auto [src, dst] : {std::pair{&pa, &a}, {&pb, &b}, {&pw, &w}, {&pm, &mean}, {&pr, &rstd}}) {
      dst->resize(rows * C);
      cpu::tile_rows(src->data(), C, rows, dst->data());
    }
  }
};

template <class T, math::SRUGate Gate>
void nhwc_forward(const T* X, T* Y, T* MEAN, T* RSTD, const Tensor& gamma, const Tensor& beta,
                  const Tensor& w, int64_t N, int64_t C, int64_t S, const SRUParams& p) {
  const int64_t G = p.groups, Cg = C / G, B = cpu::block_rows(C);
  const T t = T(p.threshold);
  parallel_for(N, per_thread(N), [&](int64_t lo, int64_t hi) {
    const int64_t BC = has_fixed_width(C) ? 0 : B * C;  // u, v: the general path's blocks
    std::vector<T> acc(C), u(BC), v(BC), mc(C);
    std::vector<double> csum(C), csq(C);
    for (int64_t n = lo; n < hi; ++n) {
      const T* x = X + n * S * C;
      // group statistics: per-channel sums, group means, then squared deviations from them
      std::fill(csum.begin(), csum.end(), 0.0);
      std::fill(csq.begin(), csq.end(), 0.0);
      for (int64_t r0 = 0; r0 < S; r0 += B)
        cpu::add_columns<T>(x + r0 * C, nullptr, C, std::min(B, S - r0), acc.data(), csum.data());
      const double M = double(Cg * S);
      std::vector<T> group_mean(G);
      for (int64_t g = 0; g < G; ++g) {
        double s = 0;
        for (int64_t c = g * Cg; c < (g + 1) * Cg; ++c) s += csum[c];
        group_mean[g] = T(s / M);
      }
      for (int64_t c = 0; c < C; ++c) mc[c] = group_mean[c / Cg];
      for (int64_t r0 = 0; r0 < S; r0 += B)
        cpu::add_sq_dev_columns<T>(x + r0 * C, mc.data(), C, std::min(B, S - r0), acc.data(), csq.data());
      for (int64_t g = 0; g < G; ++g) {
        double ssd = 0;
        for (int64_t c = g * Cg; c < (g + 1) * Cg; ++c) ssd += csq[c];
        MEAN[n * G + g] = group_mean[g];
        RSTD[n * G + g] = T(p.gn == GroupNormKind::Torch ? math::rstd_biased(ssd, M, p.eps)
                                                         : math::rstd_seed(ssd, M, p.eps));
      }
      // the output, a block of rows at a time
      auto k = channel_coefs<T>(MEAN + n * G, RSTD + n * G, gamma, beta, w, 1, C, G);
      const Tiles<T> tl(k.data(), C, B);
      T* y = Y + n * S * C;
      if (has_fixed_width(C)) {
        with_fixed_width(C, [&]<int Cc>() {
          with_small(rows_small<T, Cc>(x, S, tl.a.data(), tl.b.data(), tl.w.data()), [&]<bool Small>() {
            rows_output<T, Cc, Gate, Small>(x, tl.a.data(), tl.b.data(), tl.w.data(), t, S, y);
          });
        });
        continue;
      }
      for (int64_t r0 = 0; r0 < S; r0 += B) {
        const int64_t rows = std::min(B, S - r0), L = rows * C;
        gate_values<T, Gate>(x + r0 * C, tl.a.data(), tl.b.data(), tl.w.data(), t, L, u.data(), v.data());
        add_partners(u.data(), v.data(), C, rows, Y + n * S * C + r0 * C);
      }
    }
  });
}

// Backward pass 1 per value: grad_Gn, grad_Gn * xhat and grad_z * Gn, to be summed per channel.
template <class T, math::SRUGate Gate>
void value_terms(const T* __restrict x, const T* __restrict g, const T* __restrict g2,
                 const T* __restrict a, const T* __restrict b, const T* __restrict w,
                 const T* __restrict mean, const T* __restrict rstd, T t, int64_t L,
                 T* __restrict gn, T* __restrict gnx, T* __restrict zgn) {
  for (int64_t e = 0; e < L; ++e) {
    T direct, grad_gn, grad_z_gn;
    element_grads<T, Gate>(x[e], g[e], g2[e], a[e], b[e], w[e], t, direct, grad_gn, grad_z_gn);
    gn[e] = grad_gn;
    gnx[e] = grad_gn * (x[e] - mean[e]) * rstd[e];
    zgn[e] = grad_z_gn;
  }
}

// Backward pass 2 per value: grad_x = direct part + kg grad_Gn + kx x + k0.
template <class T, math::SRUGate Gate>
void value_grad_x(const T* __restrict x, const T* __restrict g, const T* __restrict g2,
                  const T* __restrict a, const T* __restrict b, const T* __restrict w,
                  const T* __restrict kg, const T* __restrict kx, const T* __restrict k0, T t,
                  int64_t L, T* __restrict gx) {
  for (int64_t e = 0; e < L; ++e) {
    T direct, grad_gn, grad_z_gn;
    element_grads<T, Gate>(x[e], g[e], g2[e], a[e], b[e], w[e], t, direct, grad_gn, grad_z_gn);
    gx[e] = direct + kg[e] * grad_gn + kx[e] * x[e] + k0[e];
  }
}

// Backward pass 1 over a sample's rows when C is a compile-time constant (16, 32, 64), a
// block of `rows` at a time like add_columns: adds grad_Gn, grad_Gn * xhat and grad_z * Gn into
// per-channel sums, and keeps each value's direct part and grad_Gn for pass 2, which then does
// not evaluate the gate again. The partner's gradient is read in place (no swapped copy).
template <class T, int C, math::SRUGate Gate, bool Small>
void rows_terms(const T* __restrict x, const T* __restrict gy, const Tiles<T>& tl, T t,
                int64_t S, int64_t B, T* __restrict direct, T* __restrict grad_gn, double* sg,
                double* sgx, double* szg) {
  constexpr int h = C / 2;
  const T *a = tl.a.data(), *b = tl.b.data(), *w = tl.w.data(), *m = tl.mean.data(), *rs = tl.rstd.data();
  for (int64_t r0 = 0; r0 < S; r0 += B) {
    T s1[C] = {}, s2[C] = {}, s3[C] = {};
    for (int64_t r = r0; r < std::min(S, r0 + B); ++r) {
      const int64_t o = r * C;
      T g2[C];  // each value's partner gradient
      for (int c = 0; c < h; ++c) g2[c] = gy[o + h + c], g2[h + c] = gy[o + c];
      for (int c = 0; c < C; ++c) {
        T d, gn, zgn;
        element_grads<T, Gate, Small>(x[o + c], gy[o + c], g2[c], a[c], b[c], w[c], t, d, gn, zgn);
        direct[o + c] = d;
        grad_gn[o + c] = gn;
        s1[c] += gn;
        s2[c] += gn * (x[o + c] - m[c]) * rs[c];
        s3[c] += zgn;
      }
    }
    for (int c = 0; c < C; ++c) sg[c] += double(s1[c]), sgx[c] += double(s2[c]), szg[c] += double(s3[c]);
  }
}

// Backward pass 2 for a constant C: grad_x = direct part + kg grad_Gn + kx x + k0.
template <class T, int C>
void rows_grad_x(const T* __restrict x, const T* __restrict direct, const T* __restrict grad_gn,
                 const T* __restrict kg, const T* __restrict kx, const T* __restrict k0,
                 int64_t S, T* __restrict gx) {
  for (int64_t o = 0; o < S * C; o += C)
    for (int c = 0; c < C; ++c)
      gx[o + c] = direct[o + c] + kg[c] * grad_gn[o + c] + kx[c] * x[o + c] + k0[c];
}

template <class T, math::SRUGate Gate>
void nhwc_backward(const T* X, const T* GY, T* GX, const std::vector<ChannelCoef<T>>& k,
                   const T* GA, int64_t N, int64_t C, int64_t S, const SRUParams& p,
                   std::vector<double>& s_gn, std::vector<double>& s_gnx, std::vector<double>& s_zgn) {
  const int64_t G = p.groups, Cg = C / G, B = cpu::block_rows(C);
  const T t = T(p.threshold);
  const double M = double(Cg * S);
  const bool fixed = has_fixed_width(C);
  parallel_for(N, per_thread(N), [&](int64_t lo, int64_t hi) {
    // fixed width: each value's direct part and grad_Gn, kept from pass 1 for pass 2;
    // otherwise: the partner gradients and per-block terms and tiled coefficients
    const int64_t SC = fixed ? S * C : 0, BC = fixed ? 0 : B * C;
    std::vector<T> direct(SC), grad_gn(SC), g2(fixed ? 0 : S * C), acc(C), t1(BC), t2(BC), t3(BC),
        kg(BC), kx(BC), k0(BC);
    std::vector<T> pg(C), px(C), p0(C);
    for (int64_t n = lo; n < hi; ++n) {
      const T *x = X + n * S * C, *gy = GY + n * S * C;
      const Tiles<T> tl(&k[n * C], C, B);
      double *sg = &s_gn[n * C], *sgx = &s_gnx[n * C], *szg = &s_zgn[n * C];
      std::fill(sg, sg + C, 0.0);
      std::fill(sgx, sgx + C, 0.0);
      std::fill(szg, szg + C, 0.0);
      // pass 1: per-channel sums
      if (fixed) {
        with_fixed_width(C, [&]<int Cc>() {
          with_small(rows_small<T, Cc>(x, S, tl.a.data(), tl.b.data(), tl.w.data()), [&]<bool Small>() {
            rows_terms<T, Cc, Gate, Small>(x, gy, tl, t, S, B, direct.data(), grad_gn.data(), sg, sgx, szg);
          });
        });
      } else {
        swap_halves(gy, C, S, g2.data());  // each value's partner gradient, for both passes
        for (int64_t r0 = 0; r0 < S; r0 += B) {
          const int64_t rows = std::min(B, S - r0), o = r0 * C;
          value_terms<T, Gate>(x + o, gy + o, g2.data() + o, tl.a.data(), tl.b.data(), tl.w.data(),
                               tl.mean.data(), tl.rstd.data(), t, rows * C, t1.data(), t2.data(), t3.data());
          cpu::add_columns<T>(t1.data(), nullptr, C, rows, acc.data(), sg);
          cpu::add_columns<T>(t2.data(), nullptr, C, rows, acc.data(), sgx);
          cpu::add_columns<T>(t3.data(), nullptr, C, rows, acc.data(), szg);
        }
      }
      for (int64_t g = 0; g < G; ++g) {  // the group norm's backward, affine per group
        const math::AffineGrad af = group_grad_affine(sg, sgx, GA, k[n * C + g * Cg], g, Cg, M, p);
        for (int64_t c = g * Cg; c < (g + 1) * Cg; ++c) {
          pg[c] = T(af.k_g * GA[c]), px[c] = T(af.k_x), p0[c] = T(af.k_0);
        }
      }
      // pass 2: grad_x
      if (fixed) {
        with_fixed_width(C, [&]<int Cc>() {
          rows_grad_x<T, Cc>(x, direct.data(), grad_gn.data(), pg.data(), px.data(), p0.data(), S,
                             GX + n * S * C);
        });
        continue;
      }
      cpu::tile_rows(pg.data(), C, B, kg.data());
      cpu::tile_rows(px.data(), C, B, kx.data());
      cpu::tile_rows(p0.data(), C, B, k0.data());
      for (int64_t r0 = 0; r0 < S; r0 += B) {
        const int64_t L = std::min(B, S - r0) * C, o = r0 * C;
        value_grad_x<T, Gate>(x + o, gy + o, g2.data() + o, tl.a.data(), tl.b.data(), tl.w.data(),
                              kg.data(), kx.data(), k0.data(), t, L, GX + n * S * C + o);
      }
    }
  });
}

// Calls f.template operator()<Gate>() with the gate as a compile-time constant.
template <class F>
void with_gate(math::SRUGate gate, F f) {
  switch (gate) {
    case math::SRUGate::Soft: f.template operator()<math::SRUGate::Soft>(); break;
    case math::SRUGate::Hard: f.template operator()<math::SRUGate::Hard>(); break;
    case math::SRUGate::HardReweighted: f.template operator()<math::SRUGate::HardReweighted>(); break;
  }
}

}  // namespace

Tensor CpuBackend::sru_forward(const Tensor& x_in, const Tensor& gamma_in, const Tensor& beta_in,
                               const Tensor& w_in, const SRUParams& p, Tensor& mean, Tensor& rstd) {
  check_sru_input(x_in, p);
  const MemoryFormat fmt = x_in.suggest_memory_format();
  const bool cl = fmt == MemoryFormat::ChannelsLast;
  Tensor x = x_in.contiguous(fmt), gamma = gamma_in.contiguous(), beta = beta_in.contiguous(),
         w = w_in.contiguous();
  const int64_t N = x.size(0), C = x.size(1), S = x.size(2) * x.size(3), G = p.groups,
                M = C / G * S;
  mean = Tensor::empty({N, G}, x.dtype());
  rstd = Tensor::empty({N, G}, x.dtype());
  Tensor y = Tensor::empty(x.shape(), x.dtype(), Device::CPU, fmt);
  SCCONV_DISPATCH_FLOAT(x.dtype(), "sru", [&] {
    using T = scalar_t;
    const T* X = x.data<T>();
    T *MEAN = mean.data<T>(), *RSTD = rstd.data<T>();
    if (cl) {
      with_gate(p.gate, [&]<math::SRUGate Gate>() {
        nhwc_forward<T, Gate>(X, y.data<T>(), MEAN, RSTD, gamma, beta, w, N, C, S, p);
      });
      return;
    }
    parallel_for(N * G, 1, [&](int64_t b, int64_t e) {
      for (int64_t ng = b; ng < e; ++ng) group_stats(X + ng * M, M, p, MEAN[ng], RSTD[ng]);
    });
    auto k = channel_coefs<T>(MEAN, RSTD, gamma, beta, w, N, C, G);
    with_gate(p.gate, [&]<math::SRUGate Gate>() {
      forward_pairs<T, Gate>(X, y.data<T>(), k, N, C, S, T(p.threshold));
    });
  });
  return y;
}

SRUGrads CpuBackend::sru_backward(const Tensor& grad_y_in, const Tensor& x_in,
                                  const Tensor& gamma_in, const Tensor& beta_in,
                                  const Tensor& w_in, const SRUParams& p, const Tensor& mean,
                                  const Tensor& rstd) {
  check_sru_input(x_in, p);
  const MemoryFormat fmt = x_in.suggest_memory_format();
  Tensor x = x_in.contiguous(fmt), gy = grad_y_in.contiguous(fmt), gamma = gamma_in.contiguous(),
         beta = beta_in.contiguous(), w = w_in.contiguous();
  const int64_t N = x.size(0), C = x.size(1), S = x.size(2) * x.size(3), G = p.groups;
  SRUGrads out{Tensor::empty(x.shape(), x.dtype(), Device::CPU, fmt), Tensor::empty({C}, x.dtype()),
               Tensor::empty({C}, x.dtype()), Tensor::empty({C}, x.dtype())};
  std::vector<double> s_gn(N * C), s_gnx(N * C), s_zgn(N * C);  // per (n, c)
  SCCONV_DISPATCH_FLOAT(x.dtype(), "sru_backward", [&] {
    using T = scalar_t;
    Tensor m = mean.contiguous(), r = rstd.contiguous();
    auto k = channel_coefs<T>(m.data<T>(), r.data<T>(), gamma, beta, w, N, C, G);
    with_gate(p.gate, [&]<math::SRUGate Gate>() {
      if (fmt == MemoryFormat::ChannelsLast)
        nhwc_backward<T, Gate>(x.data<T>(), gy.data<T>(), out.grad_x.data<T>(), k, gamma.data<T>(),
                               N, C, S, p, s_gn, s_gnx, s_zgn);
      else
        backward<T, Gate>(x.data<T>(), gy.data<T>(), out.grad_x.data<T>(), k, gamma.data<T>(), N,
                          C, S, G, p, s_gn, s_gnx, s_zgn);
    });
    for (int64_t c = 0; c < C; ++c) {
      double sg = 0, sb = 0, sw = 0;
      for (int64_t n = 0; n < N; ++n) {
        sg += s_gnx[n * C + c];
        sb += s_gn[n * C + c];
        sw += s_zgn[n * C + c];
      }
      out.grad_gamma.data<T>()[c] = T(sg);
      out.grad_beta.data<T>()[c] = T(sb);
      out.grad_w.data<T>()[c] = T(sw);
    }
  });
  return out;
}

}  // namespace scconv
