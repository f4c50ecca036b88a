// core/profile.h: where the time of a training step goes, by op family. While profiling is on
// (`scconv bench` turns it on for a few measured steps), backend_for() hands out a decorator
// (core/profile.cpp) that times every kernel call and adds it to its family ("conv",
// "batch_norm", "elementwise", ...); code outside the backends (the optimizer step) opens a
// Scope itself. Off, it costs one branch per op.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace scconv {
class Backend;
}

namespace scconv::profile {

bool enabled();
void set_enabled(bool on);
void reset();

// Adds the wall time between construction and destruction to `family` (when enabled).
class Scope {
 public:
  explicit Scope(const char* family);
  ~Scope();
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;
 private:
  const char* family_;
  int64_t start_ns_ = -1;
};

struct FamilyTime {
  std::string family;
  double seconds = 0;
  int64_t calls = 0;
};
std::vector<FamilyTime> totals();  // families with any calls, most time first

// The decorator that backend_for() returns while profiling: every kernel of `inner`, timed.
Backend& profiling_backend(Backend& inner);

}  // namespace scconv::profile
