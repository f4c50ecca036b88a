// core/cuda/cuda_common.cpp: the host side of cuda_common.h: building strided walks and (N, C, S)
// views of tensors.
#include "core/cuda/cuda_common.h"

#include "core/storage.h"

#include <algorithm>
#include <cstring>
#include <numeric>
#include <vector>

namespace scconv::cuda {

Tensor scratch(int64_t bytes) { return Tensor::empty({std::max<int64_t>(bytes, 1)}, DType::U8, Device::CUDA); }

Tensor upload(const void* host, size_t bytes, const char* what) {
  Tensor t = scratch(int64_t(bytes));
  if (bytes == 0) return t;
  // staged through pinned memory: a copy from pageable memory may wait for the stream
  Storage staging(bytes, Device::CPU, /*pinned=*/true);
  std::memcpy(staging.data(), host, bytes);
  check(cudaMemcpyAsync(t.raw_device_data(), staging.data(), bytes, cudaMemcpyHostToDevice, stream()), what);
  return t;  // (the staging block is reused only once the event recorded at its release has passed)
}

template <int K>
StridedArgs<K> strided_args(const Shape& shape, const std::array<const Tensor*, K>& ts) {
  const int nd = static_cast<int>(shape.size());
  SCCONV_CHECK(nd <= kMaxDims, "cuda: tensors of more than " << kMaxDims << " dims are not supported, got "
                                                             << shape_str(shape));
  std::vector<Strides> st(K);
  for (int k = 0; k < K; ++k) st[k] = broadcast_strides(ts[k]->shape(), ts[k]->strides(), shape);
  // walk order: dims sorted by the first tensor's stride, largest first (its memory order)
  std::vector<int> order(nd);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return st[0][a] > st[0][b]; });
  StridedArgs<K> a;
  for (int d : order) {
    if (shape[d] == 1) continue;
    // merge into the previous walk dim when every tensor steps over it densely
    bool merge = a.ndim > 0;
    for (int k = 0; k < K && merge; ++k) merge = a.stride[k][a.ndim - 1] == st[k][d] * shape[d];
    if (merge) {
      a.shape[a.ndim - 1] *= shape[d];
      for (int k = 0; k < K; ++k) a.stride[k][a.ndim - 1] = st[k][d];
      continue;
    }
    a.shape[a.ndim] = shape[d];
    for (int k = 0; k < K; ++k) a.stride[k][a.ndim] = st[k][d];
    ++a.ndim;
  }
  return a;
}
template StridedArgs<1> strided_args<1>(const Shape&, const std::array<const Tensor*, 1>&);
template StridedArgs<2> strided_args<2>(const Shape&, const std::array<const Tensor*, 2>&);
template StridedArgs<3> strided_args<3>(const Shape&, const std::array<const Tensor*, 3>&);
template StridedArgs<4> strided_args<4>(const Shape&, const std::array<const Tensor*, 4>&);

namespace {
// Whether dims 2.. of t collapse to one stride (row-major among themselves).
bool pixels_collapse(const Tensor& t) {
  for (int64_t d = 2; d + 1 < t.dim(); ++d)
    if (t.size(d) > 1 && t.strides()[d] != t.strides()[d + 1] * t.size(d + 1)) return false;
  return true;
}
}  // namespace

Tensor ncs_ready(const Tensor& t) {
  SCCONV_CHECK(t.dim() >= 2, "cuda: expected a tensor of at least 2 dims (N, C, ...), got " << t.str());
  return pixels_collapse(t) ? t : t.contiguous();
}

NCS ncs_of(const Tensor& t) {
  SCCONV_CHECK(t.dim() >= 2 && pixels_collapse(t), "cuda: " << t.str() << " is not an (N, C, S) view");
  NCS v;
  v.N = t.size(0);
  v.C = t.size(1);
  v.S = numel_from(t.shape(), 2);
  v.sN = t.strides()[0];
  v.sC = t.strides()[1];
  v.sS = t.dim() > 2 ? t.strides()[t.dim() - 1] : 1;
  if (v.S == 1) v.sS = 1;
  return v;
}

Tensor empty_like_layout(const Tensor& x, DType dtype) {
  return Tensor::empty(x.shape(), dtype, Device::CUDA, x.suggest_memory_format());
}

}  // namespace scconv::cuda
