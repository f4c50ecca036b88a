// core/reference/pool.cpp: reference max and average pooling over each (n, c) plane.
// Max pooling ignores padded positions (as PyTorch pads with -inf); average pooling counts them
// (count_include_pad = true, PyTorch's default).
#include <cmath>
#include <limits>

#include "core/reference/reference_backend.h"

namespace scconv {

namespace {
struct PoolDims {
  int64_t NC, H, W, OH, OW;
};
PoolDims pool_dims(const Shape& x, const Pool2dParams& p) {
  return {x[0] * x[1], x[2], x[3], conv_out_size(x[2], p.kernel[0], p.stride[0], p.padding[0], 1),
          conv_out_size(x[3], p.kernel[1], p.stride[1], p.padding[1], 1)};
}
}  // namespace

Tensor ReferenceBackend::max_pool2d(const Tensor& x, const Pool2dParams& p, Tensor& indices) {
  PoolDims d = pool_dims(x.shape(), p);
  Tensor y = Tensor::empty({x.size(0), x.size(1), d.OH, d.OW}, x.dtype());
  indices = Tensor::empty(y.shape(), DType::I64);
  SCCONV_DISPATCH_FLOAT(x.dtype(), "max_pool2d", [&] {
    for (int64_t pl = 0; pl < d.NC; ++pl)
      for (int64_t oh = 0; oh < d.OH; ++oh)
        for (int64_t ow = 0; ow < d.OW; ++ow) {
          double best = -std::numeric_limits<double>::infinity();
          int64_t arg = -1;
          for (int64_t kh = 0; kh < p.kernel[0]; ++kh)
            for (int64_t kw = 0; kw < p.kernel[1]; ++kw) {
              int64_t ih = oh * p.stride[0] - p.padding[0] + kh;
              int64_t iw = ow * p.stride[1] - p.padding[1] + kw;
              if (ih < 0 || ih >= d.H || iw < 0 || iw >= d.W) continue;
              double v = ref::get(x, (pl * d.H + ih) * d.W + iw);
              if (v > best || arg < 0 || std::isnan(v)) { best = v; arg = ih * d.W + iw; }
            }
          int64_t o = (pl * d.OH + oh) * d.OW + ow;
          y.data<scalar_t>()[o] = static_cast<scalar_t>(best);
          indices.data<int64_t>()[o] = arg;
        }
  });
  return y;
}

Tensor ReferenceBackend::max_pool2d_backward(const Tensor& grad_y, const Tensor& indices,
                                             const Shape& x_shape) {
  Tensor gx = Tensor::zeros(x_shape, grad_y.dtype());
  const int64_t HW = x_shape[2] * x_shape[3], OHW = grad_y.size(2) * grad_y.size(3);
  SCCONV_DISPATCH_FLOAT(grad_y.dtype(), "max_pool2d_backward", [&] {
    for (int64_t o = 0; o < grad_y.numel(); ++o)
      gx.data<scalar_t>()[(o / OHW) * HW + static_cast<int64_t>(ref::get(indices, o))] +=
          static_cast<scalar_t>(ref::get(grad_y, o));
  });
  return gx;
}

Tensor ReferenceBackend::avg_pool2d(const Tensor& x, const Pool2dParams& p) {
  PoolDims d = pool_dims(x.shape(), p);
  Tensor y = Tensor::empty({x.size(0), x.size(1), d.OH, d.OW}, x.dtype());
  const double inv = 1.0 / double(p.kernel[0] * p.kernel[1]);
  SCCONV_DISPATCH_FLOAT(x.dtype(), "avg_pool2d", [&] {
    for (int64_t pl = 0; pl < d.NC; ++pl)
      for (int64_t oh = 0; oh < d.OH; ++oh)
        for (int64_t ow = 0; ow < d.OW; ++ow) {
          double s = 0;
          for (int64_t kh = 0; kh < p.kernel[0]; ++kh)
            for (int64_t kw = 0; kw < p.kernel[1]; ++kw) {
              int64_t ih = oh * p.stride[0] - p.padding[0] + kh;
              int64_t iw = ow * p.stride[1] - p.padding[1] + kw;
              if (ih >= 0 && ih < d.H && iw >= 0 && iw < d.W) s += ref::get(x, (pl * d.H + ih) * d.W + iw);
            }
          y.data<scalar_t>()[(pl * d.OH + oh) * d.OW + ow] = static_cast<scalar_t>(s * inv);
        }
  });
  return y;
}

Tensor ReferenceBackend::avg_pool2d_backward(const Tensor& grad_y, const Shape& x_shape,
                                             const Pool2dParams& p) {
  PoolDims d = pool_dims(x_shape, p);
  Tensor gx = Tensor::zeros(x_shape, grad_y.dtype());
  const double inv = 1.0 / double(p.kernel[0] * p.kernel[1]);
  SCCONV_DISPATCH_FLOAT(grad_y.dtype(), "avg_pool2d_backward", [&] {
    for (int64_t pl = 0; pl < d.NC; ++pl)
      for (int64_t oh = 0; oh < d.OH; ++oh)
        for (int64_t ow = 0; ow < d.OW; ++ow) {
          double g = ref::get(grad_y, (pl * d.OH + oh) * d.OW + ow) * inv;
          for (int64_t kh = 0; kh < p.kernel[0]; ++kh)
            for (int64_t kw = 0; kw < p.kernel[1]; ++kw) {
              int64_t ih = oh * p.stride[0] - p.padding[0] + kh;
              int64_t iw = ow * p.stride[1] - p.padding[1] + kw;
              if (ih >= 0 && ih < d.H && iw >= 0 && iw < d.W)
                gx.data<scalar_t>()[(pl * d.H + ih) * d.W + iw] += static_cast<scalar_t>(g);
            }
        }
  });
  return gx;
}

}  // namespace scconv
