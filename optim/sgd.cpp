// optim/sgd.cpp: see sgd.h.
#include "optim/sgd.h"

#include <map>

#include "core/backend.h"
#include "core/profile.h"

namespace scconv {

SGD::SGD(std::vector<std::pair<std::string, Tensor>> named_params, const SGDOptions& o) : o_(o) {
  SCCONV_CHECK(o.lr >= 0 && o.momentum >= 0 && o.weight_decay >= 0 && o.dampening >= 0,
               "SGD: lr, momentum, weight_decay and dampening must be >= 0");
  SCCONV_CHECK(!o.nesterov || (o.momentum > 0 && o.dampening == 0),
               "SGD: nesterov needs momentum > 0 and dampening 0 (as torch.optim.SGD)");
  for (auto& [n, p] : named_params) {
    SCCONV_CHECK(p.dtype() == DType::F32 || p.dtype() == DType::F64, "SGD: parameter '" << n << "' is " << p.str());
    slots_.push_back({n, p, Tensor(), o.decay_norm_and_bias || p.dim() > 1});
  }
}

void SGD::step(double lr, const Tensor& skip) {
  profile::Scope timed("optimizer");
  // one batch per device (a model lives on one; the batches keep the order of the parameters)
  std::map<Device, std::vector<SGDParamUpdate>> by_device;
  for (Slot& s : slots_) {
    Tensor g = s.param.grad();
    if (!g.defined()) continue;
    SCCONV_CHECK(s.param.is_contiguous(), "SGD: parameter '" << s.name << "' " << s.param.str() << " is not dense");
    check_same_device(s.param, g, ("SGD: parameter '" + s.name + "' and its gradient").c_str());
    const bool first = !s.buffer.defined();
    if (first && o_.momentum != 0) s.buffer = Tensor::zeros(s.param.shape(), s.param.dtype(), s.param.device());
    by_device[s.param.device()].push_back({s.param, g.contiguous(), s.buffer, s.decay ? o_.weight_decay : 0.0, first});
    s.param.bump_version();
  }
  for (auto& [device, updates] : by_device)
    backend_for(device).sgd_update(updates, {lr, o_.momentum, o_.dampening, o_.nesterov}, skip);
}

void SGD::zero_grad() {
  for (Slot& s : slots_) s.param.set_grad(Tensor());
}

std::map<std::string, Tensor> SGD::state() const {
  std::map<std::string, Tensor> out;
  for (const Slot& s : slots_)
    if (s.buffer.defined()) out["momentum." + s.name] = s.buffer;
  return out;
}

void SGD::load_state(const std::map<std::string, Tensor>& state, const std::string& source) {
  std::map<std::string, Tensor> buffers;
  for (auto& [name, t] : state) {
    const Slot* slot = nullptr;
    for (const Slot& s : slots_)
      if (name == "momentum." + s.name) slot = &s;
    SCCONV_CHECK(slot, source << ": '" << name << "' is not the momentum buffer of any parameter of this model");
    SCCONV_CHECK(t.shape() == slot->param.shape() && t.dtype() == slot->param.dtype(),
                 source << ": momentum buffer for '" << slot->name << "' is " << t.str() << ", parameter is "
                        << slot->param.str());
    SCCONV_CHECK(backend_for(t).first_nonfinite({t}) < 0, source << ": '" << name << "' holds NaN or Inf values");
    buffers[slot->name] = t.to(slot->param.device()).clone();
  }
  for (Slot& s : slots_) {
    auto it = buffers.find(s.name);
    s.buffer = it == buffers.end() ? Tensor() : it->second;  // none yet: the parameter had no step
  }
}

}  // namespace scconv
