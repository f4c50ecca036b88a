// apps/train_config.h: the training config of `scconv train`, e.g.
//   {"model": "resnet20" | {...model config...},
//    "data": {"dataset": "cifar10", "dir": "data/cifar-10-batches-bin", "val_split": 0,
//             "augment": {"crop_padding": 4, "flip": true, "cutout": 0},
//             "mean": [0.4914, 0.4822, 0.4465], "std": [0.2470, 0.2435, 0.2616]},
//    "optim": {"lr": 0.05, "momentum": 0.9, "dampening": 0, "nesterov": false,
//              "weight_decay": 5e-4, "decay_norm_and_bias": true, "label_smoothing": 0},
//    "schedule": {"kind": "multistep", "milestones": [100, 150], "gamma": 0.1,
//                 "warmup_epochs": 0, "warmup_start_factor": 0.1, "eta_min": 0,
//                 "sru_threshold_start": 0.3 (optional)},
//    "epochs": 200, "batch_size": 128, "seed": 0, "threads": 0, "conv_algorithm": "auto",
//    "precision": "fp32",
//    "cudnn_search": "heuristic", "deterministic": false, "device": "cpu",
//    "nonfinite": {"action": "stop", "max_consecutive_skips": 20},
//    "explain": {"every": 0, "images": 100}, "ema": {"decay": 0}, "eval": {"tta": "none"},
//    "out": "runs/NAME"}
// ema.decay d > 0: an exponential moving average of the weights and batch-norm statistics,
// updated after every step (optim/ema.h: d warms up as min(d, (1 + t) / (10 + t))); every
// evaluation, best.safetensors and the checkpoint's ema.safetensors (what `scconv eval` and
// the teaching views load from a run) hold the average; model.safetensors keeps the trained
// weights, from which a run resumes.
// eval.tta: "none" or "flip" (every evaluation averages the logits of each image and its mirror).
// nonfinite.action: "stop" (default: a NaN/Inf loss, gradient, parameter or buffer stops the
// run with an error naming the step and tensor) or "skip" (such steps are skipped, as loss
// scalers do; more than max_consecutive_skips in a row stop the run).
// schedule.sru_threshold_start t0 (seed 004's warm-up; absent: the threshold stays t): the SRU
// threshold of epoch e (0-based) of E is min(t, t0 + (t - t0) e / E), t = model.scconv.sru.threshold;
// with t0 = 0.3 and t = 0.5 that is seed 004's min(0.5, 0.3 + 0.2 epoch / max_epoch). It applies
// to the training steps only: every evaluation (per epoch, the final one, scconv eval) uses t.
// explain.every K > 0: every K epochs (and after the last), the per-layer means of the SRU's
// informative fraction and of the CRU's beta1 on the first explain.images test images go into
// metrics.jsonl as "gates" (apps/explain.h); needs a model with SCConv units.
// device: "cpu" (default), "cuda" or "cuda:N"; checkpoints do not depend on it (a run trained on
// a GPU evaluates on the CPU and resumes on either).
// conv_algorithm: "auto" (Winograd where it is faster), "direct" or "winograd" (core/backend.h).
// precision: "fp32" or "bf16": convolutions and matmuls multiply in bfloat16 (forward and both
// backward passes; sums, weights, gradients, optimizer state, norms and the loss stay float32;
// core/dtype.h). On a CPU without native bf16 the run says so once and trains in float32.
// cudnn_search, deterministic: how cuDNN picks convolution algorithms on a GPU ("heuristic" or
// "measure"; deterministic: only algorithms that give the same bits every run); the CPU ignores them.
// Every key has a default; unknown keys and bad values are errors naming the dotted key.
// dataset: "cifar10", "cifar100", or "folder" (dir/train/<class>/*.png and dir/test/<class>/...,
// with data.image_size [H, W], data.resize, data.skip_bad).
#pragma once
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "data/loader.h"
#include "models/model_config.h"
#include "optim/schedule.h"
#include "optim/sgd.h"

namespace scconv::apps {

// Test-time augmentation of every evaluation: None, or Flip (the logits of each image and of
// its mirror image averaged, as a flip-trained model has seen both; twice the evaluation's cost).
enum class TestTimeAugment { None, Flip };
TestTimeAugment parse_tta(const std::string& name, const std::string& key);  // "none" | "flip"; the error names `key`
const char* tta_name(TestTimeAugment t);

// What the training loop does when the loss, a gradient, a parameter or a buffer goes NaN/Inf.
enum class NonfiniteAction { Stop, Skip };

struct TrainConfig {
  nlohmann::json model_json;
  ModelConfig model;
  std::string dataset = "cifar10", data_dir = "data/cifar-10-batches-bin";
  int64_t val_split = 0;
  AugmentOptions augment;
  int64_t image_h = 32, image_w = 32;
  bool resize = false, skip_bad = true;
  SGDOptions optim;
  double label_smoothing = 0;
  ScheduleOptions schedule;
  int64_t epochs = 200, batch_size = 128, seed = 0, threads = 0;
  std::string conv_algorithm = "auto";
  std::string precision = "fp32";
  std::string cudnn_search = "heuristic";  // or "measure" (CudnnOptions, core/backend.h)
  bool deterministic = false;
  std::string device = "cpu";  // "cpu", "cuda" or "cuda:N" (core/device.h)
  NonfiniteAction nonfinite = NonfiniteAction::Stop;
  int64_t max_consecutive_skips = 20;  // (with Skip) more in a row stop the run
  int64_t explain_every = 0, explain_images = 100;  // gate statistics every K epochs (0: never)
  double ema_decay = 0;  // ema.decay: 0 off, else the weight average's decay (optim/ema.h)
  TestTimeAugment tta = TestTimeAugment::None;  // eval.tta
  std::optional<double> sru_threshold_start;  // schedule.sru_threshold_start
  std::string out = "runs/default";
  nlohmann::json to_json() const;  // every key, defaults filled in
  double sru_threshold(int64_t epoch) const;  // the SRU threshold of a training epoch (0-based)
};

// The precision that `precision` (train's key, eval's and bench's --precision) gets on `device`:
// bf16 where the backend multiplies bf16 natively, else float32, said once on stderr (per process).
Precision effective_precision(const std::string& precision, Device device);

TrainConfig parse_train_config(const nlohmann::json& j, const std::string& source = "");
// `--set key=value` on a training config (core/config.h apply_set); a `model.*` key first turns a
// model preset named by string into its object, so `--set model.scconv.alpha=0.25` works on
// every preset.
void apply_train_set(nlohmann::json& j, const std::string& assignment);
// What apply_train_set does first: before a `model.*` key is set, a model preset named by string
// becomes its object.
void expand_model_preset_for(nlohmann::json& j, const std::string& dotted_key);
// configs/train/NAME.json (searching ./configs/train and the source tree's).
nlohmann::json load_train_preset(const std::string& name);

}  // namespace scconv::apps
