// optim/ema.cpp: see ema.h.
#include "optim/ema.h"

#include <algorithm>

#include "core/backend.h"

namespace scconv {

WeightAverage::WeightAverage(const Module& model, double decay) : decay_(decay) {
  SCCONV_CHECK(decay > 0 && decay < 1, "ema.decay: must be in (0, 1), got " << decay);
  for (auto& [name, t] : model.named_tensors()) slots_.push_back({name, t, t.detach().clone()});
}

double WeightAverage::decay_at(double decay, int64_t t) {
  return std::min(decay, (1.0 + double(t)) / (10.0 + double(t)));
}

void WeightAverage::update() {
  autograd::NoGradGuard ng;
  const double d = decay_at(decay_, updates_);
  for (Slot& s : slots_) {
    if (is_floating(s.avg.dtype())) s.avg.mul_(d).add_(s.live.detach(), 1.0 - d);
    else s.avg.copy_(s.live.detach());
  }
  ++updates_;
}

std::map<std::string, Tensor> WeightAverage::state_dict() const {
  std::map<std::string, Tensor> out;
  for (const Slot& s : slots_) out[s.name] = s.avg;
  return out;
}

void WeightAverage::load_state_dict(const std::map<std::string, Tensor>& tensors, int64_t updates,
                                    const std::string& source) {
  SCCONV_CHECK(updates >= 0, source << ": the weight average's update count " << updates << " is negative");
  SCCONV_CHECK(tensors.size() == slots_.size(), source << ": " << tensors.size() << " tensors, but the model has "
                                                        << slots_.size() << " parameters and buffers to average");
  for (Slot& s : slots_) {
    auto it = tensors.find(s.name);
    SCCONV_CHECK(it != tensors.end(), source << ": no average of '" << s.name << "'");
    const Tensor& t = it->second;
    SCCONV_CHECK(t.shape() == s.avg.shape() && t.dtype() == s.avg.dtype(),
                 source << ": the average of '" << s.name << "' is " << t.str() << ", the model's tensor is " << s.live.str());
    SCCONV_CHECK(backend_for(t).first_nonfinite({t}) < 0, source << ": the average of '" << s.name << "' holds NaN or Inf");
  }
  autograd::NoGradGuard ng;
  for (Slot& s : slots_) s.avg.copy_(tensors.at(s.name).to(s.avg.device()));
  updates_ = updates;
}

void WeightAverage::swap_with_model() {
  autograd::NoGradGuard ng;
  for (Slot& s : slots_) {
    Tensor own = s.live.detach().clone();
    s.live.detach().copy_(s.avg);
    s.avg.copy_(own);
  }
}

WeightAverage::Swapped::Swapped(WeightAverage* avg) : avg_(avg) {
  if (avg_) avg_->swap_with_model();
}
WeightAverage::Swapped::~Swapped() {
  if (avg_) avg_->swap_with_model();
}

}  // namespace scconv
