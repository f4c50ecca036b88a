// core/reference/linalg.cpp: reference matmul and 2-D convolution (forward, backward-data,
// backward-weights) as direct loops, accumulating in double.
//
// Convolution with groups: input channels split into `groups` blocks of C/g, output channels
// into blocks of O/g; output channel o of group g reads only input block g:
//   y[n,o,i,j] = bias[o] + sum_{c<C/g, ki, kj} w[o,c,ki,kj] * x[n, g*C/g + c, i*s - p + ki*d, ...]
#include "core/reference/reference_backend.h"

namespace scconv {

Tensor ReferenceBackend::matmul(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) {
  int64_t M = trans_a ? a.size(1) : a.size(0), K = trans_a ? a.size(0) : a.size(1);
  int64_t N = trans_b ? b.size(0) : b.size(1);
  Tensor y = Tensor::empty({M, N}, a.dtype());
  SCCONV_DISPATCH_FLOAT(a.dtype(), "matmul", [&] {
    const scalar_t* A = a.data<scalar_t>();
    const scalar_t* B = b.data<scalar_t>();
    scalar_t* Y = y.data<scalar_t>();
    auto sa = a.strides(), sb = b.strides();
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        double acc = 0;
        for (int64_t k = 0; k < K; ++k) {
          double av = trans_a ? A[k * sa[0] + m * sa[1]] : A[m * sa[0] + k * sa[1]];
          double bv = trans_b ? B[n * sb[0] + k * sb[1]] : B[k * sb[0] + n * sb[1]];
          acc += av * bv;
        }
        Y[m * N + n] = static_cast<scalar_t>(acc);
      }
  });
  return y;
}

namespace {
struct ConvDims {
  int64_t N, C, H, W, O, KH, KW, OH, OW, G, Cg, Og;
};
ConvDims conv_dims(const Shape& x, const Shape& w, const Conv2dParams& p) {
  ConvDims d{x[0], x[1], x[2], x[3], w[0], w[2], w[3], 0, 0, p.groups, x[1] / p.groups,
             w[0] / p.groups};
  d.OH = conv_out_size(d.H, d.KH, p.stride[0], p.padding[0], p.dilation[0]);
  d.OW = conv_out_size(d.W, d.KW, p.stride[1], p.padding[1], p.dilation[1]);
  return d;
}
}  // namespace

// Calls f(n, o, oh, ow, c, kh, kw, ih, iw) for every in-bounds tap of the convolution, where c
// is the absolute input channel and (c - g*Cg) the weight's channel index.
template <class F>
static void for_each_tap(const ConvDims& d, const Conv2dParams& p, F f) {
  for (int64_t n = 0; n < d.N; ++n)
    for (int64_t o = 0; o < d.O; ++o) {
      int64_t g = o / d.Og;
      for (int64_t oh = 0; oh < d.OH; ++oh)
        for (int64_t ow = 0; ow < d.OW; ++ow)
          for (int64_t c = g * d.Cg; c < (g + 1) * d.Cg; ++c)
            for (int64_t kh = 0; kh < d.KH; ++kh)
              for (int64_t kw = 0; kw < d.KW; ++kw) {
                int64_t ih = oh * p.stride[0] - p.padding[0] + kh * p.dilation[0];
                int64_t iw = ow * p.stride[1] - p.padding[1] + kw * p.dilation[1];
                if (ih < 0 || ih >= d.H || iw < 0 || iw >= d.W) continue;
                f(n, o, oh, ow, c, c - g * d.Cg, kh, kw, ih, iw);
              }
    }
}

Tensor ReferenceBackend::conv2d(const Tensor& x_in, const Tensor& w_in, const Tensor& bias,
                                const Conv2dParams& p) {
  Tensor x = x_in.contiguous(), w = w_in.contiguous();
  ConvDims d = conv_dims(x.shape(), w.shape(), p);
  std::vector<double> acc(d.N * d.O * d.OH * d.OW, 0.0);
  SCCONV_DISPATCH_FLOAT(x.dtype(), "conv2d", [&] {
    const scalar_t* X = x.data<scalar_t>();
    const scalar_t* Wt = w.data<scalar_t>();
    for_each_tap(d, p, [&](int64_t n, int64_t o, int64_t oh, int64_t ow, int64_t c, int64_t cw,
                           int64_t kh, int64_t kw, int64_t ih, int64_t iw) {
      acc[((n * d.O + o) * d.OH + oh) * d.OW + ow] +=
          double(Wt[((o * d.Cg + cw) * d.KH + kh) * d.KW + kw]) *
          double(X[((n * d.C + c) * d.H + ih) * d.W + iw]);
    });
  });
  Tensor y = Tensor::empty({d.N, d.O, d.OH, d.OW}, x.dtype());
  for (int64_t i = 0; i < y.numel(); ++i) {
    int64_t o = (i / (d.OH * d.OW)) % d.O;
    acc[i] += bias.defined() ? ref::get(bias, o) : 0.0;
  }
  SCCONV_DISPATCH_FLOAT(x.dtype(), "conv2d", [&] {
    for (int64_t i = 0; i < y.numel(); ++i) y.data<scalar_t>()[i] = static_cast<scalar_t>(acc[i]);
  });
  return y;
}

Tensor ReferenceBackend::conv2d_backward_data(const Tensor& grad_y_in, const Tensor& w_in,
                                              const Shape& x_shape, const Conv2dParams& p) {
  Tensor gy = grad_y_in.contiguous(), w = w_in.contiguous();
  ConvDims d = conv_dims(x_shape, w.shape(), p);
  std::vector<double> acc(numel_of(x_shape), 0.0);
  Tensor gx = Tensor::empty(x_shape, gy.dtype());
  SCCONV_DISPATCH_FLOAT(gy.dtype(), "conv2d_backward_data", [&] {
    const scalar_t* GY = gy.data<scalar_t>();
    const scalar_t* Wt = w.data<scalar_t>();
    for_each_tap(d, p, [&](int64_t n, int64_t o, int64_t oh, int64_t ow, int64_t c, int64_t cw,
                           int64_t kh, int64_t kw, int64_t ih, int64_t iw) {
      acc[((n * d.C + c) * d.H + ih) * d.W + iw] +=
          double(Wt[((o * d.Cg + cw) * d.KH + kh) * d.KW + kw]) *
          double(GY[((n * d.O + o) * d.OH + oh) * d.OW + ow]);
    });
    for (int64_t i = 0; i < gx.numel(); ++i) gx.data<scalar_t>()[i] = static_cast<scalar_t>(acc[i]);
  });
  return gx;
}

std::pair<Tensor, Tensor> ReferenceBackend::conv2d_backward_weights(const Tensor& grad_y_in,
                                                                    const Tensor& x_in,
                                                                    const Shape& w_shape,
                                                                    bool want_bias,
                                                                    const Conv2dParams& p) {
  Tensor gy = grad_y_in.contiguous(), x = x_in.contiguous();
  ConvDims d = conv_dims(x.shape(), w_shape, p);
  std::vector<double> acc(numel_of(w_shape), 0.0), accb(d.O, 0.0);
  Tensor gw = Tensor::empty(w_shape, gy.dtype()), gb;
  SCCONV_DISPATCH_FLOAT(gy.dtype(), "conv2d_backward_weights", [&] {
    const scalar_t* GY = gy.data<scalar_t>();
    const scalar_t* X = x.data<scalar_t>();
    for_each_tap(d, p, [&](int64_t n, int64_t o, int64_t oh, int64_t ow, int64_t c, int64_t cw,
                           int64_t kh, int64_t kw, int64_t ih, int64_t iw) {
      acc[((o * d.Cg + cw) * d.KH + kh) * d.KW + kw] +=
          double(X[((n * d.C + c) * d.H + ih) * d.W + iw]) *
          double(GY[((n * d.O + o) * d.OH + oh) * d.OW + ow]);
    });
    for (int64_t i = 0; i < gw.numel(); ++i) gw.data<scalar_t>()[i] = static_cast<scalar_t>(acc[i]);
    if (want_bias) {
      gb = Tensor::empty({d.O}, gy.dtype());
      for (int64_t i = 0; i < gy.numel(); ++i) accb[(i / (d.OH * d.OW)) % d.O] += double(GY[i]);
      for (int64_t o = 0; o < d.O; ++o) gb.data<scalar_t>()[o] = static_cast<scalar_t>(accb[o]);
    }
  });
  return {gw, gb};
}

}  // namespace scconv
