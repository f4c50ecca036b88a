// core/cpu/sgd.cpp: the SGD update over each parameter, multi-threaded. Reference:
// core/reference/sgd.cpp (same formula, core/math/sgd.h).
#include "core/cpu/cpu_backend.h"
#include "core/math/sgd.h"
#include "core/parallel.h"

namespace scconv {

void CpuBackend::sgd_update(const std::vector<SGDParamUpdate>& ps, const SGDHyper& h, const Tensor& skip) {
  if (skip.defined() && skip.item() != 0) return;
  for (const SGDParamUpdate& u : ps) {
    SCCONV_DISPATCH_FLOAT(u.param.dtype(), "sgd_update", [&] {
      scalar_t* P = const_cast<Tensor&>(u.param).data<scalar_t>();
      const scalar_t* G = u.grad.data<scalar_t>();
      scalar_t dummy = 0;
      scalar_t* B = u.buffer.defined() ? const_cast<Tensor&>(u.buffer).data<scalar_t>() : nullptr;
      parallel_for(u.param.numel(), 65536, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i)
          math::sgd_step(P[i], G[i], B ? B[i] : dummy, u.first, h.lr, h.momentum, h.dampening, u.weight_decay,
                         h.nesterov);
      });
    });
  }
}

}  // namespace scconv
