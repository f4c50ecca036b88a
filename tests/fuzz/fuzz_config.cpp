// tests/fuzz/fuzz_config.cpp: libFuzzer target for the JSON training and model configs
// (core/config.h parse_json, apps/train_config.h, models/model_config.h). The first byte picks
// the reader (training or model config); the rest is the file. An accepted config, written out
// with every default filled in (to_json) and read again, gives the same config.
#include "apps/train_config.h"
#include "core/config.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const bool model_only = data[0] & 1;
  const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  try {
    const nlohmann::json j = scconv::config::parse_json(text, "input");
    if (model_only) {
      const nlohmann::json once = scconv::parse_model_config(j).to_json();
      FUZZ_REQUIRE(scconv::parse_model_config(once).to_json() == once);
    } else {
      const nlohmann::json once = scconv::apps::parse_train_config(j).to_json();
      FUZZ_REQUIRE(scconv::apps::parse_train_config(once).to_json() == once);
    }
  } catch (const scconv::Error&) {
  }
  return 0;
}
