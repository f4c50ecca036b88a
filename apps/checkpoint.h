// apps/checkpoint.h: training checkpoints. <out>/checkpoint/ holds
//   model.safetensors      every parameter and buffer by its PyTorch-style name (loadable by
//                          PyTorch); metadata: the full training config, epoch
//   optimizer.safetensors  SGD momentum buffers ("momentum.<name>")
//   state.json             position (epoch, step), best accuracy, per-epoch metrics, partial
//                          epoch sums, config
// A checkpoint is written whole into <out>/checkpoint.tmp/ (each file fsynced), then swapped in
// by renames (checkpoint -> checkpoint.old, tmp -> checkpoint); a crash at any point leaves a
// complete checkpoint or checkpoint.old, which load_checkpoint falls back to.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "layers/module.h"
#include "optim/sgd.h"

namespace scconv::apps {

struct TrainState {
  int64_t epoch = 0;          // completed epochs
  int64_t step_in_epoch = 0;  // batches done of the current epoch (a stop mid-epoch)
  int64_t global_step = 0;
  double best_acc = -1;       // best selection accuracy (val if split, else test)
  int64_t best_epoch = 0;
  nlohmann::json history = nlohmann::json::array();  // per-epoch metrics objects
  nlohmann::json partial = nlohmann::json::object();  // running sums of the current epoch
  nlohmann::json to_json() const;
  static TrainState from_json(const nlohmann::json& j);
};

void save_checkpoint(const std::string& out_dir, const Module& model, const SGD& sgd,
                     const TrainState& state, const nlohmann::json& config);
// The directory holding the newest complete checkpoint under out_dir ("" if none).
std::string find_checkpoint(const std::string& out_dir);
// Loads model weights, optimizer state and the state from a checkpoint directory.
void load_checkpoint(const std::string& ckpt_dir, Module& model, SGD* sgd, TrainState* state);
// The training config stored with a checkpoint directory or a model.safetensors file.
nlohmann::json checkpoint_config(const std::string& model_file);

}  // namespace scconv::apps
