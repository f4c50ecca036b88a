// tests/capture.h: runs a subcommand (apps/commands.h) with std::cout captured, for tests that
// check what `scconv eval`, `summary` and the others print.
#pragma once
#include <iostream>
#include <sstream>
#include <string>

#include "apps/commands.h"

namespace scconv::testing {

// The subcommand's stdout; its exit code in *rc when given (exceptions pass through, cout restored).
inline std::string capture(int (*cmd)(const apps::Args&), const apps::Args& args, int* rc = nullptr) {
  std::ostringstream out;
  auto* old = std::cout.rdbuf(out.rdbuf());
  int r = 0;
  try {
    r = cmd(args);
  } catch (...) {
    std::cout.rdbuf(old);
    throw;
  }
  std::cout.rdbuf(old);
  if (rc) *rc = r;
  return out.str();
}

}  // namespace scconv::testing
