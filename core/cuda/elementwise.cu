// core/cuda/elementwise.cu: copy/fill/axpy/scale and the element-wise ops on the GPU. Reference:
// core/reference/elementwise.cpp (the same formulas from core/math/activations.h). Each kernel
// walks the output in memory order (StridedArgs), reading broadcast operands by stride 0; the
// output takes the layout of its input (binary ops: of an operand of the output's shape).
// binary, compare and where take every dtype (the trainer compares int64 labels); the unary
// functions take floats.
#include "core/cuda/cuda_backend.h"
#include "core/cuda/kernels.cuh"
#include "core/math/activations.h"

namespace scconv {

using cuda::StridedArgs;
using cuda::blocks_for;
using cuda::kThreads;

namespace {

// ---- kernels ---------------------------------------------------------------------------------

template <class D, class S>
__global__ void copy_kernel(int64_t n, StridedArgs<2> a, D* dst, const S* src) {
  SCCONV_GRID_LOOP(i, n) {
    int64_t off[2];
    a.offsets(i, off);
    dst[off[0]] = static_cast<D>(src[off[1]]);
  }
}

template <class T>
__global__ void fill_kernel(int64_t n, StridedArgs<1> a, T* dst, double v) {
  SCCONV_GRID_LOOP(i, n) {
    int64_t off[1];
    a.offsets(i, off);
    dst[off[0]] = static_cast<T>(v);
  }
}

// y = y * beta + alpha * x (axpy: beta 1; scale: x unused, alpha 0)
template <class T>
__global__ void axpby_kernel(int64_t n, StridedArgs<2> a, T* y, const T* x, double alpha, double beta) {
  SCCONV_GRID_LOOP(i, n) {
    int64_t off[2];
    a.offsets(i, off);
    const double xv = x ? static_cast<double>(x[off[1]]) : 0.0;
    y[off[0]] = static_cast<T>(static_cast<double>(y[off[0]]) * beta + alpha * xv);
  }
}

template <class T>
__device__ T unary_value(UnaryOp op, T v, T p0, T p1) {
  switch (op) {
    case UnaryOp::Neg: return -v;
    case UnaryOp::Relu: return math::relu(v);
    case UnaryOp::Sigmoid: return math::sigmoid(v);
    case UnaryOp::Exp: return std::exp(v);
    case UnaryOp::Log: return std::log(v);
    case UnaryOp::Sqrt: return std::sqrt(v);
    case UnaryOp::Pow: return math::pow_scalar(v, p0);
    case UnaryOp::Clamp: return math::clamp(v, p0, p1);
  }
  return v;
}

template <class T>
__global__ void unary_kernel(int64_t n, StridedArgs<2> a, UnaryOp op, T* y, const T* x, T p0, T p1) {
  SCCONV_GRID_LOOP(i, n) {
    int64_t off[2];
    a.offsets(i, off);
    y[off[0]] = unary_value(op, x[off[1]], p0, p1);
  }
}

// tensors: 0 grad_x (out), 1 grad_y, 2 x, 3 y (x or y may be absent: then never read)
template <class T>
__global__ void unary_backward_kernel(int64_t n, StridedArgs<4> a, UnaryOp op, T* gx, const T* gy,
                                      const T* x, const T* y, T p0, T p1) {
  SCCONV_GRID_LOOP(i, n) {
    int64_t off[4];
    a.offsets(i, off);
    const T g = gy[off[1]];
    T r = 0;
    switch (op) {
      case UnaryOp::Neg: r = -g; break;
      case UnaryOp::Relu: r = math::relu_grad(x[off[2]], g); break;
      case UnaryOp::Sigmoid: r = math::sigmoid_grad(y[off[3]], g); break;
      case UnaryOp::Exp: r = math::exp_grad(y[off[3]], g); break;
      case UnaryOp::Log: r = math::log_grad(x[off[2]], g); break;
      case UnaryOp::Sqrt: r = math::sqrt_grad(y[off[3]], g); break;
      case UnaryOp::Pow: r = math::pow_scalar_grad(x[off[2]], p0, g); break;
      case UnaryOp::Clamp: r = math::clamp_grad(x[off[2]], p0, p1, g); break;
    }
    gx[off[0]] = r;
  }
}

template <class T>
__global__ void binary_kernel(int64_t n, StridedArgs<3> a, BinaryOp op, T* y, const T* u, const T* v) {
  SCCONV_GRID_LOOP(i, n) {
    int64_t off[3];
    a.offsets(i, off);
    const T p = u[off[1]], q = v[off[2]];
    T r = 0;
    switch (op) {
      case BinaryOp::Add: r = p + q; break;
      case BinaryOp::Sub: r = p - q; break;
      case BinaryOp::Mul: r = p * q; break;
      case BinaryOp::Div: r = p / q; break;
    }
    y[off[0]] = r;
  }
}

template <class T>
__global__ void compare_kernel(int64_t n, StridedArgs<3> a, CompareOp op, uint8_t* m, const T* u, const T* v) {
  SCCONV_GRID_LOOP(i, n) {
    int64_t off[3];
    a.offsets(i, off);
    const T p = u[off[1]], q = v[off[2]];
    bool r = false;
    switch (op) {
      case CompareOp::Gt: r = p > q; break;
      case CompareOp::Lt: r = p < q; break;
      case CompareOp::Ge: r = p >= q; break;
      case CompareOp::Le: r = p <= q; break;
      case CompareOp::Eq: r = p == q; break;
    }
    m[off[0]] = r ? 1 : 0;
  }
}

template <class T>
__global__ void where_kernel(int64_t n, StridedArgs<4> a, T* y, const uint8_t* mask, const T* u, const T* v) {
  SCCONV_GRID_LOOP(i, n) {
    int64_t off[4];
    a.offsets(i, off);
    y[off[0]] = mask[off[1]] != 0 ? u[off[2]] : v[off[3]];
  }
}

// ---- host side -------------------------------------------------------------------------------

template <class D>
void copy_from(Tensor& dst, const Tensor& src, const StridedArgs<2>& a) {
  const int64_t n = dst.numel();
  SCCONV_CUDA_ALL(src.dtype(), S,
                  copy_kernel<D, S><<<blocks_for(n), kThreads, 0, cuda::stream()>>>(
                      n, a, dst.device_data<D>(), src.device_data<S>()));
}

// An output of `shape` in the layout of the first operand that has that shape.
Tensor output_for(const Shape& shape, DType dtype, std::initializer_list<const Tensor*> inputs) {
  return Tensor::empty(shape, dtype, Device::CUDA, output_memory_format(shape, inputs));
}

}  // namespace

// ---- memory ----------------------------------------------------------------------------------

void CudaBackend::copy(Tensor& dst, const Tensor& src) {
  cuda::OpScope scope("copy");
  if (dst.numel() == 0) return;
  // the same dtype and the same dense layout: one device-to-device memcpy
  if (src.dtype() == dst.dtype() && src.shape() == dst.shape() && src.strides() == dst.strides() &&
      cuda::is_dense(dst)) {
    cuda::check(cudaMemcpyAsync(dst.raw_device_data(), src.raw_device_data(),
                                size_t(dst.numel()) * dtype_size(dst.dtype()), cudaMemcpyDeviceToDevice,
                                cuda::stream()),
                "cudaMemcpyAsync (copy)");
    return;
  }
  const StridedArgs<2> a = cuda::strided_args<2>(dst.shape(), {&dst, &src});
  SCCONV_CUDA_ALL(dst.dtype(), D, copy_from<D>(dst, src, a));
  cuda::check_launch("copy_kernel");
}

void CudaBackend::fill(Tensor& dst, double value) {
  cuda::OpScope scope("fill");
  const int64_t n = dst.numel();
  if (n == 0) return;
  const StridedArgs<1> a = cuda::strided_args<1>(dst.shape(), {&dst});
  SCCONV_CUDA_ALL(dst.dtype(), T,
                  fill_kernel<T><<<blocks_for(n), kThreads, 0, cuda::stream()>>>(n, a, dst.device_data<T>(), value));
  cuda::check_launch("fill_kernel");
}

void CudaBackend::axpy(Tensor& y, const Tensor& x, double alpha) {
  cuda::OpScope scope("axpy");
  SCCONV_CHECK(x.dtype() == y.dtype(), "axpy: " << x.str() << " into " << y.str() << ": dtypes differ");
  const int64_t n = y.numel();
  if (n == 0) return;
  const StridedArgs<2> a = cuda::strided_args<2>(y.shape(), {&y, &x});
  SCCONV_CUDA_ALL(y.dtype(), T,
                  axpby_kernel<T><<<blocks_for(n), kThreads, 0, cuda::stream()>>>(
                      n, a, y.device_data<T>(), x.device_data<T>(), alpha, 1.0));
  cuda::check_launch("axpy_kernel");
}

void CudaBackend::scale(Tensor& y, double alpha) {
  cuda::OpScope scope("scale");
  const int64_t n = y.numel();
  if (n == 0) return;
  const StridedArgs<2> a = cuda::strided_args<2>(y.shape(), {&y, &y});
  SCCONV_CUDA_ALL(y.dtype(), T,
                  axpby_kernel<T><<<blocks_for(n), kThreads, 0, cuda::stream()>>>(
                      n, a, y.device_data<T>(), static_cast<const T*>(nullptr), 0.0, alpha));
  cuda::check_launch("scale_kernel");
}

// ---- element-wise ----------------------------------------------------------------------------

Tensor CudaBackend::unary(UnaryOp op, const Tensor& x, double p0, double p1) {
  cuda::OpScope scope(unary_op_name(op));
  Tensor y = cuda::empty_like_layout(x, x.dtype());
  const int64_t n = x.numel();
  if (n == 0) return y;
  const StridedArgs<2> a = cuda::strided_args<2>(x.shape(), {&y, &x});
  SCCONV_CUDA_FLOAT(x.dtype(), unary_op_name(op),
                    unary_kernel<scalar_t><<<blocks_for(n), kThreads, 0, cuda::stream()>>>(
                        n, a, op, y.device_data<scalar_t>(), x.device_data<scalar_t>(), scalar_t(p0),
                        scalar_t(p1)));
  cuda::check_launch("unary_kernel");
  return y;
}

Tensor CudaBackend::unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& grad_y,
                                   double p0, double p1) {
  cuda::OpScope scope(unary_op_name(op));
  Tensor gx = cuda::empty_like_layout(grad_y, grad_y.dtype());
  const int64_t n = gx.numel();
  if (n == 0) return gx;
  // an absent x or y is walked as grad_y (same shape) and never read
  const Tensor& xs = x.defined() ? x : grad_y;
  const Tensor& ys = y.defined() ? y : grad_y;
  const StridedArgs<4> a = cuda::strided_args<4>(gx.shape(), {&gx, &grad_y, &xs, &ys});
  SCCONV_CUDA_FLOAT(grad_y.dtype(), unary_op_name(op),
                    unary_backward_kernel<scalar_t><<<blocks_for(n), kThreads, 0, cuda::stream()>>>(
                        n, a, op, gx.device_data<scalar_t>(), grad_y.device_data<scalar_t>(),
                        xs.device_data<scalar_t>(), ys.device_data<scalar_t>(), scalar_t(p0), scalar_t(p1)));
  cuda::check_launch("unary_backward_kernel");
  return gx;
}

Tensor CudaBackend::binary(BinaryOp op, const Tensor& a, const Tensor& b) {
  cuda::OpScope scope(binary_op_name(op));
  const Shape shape = broadcast_shapes(a.shape(), b.shape(), binary_op_name(op));
  Tensor y = output_for(shape, a.dtype(), {&a, &b});
  const int64_t n = y.numel();
  if (n == 0) return y;
  const StridedArgs<3> s = cuda::strided_args<3>(shape, {&y, &a, &b});
  SCCONV_CUDA_ALL(a.dtype(), T,
                  binary_kernel<T><<<blocks_for(n), kThreads, 0, cuda::stream()>>>(
                      n, s, op, y.device_data<T>(), a.device_data<T>(), b.device_data<T>()));
  cuda::check_launch("binary_kernel");
  return y;
}

Tensor CudaBackend::compare(CompareOp op, const Tensor& a, const Tensor& b) {
  cuda::OpScope scope("compare");
  const Shape shape = broadcast_shapes(a.shape(), b.shape(), "compare");
  Tensor m = output_for(shape, DType::U8, {&a, &b});
  const int64_t n = m.numel();
  if (n == 0) return m;
  const StridedArgs<3> s = cuda::strided_args<3>(shape, {&m, &a, &b});
  SCCONV_CUDA_ALL(a.dtype(), T,
                  compare_kernel<T><<<blocks_for(n), kThreads, 0, cuda::stream()>>>(
                      n, s, op, m.device_data<uint8_t>(), a.device_data<T>(), b.device_data<T>()));
  cuda::check_launch("compare_kernel");
  return m;
}

Tensor CudaBackend::where(const Tensor& mask, const Tensor& a, const Tensor& b) {
  cuda::OpScope scope("where");
  SCCONV_CHECK(mask.dtype() == DType::U8, "where: the mask must be uint8 (from a comparison), got " << mask.str());
  const Shape shape = broadcast_shapes(broadcast_shapes(mask.shape(), a.shape(), "where"), b.shape(), "where");
  Tensor y = output_for(shape, a.dtype(), {&a, &b, &mask});
  const int64_t n = y.numel();
  if (n == 0) return y;
  const StridedArgs<4> s = cuda::strided_args<4>(shape, {&y, &mask, &a, &b});
  SCCONV_CUDA_ALL(a.dtype(), T,
                  where_kernel<T><<<blocks_for(n), kThreads, 0, cuda::stream()>>>(
                      n, s, y.device_data<T>(), mask.device_data<uint8_t>(), a.device_data<T>(), b.device_data<T>()));
  cuda::check_launch("where_kernel");
  return y;
}

}  // namespace scconv
