// layers/summary.h: records every module call of one forward pass (name, type, depth, output
// shape, own parameter count, multiply-accumulates) for `scconv summary`. While a
// SummaryRecorder is alive on a thread, Module::operator() reports to it.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/shape.h"

namespace scconv {

struct SummaryRow {
  std::string name, type;
  int depth = 0;
  Shape output;
  int64_t params = 0;  // parameters registered on this module itself
  int64_t macs = 0;    // multiply-accumulates of this call (convolutions and linear layers)
};

class SummaryRecorder {
 public:
  SummaryRecorder();
  ~SummaryRecorder();
  std::vector<SummaryRow> rows;
  // ---- used by Module ----
  static SummaryRecorder* active();
  int depth = 0;
  std::vector<size_t> open;  // indices of rows whose call is in progress
 private:
  SummaryRecorder* prev_;
};

}  // namespace scconv
