// core/reference/linalg.cpp: reference matmul and 2-D convolution (forward, backward-data,
// backward-weights) as direct loops, accumulating in double.
//
// Convolution with groups: input channels split into `groups` blocks of C/g, output channels
// into blocks of O/g; output channel o of group g reads only input block g:
//   y[n,o,i,j] = bias[o] + sum_{c<C/g, ki, kj} w[o,c,ki,kj] * x[n, g*C/g + c, i*s - p + ki*d, ...]
// conv1x1_split is a 1x1 convolution of that kind whose groups may differ in size and whose
// groups' outputs are separate tensors: y_i[n,o,p] = sum_c w_i[o,c] x[n, c0_i + c, p].
//
// Precision::BFloat16 (core/dtype.h) on float32 operands: the same loops on the operands rounded
// to bfloat16 (the products of two bfloat16 are exact in double; only the sum rounds, once). A
// bias, and the bias gradient (a sum of grad_y), are not products: they stay unrounded.
#include <algorithm>

#include "core/reference/reference_backend.h"

namespace scconv {

namespace {
bool rounds_to_bf16(Precision precision, const Tensor& t) {
  return precision == Precision::BFloat16 && t.dtype() == DType::F32;
}
// t's values rounded to the nearest bfloat16, as float32.
Tensor bf16_rounded(const Tensor& t) { return t.defined() ? t.to(DType::BF16).to(DType::F32) : t; }
Conv2dParams exact(Conv2dParams p) {
  p.precision = Precision::Float32;
  return p;
}
}  // namespace

Tensor ReferenceBackend::matmul(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b,
                                Precision precision) {
  if (rounds_to_bf16(precision, a))
    return ReferenceBackend::matmul(bf16_rounded(a), bf16_rounded(b), trans_a, trans_b, Precision::Float32);
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
// Output columns ow whose input column iw = ow*s - p + kw*d lies inside [0, W): [lo, hi).
void valid_cols(int64_t kw, const ConvDims& d, const Conv2dParams& p, int64_t& lo, int64_t& hi) {
  const int64_t s = p.stride[1], off = kw * p.dilation[1] - p.padding[1];
  lo = off >= 0 ? 0 : (-off + s - 1) / s;
  hi = d.W - off <= 0 ? 0 : std::min(d.OW, (d.W - off + s - 1) / s);
  if (hi < lo) hi = lo;
}
}  // namespace

// Calls f(n, o, c, cw, kh, kw, oh, ih, ow_lo, ow_hi, iw_of_lo) for every (output row, tap)
// whose input row is inside the image; the innermost loop over output columns is left to f,
// where x column iw = iw_of_lo + (ow - ow_lo) * stride.
template <class F>
static void for_each_row_tap(const ConvDims& d, const Conv2dParams& p, F f) {
  for (int64_t n = 0; n < d.N; ++n)
    for (int64_t o = 0; o < d.O; ++o) {
      const int64_t g = o / d.Og;
      for (int64_t c = g * d.Cg; c < (g + 1) * d.Cg; ++c)
        for (int64_t kh = 0; kh < d.KH; ++kh)
          for (int64_t kw = 0; kw < d.KW; ++kw) {
            int64_t lo, hi;
            valid_cols(kw, d, p, lo, hi);
            for (int64_t oh = 0; oh < d.OH; ++oh) {
              const int64_t ih = oh * p.stride[0] - p.padding[0] + kh * p.dilation[0];
              if (ih < 0 || ih >= d.H || lo >= hi) continue;
              f(n, o, c, c - g * d.Cg, kh, kw, oh, ih, lo, hi,
                lo * p.stride[1] - p.padding[1] + kw * p.dilation[1]);
            }
          }
    }
}

Tensor ReferenceBackend::conv2d(const Tensor& x_in, const Tensor& w_in, const Tensor& bias,
                                const Conv2dParams& p) {
  if (rounds_to_bf16(p.precision, x_in))
    return ReferenceBackend::conv2d(bf16_rounded(x_in), bf16_rounded(w_in), bias, exact(p));
  Tensor x = x_in.contiguous(), w = w_in.contiguous();
  ConvDims d = conv_dims(x.shape(), w.shape(), p);
  std::vector<double> acc(d.N * d.O * d.OH * d.OW, 0.0);
  for (int64_t i = 0; i < static_cast<int64_t>(acc.size()); ++i)
    acc[i] = bias.defined() ? ref::get(bias, (i / (d.OH * d.OW)) % d.O) : 0.0;
  Tensor y = Tensor::empty({d.N, d.O, d.OH, d.OW}, x.dtype());
  SCCONV_DISPATCH_FLOAT(x.dtype(), "conv2d", [&] {
    const scalar_t* X = x.data<scalar_t>();
    const scalar_t* Wt = w.data<scalar_t>();
    const int64_t s = p.stride[1];
    for_each_row_tap(d, p, [&](int64_t n, int64_t o, int64_t c, int64_t cw, int64_t kh, int64_t kw,
                               int64_t oh, int64_t ih, int64_t lo, int64_t hi, int64_t iw0) {
      const double wv = Wt[((o * d.Cg + cw) * d.KH + kh) * d.KW + kw];
      double* out = &acc[((n * d.O + o) * d.OH + oh) * d.OW];
      const scalar_t* in = X + ((n * d.C + c) * d.H + ih) * d.W + iw0;
      for (int64_t ow = lo; ow < hi; ++ow) out[ow] += wv * double(in[(ow - lo) * s]);
    });
    for (int64_t i = 0; i < y.numel(); ++i) y.data<scalar_t>()[i] = static_cast<scalar_t>(acc[i]);
  });
  return y;
}

Tensor ReferenceBackend::conv2d_backward_data(const Tensor& grad_y_in, const Tensor& w_in,
                                              const Shape& x_shape, const Conv2dParams& p) {
  if (rounds_to_bf16(p.precision, grad_y_in))
    return ReferenceBackend::conv2d_backward_data(bf16_rounded(grad_y_in), bf16_rounded(w_in), x_shape, exact(p));
  Tensor gy = grad_y_in.contiguous(), w = w_in.contiguous();
  ConvDims d = conv_dims(x_shape, w.shape(), p);
  std::vector<double> acc(numel_of(x_shape), 0.0);
  Tensor gx = Tensor::empty(x_shape, gy.dtype());
  SCCONV_DISPATCH_FLOAT(gy.dtype(), "conv2d_backward_data", [&] {
    const scalar_t* GY = gy.data<scalar_t>();
    const scalar_t* Wt = w.data<scalar_t>();
    const int64_t s = p.stride[1];
    for_each_row_tap(d, p, [&](int64_t n, int64_t o, int64_t c, int64_t cw, int64_t kh, int64_t kw,
                               int64_t oh, int64_t ih, int64_t lo, int64_t hi, int64_t iw0) {
      const double wv = Wt[((o * d.Cg + cw) * d.KH + kh) * d.KW + kw];
      const scalar_t* g = GY + ((n * d.O + o) * d.OH + oh) * d.OW;
      double* out = &acc[((n * d.C + c) * d.H + ih) * d.W + iw0];
      for (int64_t ow = lo; ow < hi; ++ow) out[(ow - lo) * s] += wv * double(g[ow]);
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
  if (rounds_to_bf16(p.precision, grad_y_in)) {  // (the bias gradient is a sum, not a product: unrounded)
    Tensor gw = ReferenceBackend::conv2d_backward_weights(bf16_rounded(grad_y_in), bf16_rounded(x_in), w_shape,
                                                          false, exact(p)).first;
    Tensor gb = want_bias ? ReferenceBackend::conv2d_backward_weights(grad_y_in, x_in, w_shape, true, exact(p)).second
                          : Tensor();
    return {gw, gb};
  }
  Tensor gy = grad_y_in.contiguous(), x = x_in.contiguous();
  ConvDims d = conv_dims(x.shape(), w_shape, p);
  std::vector<double> acc(numel_of(w_shape), 0.0), accb(d.O, 0.0);
  Tensor gw = Tensor::empty(w_shape, gy.dtype()), gb;
  SCCONV_DISPATCH_FLOAT(gy.dtype(), "conv2d_backward_weights", [&] {
    const scalar_t* GY = gy.data<scalar_t>();
    const scalar_t* X = x.data<scalar_t>();
    const int64_t s = p.stride[1];
    for_each_row_tap(d, p, [&](int64_t n, int64_t o, int64_t c, int64_t cw, int64_t kh, int64_t kw,
                               int64_t oh, int64_t ih, int64_t lo, int64_t hi, int64_t iw0) {
      const scalar_t* g = GY + ((n * d.O + o) * d.OH + oh) * d.OW;
      const scalar_t* in = X + ((n * d.C + c) * d.H + ih) * d.W + iw0;
      double dot = 0;
      for (int64_t ow = lo; ow < hi; ++ow) dot += double(in[(ow - lo) * s]) * double(g[ow]);
      acc[((o * d.Cg + cw) * d.KH + kh) * d.KW + kw] += dot;
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

// ---- block-diagonal 1x1 convolution, one output per block: each block is the convolution above
// of its channels (a view), and its gradient goes to its window of grad_x ----------------------------

std::vector<Tensor> ReferenceBackend::conv1x1_split(const Tensor& x, const std::vector<Tensor>& w) {
  std::vector<Tensor> ys;
  int64_t c0 = 0;
  for (const Tensor& wi : w) {
    ys.push_back(ReferenceBackend::conv2d(x.slice_view(1, c0, c0 + wi.size(1)), wi, Tensor(), Conv2dParams{}));
    c0 += wi.size(1);
  }
  return ys;
}

Conv1x1SplitGrads ReferenceBackend::conv1x1_split_backward(const std::vector<Tensor>& grad_y,
                                                           const Tensor& x,
                                                           const std::vector<Tensor>& w) {
  const Conv2dParams p;
  Conv1x1SplitGrads out{Tensor::zeros(x.shape(), x.dtype()), {}};
  int64_t c0 = 0;
  for (size_t i = 0; i < w.size(); ++i) {
    const int64_t c1 = c0 + w[i].size(1);
    const Tensor xi = x.slice_view(1, c0, c1);
    if (grad_y[i].defined()) {
      out.grad_x.slice_view(1, c0, c1).copy_(ReferenceBackend::conv2d_backward_data(grad_y[i], w[i], xi.shape(), p));
      out.grad_w.push_back(ReferenceBackend::conv2d_backward_weights(grad_y[i], xi, w[i].shape(), false, p).first);
    } else {
      out.grad_w.push_back(Tensor::zeros(w[i].shape(), w[i].dtype()));
    }
    c0 = c1;
  }
  return out;
}

}  // namespace scconv
