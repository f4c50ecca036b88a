// core/cuda/pool.cu: max and average pooling on the GPU, forward and backward. Reference:
// core/reference/pool.cpp. One thread per output element forward; backward gathers (one thread
// per input element, summing the windows that cover it) for average pooling; max pooling's
// backward scatters each output to the input its index names, adding in double (the few
// windows that share an input sum exactly enough that the order does not show). Max pooling's
// indices are positions ih * W + iw inside each (n, c) plane.
#include "core/cuda/cuda_backend.h"
#include "core/cuda/kernels.cuh"

namespace scconv {

using cuda::NCS;

namespace {

struct PoolGeom {
  int64_t H, W, OH, OW, kh, kw, sh, sw, ph, pw;
};
PoolGeom pool_geom(const Shape& x, const Pool2dParams& p) {
  return {x[2], x[3], conv_out_size(x[2], p.kernel[0], p.stride[0], p.padding[0], 1),
          conv_out_size(x[3], p.kernel[1], p.stride[1], p.padding[1], 1), p.kernel[0], p.kernel[1],
          p.stride[0], p.stride[1], p.padding[0], p.padding[1]};
}
// Output rows (or columns) whose window covers input row i: [lo, hi].
__device__ __forceinline__ void covering(int64_t i, int64_t k, int64_t s, int64_t pad, int64_t out, int64_t& lo,
                                         int64_t& hi) {
  const int64_t top = i + pad - k + 1;  // smallest o with o * s + k - 1 >= i + pad
  lo = top <= 0 ? 0 : (top + s - 1) / s;
  hi = (i + pad) / s;
  if (hi > out - 1) hi = out - 1;
}

template <class T>
__global__ void max_pool_kernel(NCS vx, NCS vy, PoolGeom g, const T* x, T* y, int64_t* idx) {
  SCCONV_GRID_LOOP(i, vy.N * vy.C * vy.S) {
    int64_t n, c, o;
    vy.decode(i, n, c, o);
    const int64_t oh = o / g.OW, ow = o % g.OW;
    double best = -INFINITY;
    int64_t arg = -1;
    for (int64_t a = 0; a < g.kh; ++a)
      for (int64_t b = 0; b < g.kw; ++b) {
        const int64_t ih = oh * g.sh - g.ph + a, iw = ow * g.sw - g.pw + b;
        if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) continue;
        const double v = static_cast<double>(x[vx.at(n, c, ih * g.W + iw)]);
        if (v > best || arg < 0 || isnan(v)) { best = v; arg = ih * g.W + iw; }
      }
    y[vy.at(n, c, o)] = static_cast<T>(best);
    idx[vy.at(n, c, o)] = arg;
  }
}

// One thread per output: its gradient goes to the input its index names, added in double (the
// few windows that share an input add exactly, whatever their order).
template <class T>
__global__ void max_pool_backward_kernel(NCS vg, int64_t HW, const T* gy, const int64_t* idx, double* acc) {
  SCCONV_GRID_LOOP(i, vg.N * vg.C * vg.S) {
    int64_t n, c, o;
    vg.decode(i, n, c, o);
    const int64_t at = vg.at(n, c, o);
    atomicAdd(acc + (n * vg.C + c) * HW + idx[at], static_cast<double>(gy[at]));
  }
}

template <class T>
__global__ void avg_pool_kernel(NCS vx, NCS vy, PoolGeom g, const T* x, T* y) {
  const double inv = 1.0 / double(g.kh * g.kw);
  SCCONV_GRID_LOOP(i, vy.N * vy.C * vy.S) {
    int64_t n, c, o;
    vy.decode(i, n, c, o);
    const int64_t oh = o / g.OW, ow = o % g.OW;
    double s = 0;
    for (int64_t a = 0; a < g.kh; ++a)
      for (int64_t b = 0; b < g.kw; ++b) {
        const int64_t ih = oh * g.sh - g.ph + a, iw = ow * g.sw - g.pw + b;
        if (ih >= 0 && ih < g.H && iw >= 0 && iw < g.W) s += static_cast<double>(x[vx.at(n, c, ih * g.W + iw)]);
      }
    y[vy.at(n, c, o)] = static_cast<T>(s * inv);
  }
}

template <class T>
__global__ void avg_pool_backward_kernel(NCS vg, NCS vx, PoolGeom g, const T* gy, T* gx) {
  const double inv = 1.0 / double(g.kh * g.kw);
  SCCONV_GRID_LOOP(i, vx.N * vx.C * vx.S) {
    int64_t n, c, q;
    vx.decode(i, n, c, q);
    int64_t h0, h1, w0, w1;
    covering(q / g.W, g.kh, g.sh, g.ph, g.OH, h0, h1);
    covering(q % g.W, g.kw, g.sw, g.pw, g.OW, w0, w1);
    double acc = 0;
    for (int64_t oh = h0; oh <= h1; ++oh)
      for (int64_t ow = w0; ow <= w1; ++ow) acc += static_cast<double>(gy[vg.at(n, c, oh * g.OW + ow)]);
    gx[vx.at(n, c, q)] = static_cast<T>(acc * inv);
  }
}

Tensor pooled_like(const Tensor& x, const PoolGeom& g, DType dtype) {
  return Tensor::empty({x.size(0), x.size(1), g.OH, g.OW}, dtype, Device::CUDA, x.suggest_memory_format());
}

}  // namespace

Tensor CudaBackend::max_pool2d(const Tensor& x_in, const Pool2dParams& p, Tensor& indices) {
  cuda::OpScope scope("max_pool2d");
  const Tensor x = cuda::ncs_ready(x_in);
  const PoolGeom g = pool_geom(x.shape(), p);
  Tensor y = pooled_like(x, g, x.dtype());
  indices = pooled_like(x, g, DType::I64);
  if (y.numel() == 0) return y;
  SCCONV_CUDA_FLOAT(x.dtype(), "max_pool2d",
                    max_pool_kernel<scalar_t><<<cuda::blocks_for(y.numel()), cuda::kThreads, 0, cuda::stream()>>>(
                        cuda::ncs_of(x), cuda::ncs_of(y), g, x.device_data<scalar_t>(), y.device_data<scalar_t>(),
                        indices.device_data<int64_t>()));
  cuda::check_launch("max_pool_kernel");
  return y;
}

Tensor CudaBackend::max_pool2d_backward(const Tensor& grad_y_in, const Tensor& indices_in, const Shape& x_shape) {
  cuda::OpScope scope("max_pool2d_backward");
  const Tensor gy = cuda::ncs_ready(grad_y_in);
  // the indices are read at grad_y's offsets: give them the same layout
  const Tensor idx = indices_in.strides() == gy.strides() ? indices_in : indices_in.contiguous(gy.suggest_memory_format());
  SCCONV_CHECK(idx.strides() == gy.strides(), "max_pool2d_backward: indices " << idx.str() << " and grad_y "
                                                                              << gy.str() << " differ in layout");
  const int64_t HW = x_shape[2] * x_shape[3];
  Tensor acc = Tensor::zeros(x_shape, DType::F64, Device::CUDA);  // (N, C, H, W) dense
  Tensor gx = Tensor::empty(x_shape, gy.dtype(), Device::CUDA, gy.suggest_memory_format());
  if (gx.numel() == 0 || gy.numel() == 0) return gx.zero_();
  SCCONV_CUDA_FLOAT(gy.dtype(), "max_pool2d_backward",
                    max_pool_backward_kernel<scalar_t><<<cuda::blocks_for(gy.numel()), cuda::kThreads, 0,
                                                          cuda::stream()>>>(
                        cuda::ncs_of(gy), HW, gy.device_data<scalar_t>(), idx.device_data<int64_t>(),
                        acc.device_data<double>()));
  cuda::check_launch("max_pool_backward_kernel");
  copy(gx, acc);
  return gx;
}

Tensor CudaBackend::avg_pool2d(const Tensor& x_in, const Pool2dParams& p) {
  cuda::OpScope scope("avg_pool2d");
  const Tensor x = cuda::ncs_ready(x_in);
  const PoolGeom g = pool_geom(x.shape(), p);
  Tensor y = pooled_like(x, g, x.dtype());
  if (y.numel() == 0) return y;
  SCCONV_CUDA_FLOAT(x.dtype(), "avg_pool2d",
                    avg_pool_kernel<scalar_t><<<cuda::blocks_for(y.numel()), cuda::kThreads, 0, cuda::stream()>>>(
                        cuda::ncs_of(x), cuda::ncs_of(y), g, x.device_data<scalar_t>(), y.device_data<scalar_t>()));
  cuda::check_launch("avg_pool_kernel");
  return y;
}

Tensor CudaBackend::avg_pool2d_backward(const Tensor& grad_y_in, const Shape& x_shape, const Pool2dParams& p) {
  cuda::OpScope scope("avg_pool2d_backward");
  const Tensor gy = cuda::ncs_ready(grad_y_in);
  const PoolGeom g = pool_geom(x_shape, p);
  Tensor gx = Tensor::empty(x_shape, gy.dtype(), Device::CUDA, gy.suggest_memory_format());
  if (gx.numel() == 0) return gx;
  SCCONV_CUDA_FLOAT(gy.dtype(), "avg_pool2d_backward",
                    avg_pool_backward_kernel<scalar_t><<<cuda::blocks_for(gx.numel()), cuda::kThreads, 0,
                                                          cuda::stream()>>>(
                        cuda::ncs_of(gy), cuda::ncs_of(gx), g, gy.device_data<scalar_t>(), gx.device_data<scalar_t>()));
  cuda::check_launch("avg_pool_backward_kernel");
  return gx;
}

}  // namespace scconv
