// core/cpu/strided_loop.h: the loop driver of the fast element-wise kernels. It visits dims in
// the memory order of operand 0 (the output; so a channels-last tensor is walked N, H, W, C),
// merges adjacent dims that are laid out contiguously for every operand (a per-channel
// (1,C,1,1) operand of an (N,C,H,W) loop becomes (N, C, H*W) with an inner stride of 0), then
// hands the kernel 1-D runs: kernel(n, ptr offsets of each operand, inner stride of each
// operand). Runs are spread over the thread pool.
#pragma once
#include <algorithm>
#include <array>
#include <cstdint>
#include <numeric>
#include <vector>

#include "core/parallel.h"
#include "core/shape.h"

namespace scconv::cpu {

template <size_t K>
struct StridedLoop {
  Shape shape;                       // coalesced
  std::array<Strides, K> strides;    // per operand, same rank as shape

  StridedLoop(const Shape& full_shape, const std::array<Strides, K>& full_strides) {
    std::vector<size_t> order(full_shape.size());
    std::iota(order.begin(), order.end(), size_t(0));
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      return full_strides[0][a] > full_strides[0][b];
    });
    for (size_t d : order) {
      if (full_shape[d] == 1) continue;  // size-1 dims carry no data movement
      bool merge = !shape.empty();
      for (size_t k = 0; k < K && merge; ++k)
        merge = strides[k].back() == full_strides[k][d] * full_shape[d];
      if (merge) {
        shape.back() *= full_shape[d];
        for (size_t k = 0; k < K; ++k) strides[k].back() = full_strides[k][d];
      } else {
        shape.push_back(full_shape[d]);
        for (size_t k = 0; k < K; ++k) strides[k].push_back(full_strides[k][d]);
      }
    }
    if (shape.empty()) {  // scalar
      shape.push_back(1);
      for (size_t k = 0; k < K; ++k) strides[k].push_back(0);
    }
  }

  // kernel(int64_t n, const std::array<int64_t,K>& offsets, const std::array<int64_t,K>& inner)
  template <class F>
  void run(F kernel) const {
    if (numel_of(shape) == 0) return;
    const int64_t inner = shape.back();
    const int64_t rows = numel_of(shape) / inner;
    // Split long rows so that a single contiguous run still uses every thread.
    const int64_t chunk = inner > 16384 ? 16384 : inner;
    const int64_t per_row = (inner + chunk - 1) / chunk;
    std::array<int64_t, K> inner_stride;
    for (size_t k = 0; k < K; ++k) inner_stride[k] = strides[k].back();
    const int64_t nd = static_cast<int64_t>(shape.size());
    parallel_for(rows * per_row, std::max<int64_t>(1, 32768 / chunk), [&](int64_t b, int64_t e) {
      // The outer index of run b, then an odometer: short runs (a few channels of a
      // channels-last slice) must not pay a division per dim each.
      std::array<int64_t, K> base{};
      std::vector<int64_t> idx(nd > 1 ? nd - 1 : 0);
      int64_t row = b / per_row, part = b % per_row;
      for (int64_t d = nd - 2; d >= 0; --d) {
        idx[d] = row % shape[d];
        row /= shape[d];
        for (size_t k = 0; k < K; ++k) base[k] += idx[d] * strides[k][d];
      }
      for (int64_t w = b; w < e; ++w) {
        const int64_t start = part * chunk, n = std::min(chunk, inner - start);
        std::array<int64_t, K> off;
        for (size_t k = 0; k < K; ++k) off[k] = base[k] + start * inner_stride[k];
        kernel(n, off, inner_stride);
        if (++part < per_row) continue;
        part = 0;
        for (int64_t d = nd - 2; d >= 0; --d) {  // next row
          for (size_t k = 0; k < K; ++k) base[k] += strides[k][d];
          if (++idx[d] < shape[d]) break;
          for (size_t k = 0; k < K; ++k) base[k] -= strides[k][d] * shape[d];
          idx[d] = 0;
        }
      }
    });
  }
};

}  // namespace scconv::cpu
