// layers/scconv.cpp: SCConv (the SRU and CRU orders of the paper's Table 1) and the parsing of
// the option strings.
#include "layers/scconv.h"

namespace scconv {

namespace {
template <class E>
E parse_enum(const std::string& v, const std::string& key,
             std::initializer_list<std::pair<const char*, E>> table) {
  std::string accepted;
  for (auto& [name, e] : table) {
    if (v == name) return e;
    accepted += std::string(accepted.empty() ? "" : ", ") + "\"" + name + "\"";
  }
  SCCONV_FAIL(key << ": unknown value \"" << v << "\" (accepted: " << accepted << ")");
}
}  // namespace

SRUGate parse_sru_gate(const std::string& v, const std::string& key) {
  return parse_enum<SRUGate>(v, key, {{"soft", SRUGate::Soft}, {"hard", SRUGate::Hard},
                                      {"hard_reweighted", SRUGate::HardReweighted}});
}
GammaNorm parse_gamma_norm(const std::string& v, const std::string& key) {
  return parse_enum<GammaNorm>(v, key, {{"sum", GammaNorm::Sum}, {"softmax", GammaNorm::Softmax}});
}
GroupNormKind parse_gn_kind(const std::string& v, const std::string& key) {
  return parse_enum<GroupNormKind>(v, key, {{"torch", GroupNormKind::Torch}, {"seed", GroupNormKind::Seed}});
}
CRUFuse parse_cru_fuse(const std::string& v, const std::string& key) {
  return parse_enum<CRUFuse>(v, key, {{"branch_softmax", CRUFuse::BranchSoftmax},
                                      {"channel_softmax", CRUFuse::ChannelSoftmax},
                                      {"split_conv", CRUFuse::SplitConv}});
}
SCConvOrder parse_scconv_order(const std::string& v, const std::string& key) {
  return parse_enum<SCConvOrder>(v, key, {{"S+C", SCConvOrder::SC}, {"C+S", SCConvOrder::CS},
                                          {"parallel", SCConvOrder::Parallel},
                                          {"S", SCConvOrder::S}, {"C", SCConvOrder::C}});
}

SCConv::SCConv(int64_t c_in, int64_t c_out, int64_t stride, const SCConvOptions& o, Generator& g)
    : o_(o) {
  switch (o.order) {
    case SCConvOrder::SC:  // CRU(SRU(x)): the paper's default
      sru_ = register_module("SRU", std::make_shared<SRU>(c_in, o.sru, g));
      cru_ = register_module("CRU", std::make_shared<CRU>(c_in, c_out, stride, o.cru, g));
      break;
    case SCConvOrder::CS:  // SRU(CRU(x)): the SRU sees c_out channels
      cru_ = register_module("CRU", std::make_shared<CRU>(c_in, c_out, stride, o.cru, g));
      sru_ = register_module("SRU", std::make_shared<SRU>(c_out, o.sru, g));
      break;
    case SCConvOrder::Parallel:  // SRU(x) + CRU(x)
      SCCONV_CHECK(c_in == c_out && stride == 1,
                   "SCConv: order \"parallel\" sums SRU(x) and CRU(x), so it needs c_in == c_out "
                   "and stride 1 (got c_in=" << c_in << ", c_out=" << c_out << ", stride="
                                             << stride << ")");
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

Tensor SCConv::forward(const Tensor& x) {
  switch (o_.order) {
    case SCConvOrder::SC: return (*cru_)((*sru_)(x));
    case SCConvOrder::CS: return (*sru_)((*cru_)(x));
    case SCConvOrder::Parallel: return add((*sru_)(x), (*cru_)(x));
    case SCConvOrder::S: return (*conv_)((*sru_)(x));
    case SCConvOrder::C: return (*cru_)(x);
  }
  return x;
}

}  // namespace scconv
