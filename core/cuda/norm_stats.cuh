// core/cuda/norm_stats.cuh: the group statistics shared by group norm (norm.cu) and the fused
// SRU (sru.cu): one block per (sample, group) sums its Cg * S elements in double, twice (mean,
// then squared deviations), with core/math/norm.h's rstd. Reference: ReferenceBackend::group_norm.
#pragma once
#include "core/cuda/kernels.cuh"
#include "core/math/norm.h"

namespace scconv::cuda {

// Element r of a group's Cg * S elements -> (channel inside the group, pixel), in memory order.
__device__ __forceinline__ void group_element(const NCS& v, int64_t Cg, int64_t r, int64_t& cl, int64_t& k) {
  if (v.channels_fast()) {
    cl = r % Cg;
    k = r / Cg;
  } else {
    cl = r / v.S;
    k = r % v.S;
  }
}

// Grid: N * G blocks. mean, rstd (N, G) dense.
template <class T>
__global__ void group_stats_kernel(NCS v, int64_t G, double eps, math::GroupNormKind kind, const T* x, T* mean,
                                   T* rstd) {
  __shared__ double shared[32];
  const int64_t ng = blockIdx.x, n = ng / G, g = ng % G, Cg = v.C / G, M = Cg * v.S;
  double s = 0;
  for (int64_t r = threadIdx.x; r < M; r += blockDim.x) {
    int64_t cl, k;
    group_element(v, Cg, r, cl, k);
    s += static_cast<double>(x[v.at(n, g * Cg + cl, k)]);
  }
  const double m = block_sum(s, shared) / double(M);
  double ssd = 0;
  for (int64_t r = threadIdx.x; r < M; r += blockDim.x) {
    int64_t cl, k;
    group_element(v, Cg, r, cl, k);
    const double d = static_cast<double>(x[v.at(n, g * Cg + cl, k)]) - m;
    ssd += d * d;
  }
  ssd = block_sum(ssd, shared);
  if (threadIdx.x == 0) {
    mean[ng] = static_cast<T>(m);
    rstd[ng] = static_cast<T>(kind == math::GroupNormKind::Torch ? math::rstd_biased(ssd, double(M), eps)
                                                                 : math::rstd_seed(ssd, double(M), eps));
  }
}

}  // namespace scconv::cuda
