// core/reference/elementwise.cpp: reference copy/fill and element-wise ops. Every loop walks
// logical indices and reads operands through their strides (broadcast = stride 0).
#include "core/math/activations.h"
#include "core/reference/reference_backend.h"

namespace scconv {

namespace ref {

int64_t strided_offset(int64_t i, const Shape& shape, const Strides& strides) {
  int64_t off = 0;
  for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
    off += (i % shape[d]) * strides[d];
    i /= shape[d];
  }
  return off;
}

double get(const Tensor& t, int64_t i) {
  int64_t off = strided_offset(i, t.shape(), t.strides());
  return SCCONV_DISPATCH_ALL(t.dtype(), "get", [&] {
    return static_cast<double>(static_cast<const scalar_t*>(t.raw_data())[off]);
  });
}

double get_broadcast(const Tensor& t, const Shape& shape, int64_t i) {
  Strides st = broadcast_strides(t.shape(), t.strides(), shape);
  int64_t off = strided_offset(i, shape, st);
  return SCCONV_DISPATCH_ALL(t.dtype(), "get", [&] {
    return static_cast<double>(static_cast<const scalar_t*>(t.raw_data())[off]);
  });
}

// Writes v to logical element i of t.
void set(Tensor& t, int64_t i, double v) {
  int64_t off = strided_offset(i, t.shape(), t.strides());
  SCCONV_DISPATCH_ALL(t.dtype(), "set", [&] {
    static_cast<scalar_t*>(t.raw_data())[off] = static_cast<scalar_t>(v);
  });
}

}  // namespace ref

// ---- memory ----------------------------------------------------------------------------------

void ReferenceBackend::copy(Tensor& dst, const Tensor& src) {
  for (int64_t i = 0; i < dst.numel(); ++i)
    ref::set(dst, i, ref::get_broadcast(src, dst.shape(), i));
}

void ReferenceBackend::fill(Tensor& dst, double value) {
  for (int64_t i = 0; i < dst.numel(); ++i) ref::set(dst, i, value);
}

void ReferenceBackend::axpy(Tensor& y, const Tensor& x, double alpha) {
  for (int64_t i = 0; i < y.numel(); ++i) ref::set(y, i, ref::get(y, i) + alpha * ref::get(x, i));
}

void ReferenceBackend::scale(Tensor& y, double alpha) {
  for (int64_t i = 0; i < y.numel(); ++i) ref::set(y, i, ref::get(y, i) * alpha);
}

// ---- element-wise ----------------------------------------------------------------------------

Tensor ReferenceBackend::unary(UnaryOp op, const Tensor& x, double p0, double p1) {
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  for (int64_t i = 0; i < x.numel(); ++i) {
    double v = ref::get(x, i), r = 0;
    switch (op) {
      case UnaryOp::Neg: r = -v; break;
      case UnaryOp::Relu: r = math::relu(v); break;
      case UnaryOp::Sigmoid: r = math::sigmoid(v); break;
      case UnaryOp::Exp: r = std::exp(v); break;
      case UnaryOp::Log: r = std::log(v); break;
      case UnaryOp::Sqrt: r = std::sqrt(v); break;
      case UnaryOp::Pow: r = math::pow_scalar(v, p0); break;
      case UnaryOp::Clamp: r = math::clamp(v, p0, p1); break;
    }
    ref::set(y, i, r);
  }
  return y;
}

Tensor ReferenceBackend::unary_backward(UnaryOp op, const Tensor& x, const Tensor& y,
                                        const Tensor& grad_y, double p0, double p1) {
  Tensor gx = Tensor::empty(grad_y.shape(), grad_y.dtype());
  for (int64_t i = 0; i < gx.numel(); ++i) {
    double g = ref::get(grad_y, i), r = 0;
    switch (op) {
      case UnaryOp::Neg: r = -g; break;
      case UnaryOp::Relu: r = math::relu_grad(ref::get(x, i), g); break;
      case UnaryOp::Sigmoid: r = math::sigmoid_grad(ref::get(y, i), g); break;
      case UnaryOp::Exp: r = math::exp_grad(ref::get(y, i), g); break;
      case UnaryOp::Log: r = math::log_grad(ref::get(x, i), g); break;
      case UnaryOp::Sqrt: r = math::sqrt_grad(ref::get(y, i), g); break;
      case UnaryOp::Pow: r = math::pow_scalar_grad(ref::get(x, i), p0, g); break;
      case UnaryOp::Clamp: r = math::clamp_grad(ref::get(x, i), p0, p1, g); break;
    }
    ref::set(gx, i, r);
  }
  return gx;
}

Tensor ReferenceBackend::binary(BinaryOp op, const Tensor& a, const Tensor& b) {
  Shape shape = broadcast_shapes(a.shape(), b.shape(), binary_op_name(op));
  Tensor y = Tensor::empty(shape, a.dtype());
  for (int64_t i = 0; i < y.numel(); ++i) {
    double u = ref::get_broadcast(a, shape, i), v = ref::get_broadcast(b, shape, i), r = 0;
    switch (op) {
      case BinaryOp::Add: r = u + v; break;
      case BinaryOp::Sub: r = u - v; break;
      case BinaryOp::Mul: r = u * v; break;
      case BinaryOp::Div: r = u / v; break;
    }
    ref::set(y, i, r);
  }
  return y;
}

Tensor ReferenceBackend::compare(CompareOp op, const Tensor& a, const Tensor& b) {
  Shape shape = broadcast_shapes(a.shape(), b.shape(), "compare");
  Tensor m = Tensor::empty(shape, DType::U8);
  for (int64_t i = 0; i < m.numel(); ++i) {
    double u = ref::get_broadcast(a, shape, i), v = ref::get_broadcast(b, shape, i);
    bool r = false;
    switch (op) {
      case CompareOp::Gt: r = u > v; break;
      case CompareOp::Lt: r = u < v; break;
      case CompareOp::Ge: r = u >= v; break;
      case CompareOp::Le: r = u <= v; break;
      case CompareOp::Eq: r = u == v; break;
    }
    ref::set(m, i, r ? 1.0 : 0.0);
  }
  return m;
}

Tensor ReferenceBackend::where(const Tensor& mask, const Tensor& a, const Tensor& b) {
  Shape shape = broadcast_shapes(broadcast_shapes(mask.shape(), a.shape(), "where"), b.shape(),
                                 "where");
  Tensor y = Tensor::empty(shape, a.dtype());
  for (int64_t i = 0; i < y.numel(); ++i)
    ref::set(y, i, ref::get_broadcast(mask, shape, i) != 0 ? ref::get_broadcast(a, shape, i)
                                                           : ref::get_broadcast(b, shape, i));
  return y;
}

}  // namespace scconv
