// optim/sgd.h: SGD with momentum, dampening, Nesterov and weight decay, matching
// torch.optim.SGD step for step (formula: core/math/sgd.h). Weight decay applies to every
// parameter (the paper's setting) or, with decay_norm_and_bias = false, skips 1-D parameters
// (norm scales and shifts, biases) as is common. Momentum buffers are state, saved and
// restored by parameter name.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace scconv {

struct SGDOptions {
  double lr = 0.05, momentum = 0.9, dampening = 0, weight_decay = 5e-4;
  bool nesterov = false;
  bool decay_norm_and_bias = true;
};

class SGD {
 public:
  SGD(std::vector<std::pair<std::string, Tensor>> named_params, const SGDOptions& o);
  // One update with learning rate `lr` (the schedule's value); parameters without a gradient
  // are skipped, as in PyTorch. skip: undefined, or a 0-d tensor on the parameters' device
  // whose nonzero value cancels the whole update there (the training loop's guard, which so
  // need not wait for its own verdict). A parameter's first update counts as made even when
  // skipped, so its momentum buffer then starts from zeros, not from the gradient: the same
  // with dampening 0 (the default), not otherwise.
  void step(double lr, const Tensor& skip = Tensor());
  void zero_grad();
  const SGDOptions& options() const { return o_; }
  // "momentum.<name>" -> buffer, for checkpoints.
  std::map<std::string, Tensor> state() const;
  void load_state(const std::map<std::string, Tensor>& state, const std::string& source);

 private:
  struct Slot {
    std::string name;
    Tensor param, buffer;
    bool decay;
  };
  std::vector<Slot> slots_;
  SGDOptions o_;
};

}  // namespace scconv
