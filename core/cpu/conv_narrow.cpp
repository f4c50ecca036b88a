// core/cpu/conv_narrow.cpp: the backward-data pass of a channels-last k x k (k > 1), stride-1
// convolution whose input has few channels (4 or 8) and whose output has 16, 32 or 64: the
// SCConv upper branch's merged convolution (CRU::upper_weight) at ResNet-20's first two stages.
//
// oneDNN pads such a pass's 4 input channels to a vector's 16 lanes and runs it as slowly as a
// 16-channel one (measured, 2 threads: 2.5 ms for (128, 4, 32, 32) <- (128, 16, 32, 32), 3x3,
// about what 16 input channels cost). Here the vector runs along an image row instead (see
// grad_x_image): 1.7 ms for that call, of which 0.5 lay out the gradient as planes; (128, 8, 16,
// 16) <- (128, 32, 16, 16): 1.35 -> 1.05 ms. 1x1 convolutions stay with oneDNN (faster there).
// The plain loops are ReferenceBackend::conv2d_backward_data (core/reference/linalg.cpp); tests
// compare the two (test_reference.cpp) and run float64 finite differences through this path
// (test_gradcheck.cpp, cases conv_narrow_*).
#include "core/cpu/conv_narrow.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/parallel.h"

namespace scconv::cpu {

namespace {

// A vector of 64 bytes (16 float32 or 8 float64 lanes; one AVX-512 register, two AVX2 ones):
// GCC/Clang vector extensions, because GCC's auto-vectoriser turns these loops into shuffles.
template <class T>
struct Vec {
  typedef T type __attribute__((vector_size(64)));
  static constexpr int kLanes = 64 / sizeof(T);
};

// grad_x of one image for CI input and CO output channels known at compile time, stride 1.
// The image's output gradient is first laid out as planes, one row of OW values per (oh, o),
// with KW - 1 zeros before and KW - 1 + a vector's lanes after it (`planes`, (OH, CO, Wp)).
// Then each block of L pixels (a vector's lanes) of an input row is
//   acc[c][l] = sum over kh, kw, o of  w[o, c, kh, kw] * grad_y[oh = ih + pad - kh, o, ow = iw + pad - kw]
// with acc in CI vector registers, one vector load of grad_y per (kh, o, kw) and CI
// multiply-adds by broadcast weights: no sums across lanes, and the zeros stand in for taps
// outside the image. wt: the weight as (KH, CO, KW, CI), in the order the loops read it.
template <class T, int CI, int CO>
void grad_x_image(const T* __restrict gy, const T* __restrict wt, const ConvDims& d,
                  int64_t pad_h, int64_t pad_w, int64_t Wp, T* __restrict planes,
                  T* __restrict gx) {
  using V = typename Vec<T>::type;
  constexpr int L = Vec<T>::kLanes;
  for (int64_t oh = 0; oh < d.OH; ++oh)
    for (int o = 0; o < CO; ++o) {
      T* row = planes + (oh * CO + o) * Wp + d.KW - 1;
      for (int64_t ow = 0; ow < d.OW; ++ow) row[ow] = gy[(oh * d.OW + ow) * CO + o];
    }
  for (int64_t ih = 0; ih < d.H; ++ih)
    for (int64_t iw0 = 0; iw0 < d.W; iw0 += L) {
      V acc[CI] = {};
      for (int64_t kh = 0; kh < d.KH; ++kh) {
        const int64_t oh = ih + pad_h - kh;
        if (oh < 0 || oh >= d.OH) continue;
        for (int o = 0; o < CO; ++o) {
          const T* g = planes + (oh * CO + o) * Wp + iw0 + pad_w + d.KW - 1;
          const T* wk = wt + (kh * CO + o) * d.KW * CI;
          for (int64_t kw = 0; kw < d.KW; ++kw) {
            V x;  // grad_y[oh, o, iw0 + l + pad - kw] or 0, l < L
            std::memcpy(&x, g - kw, sizeof x);
            for (int c = 0; c < CI; ++c) acc[c] += wk[kw * CI + c] * x;
          }
        }
      }
      const int64_t len = std::min<int64_t>(L, d.W - iw0);
      for (int64_t l = 0; l < len; ++l)
        for (int c = 0; c < CI; ++c) gx[(ih * d.W + iw0 + l) * CI + c] = acc[c][l];
    }
}

template <class T, int CI, int CO>
void run(const T* gy, const T* w, const ConvDims& d, const Conv2dParams& p, T* gx) {
  std::vector<T> wt(d.KH * CO * d.KW * CI);  // (CO, CI, KH, KW) -> (KH, CO, KW, CI)
  for (int o = 0; o < CO; ++o)
    for (int c = 0; c < CI; ++c)
      for (int64_t kh = 0; kh < d.KH; ++kh)
        for (int64_t kw = 0; kw < d.KW; ++kw)
          wt[((kh * CO + o) * d.KW + kw) * CI + c] = w[((o * CI + c) * d.KH + kh) * d.KW + kw];
  const int64_t Wp = d.OW + 2 * (d.KW - 1) + Vec<T>::kLanes;
  parallel_for(d.N, 1, [&](int64_t b, int64_t e) {
    std::vector<T> planes(d.OH * CO * Wp, T(0));  // the margins stay zero
    for (int64_t n = b; n < e; ++n)
      grad_x_image<T, CI, CO>(gy + n * d.OH * d.OW * CO, wt.data(), d, p.padding[0], p.padding[1],
                              Wp, planes.data(), gx + n * d.H * d.W * CI);
  });
}

template <class T>
void dispatch(const T* gy, const T* w, const ConvDims& d, const Conv2dParams& p, T* gx) {
  const int64_t ci = d.C, co = d.O;
  if (ci == 4 && co == 16) run<T, 4, 16>(gy, w, d, p, gx);
  else if (ci == 4 && co == 32) run<T, 4, 32>(gy, w, d, p, gx);
  else if (ci == 4 && co == 64) run<T, 4, 64>(gy, w, d, p, gx);
  else if (ci == 8 && co == 16) run<T, 8, 16>(gy, w, d, p, gx);
  else run<T, 8, 32>(gy, w, d, p, gx);
}

}  // namespace

bool narrow_backward_data_applies(const Shape& x_shape, const Shape& w_shape, const Conv2dParams& p) {
  if (x_shape.size() != 4 || w_shape.size() != 4 || p.groups != 1) return false;
  for (int i : {0, 1})
    if (p.stride[i] != 1 || p.dilation[i] != 1) return false;
  if (w_shape[2] * w_shape[3] == 1) return false;  // 1x1: oneDNN is faster (no taps to share a load)
  const int64_t ci = w_shape[1], co = w_shape[0];
  return (ci == 4 && (co == 16 || co == 32 || co == 64)) || (ci == 8 && (co == 16 || co == 32));
}

Tensor narrow_conv_backward_data(const Tensor& grad_y, const Tensor& w, const Shape& x_shape,
                                 const Conv2dParams& p) {
  SCCONV_CHECK(narrow_backward_data_applies(x_shape, w.shape(), p),
               "narrow_conv_backward_data: not a narrow convolution: weight " << w.str());
  const ConvDims d = conv_dims(x_shape, w.shape(), p);
  SCCONV_CHECK(grad_y.shape() == Shape({d.N, d.O, d.OH, d.OW}),
               "narrow_conv_backward_data: grad_y " << grad_y.str() << " does not match input "
                                                   << shape_str(x_shape) << " and weight " << w.str());
  Tensor gy = grad_y.contiguous(MemoryFormat::ChannelsLast), wc = w.contiguous();
  Tensor gx = Tensor::empty(x_shape, gy.dtype(), Device::CPU, MemoryFormat::ChannelsLast);
  SCCONV_DISPATCH_FLOAT(gy.dtype(), "narrow_conv_backward_data", [&] {
    dispatch<scalar_t>(gy.data<scalar_t>(), wc.data<scalar_t>(), d, p, gx.data<scalar_t>());
  });
  return gx;
}

}  // namespace scconv::cpu
