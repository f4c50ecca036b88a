// apps/peak_flops.h: this CPU's float32 peak, measured: `threads` threads each run chains of
// independent fused multiply-adds in the widest vector ISA the CPU has (AVX-512, AVX2+FMA or
// SSE), whatever this binary was compiled for. `scconv bench` divides achieved FLOP/s by it.
#pragma once

namespace scconv::apps {

struct PeakFlops {
  double flops_per_second = 0;
  const char* isa = "";  // "avx512f", "avx2+fma" or "sse2"
};
PeakFlops measure_peak_flops(int threads, double seconds = 0.3);

}  // namespace scconv::apps
