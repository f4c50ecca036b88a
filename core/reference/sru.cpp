// core/reference/sru.cpp: the fused SRU as plain loops in double. Read this to learn what the
// fast kernel (core/cpu/sru.cpp) computes in two passes. For x (N, C, H, W), S = H * W pixels,
// G groups of Cg = C / G channels, h = C / 2, and the partner channel c' = (c + h) mod C:
//   forward:  mean, rstd per (n, group)                  (the group norm's statistics)
//             xhat = (x - mean) rstd,  Gn = xhat gamma + beta,  R = sigmoid(Gn w)
//             W1, W2 = gate(R)                           (core/math/sru.h)
//             y[c] = W1[c] x[c] + W2[c'] x[c']           (cross reconstruction)
//   backward: grad_x = W1 g + W2 g'  (direct part, g' = grad_y[c'])
//             grad_R -> grad_z = grad_R R (1 - R) -> grad_Gn = grad_z w,  grad_w += grad_z Gn
//             then the group norm's backward of grad_Gn (core/math/norm.h) adds to grad_x.
#include <cmath>
#include <vector>

#include "core/math/norm.h"
#include "core/math/sru.h"
#include "core/reference/reference_backend.h"

namespace scconv {

namespace {
struct SRUShape {
  int64_t N, C, S, G, Cg, h;
  explicit SRUShape(const Tensor& x, int64_t groups)
      : N(x.size(0)), C(x.size(1)), S(x.size(2) * x.size(3)), G(groups), Cg(x.size(1) / groups),
        h(x.size(1) / 2) {}
  int64_t at(int64_t n, int64_t c, int64_t k) const { return (n * C + c) * S + k; }
  int64_t partner(int64_t c) const { return (c + h) % C; }
};

// Everything the forward computes at one element, from x and the group statistics.
struct SRUElement {
  double xhat, gn, r, w1, w2;
};
SRUElement sru_element(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& w,
                       const SRUParams& p, const SRUShape& d, const std::vector<double>& mean,
                       const std::vector<double>& rstd, int64_t n, int64_t c, int64_t k) {
  const int64_t ng = n * d.G + c / d.Cg;
  SRUElement e;
  e.xhat = (ref::get(x, d.at(n, c, k)) - mean[ng]) * rstd[ng];
  e.gn = e.xhat * ref::get(gamma, c) + ref::get(beta, c);
  e.r = 1.0 / (1.0 + std::exp(-e.gn * ref::get(w, c)));
  math::sru_gate(e.r, p.threshold, p.gate, e.w1, e.w2);
  return e;
}

void read_stats(const Tensor& mean, const Tensor& rstd, std::vector<double>& m, std::vector<double>& r) {
  for (int64_t i = 0; i < mean.numel(); ++i) {
    m.push_back(ref::get(mean, i));
    r.push_back(ref::get(rstd, i));
  }
}
}  // namespace

Tensor ReferenceBackend::sru_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                     const Tensor& w, const SRUParams& p, Tensor& mean_out,
                                     Tensor& rstd_out) {
  const SRUShape d(x, p.groups);
  const int64_t M = d.Cg * d.S;
  // 1. group norm statistics
  std::vector<double> mean(d.N * d.G), rstd(d.N * d.G);
  for (int64_t n = 0; n < d.N; ++n)
    for (int64_t g = 0; g < d.G; ++g) {
      double s = 0, ssd = 0;
      for (int64_t c = g * d.Cg; c < (g + 1) * d.Cg; ++c)
        for (int64_t k = 0; k < d.S; ++k) s += ref::get(x, d.at(n, c, k));
      const double m = s / M;
      for (int64_t c = g * d.Cg; c < (g + 1) * d.Cg; ++c)
        for (int64_t k = 0; k < d.S; ++k) ssd += std::pow(ref::get(x, d.at(n, c, k)) - m, 2);
      mean[n * d.G + g] = m;
      rstd[n * d.G + g] = p.gn == GroupNormKind::Torch ? math::rstd_biased(ssd, M, p.eps)
                                                       : math::rstd_seed(ssd, M, p.eps);
    }
  mean_out = Tensor::from_vector(mean, {d.N, d.G}).to(x.dtype());
  rstd_out = Tensor::from_vector(rstd, {d.N, d.G}).to(x.dtype());
  // 2.-5. per element: importance, gate, cross reconstruction
  std::vector<double> y(x.numel());
  for (int64_t n = 0; n < d.N; ++n)
    for (int64_t c = 0; c < d.C; ++c)
      for (int64_t k = 0; k < d.S; ++k) {
        const int64_t cp = d.partner(c);
        SRUElement self = sru_element(x, gamma, beta, w, p, d, mean, rstd, n, c, k);
        SRUElement other = sru_element(x, gamma, beta, w, p, d, mean, rstd, n, cp, k);
        y[d.at(n, c, k)] = self.w1 * ref::get(x, d.at(n, c, k)) + other.w2 * ref::get(x, d.at(n, cp, k));
      }
  return Tensor::from_vector(y, x.shape()).to(x.dtype());
}

SRUGrads ReferenceBackend::sru_backward(const Tensor& grad_y, const Tensor& x, const Tensor& gamma,
                                        const Tensor& beta, const Tensor& w, const SRUParams& p,
                                        const Tensor& mean_in, const Tensor& rstd_in) {
  const SRUShape d(x, p.groups);
  const int64_t M = d.Cg * d.S;
  std::vector<double> mean, rstd;
  read_stats(mean_in, rstd_in, mean, rstd);
  std::vector<double> gx(x.numel()), grad_gn(x.numel()), gg(d.C), gb(d.C), gw(d.C);
  // the gate and the importance, element by element
  for (int64_t n = 0; n < d.N; ++n)
    for (int64_t c = 0; c < d.C; ++c)
      for (int64_t k = 0; k < d.S; ++k) {
        const int64_t i = d.at(n, c, k);
        const double g = ref::get(grad_y, i), g2 = ref::get(grad_y, d.at(n, d.partner(c), k));
        SRUElement e = sru_element(x, gamma, beta, w, p, d, mean, rstd, n, c, k);
        gx[i] = e.w1 * g + e.w2 * g2;
        const double grad_r = math::sru_gate_grad(e.r, p.threshold, p.gate, g, g2, ref::get(x, i));
        const double grad_z = grad_r * e.r * (1.0 - e.r);
        grad_gn[i] = grad_z * ref::get(w, c);
        gw[c] += grad_z * e.gn;
        gb[c] += grad_gn[i];
        gg[c] += grad_gn[i] * e.xhat;
      }
  // the group norm's backward of grad_gn
  for (int64_t n = 0; n < d.N; ++n)
    for (int64_t g = 0; g < d.G; ++g) {
      const int64_t ng = n * d.G + g;
      double sum_gh = 0, sum_ghx = 0;
      for (int64_t c = g * d.Cg; c < (g + 1) * d.Cg; ++c)
        for (int64_t k = 0; k < d.S; ++k) {
          const int64_t i = d.at(n, c, k);
          const double gh = grad_gn[i] * ref::get(gamma, c);
          sum_gh += gh;
          sum_ghx += gh * (ref::get(x, i) - mean[ng]) * rstd[ng];
        }
      for (int64_t c = g * d.Cg; c < (g + 1) * d.Cg; ++c)
        for (int64_t k = 0; k < d.S; ++k) {
          const int64_t i = d.at(n, c, k);
          const double gh = grad_gn[i] * ref::get(gamma, c), dev = ref::get(x, i) - mean[ng];
          gx[i] += p.gn == GroupNormKind::Torch
                       ? math::norm_grad_x<double>(gh, dev * rstd[ng], rstd[ng], sum_gh, sum_ghx, M)
                       : math::seed_norm_grad_x<double>(gh, dev, rstd[ng], p.eps, sum_gh, sum_ghx / rstd[ng], M);
        }
    }
  auto out = [&](const std::vector<double>& v, const Shape& s) { return Tensor::from_vector(v, s).to(x.dtype()); };
  return {out(gx, x.shape()), out(gg, {d.C}), out(gb, {d.C}), out(gw, {d.C})};
}

}  // namespace scconv
