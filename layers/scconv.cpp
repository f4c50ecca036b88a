// layers/scconv.cpp: SCConv (the SRU and CRU orders of the paper's Table 1) and the parsing of
// the option strings.
#include "layers/scconv.h"

namespace scconv {

namespace {
template <class E>
using Table = std::initializer_list<std::pair<const char*, E>>;

template <class E>
E parse_enum(const std::string& v, const std::string& key, Table<E> table) {
  std::string accepted;
  for (auto& [name, e] : table) {
    if (v == name) return e;
    accepted += std::string(accepted.empty() ? "" : ", ") + "\"" + name + "\"";
  }
  SCCONV_FAIL(key << ": unknown value \"" << v << "\" (accepted: " << accepted << ")");
}
template <class E>
const char* enum_name(E e, Table<E> table) {
  for (auto& [name, v] : table)
    if (v == e) return name;
  return "?";
}

// ---- the string forms of the SCConv options, one table each ----
const Table<SRUGate> kGates{{"soft", SRUGate::Soft}, {"hard", SRUGate::Hard},
                            {"hard_reweighted", SRUGate::HardReweighted}};
const Table<GammaNorm> kGammaNorms{{"sum", GammaNorm::Sum}, {"softmax", GammaNorm::Softmax}};
const Table<GroupNormKind> kGnKinds{{"torch", GroupNormKind::Torch}, {"seed", GroupNormKind::Seed}};
const Table<SRUMaskOn> kMaskOn{{"R", SRUMaskOn::R}, {"w", SRUMaskOn::W}};
const Table<CRUFuse> kFuses{{"branch_softmax", CRUFuse::BranchSoftmax}, {"channel_softmax", CRUFuse::ChannelSoftmax},
                            {"split_conv", CRUFuse::SplitConv}, {"branch_fc", CRUFuse::BranchFC}};
const Table<CRUSqueeze> kSqueezes{{"conv", CRUSqueeze::Conv}, {"channel_stride", CRUSqueeze::ChannelStride}};
const Table<SCConvOrder> kOrders{{"S+C", SCConvOrder::SC}, {"C+S", SCConvOrder::CS}, {"parallel", SCConvOrder::Parallel},
                                 {"S", SCConvOrder::S}, {"C", SCConvOrder::C}};
}  // namespace

SRUGate parse_sru_gate(const std::string& v, const std::string& key) { return parse_enum(v, key, kGates); }
GammaNorm parse_gamma_norm(const std::string& v, const std::string& key) { return parse_enum(v, key, kGammaNorms); }
GroupNormKind parse_gn_kind(const std::string& v, const std::string& key) { return parse_enum(v, key, kGnKinds); }
SRUMaskOn parse_sru_mask_on(const std::string& v, const std::string& key) { return parse_enum(v, key, kMaskOn); }
CRUFuse parse_cru_fuse(const std::string& v, const std::string& key) { return parse_enum(v, key, kFuses); }
CRUSqueeze parse_cru_squeeze(const std::string& v, const std::string& key) { return parse_enum(v, key, kSqueezes); }
SCConvOrder parse_scconv_order(const std::string& v, const std::string& key) { return parse_enum(v, key, kOrders); }
const char* name_of(SRUGate e) { return enum_name(e, kGates); }
const char* name_of(GammaNorm e) { return enum_name(e, kGammaNorms); }
const char* name_of(GroupNormKind e) { return enum_name(e, kGnKinds); }
const char* name_of(SRUMaskOn e) { return enum_name(e, kMaskOn); }
const char* name_of(CRUFuse e) { return enum_name(e, kFuses); }
const char* name_of(CRUSqueeze e) { return enum_name(e, kSqueezes); }
const char* name_of(SCConvOrder e) { return enum_name(e, kOrders); }

SCConv::SCConv(int64_t c_in, int64_t c_out, int64_t stride, const SCConvOptions& o, Generator& g)
    : c_in_(c_in), c_out_(c_out), stride_(stride), o_(o) {
  switch (o.order) {
    case SCConvOrder::SC:  // CRU(SRU(x)): the paper's default
      sru_ = register_module("SRU", std::make_shared<SRU>(c_in, o.sru, g));
      cru_ = register_module("CRU", std::make_shared<CRU>(c_in, c_out, stride, o.cru, g));
      break;
    case SCConvOrder::CS:  // SRU(CRU(x)): the SRU sees c_out channels
      cru_ = register_module("CRU", std::make_shared<CRU>(c_in, c_out, stride, o.cru, g));
      sru_ = register_module("SRU", std::make_shared<SRU>(c_out, o.sru, g));
      break;
    case SCConvOrder::Parallel:  // P(SRU(x)) + CRU(x); see parallel_sru()
      SCCONV_CHECK(c_out >= c_in, "SCConv: order \"parallel\" adds SRU(x) (" << c_in << " channels) to "
                                  "CRU(x) (" << c_out << "), so it needs c_out >= c_in");
      sru_ = register_module("SRU", std::make_shared<SRU>(c_in, o.sru, g));
      cru_ = register_module("CRU", std::make_shared<CRU>(c_in, c_out, stride, o.cru, g));
      break;
    case SCConvOrder::S:  // SRU then a plain k x k convolution
      sru_ = register_module("SRU", std::make_shared<SRU>(c_in, o.sru, g));
      conv_ = register_module("conv", std::make_shared<Conv2d>(
          Conv2dOptions{c_in, c_out, o.cru.kernel, stride, o.cru.kernel / 2}, g));
      break;
    case SCConvOrder::C:
      cru_ = register_module("CRU", std::make_shared<CRU>(c_in, c_out, stride, o.cru, g));
      break;
  }
}

// Order "parallel" sums SRU(x) (c_in channels at the input's resolution) and CRU(x) (c_out
// channels at 1/stride of it). Where the two differ, the SRU's output is mapped onto the CRU's
// without weights, exactly as the option-A shortcut maps a block's input onto its output: taken
// at every stride-th pixel (x[:, :, ::s, ::s], the centres the stride-s k x k convolutions read)
// and padded with (c_out - c_in) zero channels, half before and half after. So "parallel" has the
// parameters of "C" plus the SRU's group norm, as the paper's Table 1 row "C & S" (14.74M, as "+C").
Tensor SCConv::parallel_sru(const Tensor& s) const {  // (N, c_in, H, W) -> (N, c_out, H/s, W/s)
  Tensor y = stride_ > 1 ? subsample2d(s, stride_) : s;
  const int64_t extra = c_out_ - c_in_;
  return extra > 0 ? pad_channels(y, extra / 2, extra - extra / 2) : y;
}

Tensor SCConv::forward(const Tensor& x) {
  switch (o_.order) {
    case SCConvOrder::SC: return (*cru_)((*sru_)(x));
    case SCConvOrder::CS: return (*sru_)((*cru_)(x));
    case SCConvOrder::Parallel: return add(parallel_sru((*sru_)(x)), (*cru_)(x));
    case SCConvOrder::S: return (*conv_)((*sru_)(x));
    case SCConvOrder::C: return (*cru_)(x);
  }
  return x;
}

void set_sru_threshold(Module& root, double t) {
  if (auto* sru = dynamic_cast<SRU*>(&root)) sru->set_threshold(t);
  for (auto& [name, child] : root.children()) set_sru_threshold(*child, t);
}

}  // namespace scconv
