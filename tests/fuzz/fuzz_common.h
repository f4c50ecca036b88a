// tests/fuzz/fuzz_common.h: what every fuzz target shares. FUZZ_REQUIRE aborts (a finding for
// libFuzzer, a failure for the replay driver) when a property does not hold. Exceptions other
// than scconv::Error escape the targets on purpose: they abort too.
#pragma once
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#define FUZZ_REQUIRE(cond)                                                          \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                 \
    }                                                                               \
  } while (0)
