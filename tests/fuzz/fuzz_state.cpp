// tests/fuzz/fuzz_state.cpp: libFuzzer target for the checkpoint state (state.json;
// apps/checkpoint.h TrainState::from_json). An accepted state, written and read again, gives the
// same state.
#include "apps/checkpoint.h"
#include "core/config.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const scconv::apps::TrainState s = scconv::apps::TrainState::from_json(scconv::config::parse_json(text, "input"), "input");
    const nlohmann::json once = s.to_json();
    FUZZ_REQUIRE(scconv::apps::TrainState::from_json(once, "rewritten").to_json() == once);
  } catch (const scconv::Error&) {
  }
  return 0;
}
