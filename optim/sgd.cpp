// optim/sgd.cpp: see sgd.h.
#include "optim/sgd.h"

#include "core/math/sgd.h"
#include "core/parallel.h"
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

void SGD::step(double lr) {
  profile::Scope timed("optimizer");
  for (Slot& s : slots_) {
    Tensor g = s.param.grad();
    if (!g.defined()) continue;
    const bool first = !s.buffer.defined();
    if (first && o_.momentum != 0) s.buffer = Tensor::zeros(s.param.shape(), s.param.dtype());
    Tensor gc = g.contiguous();
    const double wd = s.decay ? o_.weight_decay : 0.0;
    SCCONV_DISPATCH_FLOAT(s.param.dtype(), "SGD", [&] {
      scalar_t* P = s.param.data<scalar_t>();
      const scalar_t* G = gc.data<scalar_t>();
      scalar_t dummy = 0;
      scalar_t* B = s.buffer.defined() ? s.buffer.data<scalar_t>() : nullptr;
      parallel_for(s.param.numel(), 65536, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i)
          math::sgd_step(P[i], G[i], B ? B[i] : dummy, first, lr, o_.momentum, o_.dampening, wd, o_.nesterov);
      });
    });
    s.param.bump_version();
  }
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
  for (Slot& s : slots_) {
    auto it = state.find("momentum." + s.name);
    if (it == state.end()) {
      s.buffer = Tensor();
      continue;
    }
    SCCONV_CHECK(it->second.shape() == s.param.shape() && it->second.dtype() == s.param.dtype(),
                 source << ": momentum buffer for '" << s.name << "' is " << it->second.str()
                        << ", parameter is " << s.param.str());
    s.buffer = it->second.clone();
  }
}

}  // namespace scconv
