// autograd/ops_linalg.cpp: matmul, linear and conv2d.
//   matmul:  y = a b          grad_a = g b^T,  grad_b = a^T g
//   linear:  y = x w^T + b    grad_x = g w,    grad_w = g^T x,  grad_b = sum_n g
//   conv2d:  grad_x = conv2d_backward_data(g, w), (grad_w, grad_b) = conv2d_backward_weights(g, x)
// Each multiplies in the autocast precision of its forward (autograd/node.h), backward included.
#include "autograd/ops.h"
#include "core/backend.h"

namespace scconv {

using autograd::SavedTensor;

static bool wants(const Tensor& t) { return t.defined() && (t.requires_grad() || !t.is_leaf()); }

Tensor matmul(const Tensor& a, const Tensor& b) {
  check_float(a, "matmul", "a");
  check_float(b, "matmul", "b");
  check_same_dtype(a, b, "matmul");
  check_same_device(a, b, "matmul");
  SCCONV_CHECK(a.dim() == 2 && b.dim() == 2 && a.size(1) == b.size(0),
               "matmul: shapes " << shape_str(a.shape()) << " and " << shape_str(b.shape())
                                 << " cannot be multiplied (expected (M, K) and (K, N))");
  const Precision pr = autograd::autocast_precision();
  Tensor y = backend_for(a).matmul(a, b, false, false, pr);
  if (!autograd::needs_grad({&a, &b})) return y;
  SavedTensor sa(a, "matmul"), sb(b, "matmul");
  bool ga = wants(a), gb = wants(b);
  return autograd::record("matmul", y, {&a, &b}, [sa, sb, ga, gb, pr](const Tensor& g) {
    Backend& be = backend_for(g);
    return std::vector<Tensor>{ga ? be.matmul(g, sb.get(), false, true, pr) : Tensor(),
                               gb ? be.matmul(sa.get(), g, true, false, pr) : Tensor()};
  });
}

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b) {
  check_float(x, "linear", "x");
  check_float(w, "linear", "weight");
  check_same_dtype(x, w, "linear");
  check_same_device(x, w, "linear");
  SCCONV_CHECK(x.dim() == 2 && w.dim() == 2 && x.size(1) == w.size(1),
               "linear: input " << shape_str(x.shape()) << " does not match weight "
                                << shape_str(w.shape()) << " (expected (N, in) and (out, in))");
  if (b.defined()) {
    check_same_dtype(x, b, "linear");
    SCCONV_CHECK(b.dim() == 1 && b.size(0) == w.size(0),
                 "linear: bias " << shape_str(b.shape()) << " does not match weight "
                                 << shape_str(w.shape()));
  }
  Backend& be = backend_for(x);
  const Precision pr = autograd::autocast_precision();
  Tensor y = be.matmul(x, w, false, true, pr);
  if (b.defined()) y = be.binary(BinaryOp::Add, y, b);
  if (!autograd::needs_grad({&x, &w, &b})) return y;
  SavedTensor sx(x, "linear"), sw(w, "linear");
  bool gx = wants(x), gw = wants(w), gb = wants(b);
  return autograd::record("linear", y, {&x, &w, &b}, [sx, sw, gx, gw, gb, pr](const Tensor& g) {
    Backend& be = backend_for(g);
    return std::vector<Tensor>{gx ? be.matmul(g, sw.get(), false, false, pr) : Tensor(),
                               gw ? be.matmul(g, sx.get(), true, false, pr) : Tensor(),
                               gb ? be.sum(g, {0}, false) : Tensor()};
  });
}

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, std::array<int64_t, 2> stride,
              std::array<int64_t, 2> padding, std::array<int64_t, 2> dilation, int64_t groups) {
  const char* op = "conv2d";
  check_float(x, op, "input");
  check_float(w, op, "weight");
  check_same_dtype(x, w, op);
  check_same_device(x, w, op);
  SCCONV_CHECK(x.dim() == 4, op << ": input must be (N, C, H, W), got " << x.str());
  SCCONV_CHECK(w.dim() == 4, op << ": weight must be (O, C/groups, KH, KW), got " << w.str());
  SCCONV_CHECK(groups >= 1 && x.size(1) % groups == 0 && w.size(0) % groups == 0,
               op << ": groups=" << groups << " must divide input channels " << x.size(1)
                  << " and output channels " << w.size(0));
  SCCONV_CHECK(w.size(1) * groups == x.size(1),
               op << ": weight " << shape_str(w.shape()) << " with groups=" << groups
                  << " expects " << w.size(1) * groups << " input channels, but input is "
                  << shape_str(x.shape()));
  for (int i = 0; i < 2; ++i)
    SCCONV_CHECK(stride[i] >= 1 && dilation[i] >= 1 && padding[i] >= 0,
                 op << ": stride and dilation must be >= 1 and padding >= 0");
  if (b.defined()) {
    check_same_dtype(x, b, op);
    SCCONV_CHECK(b.dim() == 1 && b.size(0) == w.size(0),
                 op << ": bias " << shape_str(b.shape()) << " for " << w.size(0)
                    << " output channels");
  }
  Conv2dParams p{stride, padding, dilation, groups, autograd::autocast_precision()};
  const int64_t oh = conv_out_size(x.size(2), w.size(2), stride[0], padding[0], dilation[0]);
  const int64_t ow = conv_out_size(x.size(3), w.size(3), stride[1], padding[1], dilation[1]);
  SCCONV_CHECK(oh > 0 && ow > 0, op << ": input " << shape_str(x.shape())
                                    << " is too small for kernel " << shape_str(w.shape())
                                    << " with this padding and dilation");
  Tensor y = backend_for(x).conv2d(x, w, b, p);
  if (!autograd::needs_grad({&x, &w, &b})) return y;
  bool gx = wants(x), gw = wants(w), gb = wants(b);
  SavedTensor sx(gw || gb ? x : Tensor(), op), sw(gx ? w : Tensor(), op);
  Shape xs = x.shape(), ws = w.shape();
  return autograd::record(op, y, {&x, &w, &b}, [=](const Tensor& g) {
    Backend& be = backend_for(g);
    std::vector<Tensor> grads(3);
    if (gx) grads[0] = be.conv2d_backward_data(g, sw.get(), xs, p);
    if (gw || gb) {
      auto [grad_w, grad_b] = be.conv2d_backward_weights(g, sx.get(), ws, gb, p);
      if (gw) grads[1] = grad_w;
      if (gb) grads[2] = grad_b;
    }
    return grads;
  });
}

std::vector<Tensor> conv1x1_split(const Tensor& x, const std::vector<Tensor>& w) {
  const char* op = "conv1x1_split";
  check_float(x, op, "input");
  SCCONV_CHECK(x.dim() == 4, op << ": input must be (N, C, H, W), got " << x.str());
  SCCONV_CHECK(!w.empty(), op << ": no weights");
  int64_t channels = 0;
  std::vector<const Tensor*> inputs{&x};
  for (size_t i = 0; i < w.size(); ++i) {
    check_defined(w[i], op, "weight");
    check_same_dtype(x, w[i], op);
    check_same_device(x, w[i], op);
    SCCONV_CHECK(w[i].dim() == 4 && w[i].size(2) == 1 && w[i].size(3) == 1,
                 op << ": weight " << i << " " << w[i].str() << " must be (O, C, 1, 1)");
    channels += w[i].size(1);
    inputs.push_back(&w[i]);
  }
  SCCONV_CHECK(channels == x.size(1), op << ": the weights read " << channels << " input channels in all, input "
                                         << x.str() << " has " << x.size(1));
  std::vector<Tensor> ys = backend_for(x).conv1x1_split(x, w);
  bool any = autograd::needs_grad({&x});
  for (const Tensor& wi : w) any = any || autograd::needs_grad({&wi});
  if (!any) return ys;
  SavedTensor sx(x, op);
  std::vector<SavedTensor> sw;
  for (const Tensor& wi : w) sw.emplace_back(wi, op);
  return autograd::record_multi(op, ys, inputs, [sx, sw](const std::vector<Tensor>& g) {
    std::vector<Tensor> ws;
    for (const SavedTensor& s : sw) ws.push_back(s.get());
    Conv1x1SplitGrads gr = backend_for(sx.get()).conv1x1_split_backward(g, sx.get(), ws);
    std::vector<Tensor> grads{gr.grad_x};
    grads.insert(grads.end(), gr.grad_w.begin(), gr.grad_w.end());
    return grads;
  });
}

}  // namespace scconv
