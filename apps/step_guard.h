// apps/step_guard.h: the training loop's non-finite guard in its "stop" mode (the default), kept
// on the model's device so that a training step never waits for it (docs/reliability.md):
//   before_update(): one batched check of the loss and every gradient. Its verdict stays on the
//                    device and is the skip flag of SGD::step: a bad step cancels its own update
//                    and every later one, so the model stays as it was before the first bad step
//   after_update():  one batched check of every parameter and buffer, and the step's record
//   resolve():       reads every verdict since the last call in one copy (the trainer calls it
//                    with each progress line, before anything is saved) and throws the error that
//                    names the first bad step and what went wrong, as a check at each step would
// The "skip" mode decides each step on the host (apps/trainer.cpp), so it waits once a step.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "layers/module.h"

namespace scconv::apps {

// Names what went non-finite in a step whose loss is not finite: a parameter, a gradient, or
// (re-running the batch x with checks) the first layer output.
std::string diagnose(Module& model, const Tensor& x);
std::vector<std::pair<std::string, Tensor>> named_grads(const Module& model);

class StepGuard {
 public:
  // `stopped`: the end of every error ("Stopped; the last good checkpoint ... is kept").
  StepGuard(Module& model, Device device, std::string stopped);
  // loss (0-d) and the named gradients after backward -> the skip flag for SGD::step (0-d
  // float64 on the device: 1 once any step was bad).
  const Tensor& before_update(const Tensor& loss, const std::vector<std::pair<std::string, Tensor>>& grads);
  // After SGD::step: checks model.named_tensors(); `where` names the step, x_host is its batch
  // (kept for the diagnosis until resolved), lr its learning rate.
  void after_update(std::string where, const Tensor& x_host, double lr);
  // Reads the verdicts of the steps since the last call (one wait on a GPU); throws on a bad one.
  void resolve();

  static constexpr int64_t kWindow = 64;  // steps held at most; then after_update resolves

 private:
  struct Record {
    std::string where;
    Tensor x_host, loss;
    double lr = 0;
    std::shared_ptr<const std::vector<std::string>> grad_names;
  };
  Module& model_;
  Device device_;
  std::string stopped_;
  std::vector<std::string> tensor_names_;  // model.named_tensors()' names (fixed for a run)
  Tensor verdicts_;                        // (kWindow, 2) int64 on the device: before, after
  Tensor halt_, one_, zero_;               // 0-d on the device
  std::vector<Record> records_;
  Record pending_;  // between before_update and after_update
};

}  // namespace scconv::apps
