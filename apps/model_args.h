// apps/model_args.h: the model options shared by summary, forward, eval, explain and bench:
//   --model-config F.json | --model PRESET, then --set key=value overrides;
// and the trained-model options of eval and explain:
//   --checkpoint RUN_DIR | --weights W.safetensors with the model options above.
#pragma once
#include <nlohmann/json.hpp>

#include "apps/args.h"
#include "apps/train_config.h"
#include "core/safetensors.h"
#include "models/model_config.h"

namespace scconv::apps {

void declare_model_options(ArgParser& p);
// The model JSON after presets and --set overrides (errors name the file or key at fault).
nlohmann::json model_json_from(const ArgParser& p);

// --checkpoint and --weights (with --dataset for the data's normalisation), for eval and explain.
void declare_trained_model_options(ArgParser& p);
struct TrainedModel {
  std::string file;               // the model file read
  TrainConfig cfg;                // the checkpoint's, or one built from the model options
  SafetensorsFile weights;
  std::vector<std::string> classes;  // the checkpoint's class names (empty with --weights)
};
// Reads the model file that --checkpoint names (a run directory, a checkpoint directory or a
// .safetensors file written by scconv train) or --weights names with the model options.
TrainedModel trained_model_from(const ArgParser& p);

}  // namespace scconv::apps
