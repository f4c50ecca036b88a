// autograd/ops_reduce.cpp: sum, mean, pooling. The backward of a reduction broadcasts the
// gradient back over the reduced dims.
#include <set>

#include "autograd/ops.h"
#include "core/backend.h"

namespace scconv {

static std::vector<int64_t> all_dims(const Tensor& x) {
  std::vector<int64_t> d(x.dim());
  for (int64_t i = 0; i < x.dim(); ++i) d[i] = i;
  return d;
}

// The shape of x with `dims` kept as size 1.
static Shape keepdim_shape(const Shape& s, const std::vector<int64_t>& dims) {
  Shape k = s;
  for (int64_t d : dims) k[wrap_dim(d, s.size(), "sum")] = 1;
  return k;
}

Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  check_float(x, "sum", "x");
  std::set<int64_t> uniq;
  for (int64_t d : dims)
    SCCONV_CHECK(uniq.insert(wrap_dim(d, x.dim(), "sum")).second, "sum: dim " << d << " repeated");
  Tensor y = backend_for(x).sum(x, dims, keepdim);
  if (!autograd::needs_grad({&x})) return y;
  Shape xs = x.shape(), ks = keepdim_shape(x.shape(), dims);
  return autograd::record("sum", y, {&x}, [xs, ks](const Tensor& g) {
    return std::vector<Tensor>{g.contiguous().view(ks).expand(xs).contiguous()};
  });
}

Tensor sum(const Tensor& x) { return sum(x, all_dims(x), false); }

Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  int64_t n = 1;
  for (int64_t d : dims) n *= x.shape()[wrap_dim(d, x.dim(), "mean")];
  return mul(sum(x, dims, keepdim), n ? 1.0 / double(n) : 0.0);
}
Tensor mean(const Tensor& x) { return mean(x, all_dims(x), false); }

Tensor sum_to(const Tensor& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  std::vector<int64_t> dims;
  const size_t lead = g.dim() - shape.size();
  for (size_t i = 0; i < static_cast<size_t>(g.dim()); ++i)
    if (i < lead || (shape[i - lead] == 1 && g.shape()[i] != 1)) dims.push_back(i);
  return reshape(sum(g, dims, /*keepdim=*/true), shape);
}

Tensor global_avg_pool2d(const Tensor& x) {
  check_dim(x, 4, "global_avg_pool2d", "x");
  return mean(x, {2, 3}, /*keepdim=*/true);
}

static Pool2dParams pool_params(const Tensor& x, std::array<int64_t, 2> kernel,
                                std::array<int64_t, 2> stride, std::array<int64_t, 2> padding,
                                const char* op) {
  check_float(x, op, "x");
  check_dim(x, 4, op, "x");
  for (int i = 0; i < 2; ++i) {
    SCCONV_CHECK(kernel[i] > 0 && stride[i] > 0 && padding[i] >= 0,
                 op << ": kernel, stride must be positive and padding non-negative");
    SCCONV_CHECK(padding[i] * 2 <= kernel[i], op << ": padding " << padding[i]
                                                 << " is more than half the kernel " << kernel[i]);
  }
  Pool2dParams p{kernel, stride, padding};
  SCCONV_CHECK(conv_out_size(x.size(2), kernel[0], stride[0], padding[0], 1) > 0 &&
                   conv_out_size(x.size(3), kernel[1], stride[1], padding[1], 1) > 0,
               op << ": input " << x.str() << " is smaller than the kernel (" << kernel[0] << ", "
                  << kernel[1] << ")");
  return p;
}

Tensor max_pool2d(const Tensor& x, std::array<int64_t, 2> kernel, std::array<int64_t, 2> stride,
                  std::array<int64_t, 2> padding) {
  Pool2dParams p = pool_params(x, kernel, stride, padding, "max_pool2d");
  Tensor indices;
  Tensor y = backend_for(x).max_pool2d(x, p, indices);
  if (!autograd::needs_grad({&x})) return y;
  Shape xs = x.shape();
  return autograd::record("max_pool2d", y, {&x}, [indices, xs](const Tensor& g) {
    return std::vector<Tensor>{backend_for(g).max_pool2d_backward(g, indices, xs)};
  });
}

Tensor avg_pool2d(const Tensor& x, std::array<int64_t, 2> kernel, std::array<int64_t, 2> stride,
                  std::array<int64_t, 2> padding) {
  Pool2dParams p = pool_params(x, kernel, stride, padding, "avg_pool2d");
  Tensor y = backend_for(x).avg_pool2d(x, p);
  if (!autograd::needs_grad({&x})) return y;
  Shape xs = x.shape();
  return autograd::record("avg_pool2d", y, {&x}, [p, xs](const Tensor& g) {
    return std::vector<Tensor>{backend_for(g).avg_pool2d_backward(g, xs, p)};
  });
}

}  // namespace scconv
