// core/cuda/kernels.cuh: device-side helpers shared by the kernel files (nvcc only): block-wide
// sums in double and a grid-stride loop.
#pragma once
#include "core/cuda/cuda_common.h"

namespace scconv::cuda {

// Every thread of a block (blockDim.x a multiple of 32, at most 1024) passes its partial v; all
// threads get the block's total. Two barriers; `shared` holds 32 doubles.
__device__ __forceinline__ double block_sum(double v, double* shared) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  __syncthreads();  // `shared` may still be read by a previous call
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  double t = 0;
  const int warps = (blockDim.x + 31) >> 5;
  for (int w = 0; w < warps; ++w) t += shared[w];
  return t;
}

#define SCCONV_GRID_LOOP(i, n)                                                     \
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (n);        \
       i += int64_t(gridDim.x) * blockDim.x)

}  // namespace scconv::cuda
