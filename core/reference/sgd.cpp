// core/reference/sgd.cpp: the SGD update, one element at a time with core/math/sgd.h's formula
// (torch.optim.SGD's). The fast versions: core/cpu/sgd.cpp, core/cuda/sgd.cu.
#include "core/math/sgd.h"
#include "core/reference/reference_backend.h"

namespace scconv {

void ReferenceBackend::sgd_update(const std::vector<SGDParamUpdate>& ps, const SGDHyper& h, const Tensor& skip) {
  if (skip.defined() && skip.item() != 0) return;
  for (const SGDParamUpdate& u : ps) {
    Tensor param = u.param, buffer = u.buffer;
    for (int64_t i = 0; i < param.numel(); ++i) {
      double p = ref::get(param, i), b = buffer.defined() ? ref::get(buffer, i) : 0.0;
      math::sgd_step(p, ref::get(u.grad, i), b, u.first, h.lr, h.momentum, h.dampening, u.weight_decay, h.nesterov);
      ref::set(param, i, p);
      if (buffer.defined()) ref::set(buffer, i, b);
    }
  }
}

}  // namespace scconv
