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
// An image folder's test labels index the training set's classes (by name).
Datasets load_datasets(const TrainConfig& cfg, const std::string& dir_override = "");
// Only the test split (what eval needs); an image folder's labels index `classes` when given.
Dataset load_test_set(const TrainConfig& cfg, const std::string& dir_override, const std::vector<std::string>& classes);

struct EvalResult {
  double loss = 0, accuracy = 0, seconds = 0;
  int64_t count = 0;
  std::vector<std::vector<int64_t>> confusion;  // [true][predicted]
};
// tta Flip: the logits of each image and of its mirror image averaged (train_config.h).
EvalResult evaluate(Module& model, const Dataset& data, const AugmentOptions& norm,
                    TestTimeAugment tta = TestTimeAugment::None, int64_t batch = 500);

// The class of each row's largest logit: logits float (N, K) -> N indices.
std::vector<int64_t> argmax_rows(const Tensor& logits);

// Trains per the config (resuming from <out>/checkpoint when `resume`, falling back to
// checkpoint.old). Returns the exit code: 0 done, 130 stopped by SIGINT/SIGTERM (a checkpoint
// was written at the step boundary). Throws an Error naming the step and the tensor when
// parameters, buffers, gradients or the loss go non-finite (nonfinite.action "stop", the
// default; "skip" skips such steps), keeping the last good checkpoint. allow_foreign_files: the
// output folder may hold files that are not a run's (apps/run_dir.h).
int train(const TrainConfig& cfg, bool resume, bool allow_foreign_files = false);

// Set by SIGINT/SIGTERM (or by tests) to stop at the next step boundary.
std::atomic<bool>& stop_requested();
// Tests: request a stop once this many steps of the run are done (-1: never).
std::atomic<int64_t>& stop_at_step();
// Tests: at global step `step` (1-based), after backward, fill `tensor` with NaN: a parameter's
// name poisons its gradient, a buffer's name the buffer itself (what the guard must catch).
struct NonfiniteInjection {
  int64_t step = -1;
  std::string tensor;
};
NonfiniteInjection& inject_nonfinite();

}  // namespace scconv::apps
