// tests/cuda/test_cuda_indexing.cpp: the host side of the CUDA kernels' addressing, which needs
// no GPU (built only with -DSCCONV_CUDA=ON): StridedArgs walks (core/cuda/cuda_common.h) visit
// every element of every operand exactly once, with the offsets the reference loops compute, for
// dense, channels-last, transposed, sliced and broadcast tensors; NCS views decode every (n, c, k)
// once, in NCHW and channels-last.
// Run: ./build/cuda/tests/test_cuda_indexing
#include <doctest/doctest.h>

#include <algorithm>
#include <set>

#include "core/cuda/cuda_common.h"
#include "core/reference/reference_backend.h"

using namespace scconv;

namespace {

// (offset in ts[0], offset in ts[1]) for every element, in logical (row-major) order.
std::vector<std::pair<int64_t, int64_t>> reference_pairs(const Shape& shape, const Tensor& a, const Tensor& b) {
  const Strides sa = broadcast_strides(a.shape(), a.strides(), shape), sb = broadcast_strides(b.shape(), b.strides(), shape);
  std::vector<std::pair<int64_t, int64_t>> v;
  for (int64_t i = 0; i < numel_of(shape); ++i)
    v.emplace_back(ref::strided_offset(i, shape, sa), ref::strided_offset(i, shape, sb));
  std::sort(v.begin(), v.end());
  return v;
}

void check_walk(const std::string& what, const Tensor& out, const Tensor& in) {
  CAPTURE(what);
  const cuda::StridedArgs<2> a = cuda::strided_args<2>(out.shape(), {&out, &in});
  std::vector<std::pair<int64_t, int64_t>> got;
  int64_t prev = -1;
  bool memory_order = true;
  for (int64_t i = 0; i < out.numel(); ++i) {
    int64_t off[2];
    a.offsets(i, off);
    got.emplace_back(off[0], off[1]);
    memory_order = memory_order && off[0] > prev;  // the walk follows the output's memory
    prev = off[0];
  }
  std::sort(got.begin(), got.end());
  CHECK(got == reference_pairs(out.shape(), out, in));
  CHECK(memory_order);
}

}  // namespace

TEST_CASE("strided walks: every element once, in the output's memory order") {
  const Tensor nchw = Tensor::empty({2, 3, 4, 5});
  const Tensor cl = Tensor::empty({2, 3, 4, 5}, DType::F32, Device::CPU, MemoryFormat::ChannelsLast);
  check_walk("dense <- dense", nchw, Tensor::empty({2, 3, 4, 5}));
  check_walk("dense <- channels-last", nchw, cl);
  check_walk("channels-last <- dense", cl, nchw);
  check_walk("channels-last <- channel vector (1, 3, 1, 1)", cl, Tensor::empty({1, 3, 1, 1}));
  check_walk("dense <- scalar", nchw, Tensor::empty({}));
  check_walk("dense <- broadcast (3, 1, 5)", nchw, Tensor::empty({3, 1, 5}));
  const Tensor big = Tensor::empty({4, 6, 4, 10});
  check_walk("dense <- sliced view", nchw, big.slice_view(0, 1, 3).slice_view(1, 0, 6, 2).slice_view(3, 2, 7));
  const Tensor m = Tensor::empty({7, 3});
  check_walk("dense <- transposed", Tensor::empty({3, 7}), m.as_strided({3, 7}, {1, 3}, 0));
  const Tensor one = Tensor::empty({1, 1, 1, 1});
  check_walk("one element", one, one);
}

TEST_CASE("NCS views: every (n, c, k) once, in memory order, for NCHW and channels-last") {
  for (MemoryFormat f : {MemoryFormat::Contiguous, MemoryFormat::ChannelsLast}) {
    const Tensor t = Tensor::empty({3, 5, 4, 2}, DType::F32, Device::CPU, f);
    const Tensor ready = cuda::ncs_ready(t);
    CHECK(ready.same_impl(t));  // both layouts qualify without a copy
    const cuda::NCS v = cuda::ncs_of(ready);
    CHECK(v.S == 8);
    std::set<int64_t> seen;
    int64_t prev = -1;
    for (int64_t i = 0; i < t.numel(); ++i) {
      int64_t n, c, k;
      v.decode(i, n, c, k);
      const int64_t off = v.at(n, c, k);
      CHECK(off == n * t.strides()[0] + c * t.strides()[1] + (k / 2) * t.strides()[2] + (k % 2) * t.strides()[3]);
      CHECK(off > prev);
      prev = off;
      seen.insert(off);
    }
    CHECK(int64_t(seen.size()) == t.numel());
  }
  // a strided slice of pixels does not collapse: a contiguous copy is taken
  const Tensor strided = Tensor::empty({2, 3, 8, 8}).slice_view(2, 0, 8, 2);
  CHECK_FALSE(cuda::ncs_ready(strided).same_impl(strided));
  // (N, C) matrices are (N, C, 1)
  const cuda::NCS m = cuda::ncs_of(Tensor::empty({4, 6}));
  CHECK((m.S == 1 && m.sC == 1 && m.sN == 6));
}
