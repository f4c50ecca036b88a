// tests/fuzz/fuzz_set.cpp: libFuzzer target for `--set key=value` overrides (core/config.h
// apply_set) applied to the `quick` preset: each input line is one --set. An accepted result
// round-trips through to_json like any config.
#include <sstream>

#include "apps/train_config.h"
#include "core/config.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const nlohmann::json preset = scconv::apps::load_train_preset("quick");
  nlohmann::json j = preset;
  std::istringstream lines(std::string(reinterpret_cast<const char*>(data), size));
  try {
    for (std::string line; std::getline(lines, line);) scconv::config::apply_set(j, line);
    const nlohmann::json once = scconv::apps::parse_train_config(j).to_json();
    FUZZ_REQUIRE(scconv::apps::parse_train_config(once).to_json() == once);
  } catch (const scconv::Error&) {
  }
  return 0;
}
