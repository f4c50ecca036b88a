// layers/cru.cpp: the channel reconstruction unit (spec: "CRU"). For x (N, c_in, H, W), with
// up = floor(alpha c_in), low = c_in - up and the squeeze ratio r:
//   1. split:    X_up = x[:, :up], X_low = x[:, up:]      (split_conv: two 1x1 convs of x)
//   2. squeeze:  X_up' = squeeze1(X_up) (up/r ch), X_low' = squeeze2(X_low) (low/r ch)
//   3. upper:    Y1 = GWC(X_up') + PWC1(X_up')           (c_out ch, stride s)
//   4. lower:    Y2 = cat(PWC2(X_low'), S(X_low'))        (c_out ch; S subsamples by s)
//   5. fuse:     branch_softmax:  beta1, beta2 = softmax(GAP(Y1)_c, GAP(Y2)_c) per channel,
//                                 Y = beta1 Y1 + beta2 Y2          (paper Eq. 8-9)
//                channel_softmax: Z = cat(Y1, Y2); Z = softmax(GAP(Z) over 2 c_out) * Z;
//                                 Y = Z[:c_out] + Z[c_out:]       (the seeds' code)
//                branch_fc:       b = softmax(fc(cat(GAP(Y1), GAP(Y2)))) over the 2 branches,
//                                 Y = b1 Y1 + b2 Y2, one weight per branch (seed 004)
// Options of the seeds: squeeze_kind "channel_stride" takes every (C / (C / r))-th channel of
// each branch instead of a 1x1 squeeze (seed 004); gwc_bias false drops the GWC's bias (seed 000).
// forward_unfused() runs every step as written above (read it to learn the CRU); forward() runs
// steps 1-2 as one block-diagonal 1x1 convolution with an output per block (conv1x1_split()),
// step 3 as one dense k x k convolution (see upper_weight()), and steps 4-5 as one kernel
// (autograd cru_fuse_lower(), core/cpu/cru_lower.cpp) that computes Y2 from X_low' where it
// needs it (see lower_weight()). Tests check that both agree.
#include <cmath>

#include "layers/capture.h"
#include "layers/scconv.h"
#include "layers/summary.h"

namespace scconv {

CRU::CRU(int64_t c_in, int64_t c_out, int64_t stride, const CRUOptions& o, Generator& g)
    : c_out_(c_out), stride_(stride), o_(o) {
  SCCONV_CHECK(o.alpha > 0 && o.alpha < 1, "CRU: cru alpha must be in (0, 1), got " << o.alpha);
  SCCONV_CHECK(o.squeeze >= 1 && o.groups >= 1 && o.kernel >= 1 && o.kernel % 2 == 1,
               "CRU: squeeze and groups must be >= 1 and kernel odd (squeeze=" << o.squeeze
                   << ", groups=" << o.groups << ", kernel=" << o.kernel << ")");
  SCCONV_CHECK(stride >= 1, "CRU: stride must be >= 1, got " << stride);
  up = static_cast<int64_t>(std::floor(o.alpha * double(c_in)));
  low = c_in - up;
  SCCONV_CHECK(up > 0 && low > 0, "CRU: alpha=" << o.alpha << " leaves a branch empty with c_in="
                                                << c_in << " (up=" << up << ", low=" << low << ")");
  up_squeezed = up / o.squeeze;
  low_squeezed = low / o.squeeze;
  SCCONV_CHECK(up_squeezed > 0 && low_squeezed > 0,
               "CRU: squeeze=" << o.squeeze << " leaves a branch empty (up=" << up << " -> "
                               << up_squeezed << ", low=" << low << " -> " << low_squeezed << ")");
  SCCONV_CHECK(up_squeezed % o.groups == 0 && c_out % o.groups == 0,
               "CRU: groups=" << o.groups << " must divide the GWC's input channels "
                              << up_squeezed << " and output channels " << c_out);
  SCCONV_CHECK(low_squeezed < c_out, "CRU: the lower branch keeps " << low_squeezed
                                         << " channels, which must be fewer than c_out=" << c_out);
  if (o.fuse == CRUFuse::SplitConv) {
    split_conv_up_ = register_module("split_conv_up", std::make_shared<Conv2d>(Conv2dOptions{c_in, up, 1}, g));
    split_conv_low_ = register_module("split_conv_low", std::make_shared<Conv2d>(Conv2dOptions{c_in, low, 1}, g));
  }
  if (o.squeeze_kind == CRUSqueeze::Conv) {
    squeeze1_ = register_module("squeeze1", std::make_shared<Conv2d>(Conv2dOptions{up, up_squeezed, 1}, g));
    squeeze2_ = register_module("squeeze2", std::make_shared<Conv2d>(Conv2dOptions{low, low_squeezed, 1}, g));
  }
  gwc_ = register_module("GWC", std::make_shared<Conv2d>(
      Conv2dOptions{up_squeezed, c_out, o.kernel, stride, o.kernel / 2, 1, o.groups, o.gwc_bias}, g));
  pwc1_ = register_module("PWC1", std::make_shared<Conv2d>(Conv2dOptions{up_squeezed, c_out, 1, stride}, g));
  pwc2_ = register_module("PWC2", std::make_shared<Conv2d>(
      Conv2dOptions{low_squeezed, c_out - low_squeezed, 1, stride}, g));
  if (o.fuse == CRUFuse::BranchFC)  // 2 c_out pooled values -> one logit per branch
    fc_ = register_module("fc", std::make_shared<Linear>(2 * c_out, 2, /*bias=*/true, g));
}

Tensor CRU::forward(const Tensor& x) {
  Tensor y = run(x, /*fused=*/!SummaryRecorder::active(), nullptr);
  if (capture()) {  // the steps recorded from a separate pass; the result stays the fused one
    autograd::NoGradGuard ng;
    capture()->put(*this, "output_unfused", run(x, false, capture()));
    capture()->put(*this, "output", y);
  }
  return y;
}

// GWC(x) + PWC1(x) is linear in x, so it is one k x k convolution whose weight is GWC's made
// dense (its groups on the block diagonal, zeros elsewhere) plus PWC1's in the centre tap (with
// padding k/2 and the same stride, the centre tap reads the pixel PWC1 reads). It costs more
// multiply-adds than the two (by (k^2 g - k^2 - g) / (k^2 + g) of them: 64% for k 3, g 2), but
// it is one call instead of two plus an add, and oneDNN runs a grouped convolution with a few
// channels per group far below its dense speed (measured, batch 128: 4 -> 16 channels at 32x32,
// forward and both backward passes, 7.6 ms as GWC + PWC1, 4.0 ms as one).
// Gradients flow back to both weights through the ops that build it.
Tensor CRU::upper_weight() const {
  const int64_t g = o_.groups, k = o_.kernel, co = c_out_ / g, ci = up_squeezed / g;
  std::vector<Tensor> rows;  // group i: (co, ci, k, k) at input channels [i ci, (i + 1) ci)
  for (int64_t i = 0; i < g; ++i)
    rows.push_back(pad_channels(slice(gwc_->weight, 0, i * co, (i + 1) * co), i * ci, (g - 1 - i) * ci));
  Tensor dense = g == 1 ? rows[0] : cat(rows, 0);  // (c_out, up_squeezed, k, k)
  // PWC1 (c_out, up_squeezed, 1, 1) as a k x k kernel that is zero but for its centre
  Tensor centre = reshape(pad_channels(reshape(pwc1_->weight, {c_out_ * up_squeezed, 1, 1, 1}),
                                       k * k / 2, k * k / 2),
                          {c_out_, up_squeezed, k, k});
  return add(dense, centre);
}

// cat(PWC2(x), S(x)) is one 1x1 convolution too (stride s): PWC2's weight stacked on an
// identity, which copies x's channels exactly (one product by 1, the rest by 0). The fused fuse
// takes it as its projection: it never builds Y2 (c_out channels), it reads x (low_squeezed).
Tensor CRU::lower_weight() const {
  Tensor eye = Tensor::zeros({low_squeezed, low_squeezed, 1, 1}, pwc2_->weight.dtype(), pwc2_->weight.device());
  eye.as_strided({low_squeezed}, {low_squeezed + 1}, eye.offset()).fill_(1.0);  // the diagonal, in one fill
  return cat({pwc2_->weight, eye}, 0);  // (c_out, low_squeezed, 1, 1); no gradient for the identity
}
Tensor CRU::forward_unfused(const Tensor& x) { return run(x, false, nullptr); }

// `scconv summary` lists every module call; there (and in forward_unfused) the fuse runs step by
// step with the same values.
// With a capture (only step by step), every intermediate is recorded by its name.
Tensor CRU::run(const Tensor& x, bool fused, Capture* cap) {
  auto record = [&](const char* what, const Tensor& t) {
    if (cap) cap->put(*this, what, t);
  };
  SCCONV_CHECK(x.dim() == 4 && x.size(1) == up + low,
               describe(*this) << ": expected (N, " << up + low << ", H, W), got " << x.str());
  Tensor up_s, low_s;
  if (o_.squeeze_kind == CRUSqueeze::ChannelStride) {
    // 1.+2. every s-th channel of each branch, s = C / (C / r): channels 0, s, ..., (C/r - 1) s
    // (seed 004 writes x_up[:, ::s], which yields one channel too many when s does not divide C)
    Tensor x_up = x, x_low = x;
    if (o_.fuse == CRUFuse::SplitConv) {
      x_up = (*split_conv_up_)(x);
      x_low = (*split_conv_low_)(x);
    } else {
      auto parts = split(x, {up, low}, 1);
      x_up = parts[0], x_low = parts[1];
    }
    const int64_t su = up / up_squeezed, sl = low / low_squeezed;
    up_s = slice(x_up, 1, 0, (up_squeezed - 1) * su + 1, su);     // (N, up/r, H, W)
    low_s = slice(x_low, 1, 0, (low_squeezed - 1) * sl + 1, sl);  // (N, low/r, H, W)
  } else if (fused && o_.fuse != CRUFuse::SplitConv) {
    // 1.+2. as one block-diagonal 1x1 convolution of the whole x, [[squeeze1, 0], [0, squeeze2]],
    // whose two blocks' outputs come out as two dense tensors (x is read once and never split,
    // the zero blocks cost nothing, and the halves need no copies, forward or backward)
    auto s = conv1x1_split(x, {squeeze1_->weight, squeeze2_->weight});
    up_s = s[0];
    low_s = s[1];
  } else {
    // 1. split
    Tensor x_up, x_low;
    if (o_.fuse == CRUFuse::SplitConv) {
      x_up = (*split_conv_up_)(x);
      x_low = (*split_conv_low_)(x);
    } else {
      auto parts = split(x, {up, low}, 1);
      x_up = parts[0];   // (N, up, H, W)
      x_low = parts[1];  // (N, low, H, W)
    }
    // 2. squeeze
    up_s = (*squeeze1_)(x_up);     // (N, up/r, H, W)
    low_s = (*squeeze2_)(x_low);   // (N, low/r, H, W)
  }
  record("X_up_squeezed", up_s);
  record("X_low_squeezed", low_s);
  // 3. upper branch: group-wise + point-wise convolution
  Tensor Y1 = fused ? conv2d(up_s, upper_weight(), gwc_->bias, {stride_, stride_},
                             {o_.kernel / 2, o_.kernel / 2})
                    : add((*gwc_)(up_s), (*pwc1_)(up_s));  // (N, c_out, H/s, W/s)
  // 4.+5. fused: the lower branch is one 1x1 convolution, folded into the fuse's kernel (pools,
  // softmax, weighted sum): Y2 is never stored, only read from low_s (a quarter of its channels)
  // split_conv changes the branches, not the fuse: its weights are branch_softmax's
  const CRUFuse kind = o_.fuse == CRUFuse::SplitConv ? CRUFuse::BranchSoftmax : o_.fuse;
  if (fused && kind != CRUFuse::BranchFC)
    return cru_fuse_lower(Y1, stride_ > 1 ? subsample2d(low_s, stride_) : low_s, lower_weight(), kind);
  // 4. lower branch: cheap point-wise features + the reused squeezed input
  Tensor Y2 = cat({(*pwc2_)(low_s), subsample2d(low_s, stride_)}, 1);  // (N, c_out, H/s, W/s)
  record("Y1", Y1);
  record("Y2", Y2);
  // 5. fuse
  const int64_t N = Y1.size(0);
  Tensor S1 = global_avg_pool2d(Y1), S2 = global_avg_pool2d(Y2);  // (N, c_out, 1, 1) each
  record("S1", reshape(S1, {N, c_out_}));
  record("S2", reshape(S2, {N, c_out_}));
  if (kind == CRUFuse::ChannelSoftmax) {
    Tensor Z = cat({Y1, Y2}, 1);                                 // (N, 2 c_out, h, w)
    Tensor weights = softmax(global_avg_pool2d(Z), 1);           // (N, 2 c_out, 1, 1): over all 2 c_out
    record("beta1", reshape(slice(weights, 1, 0, c_out_), {N, c_out_}));
    record("beta2", reshape(slice(weights, 1, c_out_, 2 * c_out_), {N, c_out_}));
    Z = mul(weights, Z);
    auto halves = split(Z, {c_out_, c_out_}, 1);
    return add(halves[0], halves[1]);
  }
  Tensor S = cat({S1, S2}, 1);                           // (N, 2 c_out, 1, 1)
  if (kind == CRUFuse::BranchFC) {
    Tensor b = softmax((*fc_)(reshape(S, {N, 2 * c_out_})), 1);  // (N, 2): one weight per branch
    Tensor b1 = reshape(slice(b, 1, 0, 1), {N, 1, 1, 1}), b2 = reshape(slice(b, 1, 1, 2), {N, 1, 1, 1});
    record("beta1", mul(reshape(b1, {N, 1}), Tensor::ones({N, c_out_}, b.dtype(), b.device())));
    record("beta2", mul(reshape(b2, {N, 1}), Tensor::ones({N, c_out_}, b.dtype(), b.device())));
    return add(mul(b1, Y1), mul(b2, Y2));
  }
  Tensor beta = softmax(reshape(S, {N, 2, c_out_}), 1);  // over the 2 branches
  Tensor beta1 = reshape(slice(beta, 1, 0, 1), {N, c_out_, 1, 1});
  Tensor beta2 = reshape(slice(beta, 1, 1, 2), {N, c_out_, 1, 1});
  record("beta1", reshape(beta1, {N, c_out_}));
  record("beta2", reshape(beta2, {N, c_out_}));
  return add(mul(beta1, Y1), mul(beta2, Y2));
}

}  // namespace scconv
