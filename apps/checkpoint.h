// apps/checkpoint.h: training checkpoints. <out>/checkpoint/ holds
//   model.safetensors      every parameter and buffer by its PyTorch-style name (loadable by
//                          PyTorch); metadata (model_metadata): the full training config, the
//                          epoch, the class names and the input convention
//                          ("input": "(pixel / 255 - mean) / std", core/math/pixels.h)
//   optimizer.safetensors  SGD momentum buffers ("momentum.<name>")
//   ema.safetensors        with ema.decay: the weight average (optim/ema.h) as a model file (the
//                          same names and metadata as model.safetensors, plus "ema_updates");
//                          what --checkpoint loads for eval and the teaching views
//   state.json             position (epoch, step), best accuracy, per-epoch metrics, partial
//                          epoch sums, config
// A checkpoint is written whole into <out>/checkpoint.tmp/ (each file fsynced), then swapped in
// by renames (checkpoint -> checkpoint.old, tmp -> checkpoint); a crash at any point leaves a
// complete checkpoint or checkpoint.old. checkpoint.old stays (the previous checkpoint): when
// the newest cannot be loaded (damaged, non-finite, files of different checkpoints), resuming
// falls back to it. Loading checks everything: the state's keys, types and ranges, the input
// convention, names, dtypes and shapes, and that every tensor is finite.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/safetensors.h"
#include "layers/module.h"
#include "optim/ema.h"
#include "optim/sgd.h"

namespace scconv::apps {

// Running sums of the epoch in progress (restored when resuming mid-epoch).
struct EpochSums {
  double loss_sum = 0, wait = 0, seconds = 0;
  int64_t correct = 0, seen = 0, skipped = 0;
};

struct TrainState {
  int64_t epoch = 0;          // completed epochs
  int64_t step_in_epoch = 0;  // batches done of the current epoch (a stop mid-epoch)
  int64_t global_step = 0;
  double best_acc = -1;       // best selection accuracy (val if split, else test)
  int64_t best_epoch = 0;
  nlohmann::json history = nlohmann::json::array();  // per-epoch metrics objects
  EpochSums partial;
  nlohmann::json to_json() const;
  // Every key checked; errors name `source` and the key ("state.json: ... history[2].test_acc").
  static TrainState from_json(const nlohmann::json& j, const std::string& source);
};

// The metadata of every model file scconv train writes (checkpoints and best.safetensors).
std::map<std::string, std::string> model_metadata(const nlohmann::json& config, int64_t epoch,
                                                  const std::vector<std::string>& classes);

// ema: the run's weight average (null: none).
void save_checkpoint(const std::string& out_dir, const Module& model, const SGD& sgd,
                     const TrainState& state, const nlohmann::json& config,
                     const std::vector<std::string>& classes = {}, const WeightAverage* ema = nullptr);
// The complete checkpoint directories under out_dir, newest first (checkpoint, checkpoint.old).
std::vector<std::string> checkpoint_dirs(const std::string& out_dir);
// The model file of a checkpoint directory that its run evaluated: ema.safetensors where the
// run kept a weight average, else model.safetensors.
std::string evaluated_model_file(const std::string& ckpt_dir);
// The newest of them ("" if none).
std::string find_checkpoint(const std::string& out_dir);
// Loads model weights, optimizer state, the weight average (when ema is given: the directory
// must hold one) and the state from one checkpoint directory.
void load_checkpoint(const std::string& ckpt_dir, Module& model, SGD* sgd, TrainState* state,
                     WeightAverage* ema = nullptr);
// Loads the newest checkpoint that loads, saying on stderr why a newer one was passed over; a
// damaged newest is renamed checkpoint.damaged and the one that loaded becomes checkpoint.
// Returns the directory loaded. The error lists every checkpoint's problem.
std::string load_newest_checkpoint(const std::string& out_dir, Module& model, SGD* sgd, TrainState* state,
                                   WeightAverage* ema = nullptr);
// The training config of the newest checkpoint whose state.json reads.
nlohmann::json resume_config(const std::string& out_dir);

// A model file written by scconv train: its weights, training config and class names. Errors
// name the file when it has no config (not written by scconv train) or was written with
// another input convention (before the pixel scaling fix: raw 0..255 pixels).
struct ModelFile {
  SafetensorsFile file;
  nlohmann::json config;
  std::vector<std::string> classes;  // empty in files written before the classes were recorded
};
ModelFile read_model_file(const std::string& path);
// The convention check of read_model_file (resume runs it too).
void check_input_convention(const SafetensorsFile& f, const std::string& path);
// Every parameter and buffer finite, else an Error naming `source` and the first bad tensor.
void check_finite_state(const Module& model, const std::string& source);

}  // namespace scconv::apps
