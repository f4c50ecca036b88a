// core/cpu/pool.cpp: fast max and average pooling: one (n, c) plane per task, raw pointers,
// window bounds clipped once per output instead of tested per tap. Same conventions as the
// reference (core/reference/pool.cpp): max ignores padding, average counts it.
#include <cmath>
#include <limits>

#include "core/cpu/cpu_backend.h"
#include "core/parallel.h"

namespace scconv {

namespace {
struct Window {
  int64_t h0, h1, w0, w1;  // clipped input window [h0, h1) x [w0, w1)
};
inline Window window(int64_t oh, int64_t ow, const Pool2dParams& p, int64_t H, int64_t W) {
  int64_t hs = oh * p.stride[0] - p.padding[0], ws = ow * p.stride[1] - p.padding[1];
  return {std::max<int64_t>(hs, 0), std::min(hs + p.kernel[0], H), std::max<int64_t>(ws, 0),
          std::min(ws + p.kernel[1], W)};
}
}  // namespace

Tensor CpuBackend::max_pool2d(const Tensor& x_in, const Pool2dParams& p, Tensor& indices) {
  Tensor x = x_in.contiguous();
  const int64_t NC = x.size(0) * x.size(1), H = x.size(2), W = x.size(3);
  const int64_t OH = conv_out_size(H, p.kernel[0], p.stride[0], p.padding[0], 1);
  const int64_t OW = conv_out_size(W, p.kernel[1], p.stride[1], p.padding[1], 1);
  Tensor y = Tensor::empty({x.size(0), x.size(1), OH, OW}, x.dtype());
  indices = Tensor::empty(y.shape(), DType::I64);
  SCCONV_DISPATCH_FLOAT(x.dtype(), "max_pool2d", [&] {
    using T = scalar_t;
    const T* X = x.data<T>();
    T* Y = y.data<T>();
    int64_t* I = indices.data<int64_t>();
    parallel_for(NC, 1, [&](int64_t b, int64_t e) {
      for (int64_t pl = b; pl < e; ++pl) {
        const T* xp = X + pl * H * W;
        for (int64_t oh = 0; oh < OH; ++oh)
          for (int64_t ow = 0; ow < OW; ++ow) {
            Window w = window(oh, ow, p, H, W);
            int64_t arg = w.h0 * W + w.w0;
            T best = xp[arg];
            for (int64_t ih = w.h0; ih < w.h1; ++ih)
              for (int64_t iw = w.w0; iw < w.w1; ++iw) {
                T v = xp[ih * W + iw];
                if (v > best || std::isnan(v)) { best = v; arg = ih * W + iw; }
              }
            const int64_t o = (pl * OH + oh) * OW + ow;
            Y[o] = best;
            I[o] = arg;
          }
      }
    });
  });
  return y;
}

Tensor CpuBackend::max_pool2d_backward(const Tensor& grad_y_in, const Tensor& indices_in,
                                       const Shape& x_shape) {
  Tensor gy = grad_y_in.contiguous(), ind = indices_in.contiguous();
  Tensor gx = Tensor::zeros(x_shape, gy.dtype());
  const int64_t NC = x_shape[0] * x_shape[1], HW = x_shape[2] * x_shape[3];
  const int64_t OHW = gy.size(2) * gy.size(3);
  SCCONV_DISPATCH_FLOAT(gy.dtype(), "max_pool2d_backward", [&] {
    using T = scalar_t;
    const T* G = gy.data<T>();
    const int64_t* I = ind.data<int64_t>();
    T* GX = gx.data<T>();
    parallel_for(NC, 1, [&](int64_t b, int64_t e) {
      for (int64_t pl = b; pl < e; ++pl)
        for (int64_t o = 0; o < OHW; ++o) GX[pl * HW + I[pl * OHW + o]] += G[pl * OHW + o];
    });
  });
  return gx;
}

Tensor CpuBackend::avg_pool2d(const Tensor& x_in, const Pool2dParams& p) {
  Tensor x = x_in.contiguous();
  const int64_t NC = x.size(0) * x.size(1), H = x.size(2), W = x.size(3);
  const int64_t OH = conv_out_size(H, p.kernel[0], p.stride[0], p.padding[0], 1);
  const int64_t OW = conv_out_size(W, p.kernel[1], p.stride[1], p.padding[1], 1);
  Tensor y = Tensor::empty({x.size(0), x.size(1), OH, OW}, x.dtype());
  const double inv = 1.0 / double(p.kernel[0] * p.kernel[1]);
  SCCONV_DISPATCH_FLOAT(x.dtype(), "avg_pool2d", [&] {
    using T = scalar_t;
    const T* X = x.data<T>();
    T* Y = y.data<T>();
    parallel_for(NC, 1, [&](int64_t b, int64_t e) {
      for (int64_t pl = b; pl < e; ++pl) {
        const T* xp = X + pl * H * W;
        for (int64_t oh = 0; oh < OH; ++oh)
          for (int64_t ow = 0; ow < OW; ++ow) {
            Window w = window(oh, ow, p, H, W);
            double s = 0;
            for (int64_t ih = w.h0; ih < w.h1; ++ih)
              for (int64_t iw = w.w0; iw < w.w1; ++iw) s += xp[ih * W + iw];
            Y[(pl * OH + oh) * OW + ow] = static_cast<T>(s * inv);
          }
      }
    });
  });
  return y;
}

Tensor CpuBackend::avg_pool2d_backward(const Tensor& grad_y_in, const Shape& x_shape,
                                       const Pool2dParams& p) {
  Tensor gy = grad_y_in.contiguous();
  Tensor gx = Tensor::zeros(x_shape, gy.dtype());
  const int64_t NC = x_shape[0] * x_shape[1], H = x_shape[2], W = x_shape[3];
  const int64_t OH = gy.size(2), OW = gy.size(3);
  const double inv = 1.0 / double(p.kernel[0] * p.kernel[1]);
  SCCONV_DISPATCH_FLOAT(gy.dtype(), "avg_pool2d_backward", [&] {
    using T = scalar_t;
    const T* G = gy.data<T>();
    T* GX = gx.data<T>();
    parallel_for(NC, 1, [&](int64_t b, int64_t e) {
      for (int64_t pl = b; pl < e; ++pl) {
        T* gp = GX + pl * H * W;
        for (int64_t oh = 0; oh < OH; ++oh)
          for (int64_t ow = 0; ow < OW; ++ow) {
            Window w = window(oh, ow, p, H, W);
            const T g = static_cast<T>(G[(pl * OH + oh) * OW + ow] * inv);
            for (int64_t ih = w.h0; ih < w.h1; ++ih)
              for (int64_t iw = w.w0; iw < w.w1; ++iw) gp[ih * W + iw] += g;
          }
      }
    });
  });
  return gx;
}

}  // namespace scconv
