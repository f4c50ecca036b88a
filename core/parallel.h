// core/parallel.h: the one thread pool (OpenMP; oneDNN runs on the same pool). Size it with
// set_num_threads (the apps' --threads); the default is every core.
#pragma once
#include <cstdint>

namespace scconv {

// The most threads any command accepts (--threads, the `threads` config key): more than this is a
// typo, not a machine.
inline constexpr int64_t kMaxThreads = 1024;
void set_num_threads(int64_t n);  // 0: every core this process may use (its CPU affinity); n in [0, kMaxThreads]
int get_num_threads();
// The cores this process may run on (its CPU affinity; all cores when that cannot be read).
int available_cores();

// A grain that gives each thread one chunk of [0, n): for loops whose body sets up per-chunk
// scratch buffers.
int64_t per_thread(int64_t n);

// Runs f(begin, end) over [0, n) in contiguous chunks of at least `grain`, on the pool.
template <class F>
void parallel_for(int64_t n, int64_t grain, F f) {
  if (n <= 0) return;
  int64_t chunks = (n + grain - 1) / grain;
  if (chunks <= 1) {
    f(int64_t(0), n);
    return;
  }
  int64_t step = (n + chunks - 1) / chunks;
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < chunks; ++c) {
    int64_t b = c * step, e = b + step < n ? b + step : n;
    if (b < e) f(b, e);
  }
}

}  // namespace scconv
