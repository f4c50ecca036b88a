// autograd/ops_elementwise.cpp: element-wise ops. Forward calls one kernel; backward is the
// chain rule, with sum_to() undoing any broadcasting.
#include "autograd/ops.h"
#include "core/backend.h"

namespace scconv {

using autograd::SavedTensor;

namespace {
void check_binary(const Tensor& a, const Tensor& b, const char* op) {
  check_float(a, op, "a");
  check_float(b, op, "b");
  check_same_dtype(a, b, op);
  check_same_device(a, b, op);
}
}  // namespace

// ---- binary ----------------------------------------------------------------------------------

Tensor add(const Tensor& a, const Tensor& b) {
  check_binary(a, b, "add");
  Tensor y = backend_for(a).binary(BinaryOp::Add, a, b);
  if (!autograd::needs_grad({&a, &b})) return y;
  Shape sa = a.shape(), sb = b.shape();
  return autograd::record("add", y, {&a, &b}, [sa, sb](const Tensor& g) {
    return std::vector<Tensor>{sum_to(g, sa), sum_to(g, sb)};
  });
}

Tensor sub(const Tensor& a, const Tensor& b) {
  check_binary(a, b, "sub");
  Tensor y = backend_for(a).binary(BinaryOp::Sub, a, b);
  if (!autograd::needs_grad({&a, &b})) return y;
  Shape sa = a.shape(), sb = b.shape();
  return autograd::record("sub", y, {&a, &b}, [sa, sb](const Tensor& g) {
    return std::vector<Tensor>{sum_to(g, sa), sum_to(neg(g), sb)};
  });
}

Tensor mul(const Tensor& a, const Tensor& b) {
  check_binary(a, b, "mul");
  Tensor y = backend_for(a).binary(BinaryOp::Mul, a, b);
  if (!autograd::needs_grad({&a, &b})) return y;
  SavedTensor sa(a, "mul"), sb(b, "mul");
  bool ga = a.requires_grad() || !a.is_leaf(), gb = b.requires_grad() || !b.is_leaf();
  return autograd::record("mul", y, {&a, &b}, [sa, sb, ga, gb](const Tensor& g) {
    Tensor av = sa.get(), bv = sb.get();
    return std::vector<Tensor>{ga ? sum_to(g * bv, av.shape()) : Tensor(),
                               gb ? sum_to(g * av, bv.shape()) : Tensor()};
  });
}

Tensor div(const Tensor& a, const Tensor& b) {
  check_binary(a, b, "div");
  Tensor y = backend_for(a).binary(BinaryOp::Div, a, b);
  if (!autograd::needs_grad({&a, &b})) return y;
  SavedTensor sa(a, "div"), sb(b, "div");
  return autograd::record("div", y, {&a, &b}, [sa, sb](const Tensor& g) {
    Tensor av = sa.get(), bv = sb.get();
    Tensor gb = neg(g * av / (bv * bv));  // d(a/b)/db = -a / b^2
    return std::vector<Tensor>{sum_to(g / bv, av.shape()), sum_to(gb, bv.shape())};
  });
}

Tensor add(const Tensor& a, double b) {
  check_float(a, "add", "a");
  return add(a, Tensor::full({}, b, a.dtype(), a.device()));
}
Tensor mul(const Tensor& a, double b) {
  check_float(a, "mul", "a");
  return mul(a, Tensor::full({}, b, a.dtype(), a.device()));
}

// ---- unary -----------------------------------------------------------------------------------

// One recorder for all unary ops: backward is the backend's fused unary_backward.
static Tensor unary_op(UnaryOp op, const Tensor& x, double p0 = 0, double p1 = 0) {
  check_float(x, unary_op_name(op), "x");
  Tensor y = backend_for(x).unary(op, x, p0, p1);
  if (!autograd::needs_grad({&x})) return y;
  // Save only what this op's gradient reads: x, or its own output y.
  const bool uses_y = op == UnaryOp::Sigmoid || op == UnaryOp::Exp || op == UnaryOp::Sqrt;
  SavedTensor sx(op == UnaryOp::Neg || uses_y ? Tensor() : x, unary_op_name(op));
  SavedTensor sy(uses_y ? y : Tensor(), unary_op_name(op));
  return autograd::record(unary_op_name(op), y, {&x}, [op, sx, sy, p0, p1](const Tensor& g) {
    return std::vector<Tensor>{backend_for(g).unary_backward(op, sx.get(), sy.get(), g, p0, p1)};
  });
}

Tensor neg(const Tensor& x) { return unary_op(UnaryOp::Neg, x); }
Tensor relu(const Tensor& x) { return unary_op(UnaryOp::Relu, x); }
Tensor sigmoid(const Tensor& x) { return unary_op(UnaryOp::Sigmoid, x); }
Tensor exp(const Tensor& x) { return unary_op(UnaryOp::Exp, x); }
Tensor log(const Tensor& x) { return unary_op(UnaryOp::Log, x); }
Tensor sqrt(const Tensor& x) { return unary_op(UnaryOp::Sqrt, x); }
Tensor pow(const Tensor& x, double exponent) { return unary_op(UnaryOp::Pow, x, exponent); }
Tensor clamp(const Tensor& x, double lo, double hi) {
  SCCONV_CHECK(lo <= hi, "clamp: lower bound " << lo << " is above upper bound " << hi);
  return unary_op(UnaryOp::Clamp, x, lo, hi);
}

// ---- masks and where ---------------------------------------------------------------------------

static Tensor compare_op(CompareOp op, const Tensor& a, const Tensor& b, const char* name) {
  check_defined(a, name, "a");
  check_defined(b, name, "b");
  check_same_dtype(a, b, name);
  check_same_device(a, b, name);
  return backend_for(a).compare(op, a, b);
}
Tensor gt(const Tensor& a, const Tensor& b) { return compare_op(CompareOp::Gt, a, b, "gt"); }
Tensor lt(const Tensor& a, const Tensor& b) { return compare_op(CompareOp::Lt, a, b, "lt"); }
Tensor ge(const Tensor& a, const Tensor& b) { return compare_op(CompareOp::Ge, a, b, "ge"); }
Tensor le(const Tensor& a, const Tensor& b) { return compare_op(CompareOp::Le, a, b, "le"); }
Tensor eq(const Tensor& a, const Tensor& b) { return compare_op(CompareOp::Eq, a, b, "eq"); }
Tensor gt(const Tensor& a, double b) { return gt(a, Tensor::full({}, b, a.dtype(), a.device())); }

Tensor where(const Tensor& mask, const Tensor& a, const Tensor& b) {
  check_defined(mask, "where", "mask");
  SCCONV_CHECK(mask.dtype() == DType::U8, "where: mask must be uint8 (from a comparison), got "
                                              << mask.str());
  check_binary(a, b, "where");
  check_same_device(mask, a, "where");
  Tensor y = backend_for(a).where(mask, a, b);
  if (!autograd::needs_grad({&a, &b})) return y;
  Shape sa = a.shape(), sb = b.shape();
  Tensor m = mask;  // masks are never modified by ops; keep a handle
  return autograd::record("where", y, {&a, &b}, [m, sa, sb](const Tensor& g) {
    Tensor zero = Tensor::full({}, 0.0, g.dtype(), g.device());
    return std::vector<Tensor>{sum_to(where(m, g, zero), sa), sum_to(where(m, zero, g), sb)};
  });
}

}  // namespace scconv
