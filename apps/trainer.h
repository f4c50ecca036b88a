// apps/trainer.h: the training loop of `scconv train` and the evaluation shared with
// `scconv eval`.
#pragma once
#include <atomic>

#include "apps/checkpoint.h"
#include "apps/train_config.h"

namespace scconv::apps {

struct Datasets {
  Dataset train, val, test;  // val is empty unless data.val_split > 0
};
// Loads the configured data set; with val_split, the last val_split images of a seeded
// permutation of the training set become the validation set.
Datasets load_datasets(const TrainConfig& cfg, const std::string& dir_override = "");

struct EvalResult {
  double loss = 0, accuracy = 0, seconds = 0;
  int64_t count = 0;
  std::vector<std::vector<int64_t>> confusion;  // [true][predicted]
};
EvalResult evaluate(Module& model, const Dataset& data, const AugmentOptions& norm, int64_t batch = 500);

// Trains per the config (resuming from <out>/checkpoint when `resume`). Returns the exit code:
// 0 done, 130 stopped by SIGINT/SIGTERM (a checkpoint was written at the step boundary).
// Throws on a non-finite loss after naming the parameter or layer output at fault.
int train(const TrainConfig& cfg, bool resume);

// Set by SIGINT/SIGTERM (or by tests) to stop at the next step boundary.
std::atomic<bool>& stop_requested();
// Tests: request a stop once this many steps of the run are done (-1: never).
std::atomic<int64_t>& stop_at_step();

}  // namespace scconv::apps
