// core/math/sru.h: the scalar formulas of the SRU gate (spec "SRU", step 4), shared by the
// reference loops, the fast CPU loops and future CUDA kernels.
//
// For one element with importance R = sigmoid(z) and threshold t, the gate gives two weights:
//   soft:            W1 = R > t ? 1 : R     W2 = R > t ? 0 : R
//   hard:            W1 = [R > t]           W2 = [R <= t]          (no gradient through R)
//   hard_reweighted: W1 = [R > t] R         W2 = [R <= t] R
// The SRU output of channel c is W1[c] x[c] + W2[c'] x[c'], c' = the channel half a way round
// (cross reconstruction). So x[c] reaches out[c] through W1[c] and out[c'] through W2[c]; with
// g = grad_out[c] and g' = grad_out[c']:
//   grad_x[c] (direct part) = W1 g + W2 g'
//   grad_R[c]               = (dW1/dR g + dW2/dR g') x[c]
#pragma once
#include <cstdint>

#include "core/math/host_device.h"

namespace scconv::math {

enum class SRUGate : uint8_t { Soft, Hard, HardReweighted };

template <class T>
SCCONV_HD void sru_gate(T r, T t, SRUGate gate, T& w1, T& w2) {
  const bool info = r > t;
  switch (gate) {
    case SRUGate::Soft: w1 = info ? T(1) : r; w2 = info ? T(0) : r; break;
    case SRUGate::Hard: w1 = info ? T(1) : T(0); w2 = info ? T(0) : T(1); break;
    case SRUGate::HardReweighted: w1 = info ? r : T(0); w2 = info ? T(0) : r; break;
  }
}

// grad_R of one element, from g = grad_out[c], g2 = grad_out[c'] and its input x.
template <class T>
SCCONV_HD T sru_gate_grad(T r, T t, SRUGate gate, T g, T g2, T x) {
  const bool info = r > t;
  switch (gate) {
    case SRUGate::Soft: return info ? T(0) : (g + g2) * x;
    case SRUGate::Hard: return T(0);
    case SRUGate::HardReweighted: return (info ? g : g2) * x;
  }
  return T(0);
}

}  // namespace scconv::math
