// tests/fuzz/fuzz_safetensors.cpp: libFuzzer target for the safetensors reader
// (core/safetensors.h). Any input must parse or throw scconv::Error; what parses must survive a
// write and a re-read unchanged (names, dtypes, shapes, bytes, metadata).
// Build and run: see docs/reliability.md ("Fuzzing"); the seed corpus is tests/fuzz/corpus/safetensors.
#include <cstring>

#include "core/safetensors.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  scconv::SafetensorsFile f;
  try {
    f = scconv::parse_safetensors(bytes, "input");
  } catch (const scconv::Error&) {
    return 0;
  }
  const scconv::SafetensorsFile g = scconv::parse_safetensors(scconv::serialize_safetensors(f.tensors, f.metadata), "rewritten");
  FUZZ_REQUIRE(g.metadata == f.metadata);
  FUZZ_REQUIRE(g.tensors.size() == f.tensors.size());
  for (auto& [name, t] : f.tensors) {
    const scconv::Tensor& u = g.tensors.at(name);
    FUZZ_REQUIRE(u.dtype() == t.dtype() && u.shape() == t.shape());
    const size_t n = static_cast<size_t>(t.numel()) * scconv::dtype_size(t.dtype());
    FUZZ_REQUIRE(n == 0 || std::memcmp(u.raw_data(), t.raw_data(), n) == 0);
  }
  return 0;
}
