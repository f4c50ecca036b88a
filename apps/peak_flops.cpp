// apps/peak_flops.cpp: see peak_flops.h. Each variant keeps 16 independent accumulators (more
// than FMA latency x FMA ports on current x86 cores), so the loop runs at the FMA units'
// throughput. acc = acc * a + b with a just below 1 stays finite and normal.
#include "apps/peak_flops.h"

#include <immintrin.h>
#include <omp.h>

#include <chrono>

namespace scconv::apps {

namespace {
constexpr int kChains = 16;
constexpr int64_t kIters = 1 << 16;

__attribute__((target("avx512f"))) double fma_avx512(int64_t reps) {
  __m512 acc[kChains];
  for (int k = 0; k < kChains; ++k) acc[k] = _mm512_set1_ps(1.0f + 0.01f * float(k));
  const __m512 a = _mm512_set1_ps(0.9999999f), b = _mm512_set1_ps(1e-7f);
  for (int64_t r = 0; r < reps * kIters; ++r)
    for (int k = 0; k < kChains; ++k) acc[k] = _mm512_fmadd_ps(acc[k], a, b);
  alignas(64) float v[16];
  float s = 0;
  for (int k = 0; k < kChains; ++k) {
    _mm512_store_ps(v, acc[k]);
    for (float f : v) s += f;
  }
  return s;
}

__attribute__((target("avx2,fma"))) double fma_avx2(int64_t reps) {
  __m256 acc[kChains];
  for (int k = 0; k < kChains; ++k) acc[k] = _mm256_set1_ps(1.0f + 0.01f * float(k));
  const __m256 a = _mm256_set1_ps(0.9999999f), b = _mm256_set1_ps(1e-7f);
  for (int64_t r = 0; r < reps * kIters; ++r)
    for (int k = 0; k < kChains; ++k) acc[k] = _mm256_fmadd_ps(acc[k], a, b);
  alignas(32) float v[8];
  float s = 0;
  for (int k = 0; k < kChains; ++k) {
    _mm256_store_ps(v, acc[k]);
    for (float f : v) s += f;
  }
  return s;
}

double mul_add_sse(int64_t reps) {  // no FMA: a multiply and an add per lane
  __m128 acc[kChains];
  for (int k = 0; k < kChains; ++k) acc[k] = _mm_set1_ps(1.0f + 0.01f * float(k));
  const __m128 a = _mm_set1_ps(0.9999999f), b = _mm_set1_ps(1e-7f);
  for (int64_t r = 0; r < reps * kIters; ++r)
    for (int k = 0; k < kChains; ++k) acc[k] = _mm_add_ps(_mm_mul_ps(acc[k], a), b);
  alignas(16) float v[4];
  float s = 0;
  for (int k = 0; k < kChains; ++k) {
    _mm_store_ps(v, acc[k]);
    for (float f : v) s += f;
  }
  return s;
}
}  // namespace

PeakFlops measure_peak_flops(int threads, double seconds) {
  __builtin_cpu_init();
  PeakFlops out;
  int lanes;
  double (*kernel)(int64_t);
  if (__builtin_cpu_supports("avx512f")) {
    out.isa = "avx512f", lanes = 16, kernel = fma_avx512;
  } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    out.isa = "avx2+fma", lanes = 8, kernel = fma_avx2;
  } else {
    out.isa = "sse2", lanes = 4, kernel = mul_add_sse;
  }
  const double flops_per_rep = double(kIters) * kChains * lanes * 2;
  kernel(4);  // warm up (clocks, caches)
  using Clock = std::chrono::steady_clock;
  // Size the work to about `seconds` from one timed single-thread run.
  auto t0 = Clock::now();
  kernel(8);
  double one = std::chrono::duration<double>(Clock::now() - t0).count() / 8;
  const int64_t reps = std::max<int64_t>(1, int64_t(seconds / std::max(one, 1e-9)));
  volatile double sink = 0;
  t0 = Clock::now();
#pragma omp parallel num_threads(threads)
  {
    double s = kernel(reps);
#pragma omp critical
    sink = sink + s;
  }
  const double t = std::chrono::duration<double>(Clock::now() - t0).count();
  out.flops_per_second = flops_per_rep * double(reps) * threads / t;
  return out;
}

}  // namespace scconv::apps
