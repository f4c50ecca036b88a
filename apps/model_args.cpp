// apps/model_args.cpp: see model_args.h.
#include "apps/model_args.h"

#include <filesystem>

#include "apps/checkpoint.h"
#include "core/config.h"
#include "core/error.h"

namespace scconv::apps {

namespace {
// The model file that --checkpoint names: in a checkpoint, the weight average where the run
// kept one (ema.decay: what its evaluations measured), else the trained weights.
std::string model_file_of(const std::filesystem::path& c) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_regular_file(c, ec)) return c.string();
  if (!find_checkpoint(c.string()).empty()) return evaluated_model_file(find_checkpoint(c.string()));
  if (fs::is_regular_file(c / "model.safetensors", ec)) return evaluated_model_file(c.string());
  SCCONV_FAIL("--checkpoint: no model in '" << c.string()
                                            << "' (expected a run directory, a checkpoint directory or a .safetensors file)");
}
}  // namespace

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

namespace scconv::apps {

void declare_trained_model_options(ArgParser& p) {
  p.option("--checkpoint", "run directory, checkpoint directory or model .safetensors file written by scconv train");
  p.option("--weights", "a safetensors file of parameters and buffers by name (e.g. from PyTorch); needs --model");
  declare_model_options(p);
  p.option("--dataset", "with --weights: cifar10 (default), cifar100 or folder");
}

TrainedModel trained_model_from(const ArgParser& p) {
  p.require_one_of({"--checkpoint", "--weights"});
  TrainedModel t;
  if (p.has("--checkpoint")) {
    for (const char* o : {"--model", "--model-config", "--set", "--dataset"})
      SCCONV_USAGE_CHECK(!p.has(o), "--checkpoint: the model and data come from the checkpoint; " << o << " goes with --weights");
    t.file = model_file_of(p.get("--checkpoint"));
    ModelFile m = read_model_file(t.file);
    t.cfg = parse_train_config(m.config, t.file);
    t.weights = std::move(m.file);
    t.classes = m.classes;
  } else {
    t.file = p.get("--weights");
    nlohmann::json j{{"model", model_json_from(p)}, {"data", {{"dataset", p.get("--dataset", "cifar10")}}}};
    t.cfg = parse_train_config(j, "--weights " + t.file);
    t.weights = load_safetensors(t.file);
  }
  return t;
}

}  // namespace scconv::apps
