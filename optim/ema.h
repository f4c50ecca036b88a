// optim/ema.h: an exponential moving average of a model's weights (as timm's ModelEmaV2 or
// torch.optim.swa_utils.AveragedModel with get_ema_multi_avg_fn): after each optimizer step,
//   avg = d * avg + (1 - d) * w,   d = min(decay, (1 + t) / (10 + t)),  t = updates so far,
// for every parameter and every floating-point buffer (batch norm's running statistics, so the
// averaged model evaluates without re-estimating them); integer buffers (num_batches_tracked)
// are copied. The warm-up of d (TensorFlow's ExponentialMovingAverage with num_updates) keeps
// the first steps' random weights from dominating a short run's average. The average lives on
// the model's device; evaluating it swaps it into the model and back (WeightAverage::Swapped).
#pragma once
#include <map>
#include <string>
#include <vector>

#include "layers/module.h"

namespace scconv {

class WeightAverage {
 public:
  // decay in (0, 1). The average starts as a copy of the model's weights.
  WeightAverage(const Module& model, double decay);
  // The decay of update number t (0-based), with the warm-up.
  static double decay_at(double decay, int64_t t);
  void update();  // after an optimizer step
  int64_t updates() const { return updates_; }
  // The averaged tensors by the model's names (parameters and buffers): a model's state dict.
  std::map<std::string, Tensor> state_dict() const;
  // Restores an average saved by state_dict (every name of the model, matching shapes and dtypes,
  // finite) after `updates` updates. Errors name `source` and the tensor.
  void load_state_dict(const std::map<std::string, Tensor>& tensors, int64_t updates, const std::string& source);

  // While alive, the model holds the average (and the average holds the model's own weights).
  class Swapped {
   public:
    explicit Swapped(WeightAverage* avg);  // null: nothing swapped
    ~Swapped();
    Swapped(const Swapped&) = delete;
    Swapped& operator=(const Swapped&) = delete;

   private:
    WeightAverage* avg_;
  };

 private:
  void swap_with_model();
  struct Slot {
    std::string name;
    Tensor live, avg;  // the model's tensor and its average
  };
  std::vector<Slot> slots_;
  double decay_;
  int64_t updates_ = 0;
};

}  // namespace scconv
