// models/model_config.cpp: parsing and printing model configs; preset lookup.
#include "models/model_config.h"

#include <filesystem>

#include "core/config.h"
#include "core/error.h"

namespace scconv {

namespace {
const char* placement_name(Placement p) {
  switch (p) {
    case Placement::Conv1: return "conv1";
    case Placement::Conv2: return "conv2";
    case Placement::Both: return "both";
    case Placement::Stride1Only: return "stride1_only";
  }
  return "?";
}
}  // namespace

int64_t ModelConfig::depth() const { return std::stoll(arch.substr(6)); }

ModelConfig parse_model_config(const nlohmann::json& j, const std::string& source) {
  try {
    config::Reader r(j, "");
    r.only({"arch", "num_classes", "shortcut", "conv", "stem", "scconv"});
    ModelConfig c;
    SCCONV_CHECK(r.has("arch"), "missing key 'arch' (one of resnet20, resnet32, resnet44, "
                                "resnet56, resnet110, resnet50, resnet101)");
    c.arch = r.str("arch", "");
    static const char* archs[] = {"resnet20", "resnet32", "resnet44", "resnet56", "resnet110",
                                  "resnet50", "resnet101"};
    bool known = false;
    for (const char* a : archs) known = known || c.arch == a;
    SCCONV_CHECK(known, "arch: unknown value \"" << c.arch << "\" (accepted: resnet20, resnet32, "
                                                 << "resnet44, resnet56, resnet110, resnet50, resnet101)");
    c.num_classes = r.integer("num_classes", 10, 2, 100000);
    std::string sc = r.str("shortcut", "A");
    SCCONV_CHECK(sc == "A" || sc == "B", "shortcut: unknown value \"" << sc << "\" (accepted: \"A\", \"B\")");
    c.shortcut_b = sc == "B";
    SCCONV_CHECK(!(c.bottleneck() && r.has("shortcut")),
                 "shortcut: bottleneck models (" << c.arch << ") always use a 1x1 conv + BN downsample");
    std::string conv = r.str("conv", "standard");
    SCCONV_CHECK(conv == "standard" || conv == "scconv",
                 "conv: unknown value \"" << conv << "\" (accepted: \"standard\", \"scconv\")");
    c.use_scconv = conv == "scconv";
    std::string stem = r.str("stem", "cifar");
    SCCONV_CHECK(stem == "cifar" || stem == "imagenet",
                 "stem: unknown value \"" << stem << "\" (accepted: \"cifar\", \"imagenet\")");
    SCCONV_CHECK(c.bottleneck() || !r.has("stem"),
                 "stem: only the bottleneck models (resnet50, resnet101) have a stem option");
    c.imagenet_stem = stem == "imagenet";

    config::Reader s = r.child("scconv");
    s.only({"placement", "alpha", "squeeze", "groups", "kernel", "order", "sru", "cru"});
    SCCONV_CHECK(c.use_scconv || s.value().empty(),
                 "scconv: options given but conv is \"standard\" (set conv to \"scconv\")");
    std::string pl = s.str("placement", c.bottleneck() ? "conv2" : "conv1");
    if (pl == "conv1") c.placement = Placement::Conv1;
    else if (pl == "conv2") c.placement = Placement::Conv2;
    else if (pl == "both") c.placement = Placement::Both;
    else if (pl == "stride1_only") c.placement = Placement::Stride1Only;
    else SCCONV_FAIL("scconv.placement: unknown value \"" << pl << "\" (accepted: \"conv1\", \"conv2\", \"both\", \"stride1_only\")");
    SCCONV_CHECK(!c.bottleneck() || c.placement == Placement::Conv2 || c.placement == Placement::Stride1Only,
                 "scconv.placement: \"" << pl << "\" is not valid for " << c.arch << ": its bottleneck "
                 << "blocks have one 3x3 conv (conv2); use \"conv2\" or \"stride1_only\"");
    CRUOptions& cru = c.scconv.cru;
    cru.alpha = s.num("alpha", 0.5);
    cru.squeeze = s.integer("squeeze", 2, 1, 4096);
    cru.groups = s.integer("groups", 2, 1, 4096);
    cru.kernel = s.integer("kernel", 3, 1, 31);
    SCCONV_CHECK(cru.alpha > 0 && cru.alpha < 1, "scconv.alpha: must be in (0, 1), got " << cru.alpha);
    SCCONV_CHECK(cru.squeeze >= 1, "scconv.squeeze: must be >= 1, got " << cru.squeeze);
    SCCONV_CHECK(cru.groups >= 1, "scconv.groups: must be >= 1, got " << cru.groups);
    SCCONV_CHECK(cru.kernel >= 1 && cru.kernel % 2 == 1, "scconv.kernel: must be odd and >= 1, got " << cru.kernel);
    c.scconv.order = parse_scconv_order(s.str("order", "S+C"), "scconv.order");
    config::Reader sr = s.child("sru");
    sr.only({"groups", "threshold", "gate", "gamma_norm", "gn", "mask_on"});
    SRUOptions& sru = c.scconv.sru;
    sru.groups = sr.integer("groups", 16, 1, 4096);
    sru.threshold = sr.num("threshold", 0.5);
    SCCONV_CHECK(sru.groups >= 1, "scconv.sru.groups: must be >= 1, got " << sru.groups);
    SCCONV_CHECK(sru.threshold > 0 && sru.threshold < 1, "scconv.sru.threshold: must be in (0, 1), got " << sru.threshold);
    sru.gate = parse_sru_gate(sr.str("gate", "soft"), "scconv.sru.gate");
    sru.gamma_norm = parse_gamma_norm(sr.str("gamma_norm", "sum"), "scconv.sru.gamma_norm");
    sru.gn = parse_gn_kind(sr.str("gn", "torch"), "scconv.sru.gn");
    sru.mask_on = parse_sru_mask_on(sr.str("mask_on", "R"), "scconv.sru.mask_on");
    config::Reader cr = s.child("cru");
    cr.only({"fuse", "squeeze_kind", "gwc_bias"});
    cru.fuse = parse_cru_fuse(cr.str("fuse", "branch_softmax"), "scconv.cru.fuse");
    cru.squeeze_kind = parse_cru_squeeze(cr.str("squeeze_kind", "conv"), "scconv.cru.squeeze_kind");
    cru.gwc_bias = cr.boolean("gwc_bias", true);
    return c;
  } catch (const Error& e) {
    if (source.empty()) throw;
    throw Error(source + ": " + e.what());
  }
}

nlohmann::json ModelConfig::to_json() const {
  nlohmann::json j{{"arch", arch}, {"num_classes", num_classes},
                   {"conv", use_scconv ? "scconv" : "standard"}};
  if (bottleneck()) j["stem"] = imagenet_stem ? "imagenet" : "cifar";
  else j["shortcut"] = shortcut_b ? "B" : "A";
  if (use_scconv) {
    const SRUOptions& s = scconv.sru;
    const CRUOptions& c = scconv.cru;
    j["scconv"] = {
        {"placement", placement_name(placement)}, {"alpha", c.alpha}, {"squeeze", c.squeeze},
        {"groups", c.groups}, {"kernel", c.kernel}, {"order", name_of(scconv.order)},
        {"sru", {{"groups", s.groups}, {"threshold", s.threshold}, {"gate", name_of(s.gate)},
                 {"gamma_norm", name_of(s.gamma_norm)}, {"gn", name_of(s.gn)}, {"mask_on", name_of(s.mask_on)}}},
        {"cru", {{"fuse", name_of(c.fuse)}, {"squeeze_kind", name_of(c.squeeze_kind)}, {"gwc_bias", c.gwc_bias}}}};
  }
  return j;
}

nlohmann::json load_model_preset(const std::string& name) {
  namespace fs = std::filesystem;
  SCCONV_CHECK(!name.empty() && name.find('/') == std::string::npos,
               "--model: preset names are plain names like resnet20-scconv, got '" << name << "'");
  std::vector<fs::path> dirs{fs::path("configs/models")};
#ifdef SCCONV_SOURCE_DIR
  dirs.push_back(fs::path(SCCONV_SOURCE_DIR) / "configs/models");
#endif
  for (const fs::path& d : dirs) {
    fs::path p = d / (name + ".json");
    std::error_code ec;  // (a name too long for the file system is just not a preset)
    if (fs::exists(p, ec)) return config::read_json_file(p.string());
  }
  std::string known;
  for (const fs::path& d : dirs) {
    if (!fs::is_directory(d)) continue;
    for (auto& e : fs::directory_iterator(d))
      if (e.path().extension() == ".json") known.append(" ").append(e.path().stem().string());
    break;
  }
  SCCONV_FAIL("--model: no preset '" << name << "' (looked in configs/models/; presets:" << known << ")");
}

}  // namespace scconv
