// apps/model_args.cpp: see model_args.h.
#include "apps/model_args.h"

#include "core/config.h"
#include "core/error.h"

namespace scconv::apps {

void declare_model_options(ArgParser& p) {
  p.option("--model-config", "model config JSON file (see configs/models/)");
  p.option("--model", "model preset name: a file configs/models/NAME.json (e.g. resnet20-scconv)");
  p.option("--set", "override a model-config key by dotted path, e.g. --set scconv.alpha=0.75", true, true);
}

nlohmann::json model_json_from(const ArgParser& p) {
  p.require_one_of({"--model", "--model-config"});
  nlohmann::json j = p.has("--model") ? load_model_preset(p.get("--model"))
                                      : config::read_json_file(p.get("--model-config"));
  for (const std::string& s : p.all("--set")) config::apply_set(j, s);
  return j;
}

}  // namespace scconv::apps
