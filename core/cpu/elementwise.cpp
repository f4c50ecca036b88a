// core/cpu/elementwise.cpp: fast copy/fill/axpy/scale and unary/binary element-wise kernels.
// Each walks 1-D runs from StridedLoop; the per-element math comes from core/math/.
// Reference versions: core/reference/elementwise.cpp.
#include <algorithm>
#include <cstring>

#include "core/cpu/cpu_backend.h"
#include "core/cpu/strided_loop.h"
#include "core/math/activations.h"

namespace scconv {

using cpu::StridedLoop;

// ---- memory ----------------------------------------------------------------------------------

namespace {
// rows x row_bytes from src to dst, rows starting every dst_step / src_step bytes. The common
// row sizes (4, 8, 16 floats) get a fixed-size copy the compiler turns into a few vector moves.
template <int64_t Bytes>
void copy_fixed_rows(char* d, const char* s, int64_t b, int64_t e, int64_t ds, int64_t ss) {
  for (int64_t r = b; r < e; ++r) std::memcpy(d + r * ds, s + r * ss, Bytes);
}
void copy_rows(char* d, const char* s, int64_t rows, int64_t row_bytes, int64_t ds, int64_t ss) {
  parallel_for(rows, std::max<int64_t>(1, (1 << 16) / row_bytes), [&](int64_t b, int64_t e) {
    switch (row_bytes) {
      case 16: return copy_fixed_rows<16>(d, s, b, e, ds, ss);
      case 32: return copy_fixed_rows<32>(d, s, b, e, ds, ss);
      case 64: return copy_fixed_rows<64>(d, s, b, e, ds, ss);
      default:
        for (int64_t r = b; r < e; ++r) std::memcpy(d + r * ds, s + r * ss, size_t(row_bytes));
    }
  });
}
}  // namespace

void CpuBackend::copy(Tensor& dst, const Tensor& src) {
  if (dst.numel() == 0) return;
  if (dst.is_contiguous() && src.is_contiguous() && dst.shape() == src.shape() &&
      dst.dtype() == src.dtype()) {
    char* d = static_cast<char*>(dst.raw_data());
    const char* s = static_cast<const char*>(src.raw_data());
    const int64_t bytes = dst.numel() * static_cast<int64_t>(dtype_size(dst.dtype()));
    parallel_for(bytes, 1 << 20, [&](int64_t b, int64_t e) { std::memcpy(d + b, s + b, e - b); });
    return;
  }
  StridedLoop<2> loop(dst.shape(), {dst.strides(), broadcast_strides(src.shape(), src.strides(),
                                                                     dst.shape())});
  // A channel window of a channels-last tensor (or a dense copy of one): rows of a few
  // contiguous elements at two fixed row strides. One run per row would cost more in loop
  // overhead than the bytes it moves, so copy the rows in a plain loop.
  if (dst.dtype() == src.dtype() && loop.shape.size() == 2 && loop.strides[0][1] == 1 &&
      loop.strides[1][1] == 1 && loop.shape[1] <= 64) {
    copy_rows(static_cast<char*>(dst.raw_data()), static_cast<const char*>(src.raw_data()),
              loop.shape[0], loop.shape[1] * int64_t(dtype_size(dst.dtype())),
              loop.strides[0][0] * int64_t(dtype_size(dst.dtype())),
              loop.strides[1][0] * int64_t(dtype_size(dst.dtype())));
    return;
  }
  SCCONV_DISPATCH_ALL(dst.dtype(), "copy", [&] {
    using dst_t = scalar_t;
    dst_t* D = static_cast<dst_t*>(dst.raw_data());
    SCCONV_DISPATCH_ALL(src.dtype(), "copy", [&] {
      const scalar_t* S = static_cast<const scalar_t*>(src.raw_data());
      loop.run([&](int64_t n, const auto& off, const auto& st) {
        for (int64_t i = 0; i < n; ++i)
          D[off[0] + i * st[0]] = static_cast<dst_t>(S[off[1] + i * st[1]]);
      });
    });
  });
}

void CpuBackend::fill(Tensor& dst, double value) {
  StridedLoop<1> loop(dst.shape(), {dst.strides()});
  SCCONV_DISPATCH_ALL(dst.dtype(), "fill", [&] {
    scalar_t* D = static_cast<scalar_t*>(dst.raw_data());
    const scalar_t v = static_cast<scalar_t>(value);
    loop.run([&](int64_t n, const auto& off, const auto& st) {
      for (int64_t i = 0; i < n; ++i) D[off[0] + i * st[0]] = v;
    });
  });
}

void CpuBackend::axpy(Tensor& y, const Tensor& x, double alpha) {
  StridedLoop<2> loop(y.shape(), {y.strides(), x.strides()});
  SCCONV_DISPATCH_ALL(y.dtype(), "add_", [&] {  // (integers too: batch norm's counter)
    scalar_t* Y = y.data<scalar_t>();
    const scalar_t* X = x.data<scalar_t>();
    const scalar_t a = static_cast<scalar_t>(alpha);
    loop.run([&](int64_t n, const auto& off, const auto& st) {
      for (int64_t i = 0; i < n; ++i) Y[off[0] + i * st[0]] += a * X[off[1] + i * st[1]];
    });
  });
}

void CpuBackend::scale(Tensor& y, double alpha) {
  StridedLoop<1> loop(y.shape(), {y.strides()});
  SCCONV_DISPATCH_FLOAT(y.dtype(), "mul_", [&] {
    scalar_t* Y = y.data<scalar_t>();
    const scalar_t a = static_cast<scalar_t>(alpha);
    loop.run([&](int64_t n, const auto& off, const auto& st) {
      for (int64_t i = 0; i < n; ++i) Y[off[0] + i * st[0]] *= a;
    });
  });
}

// ---- unary -----------------------------------------------------------------------------------

namespace {
// y[i] = f(x[i]) over contiguous arrays, in parallel chunks.
template <class T, class F>
void map1(int64_t n, const T* x, T* y, F f) {
  parallel_for(n, 32768, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) y[i] = f(x[i]);
  });
}
template <class T, class F>
void map2(int64_t n, const T* a, const T* b, T* y, F f) {
  parallel_for(n, 32768, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) y[i] = f(a[i], b[i]);
  });
}
}  // namespace

Tensor CpuBackend::unary(UnaryOp op, const Tensor& x_in, double p0, double p1) {
  // dense in its own layout (NCHW or channels-last): y gets the same layout, walked flat
  const MemoryFormat fmt = x_in.suggest_memory_format();
  Tensor x = x_in.contiguous(fmt);
  Tensor y = Tensor::empty(x.shape(), x.dtype(), Device::CPU, fmt);
  SCCONV_DISPATCH_FLOAT(x.dtype(), unary_op_name(op), [&] {
    using T = scalar_t;
    const T* X = x.data<T>();
    T* Y = y.data<T>();
    const int64_t n = x.numel();
    const T a = static_cast<T>(p0), b = static_cast<T>(p1);
    switch (op) {
      case UnaryOp::Neg: map1(n, X, Y, [](T v) { return -v; }); break;
      case UnaryOp::Relu: map1(n, X, Y, [](T v) { return math::relu(v); }); break;
      case UnaryOp::Sigmoid: map1(n, X, Y, [](T v) { return math::sigmoid(v); }); break;
      case UnaryOp::Exp: map1(n, X, Y, [](T v) { return std::exp(v); }); break;
      case UnaryOp::Log: map1(n, X, Y, [](T v) { return std::log(v); }); break;
      case UnaryOp::Sqrt: map1(n, X, Y, [](T v) { return std::sqrt(v); }); break;
      case UnaryOp::Pow: map1(n, X, Y, [a](T v) { return math::pow_scalar(v, a); }); break;
      case UnaryOp::Clamp: map1(n, X, Y, [a, b](T v) { return math::clamp(v, a, b); }); break;
    }
  });
  return y;
}

Tensor CpuBackend::unary_backward(UnaryOp op, const Tensor& x_in, const Tensor& y_in,
                                  const Tensor& grad_y_in, double p0, double p1) {
  // Each op reads x or y: take whichever it needs, dense in the gradient's layout.
  const bool uses_y = op == UnaryOp::Sigmoid || op == UnaryOp::Exp || op == UnaryOp::Sqrt;
  const Tensor& other = op == UnaryOp::Neg ? grad_y_in : (uses_y ? y_in : x_in);
  const MemoryFormat fmt = output_memory_format(grad_y_in.shape(), {&grad_y_in, &other});
  Tensor g = grad_y_in.contiguous(fmt);
  Tensor in = other.contiguous(fmt);
  Tensor gx = Tensor::empty(g.shape(), g.dtype(), Device::CPU, fmt);
  SCCONV_DISPATCH_FLOAT(g.dtype(), unary_op_name(op), [&] {
    using T = scalar_t;
    const T* V = in.data<T>();
    const T* G = g.data<T>();
    T* GX = gx.data<T>();
    const int64_t n = g.numel();
    const T a = static_cast<T>(p0), b = static_cast<T>(p1);
    switch (op) {
      case UnaryOp::Neg: map1(n, G, GX, [](T v) { return -v; }); break;
      case UnaryOp::Relu: map2(n, V, G, GX, [](T v, T gv) { return math::relu_grad(v, gv); }); break;
      case UnaryOp::Sigmoid: map2(n, V, G, GX, [](T v, T gv) { return math::sigmoid_grad(v, gv); }); break;
      case UnaryOp::Exp: map2(n, V, G, GX, [](T v, T gv) { return math::exp_grad(v, gv); }); break;
      case UnaryOp::Log: map2(n, V, G, GX, [](T v, T gv) { return math::log_grad(v, gv); }); break;
      case UnaryOp::Sqrt: map2(n, V, G, GX, [](T v, T gv) { return math::sqrt_grad(v, gv); }); break;
      case UnaryOp::Pow: map2(n, V, G, GX, [a](T v, T gv) { return math::pow_scalar_grad(v, a, gv); }); break;
      case UnaryOp::Clamp: map2(n, V, G, GX, [a, b](T v, T gv) { return math::clamp_grad(v, a, b, gv); }); break;
    }
  });
  return gx;
}

// ---- binary ----------------------------------------------------------------------------------

Tensor CpuBackend::binary(BinaryOp op, const Tensor& a, const Tensor& b) {
  Shape shape = broadcast_shapes(a.shape(), b.shape(), binary_op_name(op));
  Tensor y = Tensor::empty(shape, a.dtype(), Device::CPU, output_memory_format(shape, {&a, &b}));
  StridedLoop<3> loop(shape, {y.strides(), broadcast_strides(a.shape(), a.strides(), shape),
                              broadcast_strides(b.shape(), b.strides(), shape)});
  SCCONV_DISPATCH_FLOAT(a.dtype(), binary_op_name(op), [&] {
    using T = scalar_t;
    T* Y = y.data<T>();
    const T* A = a.data<T>();
    const T* B = b.data<T>();
    auto run = [&](auto f) {
      loop.run([&](int64_t n, const auto& off, const auto& st) {
        T* yp = Y + off[0];
        const T* ap = A + off[1];
        const T* bp = B + off[2];
        if (st[1] == 1 && st[2] == 1) {
          for (int64_t i = 0; i < n; ++i) yp[i] = f(ap[i], bp[i]);
        } else if (st[1] == 1 && st[2] == 0) {
          const T bv = *bp;
          for (int64_t i = 0; i < n; ++i) yp[i] = f(ap[i], bv);
        } else if (st[1] == 0 && st[2] == 1) {
          const T av = *ap;
          for (int64_t i = 0; i < n; ++i) yp[i] = f(av, bp[i]);
        } else {
          for (int64_t i = 0; i < n; ++i) yp[i] = f(ap[i * st[1]], bp[i * st[2]]);
        }
      });
    };
    switch (op) {
      case BinaryOp::Add: run([](T u, T v) { return u + v; }); break;
      case BinaryOp::Sub: run([](T u, T v) { return u - v; }); break;
      case BinaryOp::Mul: run([](T u, T v) { return u * v; }); break;
      case BinaryOp::Div: run([](T u, T v) { return u / v; }); break;
    }
  });
  return y;
}

// ---- masks and where ------------------------------------------------------------------------

Tensor CpuBackend::compare(CompareOp op, const Tensor& a, const Tensor& b) {
  Shape shape = broadcast_shapes(a.shape(), b.shape(), "compare");
  Tensor m = Tensor::empty(shape, DType::U8, Device::CPU, output_memory_format(shape, {&a, &b}));
  StridedLoop<3> loop(shape, {m.strides(), broadcast_strides(a.shape(), a.strides(), shape),
                              broadcast_strides(b.shape(), b.strides(), shape)});
  SCCONV_DISPATCH_ALL(a.dtype(), "compare", [&] {
    using T = scalar_t;
    uint8_t* M = m.data<uint8_t>();
    const T* A = static_cast<const T*>(a.raw_data());
    const T* B = static_cast<const T*>(b.raw_data());
    auto run = [&](auto f) {
      loop.run([&](int64_t n, const auto& off, const auto& st) {
        for (int64_t i = 0; i < n; ++i) M[off[0] + i] = f(A[off[1] + i * st[1]], B[off[2] + i * st[2]]) ? 1 : 0;
      });
    };
    switch (op) {
      case CompareOp::Gt: run([](T u, T v) { return u > v; }); break;
      case CompareOp::Lt: run([](T u, T v) { return u < v; }); break;
      case CompareOp::Ge: run([](T u, T v) { return u >= v; }); break;
      case CompareOp::Le: run([](T u, T v) { return u <= v; }); break;
      case CompareOp::Eq: run([](T u, T v) { return u == v; }); break;
    }
  });
  return m;
}

Tensor CpuBackend::where(const Tensor& mask, const Tensor& a, const Tensor& b) {
  Shape shape = broadcast_shapes(broadcast_shapes(mask.shape(), a.shape(), "where"), b.shape(), "where");
  Tensor y = Tensor::empty(shape, a.dtype(), Device::CPU, output_memory_format(shape, {&a, &b, &mask}));
  StridedLoop<4> loop(shape, {y.strides(), broadcast_strides(mask.shape(), mask.strides(), shape),
                              broadcast_strides(a.shape(), a.strides(), shape),
                              broadcast_strides(b.shape(), b.strides(), shape)});
  SCCONV_DISPATCH_FLOAT(a.dtype(), "where", [&] {
    using T = scalar_t;
    T* Y = y.data<T>();
    const uint8_t* M = mask.data<uint8_t>();
    const T* A = a.data<T>();
    const T* B = b.data<T>();
    loop.run([&](int64_t n, const auto& off, const auto& st) {
      for (int64_t i = 0; i < n; ++i)
        Y[off[0] + i] = M[off[1] + i * st[1]] ? A[off[2] + i * st[2]] : B[off[3] + i * st[3]];
    });
  });
  return y;
}

}  // namespace scconv
