// optim/schedule.h: learning-rate schedules, a pure function of where training is, so that
// resuming needs no scheduler state beyond the position:
//   multistep: base * gamma^(number of milestones <= epoch)      (torch MultiStepLR, per epoch)
//   cosine:    eta_min + (base - eta_min) (1 + cos(pi epoch / epochs)) / 2 (torch CosineAnnealingLR)
//   constant:  base
// times an optional linear warm-up over the first warmup_epochs, stepped per iteration like
// torch LinearLR(start_factor, total_iters = warmup steps):
//   factor = start + (1 - start) * min(step, W) / W.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace scconv {

struct ScheduleOptions {
  std::string kind = "multistep";  // multistep | cosine | constant
  std::vector<int64_t> milestones{100, 150};
  double gamma = 0.1;
  double eta_min = 0;
  int64_t epochs = 200;            // the cosine period
  double warmup_epochs = 0;
  double warmup_start_factor = 0.1;
};

// lr at `epoch` (0-based) and global iteration `step`, with `steps_per_epoch` iterations per epoch.
double learning_rate(const ScheduleOptions& s, double base_lr, int64_t epoch, int64_t step,
                     int64_t steps_per_epoch);

}  // namespace scconv
