// models/model_config.h: the model config, a JSON object such as
//   {"arch": "resnet20", "num_classes": 10, "shortcut": "A", "conv": "scconv",
//    "scconv": {"placement": "conv1", "alpha": 0.5, "squeeze": 2, "groups": 2, "kernel": 3,
//               "order": "S+C", "sru": {"groups": 16, "threshold": 0.5, "gate": "soft",
//               "gamma_norm": "sum", "gn": "torch", "mask_on": "R"},
//               "cru": {"fuse": "branch_softmax", "squeeze_kind": "conv", "gwc_bias": true}}}
// Every key but `arch` is optional (defaults as in the spec). Unknown keys and bad values are
// errors naming the dotted key. Presets live in configs/models/NAME.json.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "layers/scconv.h"

namespace scconv {

enum class Placement { Conv1, Conv2, Both, Stride1Only };

struct ModelConfig {
  std::string arch;           // resnet20/32/44/56/110, resnet50/101
  int64_t num_classes = 10;
  bool shortcut_b = false;    // "A" (zero padding, default) or "B" (1x1 conv + BN)
  bool use_scconv = false;    // conv: "standard" or "scconv"
  bool imagenet_stem = false; // stem: "cifar" (default) or "imagenet" (bottleneck models)
  Placement placement = Placement::Conv1;  // default conv1 (basic) / conv2 (bottleneck)
  SCConvOptions scconv;
  int64_t seed = 0;           // initialisation seed (not part of the JSON; set by the caller)

  bool bottleneck() const { return arch == "resnet50" || arch == "resnet101"; }
  int64_t depth() const;      // 20, 32, ..., 50, 101
  nlohmann::json to_json() const;  // the full config with every default filled in
};

// `source` names where the JSON came from, for messages.
ModelConfig parse_model_config(const nlohmann::json& j, const std::string& source = "");
// Loads configs/models/NAME.json (searching ./configs/models and the source tree's).
nlohmann::json load_model_preset(const std::string& name);

}  // namespace scconv
