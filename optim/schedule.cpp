// optim/schedule.cpp: see schedule.h.
#include "optim/schedule.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace scconv {

double learning_rate(const ScheduleOptions& s, double base, int64_t epoch, int64_t step,
                     int64_t steps_per_epoch) {
  double lr = base;
  if (s.kind == "multistep") {
    int passed = 0;
    for (int64_t m : s.milestones) passed += epoch >= m;
    lr = base * std::pow(s.gamma, passed);
  } else if (s.kind == "cosine") {
    lr = s.eta_min + (base - s.eta_min) * (1 + std::cos(M_PI * double(epoch) / double(s.epochs))) / 2;
  } else {
    SCCONV_CHECK(s.kind == "constant", "schedule.kind: unknown value \"" << s.kind
                                           << "\" (accepted: \"multistep\", \"cosine\", \"constant\")");
  }
  const double warm = s.warmup_epochs * double(steps_per_epoch);
  if (warm > 0 && double(step) < warm)
    lr *= s.warmup_start_factor + (1 - s.warmup_start_factor) * std::min(double(step), warm) / warm;
  return lr;
}

}  // namespace scconv
