// autograd/ops_reduce.cpp: sum, mean, pooling, and the fused CRU fuse (global average pools,
// softmax, weighted sum). The backward of a reduction broadcasts the gradient back over the
// reduced dims.
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
  const MemoryFormat fmt = x.suggest_memory_format();  // the gradient takes x's layout
  return autograd::record("sum", y, {&x}, [xs, ks, fmt](const Tensor& g) {
    return std::vector<Tensor>{g.contiguous().view(ks).expand(xs).contiguous(fmt)};
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

Tensor cru_fuse(const Tensor& y1, const std::vector<Tensor>& y2_parts, math::CRUFuse kind) {
  const char* op = "cru_fuse";
  check_float(y1, op, "y1");
  check_dim(y1, 4, op, "y1");
  SCCONV_CHECK(kind == math::CRUFuse::BranchSoftmax || kind == math::CRUFuse::ChannelSoftmax,
               op << ": kind must be branch_softmax or channel_softmax (split_conv has no fused kernel)");
  SCCONV_CHECK(!y2_parts.empty(), op << ": y2 has no parts");
  int64_t channels = 0;
  for (size_t i = 0; i < y2_parts.size(); ++i) {
    const Tensor& t = y2_parts[i];
    check_defined(t, op, "y2 part");
    check_same_dtype(y1, t, op);
    check_same_device(y1, t, op);
    SCCONV_CHECK(t.dim() == 4 && t.size(0) == y1.size(0) && t.size(2) == y1.size(2) && t.size(3) == y1.size(3),
                 op << ": part " << i << " of y2 " << t.str() << " does not match y1 " << y1.str()
                    << " outside the channels");
    channels += t.size(1);
  }
  SCCONV_CHECK(channels == y1.size(1), op << ": the parts of y2 add up to " << channels
                                          << " channels, y1 " << y1.str() << " has " << y1.size(1));
  Tensor b;  // (N, 2, C) branch weights
  Tensor y = backend_for(y1).cru_fuse(y1, y2_parts, kind, b);
  std::vector<const Tensor*> inputs{&y1};
  bool any = autograd::needs_grad({&y1});
  for (const Tensor& t : y2_parts) {
    inputs.push_back(&t);
    any = any || autograd::needs_grad({&t});
  }
  if (!any) return y;
  autograd::SavedTensor s1(y1, op);
  std::vector<autograd::SavedTensor> s2;
  for (const Tensor& t : y2_parts) s2.emplace_back(t, op);
  return autograd::record_many(op, y, inputs, [s1, s2, kind, b](const Tensor& gy) {
    std::vector<Tensor> parts;
    for (const auto& s : s2) parts.push_back(s.get());
    CRUFuseGrads gr = backend_for(gy).cru_fuse_backward(gy, s1.get(), parts, kind, b);
    std::vector<Tensor> grads{gr.grad_y1};
    grads.insert(grads.end(), gr.grad_y2_parts.begin(), gr.grad_y2_parts.end());
    return grads;
  });
}

Tensor cru_fuse_lower(const Tensor& y1, const Tensor& low, const Tensor& w, math::CRUFuse kind) {
  const char* op = "cru_fuse_lower";
  check_float(y1, op, "y1");
  check_dim(y1, 4, op, "y1");
  check_defined(low, op, "low");
  check_defined(w, op, "w");
  for (const Tensor* t : {&low, &w}) {
    check_same_dtype(y1, *t, op);
    check_same_device(y1, *t, op);
  }
  SCCONV_CHECK(kind == math::CRUFuse::BranchSoftmax || kind == math::CRUFuse::ChannelSoftmax,
               op << ": kind must be branch_softmax or channel_softmax (split_conv has no fused kernel)");
  SCCONV_CHECK(low.dim() == 4 && low.size(0) == y1.size(0) && low.size(2) == y1.size(2) &&
                   low.size(3) == y1.size(3),
               op << ": low " << low.str() << " does not match y1 " << y1.str() << " outside the channels");
  SCCONV_CHECK(w.dim() == 4 && w.size(0) == y1.size(1) && w.size(1) == low.size(1) && w.size(2) == 1 &&
                   w.size(3) == 1,
               op << ": w " << w.str() << " must be (" << y1.size(1) << ", " << low.size(1)
                  << ", 1, 1): a 1x1 convolution from low's channels to y1's");
  Tensor b;  // (N, 2, C) branch weights
  Tensor y = backend_for(y1).cru_fuse_lower(y1, low, w, kind, b);
  if (!autograd::needs_grad({&y1, &low, &w})) return y;
  autograd::SavedTensor s1(y1, op), sl(low, op), sw(w, op);
  return autograd::record(op, y, {&y1, &low, &w}, [s1, sl, sw, kind, b](const Tensor& gy) {
    CRUFuseLowerGrads g = backend_for(gy).cru_fuse_lower_backward(gy, s1.get(), sl.get(), sw.get(), kind, b);
    return std::vector<Tensor>{g.grad_y1, g.grad_low, g.grad_w};
  });
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
