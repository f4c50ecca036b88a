// core/cpu/vec.h: reductions over contiguous runs written with independent partial sums, so
// that the compiler vectorises them under strict IEEE rules (a single running sum cannot be
// reordered into SIMD lanes). Each returns the total in double.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

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

// sum_i a[i] b[i]
template <class T>
inline double dot_run(const T* __restrict a, const T* __restrict b, int64_t n) {
  T acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) acc[l] += a[i + l] * b[i + l];
  double s = 0;
  for (int l = 0; l < kLanes; ++l) s += acc[l];
  for (; i < n; ++i) s += double(a[i]) * double(b[i]);
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

namespace scconv::cpu {

// Rows per chunk of the channels-last batch norm's column sums (core/cpu/norm.cpp).
constexpr int64_t kRowChunk = 128;

// ---- row blocks of a channels-last (rows, C) matrix: per-channel values tiled over a block of
// rows make every loop one long run the compiler vectorises, whatever C is. A block holds
// about kBlockValues values: max(1, kBlockValues / C) rows. ----
constexpr int64_t kBlockValues = 1024;
inline int64_t block_rows(int64_t C) { return std::max<int64_t>(1, kBlockValues / C); }

// out[r * C + c] = per_channel[c] for rows r < rows.
template <class T>
void tile_rows(const T* per_channel, int64_t C, int64_t rows, T* out) {
  for (int64_t r = 0; r < rows; ++r) std::copy(per_channel, per_channel + C, out + r * C);
}

// out[c] += the sum over a block's rows of a[r * C + c] (times b[r * C + c] if b is given):
// four rows at a time into acc (T), so that the running sums wait on each other once per four
// rows, then into out (double). The order is fixed: the same bits at any thread count.
template <class T>
void add_columns(const T* __restrict a, const T* __restrict b, int64_t C, int64_t rows,
                 T* __restrict acc, double* out) {
  std::fill(acc, acc + C, T(0));
  int64_t r = 0;
  if (b) {
    for (; r + 4 <= rows; r += 4) {
      const T *a0 = a + r * C, *b0 = b + r * C;
      for (int64_t c = 0; c < C; ++c)
        acc[c] += (a0[c] * b0[c] + a0[C + c] * b0[C + c]) +
                  (a0[2 * C + c] * b0[2 * C + c] + a0[3 * C + c] * b0[3 * C + c]);
    }
    for (; r < rows; ++r)
      for (int64_t c = 0; c < C; ++c) acc[c] += a[r * C + c] * b[r * C + c];
  } else {
    for (; r + 4 <= rows; r += 4) {
      const T* a0 = a + r * C;
      for (int64_t c = 0; c < C; ++c) acc[c] += (a0[c] + a0[C + c]) + (a0[2 * C + c] + a0[3 * C + c]);
    }
    for (; r < rows; ++r)
      for (int64_t c = 0; c < C; ++c) acc[c] += a[r * C + c];
  }
  for (int64_t c = 0; c < C; ++c) out[c] += acc[c];
}

// out[c] += the sum over a block's rows of (x[r * C + c] - m[c])^2, like add_columns.
template <class T>
void add_sq_dev_columns(const T* __restrict x, const T* __restrict m, int64_t C, int64_t rows,
                        T* __restrict acc, double* out) {
  std::fill(acc, acc + C, T(0));
  int64_t r = 0;
  for (; r + 4 <= rows; r += 4) {
    const T* x0 = x + r * C;
    for (int64_t c = 0; c < C; ++c) {
      const T d0 = x0[c] - m[c], d1 = x0[C + c] - m[c], d2 = x0[2 * C + c] - m[c], d3 = x0[3 * C + c] - m[c];
      acc[c] += (d0 * d0 + d1 * d1) + (d2 * d2 + d3 * d3);
    }
  }
  for (; r < rows; ++r)
    for (int64_t c = 0; c < C; ++c) {
      const T d = x[r * C + c] - m[c];
      acc[c] += d * d;
    }
  for (int64_t c = 0; c < C; ++c) out[c] += acc[c];
}

// L values of T as one GCC/Clang vector (vector extensions: one register, part of one, or
// several). kW lanes fill a 64-byte (AVX-512) register; kernels that hold vectors across a loop
// keep to at most that width each. Loads and stores take unaligned pointers.
template <class T>
constexpr int kW = 64 / sizeof(T);
template <class T, int L>
struct VecOf {
  typedef T type __attribute__((vector_size(L * sizeof(T))));
};
template <class V, class T>
inline V load_vec(const T* p) {
  V v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}
template <class V, class T>
inline void store_vec(T* p, const V& v) {
  __builtin_memcpy(p, &v, sizeof v);
}

// out[k] = sum over n < N of parts[n * stride + k] (k < K), added in the order of n: a kernel that
// gives each sample to one thread writes per-sample partial sums, and this sums them the same
// way at any thread count.
inline std::vector<double> sum_in_sample_order(const double* parts, int64_t N, int64_t stride,
                                               int64_t K) {
  std::vector<double> out(K, 0.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k) out[k] += parts[n * stride + k];
  return out;
}

// exp(x) in a form that loops vectorise (no library call, no branch): x = k ln2 + r with
// |r| <= ln2 / 2, e^r by its degree-6 Taylor polynomial (relative error < 2e-7), times 2^k
// built in the exponent bits. Inputs are clamped to [-87, 88], where the result is a normal float.
inline float exp_approx(float x) {
  x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
  const float shifter = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const float kf = (x * 1.44269504088896341f + shifter) - shifter;
  const float r = (x - kf * 0.693145751953125f) - kf * 1.428606765330187e-06f;  // ln2 in two parts
  float p = 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(kf) + 127) << 23;
  float scale;
  __builtin_memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}
inline double exp_approx(double x) { return __builtin_exp(x); }  // float64: the exact one

// sigmoid(z) for |z| <= kSigmoidSmallRange as 1/2 + z P(z^2), P of degree 6 (fitted by least
// squares at Chebyshev nodes of z^2 in [0, 4], weighted for absolute error): |error| < 1e-7 in
// float32, as small as that of 1 / (1 + exp(-z)) rounded to float32. No exp, no division: eight
// multiply-adds where the exp_approx form takes about twenty instructions and a divide. Outside
// the range it is wrong; callers check it (the SRU: per sample, from each channel's extremes).
constexpr double kSigmoidSmallRange = 2.0;
inline float sigmoid_small(float z) {
  const float u = z * z;
  float p = 5.84004312e-08f;
  p = p * u - 1.4474432e-06f;
  p = p * u + 1.94776276e-05f;
  p = p * u - 0.000208003592f;
  p = p * u + 0.00208110781f;
  p = p * u - 0.0208325423f;
  p = p * u + 0.249999911f;
  return z * p + 0.5f;
}
inline double sigmoid_small(double z) { return 1.0 / (1.0 + __builtin_exp(-z)); }  // float64: exact

}  // namespace scconv::cpu
