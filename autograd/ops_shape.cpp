// autograd/ops_shape.cpp: reshape, slice, split, cat, strided subsampling, zero channel padding
// and layout changes. Slices are views (no copy); the backward of a slice writes the gradient
// into the matching window of a zero tensor, and the backward of cat slices the gradient apart.
// New tensors take the layout (MemoryFormat) of the tensor they are shaped after.
#include "autograd/ops.h"
#include "core/backend.h"

namespace scconv {

Tensor reshape(const Tensor& x, const Shape& shape) {
  check_defined(x, "reshape", "x");
  Tensor y = x.is_contiguous() ? x.view(shape) : x.contiguous().view(shape);
  y = y.detach();  // a fresh impl: the view gets its own autograd node
  if (!autograd::needs_grad({&x})) return y;
  Shape xs = x.shape();
  return autograd::record("reshape", y, {&x}, [xs](const Tensor& g) {
    return std::vector<Tensor>{g.contiguous().view(xs)};
  });
}

Tensor contiguous(const Tensor& x, MemoryFormat format) {
  check_defined(x, "contiguous", "x");
  SCCONV_CHECK(format == MemoryFormat::Contiguous || x.dim() == 4,
               "contiguous: the channels-last layout needs a 4-D (N, C, H, W) tensor, got " << x.str());
  Tensor y = x.contiguous(format);
  if (y.same_impl(x)) y = y.detach();  // a fresh impl: the result gets its own node
  if (!autograd::needs_grad({&x})) return y;
  // the values are the same: the gradient passes through (in whatever layout it comes)
  return autograd::record("contiguous", y, {&x}, [](const Tensor& g) { return std::vector<Tensor>{g}; });
}

Tensor flatten(const Tensor& x, int64_t start_dim) {
  check_defined(x, "flatten", "x");
  start_dim = wrap_dim(start_dim, x.dim(), "flatten");
  Shape s(x.shape().begin(), x.shape().begin() + start_dim);
  s.push_back(numel_from(x.shape(), static_cast<size_t>(start_dim)));
  return reshape(x, s);
}

Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step) {
  check_defined(x, "slice", "x");
  Tensor y = x.slice_view(dim, start, end, step);
  if (!autograd::needs_grad({&x})) return y;
  Shape xs = x.shape();
  int64_t d = wrap_dim(dim, x.dim(), "slice");
  return autograd::record("slice", y, {&x}, [xs, d, start, end, step](const Tensor& g) {
    Tensor gx = Tensor::zeros(xs, g.dtype(), g.device(), g.suggest_memory_format());
    gx.slice_view(d, start, end, step).copy_(g);
    return std::vector<Tensor>{gx};
  });
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim) {
  check_defined(x, "split", "x");
  int64_t d = wrap_dim(dim, x.dim(), "split"), total = 0;
  for (int64_t s : sizes) {
    SCCONV_CHECK(s >= 0, "split: negative size " << s);
    total += s;
  }
  SCCONV_CHECK(total == x.size(d), "split: sizes add up to " << total << " but dim " << d
                                                             << " of " << x.str() << " has "
                                                             << x.size(d));
  std::vector<Tensor> out;
  int64_t at = 0;
  for (int64_t s : sizes) {
    out.push_back(slice(x, d, at, at + s));
    at += s;
  }
  return out;
}

Tensor cat(const std::vector<Tensor>& xs, int64_t dim) {
  SCCONV_CHECK(!xs.empty(), "cat: no tensors given");
  const Tensor& x0 = xs[0];
  check_defined(x0, "cat", "xs[0]");
  const int64_t d = wrap_dim(dim, x0.dim(), "cat");
  Shape out_shape = x0.shape();
  out_shape[d] = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    check_defined(xs[i], "cat", "xs[i]");
    check_same_dtype(x0, xs[i], "cat");
    check_same_device(x0, xs[i], "cat");
    bool ok = xs[i].dim() == x0.dim();
    for (int64_t k = 0; ok && k < x0.dim(); ++k) ok = k == d || xs[i].size(k) == x0.size(k);
    SCCONV_CHECK(ok, "cat: tensor " << i << " " << xs[i].str() << " does not match tensor 0 "
                                    << x0.str() << " outside dim " << d);
    out_shape[d] += xs[i].size(d);
  }
  Tensor y = Tensor::empty(out_shape, x0.dtype(), x0.device(), x0.suggest_memory_format());
  std::vector<int64_t> sizes;
  int64_t at = 0;
  for (const Tensor& t : xs) {
    Tensor window = y.slice_view(d, at, at + t.size(d));
    backend_for(y).copy(window, t);
    at += t.size(d);
    sizes.push_back(t.size(d));
  }
  bool any = false;
  for (const Tensor& t : xs) any = any || autograd::needs_grad({&t});
  if (!any) return y;
  // record() takes a fixed list: route through a node with all inputs.
  std::vector<const Tensor*> ptrs;
  for (const Tensor& t : xs) ptrs.push_back(&t);
  auto backward = [sizes, d](const Tensor& g) {
    std::vector<Tensor> grads;
    int64_t a = 0;
    for (int64_t s : sizes) {
      Tensor part = g.slice_view(d, a, a + s);
      grads.push_back(part.contiguous(part.suggest_memory_format()));
      a += s;
    }
    return grads;
  };
  return autograd::record_many("cat", y, ptrs, backward);
}

Tensor subsample2d(const Tensor& x, int64_t stride) {
  check_dim(x, 4, "subsample2d", "x");
  SCCONV_CHECK(stride >= 1, "subsample2d: stride must be >= 1, got " << stride);
  if (stride == 1) return x;
  return slice(slice(x, 2, 0, x.size(2), stride), 3, 0, x.size(3), stride);
}

Tensor pad_channels(const Tensor& x, int64_t before, int64_t after) {
  check_dim(x, 4, "pad_channels", "x");
  SCCONV_CHECK(before >= 0 && after >= 0, "pad_channels: negative padding " << before << ", "
                                                                            << after);
  Shape s = x.shape();
  s[1] += before + after;
  Tensor y = Tensor::zeros(s, x.dtype(), x.device(), x.suggest_memory_format());
  Tensor window = y.slice_view(1, before, before + x.size(1));
  backend_for(y).copy(window, x);
  if (!autograd::needs_grad({&x})) return y;
  const int64_t c = x.size(1);
  return autograd::record("pad_channels", y, {&x}, [before, c](const Tensor& g) {
    Tensor part = g.slice_view(1, before, before + c);
    return std::vector<Tensor>{part.contiguous(part.suggest_memory_format())};
  });
}

}  // namespace scconv
