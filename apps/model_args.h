// apps/model_args.h: the model options shared by summary, forward (and later bench):
//   --model-config F.json | --model PRESET, then --set key=value overrides.
#pragma once
#include <nlohmann/json.hpp>

#include "apps/args.h"
#include "models/model_config.h"

namespace scconv::apps {

void declare_model_options(ArgParser& p);
// The model JSON after presets and --set overrides (errors name the file or key at fault).
nlohmann::json model_json_from(const ArgParser& p);

}  // namespace scconv::apps
