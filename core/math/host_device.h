// core/math/host_device.h: SCCONV_HD marks scalar functions that CPU loops and CUDA kernels
// share, so the formulas cannot drift between devices.
#pragma once
#if defined(__CUDACC__)
#define SCCONV_HD __host__ __device__ __forceinline__
#else
#define SCCONV_HD inline
#endif
