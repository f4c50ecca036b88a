// core/reference/reduce.cpp: reference sum over a set of dims (mean is sum times 1/n in
// autograd/). Accumulates every input element into its output slot in double.
#include <algorithm>
#include <cmath>

#include "core/reference/reference_backend.h"

namespace scconv {

Tensor ReferenceBackend::sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  const int64_t nd = x.dim();
  std::vector<bool> reduced(nd, false);
  for (int64_t d : dims) reduced[wrap_dim(d, nd, "sum")] = true;
  Shape kept_shape(nd);  // output shape with reduced dims kept as 1
  for (int64_t d = 0; d < nd; ++d) kept_shape[d] = reduced[d] ? 1 : x.shape()[d];
  std::vector<double> acc(numel_of(kept_shape), 0.0);
  Strides kept_strides = contiguous_strides(kept_shape);
  for (int64_t i = 0; i < x.numel(); ++i) {
    int64_t rem = i, out = 0;
    for (int64_t d = nd - 1; d >= 0; --d) {
      int64_t idx = rem % x.shape()[d];
      rem /= x.shape()[d];
      if (!reduced[d]) out += idx * kept_strides[d];
    }
    acc[out] += ref::get(x, i);
  }
  Shape out_shape;
  for (int64_t d = 0; d < nd; ++d)
    if (!reduced[d] || keepdim) out_shape.push_back(kept_shape[d]);
  Tensor y = Tensor::empty(out_shape, x.dtype());
  SCCONV_DISPATCH_FLOAT(x.dtype(), "sum", [&] {
    std::transform(acc.begin(), acc.end(), y.data<scalar_t>(),
                   [](double v) { return static_cast<scalar_t>(v); });
  });
  return y;
}

Tensor ReferenceBackend::nonfinite_index(const std::vector<Tensor>& ts) {
  for (size_t k = 0; k < ts.size(); ++k) {
    if (!is_floating(ts[k].dtype())) continue;
    for (int64_t i = 0; i < ts[k].numel(); ++i)
      if (!std::isfinite(ref::get(ts[k], i))) return Tensor::full({}, double(k), DType::I64);
  }
  return Tensor::full({}, -1.0, DType::I64);
}

Tensor ReferenceBackend::argmax_rows(const Tensor& x) {  // (N, K) -> int64 (N)
  const int64_t N = x.size(0), K = x.size(1);
  Tensor out = Tensor::empty({N}, DType::I64);
  for (int64_t n = 0; n < N; ++n) {
    int64_t best = 0;
    for (int64_t k = 1; k < K; ++k)
      if (ref::get(x, n * K + k) > ref::get(x, n * K + best)) best = k;
    out.data<int64_t>()[n] = best;
  }
  return out;
}

}  // namespace scconv
