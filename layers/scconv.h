// layers/scconv.h: SCConv = CRU(SRU(X)) and its parts, exactly as ../shared/docs/scconv-spec.md
// defines them, with every variant it names as an option. docs/scconv.md walks through the
// code step by step with the tensor shapes of a ResNet-20 layer.
//
// Parameter names follow the community code: SRU.gn.weight / SRU.gn.bias (seed GN:
// SRU.gn.gamma / SRU.gn.beta), CRU.squeeze1.weight, CRU.squeeze2.weight, CRU.GWC.weight,
// CRU.GWC.bias, CRU.PWC1.weight, CRU.PWC2.weight (split_conv adds CRU.split_conv_up.weight and
// CRU.split_conv_low.weight; order "S" adds conv.weight).
#pragma once
#include <string>

#include "core/math/cru.h"
#include "core/math/norm.h"
#include "core/math/sru.h"
#include "layers/conv.h"
#include "layers/norm.h"

namespace scconv {

// The gate, the group-norm kind and the fuse are the kernels' enums (core/math/), one per concept.
using math::CRUFuse;
using math::GroupNormKind;
using math::SRUGate;
enum class GammaNorm { Sum, Softmax };
// What the SRU's gate compares with its threshold: the importance R per element (the paper), or
// the channel weight w (seed 003's code: info_mask = w_gamma > t, a mask per channel).
enum class SRUMaskOn { R, W };
// How the CRU squeezes each branch to 1/r of its channels: a learnt 1x1 convolution (the paper),
// or every (C / (C / r))-th channel (seed 004's `x_up[:, ::stride]`), which has no weights.
enum class CRUSqueeze { Conv, ChannelStride };
enum class SCConvOrder { SC, CS, Parallel, S, C };

// String forms as in the model config ("soft", "hard", "hard_reweighted", ...): one table per
// enum (layers/scconv.cpp) serves both directions. Parsing an unknown value throws an Error
// naming `key` and the accepted values.
SRUGate parse_sru_gate(const std::string& v, const std::string& key);
GammaNorm parse_gamma_norm(const std::string& v, const std::string& key);
GroupNormKind parse_gn_kind(const std::string& v, const std::string& key);
SRUMaskOn parse_sru_mask_on(const std::string& v, const std::string& key);
CRUFuse parse_cru_fuse(const std::string& v, const std::string& key);
CRUSqueeze parse_cru_squeeze(const std::string& v, const std::string& key);
SCConvOrder parse_scconv_order(const std::string& v, const std::string& key);
const char* name_of(SRUGate e);
const char* name_of(GammaNorm e);
const char* name_of(GroupNormKind e);
const char* name_of(SRUMaskOn e);
const char* name_of(CRUFuse e);
const char* name_of(CRUSqueeze e);
const char* name_of(SCConvOrder e);

struct SRUOptions {
  int64_t groups = 16;      // GN groups; must divide the channels
  double threshold = 0.5;   // gate threshold t
  SRUGate gate = SRUGate::Soft;
  GammaNorm gamma_norm = GammaNorm::Sum;
  GroupNormKind gn = GroupNormKind::Torch;
  SRUMaskOn mask_on = SRUMaskOn::R;
};

struct CRUOptions {
  double alpha = 0.5;   // share of channels in the upper branch
  int64_t squeeze = 2;  // r
  int64_t groups = 2;   // g, of the GWC
  int64_t kernel = 3;   // k, of the GWC
  CRUFuse fuse = CRUFuse::BranchSoftmax;
  CRUSqueeze squeeze_kind = CRUSqueeze::Conv;
  bool gwc_bias = true;  // the community code keeps the GWC's bias; seed 000 has none
};

struct SCConvOptions {
  SCConvOrder order = SCConvOrder::SC;
  SRUOptions sru;
  CRUOptions cru;
};

// Spatial reconstruction unit: (N, C, H, W) -> (N, C, H, W).
// With a Capture attached (layers/capture.h) it records X, G, R, W1, W2, X1, X2 (N, C, H, W),
// w (C), output (the fused result) and output_unfused.
class SRU : public Module {
 public:
  SRU(int64_t channels, const SRUOptions& o, Generator& g);
  // The fused kernel (autograd sru()): what training and inference run.
  Tensor forward(const Tensor& x) override;
  // The same SRU step by step, one op each (the spec's steps; docs/scconv.md walks through it).
  // Tests check the fused kernel against it.
  Tensor forward_unfused(const Tensor& x);
  std::string type() const override { return "SRU"; }
  std::shared_ptr<Module> gn;
  const SRUOptions& options() const { return o_; }
  // The gate threshold t, in (0, 1); the training loop's threshold warm-up sets it per epoch.
  void set_threshold(double t);
  Tensor gamma() const;  // the GN scale, (C)
  Tensor beta() const;   // the GN shift, (C)

 private:
  Tensor channel_weights();  // w = gamma / sum(gamma) or softmax(gamma), (C)
  Tensor forward_fused(const Tensor& x);
  Tensor steps(const Tensor& x, Capture* cap);  // forward_unfused's ops, recorded into cap
  int64_t c_;
  SRUOptions o_;
};

// Channel reconstruction unit: (N, c_in, H, W) -> (N, c_out, H/stride, W/stride).
// With a Capture attached it records X_up_squeezed (N, up/r, H, W), X_low_squeezed (N, low/r, H,
// W), Y1 and Y2 (N, c_out, h, w), the pooled S1 = GAP(Y1) and S2 = GAP(Y2) (N, c_out), the fuse
// weights beta1 and beta2 (N, c_out; for channel_softmax the softmax over all 2 c_out pooled
// channels, split into Y1's and Y2's halves), output (the fused result) and output_unfused.
class CRU : public Module {
 public:
  CRU(int64_t c_in, int64_t c_out, int64_t stride, const CRUOptions& o, Generator& g);
  Tensor forward(const Tensor& x) override;   // the fuse (step 5) as one kernel
  Tensor forward_unfused(const Tensor& x);    // every step as separate ops
  std::string type() const override { return "CRU"; }
  const CRUOptions& options() const { return o_; }
  int64_t up, low, up_squeezed, low_squeezed;

 private:
  Tensor run(const Tensor& x, bool fused, Capture* cap);
  Tensor upper_weight() const;  // GWC and PWC1 as one dense k x k weight (c_out, up_squeezed, k, k)
  Tensor lower_weight() const;  // PWC2 and the identity as one 1x1 weight (c_out, low_squeezed, 1, 1)
  std::shared_ptr<Conv2d> split_conv_up_, split_conv_low_, squeeze1_, squeeze2_, gwc_, pwc1_, pwc2_;
  std::shared_ptr<Linear> fc_;  // fuse branch_fc
  int64_t c_out_, stride_;
  CRUOptions o_;
};

// SCConv(c_in, c_out, stride): a drop-in replacement for a k x k convolution without bias.
class SCConv : public Module {
 public:
  SCConv(int64_t c_in, int64_t c_out, int64_t stride, const SCConvOptions& o, Generator& g);
  Tensor forward(const Tensor& x) override;
  std::string type() const override { return "SCConv"; }

 private:
  std::shared_ptr<SRU> sru_;
  std::shared_ptr<CRU> cru_;
  Tensor parallel_sru(const Tensor& s) const;  // order "parallel": SRU(x) onto CRU(x)'s shape
  std::shared_ptr<Conv2d> conv_;  // order "S": SRU then a plain k x k conv
  int64_t c_in_, c_out_, stride_;
  SCConvOptions o_;
};

// Sets the gate threshold of every SRU under `root` (the training loop's threshold warm-up).
void set_sru_threshold(Module& root, double t);

}  // namespace scconv
