// core/cpu/conv_narrow.cpp: the backward-data pass of a channels-last k x k (k > 1) convolution,
// stride 1 or 2, whose input has few channels (4 or 8) and whose output has 16, 32 or 64: the
// SCConv upper branch's merged convolution (CRU::upper_weight) at ResNet-20's first two stages,
// and its stride-2 form in the first unit of the next stage.
//
// oneDNN pads such a pass's 4 input channels to a vector's 16 lanes and runs it as slowly as a
// 16-channel one. Here each input pixel's gradient is a sum over the taps that reach it of
// (a pixel of grad_y: CO values, whole vectors) times (the weight's CO x CI block of that tap):
// CI vector accumulators, one multiply-add per (tap, vector of grad_y, input channel), then
// the lanes of each accumulator summed (lane_sums). No layout change of grad_y, no work for
// taps outside the image or between the strides. Measured, 2 threads, batch 128:
//   (128, 4, 32, 32) <- (128, 16, 32, 32), 3x3:        oneDNN 2.7, our row kernel 1.6, this 1.0 ms
//   (128, 8, 16, 16) <- (128, 32, 16, 16), 3x3:        oneDNN 1.35, rows 1.04, this 0.87 ms
//   (128, 4, 32, 32) <- (128, 32, 16, 16), 3x3, s2:    oneDNN 1.45, this 0.70 ms
//   (128, 8, 16, 16) <- (128, 64, 8, 8), 3x3, s2:      oneDNN 0.64, this 0.45 ms
// (16 input channels: oneDNN is faster, 0.59 against 1.35 ms; 1x1 kernels stay with oneDNN too.)
// The plain loops are ReferenceBackend::conv2d_backward_data (core/reference/linalg.cpp); tests
// compare the two (test_reference.cpp) and run float64 finite differences through this path
// (test_gradcheck.cpp, cases conv_narrow_*).
#include "core/cpu/conv_narrow.h"

#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "core/cpu/vec.h"
#include "core/parallel.h"

namespace scconv::cpu {

namespace {

// A vector of 64 bytes (16 float32 or 8 float64 lanes; one AVX-512 register, two AVX2 ones):
// cpu::VecOf (vec.h). Mask: lane indices for __builtin_shuffle.
template <class T>
struct Vec {
  static constexpr int kLanes = kW<T>;
  typedef typename VecOf<T, kLanes>::type type;
  typedef std::conditional_t<sizeof(T) == 4, int32_t, int64_t> index;
  typedef index mask __attribute__((vector_size(64)));
};

// ---- the sums of the lanes of CI vectors --------------------------------------------------------
// Each vector holds groups of K lanes (at first one group of all lanes). fold() adds the two
// halves of every group of x and of y: groups of K / 2 lanes, x's groups first, then y's.
// Folding pairs of vectors until one is left, then that one with itself until K = 1, leaves
// the sum of vector c in lane c, in a fixed order (the same for every pixel and thread count).
template <class T, int K, int Half>
inline typename Vec<T>::mask fold_mask() {
  constexpr int L = Vec<T>::kLanes, G = L / K;  // G groups per input vector
  typename Vec<T>::mask m;
  for (int i = 0; i < L; ++i) {
    const int g = i / (K / 2), r = i % (K / 2);
    m[i] = (g < G ? g * K : L + (g - G) * K) + Half * (K / 2) + r;
  }
  return m;
}

template <class T, int K>
inline typename Vec<T>::type fold(typename Vec<T>::type x, typename Vec<T>::type y) {
#if defined(__clang__)  // (clang has no __builtin_shuffle with a mask vector: the same sums, lane by lane)
  constexpr int L = Vec<T>::kLanes;
  const auto m0 = fold_mask<T, K, 0>(), m1 = fold_mask<T, K, 1>();
  typename Vec<T>::type r;
  for (int i = 0; i < L; ++i) r[i] = (m0[i] < L ? x[m0[i]] : y[m0[i] - L]) + (m1[i] < L ? x[m1[i]] : y[m1[i] - L]);
  return r;
#else
  return __builtin_shuffle(x, y, fold_mask<T, K, 0>()) + __builtin_shuffle(x, y, fold_mask<T, K, 1>());
#endif
}

// N vectors (a power of two) with groups of K lanes -> one vector, sum of v[c] in lane c.
template <class T, int N, int K = Vec<T>::kLanes>
inline typename Vec<T>::type lane_sums(typename Vec<T>::type* v) {
  if constexpr (K == 1) {
    static_assert(N == 1, "more vectors than lanes");
    return v[0];
  } else if constexpr (N == 1) {
    v[0] = fold<T, K>(v[0], v[0]);
    return lane_sums<T, 1, K / 2>(v);
  } else {
    for (int j = 0; j < N / 2; ++j) v[j] = fold<T, K>(v[2 * j], v[2 * j + 1]);
    return lane_sums<T, N / 2, K / 2>(v);
  }
}

// ---- one image --------------------------------------------------------------------------------

// acc[c] += sum over the taps t < TAPS of grad_y at g[t] (CO values) times w's block of tap t.
// wv: per (tap, c, vector v of output channels) the weights w[o, c, tap] for the o of v.
template <class T, int CI, int CO, int TAPS>
inline void add_taps(const T* const* g, const typename Vec<T>::type* wv, typename Vec<T>::type* acc) {
  using V = typename Vec<T>::type;
  constexpr int L = Vec<T>::kLanes, NV = CO / L;
#pragma GCC unroll 9
  for (int t = 0; t < TAPS; ++t)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) {
      const V x = load_vec<V>(g[t] + v * L);
#pragma GCC unroll 8
      for (int c = 0; c < CI; ++c) acc[c] += x * wv[(t * CI + c) * NV + v];
    }
}

// grad_x of one image (channels-last) from its grad_y, stride S. A 3x3 stride-1 kernel reads
// all nine taps through pointers (`zeros` for a tap outside the image); otherwise the loops
// visit only the taps that land on an output pixel.
template <class T, int CI, int CO, int S>
void grad_x_image(const T* __restrict gy, const typename Vec<T>::type* __restrict wv,
                  const ConvDims& d, int64_t pad_h, int64_t pad_w, const T* zeros,
                  T* __restrict gx) {
  using V = typename Vec<T>::type;
  constexpr int NV = CO / Vec<T>::kLanes;
  const bool three_by_three = S == 1 && d.KH == 3 && d.KW == 3;
  for (int64_t ih = 0; ih < d.H; ++ih)
    for (int64_t iw = 0; iw < d.W; ++iw) {
      V acc[CI] = {};
      if (three_by_three) {
        const T* g[9];
        const bool interior = ih + pad_h - 2 >= 0 && ih + pad_h < d.OH &&  // all nine taps inside
                              iw + pad_w - 2 >= 0 && iw + pad_w < d.OW;
        for (int kh = 0; kh < 3; ++kh)
          for (int kw = 0; kw < 3; ++kw) {
            const int64_t oh = ih + pad_h - kh, ow = iw + pad_w - kw;
            const bool inside = interior || (oh >= 0 && oh < d.OH && ow >= 0 && ow < d.OW);
            g[kh * 3 + kw] = inside ? gy + (oh * d.OW + ow) * CO : zeros;
          }
        add_taps<T, CI, CO, 9>(g, wv, acc);
      } else {
        // taps with (ih + pad - kh) a multiple of S: output row (ih + pad - kh) / S
        for (int64_t kh = (ih + pad_h) % S; kh < d.KH; kh += S) {
          const int64_t oh = (ih + pad_h - kh) / S;
          if (ih + pad_h - kh < 0 || oh >= d.OH) continue;
          for (int64_t kw = (iw + pad_w) % S; kw < d.KW; kw += S) {
            const int64_t ow = (iw + pad_w - kw) / S;
            if (iw + pad_w - kw < 0 || ow >= d.OW) continue;
            const T* g = gy + (oh * d.OW + ow) * CO;
            add_taps<T, CI, CO, 1>(&g, wv + (kh * d.KW + kw) * CI * NV, acc);
          }
        }
      }
      const V sums = lane_sums<T, CI>(acc);
      std::memcpy(gx + (ih * d.W + iw) * CI, &sums, CI * sizeof(T));
    }
}

template <class T, int CI, int CO, int S>
void run(const T* gy, const T* w, const ConvDims& d, const Conv2dParams& p, T* gx) {
  using V = typename Vec<T>::type;
  constexpr int L = Vec<T>::kLanes, NV = CO / L;
  const int64_t taps = d.KH * d.KW;
  std::vector<V> wv(taps * CI * NV);  // (CO, CI, KH, KW) -> (tap, CI, CO / L vectors)
  for (int64_t t = 0; t < taps; ++t)
    for (int c = 0; c < CI; ++c)
      for (int v = 0; v < NV; ++v)
        for (int l = 0; l < L; ++l) wv[(t * CI + c) * NV + v][l] = w[((v * L + l) * CI + c) * taps + t];
  const std::vector<T> zeros(CO, T(0));
  parallel_for(d.N, 1, [&](int64_t b, int64_t e) {
    for (int64_t n = b; n < e; ++n)
      grad_x_image<T, CI, CO, S>(gy + n * d.OH * d.OW * CO, wv.data(), d, p.padding[0],
                                 p.padding[1], zeros.data(), gx + n * d.H * d.W * CI);
  });
}

template <class T, int S>
void dispatch_channels(const T* gy, const T* w, const ConvDims& d, const Conv2dParams& p, T* gx) {
  const int64_t ci = d.C, co = d.O;
  if (ci == 4 && co == 16) run<T, 4, 16, S>(gy, w, d, p, gx);
  else if (ci == 4 && co == 32) run<T, 4, 32, S>(gy, w, d, p, gx);
  else if (ci == 4 && co == 64) run<T, 4, 64, S>(gy, w, d, p, gx);
  else if (ci == 8 && co == 16) run<T, 8, 16, S>(gy, w, d, p, gx);
  else if (ci == 8 && co == 32) run<T, 8, 32, S>(gy, w, d, p, gx);
  else run<T, 8, 64, S>(gy, w, d, p, gx);
}

}  // namespace

bool narrow_backward_data_applies(const Shape& x_shape, const Shape& w_shape, const Conv2dParams& p) {
  if (x_shape.size() != 4 || w_shape.size() != 4 || p.groups != 1) return false;
  if (p.stride[0] != p.stride[1] || (p.stride[0] != 1 && p.stride[0] != 2)) return false;
  if (p.dilation[0] != 1 || p.dilation[1] != 1) return false;
  if (w_shape[2] * w_shape[3] == 1) return false;  // 1x1: oneDNN is faster (no taps to share a load)
  const int64_t ci = w_shape[1], co = w_shape[0];
  return (ci == 4 || ci == 8) && (co == 16 || co == 32 || co == 64);
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
    const scalar_t* G = gy.data<scalar_t>();
    const scalar_t* W = wc.data<scalar_t>();
    scalar_t* X = gx.data<scalar_t>();
    if (p.stride[0] == 1) dispatch_channels<scalar_t, 1>(G, W, d, p, X);
    else dispatch_channels<scalar_t, 2>(G, W, d, p, X);
  });
  return gx;
}

}  // namespace scconv::cpu
