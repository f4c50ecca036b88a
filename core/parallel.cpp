// core/parallel.cpp: thread-count control for the OpenMP pool.
#include "core/parallel.h"

#include <omp.h>
#include <sched.h>

#include <thread>

#include "core/error.h"

namespace scconv {

int available_cores() {
  // a Slurm task's or taskset's share, else all cores
  cpu_set_t set;
  int n = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 0;
  if (n <= 0) n = static_cast<int>(std::thread::hardware_concurrency());
  return n > 0 ? n : 1;
}

void set_num_threads(int64_t n) {
  SCCONV_CHECK(n >= 0 && n <= kMaxThreads, "threads: " << n << " is outside [0, " << kMaxThreads << "] (0: all cores)");
  omp_set_num_threads(static_cast<int>(n == 0 ? available_cores() : n));
}

int get_num_threads() { return omp_get_max_threads(); }

int64_t per_thread(int64_t n) {
  const int64_t t = get_num_threads();
  return n <= t ? 1 : (n + t - 1) / t;
}

}  // namespace scconv
