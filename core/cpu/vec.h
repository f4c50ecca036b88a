// core/cpu/vec.h: reductions over contiguous runs written with independent partial sums, so
// that the compiler vectorises them under strict IEEE rules (a single running sum cannot be
// reordered into SIMD lanes). Each returns the total in double.
#pragma once
#include <cstdint>

namespace scconv::cpu {

constexpr int kLanes = 16;

// sum_i p[i]
template <class T>
inline double sum_run(const T* p, int64_t n) {
  T acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) acc[l] += p[i + l];
  double s = 0;
  for (int l = 0; l < kLanes; ++l) s += acc[l];
  for (; i < n; ++i) s += p[i];
  return s;
}

// sum_i (p[i] - m)^2
template <class T>
inline double sum_sq_dev_run(const T* p, int64_t n, T m) {
  T acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) {
      T d = p[i + l] - m;
      acc[l] += d * d;
    }
  double s = 0;
  for (int l = 0; l < kLanes; ++l) s += acc[l];
  for (; i < n; ++i) s += double(p[i] - m) * double(p[i] - m);
  return s;
}

// sum_i g[i] and sum_i g[i] (x[i] - m), in one pass
template <class T>
inline void sum_g_gdev_run(const T* g, const T* x, int64_t n, T m, double& sg, double& sgd) {
  T a[kLanes] = {}, b[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) {
      a[l] += g[i + l];
      b[l] += g[i + l] * (x[i + l] - m);
    }
  double s1 = 0, s2 = 0;
  for (int l = 0; l < kLanes; ++l) {
    s1 += a[l];
    s2 += b[l];
  }
  for (; i < n; ++i) {
    s1 += g[i];
    s2 += double(g[i]) * double(x[i] - m);
  }
  sg += s1;
  sgd += s2;
}

}  // namespace scconv::cpu
