// layers/sru.cpp: the spatial reconstruction unit (spec: "SRU"). For x (N, C, H, W):
//   1. G = GN(x)                               group norm with learnable per-channel gamma, beta
//   2. w = gamma / sum(gamma)                  (gamma_norm "sum", paper Eq. 2) or softmax(gamma)
//   3. R = sigmoid(G * w)                      w broadcast per channel
//   4. W1, W2 = gate(R, t)                     informative / less informative weights
//      (sru.mask_on "w", seed 003: the mask compares w, per channel, instead of R)
//      X1 = W1 * x, X2 = W2 * x                applied to the raw input x
//   5. out = cat(X11 + X22, X12 + X21)         cross reconstruction of the channel halves
// forward_unfused() runs these steps as separate ops (read it to learn the SRU); forward() runs
// them in one fused kernel (autograd sru(), core/cpu/sru.cpp): two passes over x instead of
// about twenty, nothing stored for backward but x. Tests check that both agree.
#include <cmath>

#include "layers/capture.h"
#include "layers/scconv.h"
#include "layers/summary.h"

namespace scconv {

SRU::SRU(int64_t channels, const SRUOptions& o, Generator& g) : c_(channels), o_(o) {
  SCCONV_CHECK(channels > 0 && channels % 2 == 0,
               "SRU: the cross reconstruction splits channels in halves, so channels must be "
               "even, got " << channels);
  SCCONV_CHECK(o.groups > 0 && channels % o.groups == 0,
               "SRU: sru.groups=" << o.groups << " must divide channels=" << channels);
  SCCONV_CHECK(o.threshold > 0 && o.threshold < 1,
               "SRU: sru.threshold must be in (0, 1), got " << o.threshold);
  if (o.gn == GroupNormKind::Torch)
    gn = register_module("gn", std::make_shared<GroupNorm>(o.groups, channels));
  else
    gn = register_module("gn", std::make_shared<SeedGroupNorm>(o.groups, channels, g));
}

Tensor SRU::gamma() const {
  if (o_.gn == GroupNormKind::Torch) return std::static_pointer_cast<GroupNorm>(gn)->weight;
  return reshape(std::static_pointer_cast<SeedGroupNorm>(gn)->gamma, {c_});
}

Tensor SRU::beta() const {
  if (o_.gn == GroupNormKind::Torch) return std::static_pointer_cast<GroupNorm>(gn)->bias;
  return reshape(std::static_pointer_cast<SeedGroupNorm>(gn)->beta, {c_});
}

Tensor SRU::forward(const Tensor& x) {
  SCCONV_CHECK(x.dim() == 4 && x.size(1) == c_,
               describe(*this) << ": expected (N, " << c_ << ", H, W), got " << x.str());
  // `scconv summary` lists every module call: there the SRU runs step by step (the same values),
  // so that its group norm shows as a row of its own.
  if (SummaryRecorder::active()) return forward_unfused(x);
  // the fused kernel gates on R; a mask on w (seed 003) runs step by step
  if (o_.mask_on == SRUMaskOn::W) return steps(x, capture());
  if (capture()) {  // the fused output, and the steps recorded from a separate pass
    Tensor y = forward_fused(x);
    autograd::NoGradGuard ng;
    capture()->put(*this, "output_unfused", steps(x, capture()));
    capture()->put(*this, "output", y);
    return y;
  }
  return forward_fused(x);
}

Tensor SRU::forward_fused(const Tensor& x) {
  SRUParams p;
  p.groups = o_.groups;
  p.threshold = o_.threshold;
  p.gate = o_.gate;
  if (o_.gn == GroupNormKind::Torch) {
    p.eps = std::static_pointer_cast<GroupNorm>(gn)->eps;
  } else {
    p.eps = std::static_pointer_cast<SeedGroupNorm>(gn)->eps;
    p.gn = GroupNormKind::Seed;
  }
  return sru(x, gamma(), beta(), channel_weights(), p);
}

Tensor SRU::channel_weights() {
  Tensor gam = gamma();  // (C)
  Tensor w;              // (C)
  if (o_.gamma_norm == GammaNorm::Sum) {
    Tensor total = sum(gam);
    if (DeviceSideChecks::active()) {  // the same test on the device: NaN weights where it fails
      Tensor ok;
      {
        autograd::NoGradGuard ng;
        const Tensor g64 = gam.detach().to(DType::F64);
        const Tensor s = sum(g64), mag = sum(sqrt(mul(g64, g64)));
        ok = gt(mul(s, s), mul(mul(mag, mag), 1e-12));  // |s| > 1e-6 sum |gamma| (so s != 0)
      }
      return where(ok, div(gam, total), Tensor::full({}, std::nan(""), gam.dtype(), gam.device()));
    }
    // checked on the host from one copy of gamma (C values; on a GPU a wait, so a training step
    // checks on the device instead, above)
    double s = 0, mag = 0;
    for (double v : gam.detach().to(DType::F64).to_vector<double>()) s += v, mag += std::fabs(v);
    SCCONV_CHECK(std::fabs(s) > 1e-6 * mag && std::fabs(s) > 0,
                 describe(*this) << ": sum of the GN gamma is " << s << " (sum of |gamma| "
                                 << mag << "), so w = gamma / sum(gamma) is undefined; use "
                                 << "sru.gamma_norm=softmax");
    w = div(gam, total);
  } else {
    w = softmax(gam, 0);
  }
  return w;
}

Tensor SRU::forward_unfused(const Tensor& x) {
  SCCONV_CHECK(x.dim() == 4 && x.size(1) == c_,
               describe(*this) << ": expected (N, " << c_ << ", H, W), got " << x.str());
  return steps(x, nullptr);
}

// The spec's steps one op each; with a capture, every intermediate is recorded by its name.
Tensor SRU::steps(const Tensor& x, Capture* cap) {
  auto record = [&](const char* what, const Tensor& t) {
    if (cap) cap->put(*this, what, t);
  };
  record("X", x);  // (N, C, H, W)
  // 1. group norm
  Tensor G = (*gn)(x);  // (N, C, H, W)
  record("G", G);
  // 2. channel weights from the GN scale
  Tensor w = channel_weights();  // (C)
  record("w", w);
  // 3. importance R in (0, 1)
  Tensor R = sigmoid(mul(G, reshape(w, {1, c_, 1, 1})));  // (N, C, H, W)
  record("R", R);
  // 4. gate
  Tensor info = o_.mask_on == SRUMaskOn::R ? gt(R, o_.threshold)  // uint8 mask: R > t
                                          : gt(reshape(w, {1, c_, 1, 1}), o_.threshold);  // w > t, per channel
  Tensor one = Tensor::full({}, 1.0, x.dtype(), x.device()), zero = Tensor::full({}, 0.0, x.dtype(), x.device());
  Tensor W1, W2;
  switch (o_.gate) {
    case SRUGate::Soft:  // W1 = where(R > t, 1, R), W2 = where(R > t, 0, R)
      W1 = where(info, one, R);
      W2 = where(info, zero, R);
      break;
    case SRUGate::Hard:  // complementary binary masks, no gradient through them
      W1 = where(info, one, zero);
      W2 = where(info, zero, one);
      break;
    case SRUGate::HardReweighted:  // W1 = [R > t] R, W2 = [R <= t] R
      W1 = where(info, R, zero);
      W2 = where(info, zero, R);
      break;
  }
  Tensor X1 = mul(W1, x), X2 = mul(W2, x);
  record("W1", W1);
  record("W2", W2);
  record("X1", X1);
  record("X2", X2);
  // 5. cross reconstruction
  const int64_t h = c_ / 2;
  auto x1 = split(X1, {h, h}, 1), x2 = split(X2, {h, h}, 1);
  Tensor out = cat({add(x1[0], x2[1]), add(x1[1], x2[0])}, 1);
  if (cap && o_.mask_on == SRUMaskOn::W) {  // no fused kernel here: both outputs are this one
    cap->put(*this, "output_unfused", out);
    cap->put(*this, "output", out);
  }
  return out;
}

void SRU::set_threshold(double t) {
  SCCONV_CHECK(t > 0 && t < 1, describe(*this) << ": the threshold must be in (0, 1), got " << t);
  o_.threshold = t;
}

}  // namespace scconv
