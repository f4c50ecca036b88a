// core/cpu/conv1x1_split.cpp: a block-diagonal 1x1 convolution whose blocks' outputs are
// separate dense tensors, on channels-last rows: the CRU's two squeezes (X_up -> X_up',
// X_low -> X_low'), which the upper branch's convolution and the fuse then read as they are.
// Group i reads C_i channels of each row of x (from channel c0_i on) and writes rows of O_i:
//   forward          y_i[r] = w_i x[r, c0_i : c0_i + C_i]           (O_i values per row)
//   backward-data    grad_x[r, c0_i : c0_i + C_i] = w_i^T grad_y_i[r]
//   backward-weights grad_w_i = sum_r grad_y_i[r] x[r, c0_i : ...]^T  (per sample, then over n)
// As one oneDNN convolution with a block-diagonal weight followed by copies of its output's two
// channel halves, this read and wrote every pixel more often and multiplied the zero blocks
// too (ResNet-20's first stage, 16 -> 2 x 4 channels at (128, 16, 32, 32), 2 threads, in the
// model: forward 0.59 ms plus the halves' copies, backward-data 0.50 plus a gradient assembled
// from the halves). Each sample is summed by one thread in a fixed order: the same bits at any
// thread count. The kernels have compile-time widths, the blocks of the CIFAR ResNets' squeezes
// (8 -> 4, 16 -> 8, 32 -> 16); other widths (ResNet-50's, 64 channels per block and more, or
// unequal blocks) run one oneDNN convolution with the block-diagonal weight and copy each
// block's channels out. Plain loops: ReferenceBackend::conv1x1_split (core/reference/linalg.cpp).
#include <algorithm>
#include <vector>

#include "core/cpu/cpu_backend.h"
#include "core/cpu/vec.h"
#include "core/parallel.h"

namespace scconv {

namespace {

constexpr int64_t kSumRows = 256;  // rows summed in T before the sum goes to double

// One group of `rows` rows; x's rows are ldx apart (the whole input row), y's and g's dense.
// wt: the weight transposed, (CI, CO); w: as given, (CO, CI).
template <class T, int CI, int CO>
void group_forward(const T* __restrict x, int64_t ldx, const T* __restrict wt, int64_t rows,
                   T* __restrict y) {
  using VO = typename cpu::VecOf<T, CO>::type;  // a row of y, one multiply-add per input channel
  VO wc[CI];
  for (int c = 0; c < CI; ++c) wc[c] = cpu::load_vec<VO>(wt + c * CO);
  for (int64_t r = 0; r < rows; ++r) {
    VO acc = {};
    for (int c = 0; c < CI; ++c) acc += x[r * ldx + c] * wc[c];
    cpu::store_vec(y + r * CO, acc);
  }
}

// A row of grad_x as vectors of up to kW lanes, one multiply-add per output channel.
template <class T, int CI, int CO>
void group_grad_x(const T* __restrict g, const T* __restrict w, int64_t rows, T* __restrict gx,
                  int64_t ldx) {
  constexpr int L = std::min(CI, cpu::kW<T>);
  using V = typename cpu::VecOf<T, L>::type;
  for (int c0 = 0; c0 < CI; c0 += L) {
    V wr[CO];
    for (int o = 0; o < CO; ++o) wr[o] = cpu::load_vec<V>(w + o * CI + c0);
    for (int64_t r = 0; r < rows; ++r) {
      V acc = {};
      for (int o = 0; o < CO; ++o) acc += g[r * CO + o] * wr[o];
      cpu::store_vec(gx + r * ldx + c0, acc);
    }
  }
}

// gw (CO, CI) += sum over the rows of g[r][o] x[r][c]: blocks of kSumRows rows in T, then double.
template <class T, int CI, int CO>
void group_grad_w(const T* __restrict g, const T* __restrict x, int64_t ldx, int64_t rows,
                  double* __restrict gw) {
  constexpr int L = std::min(CI, cpu::kW<T>);
  using V = typename cpu::VecOf<T, L>::type;
  for (int64_t r0 = 0; r0 < rows; r0 += kSumRows) {
    const int64_t r1 = std::min(rows, r0 + kSumRows);
    for (int c0 = 0; c0 < CI; c0 += L) {
      V acc[CO] = {};
      for (int64_t r = r0; r < r1; ++r) {
        const V xr = cpu::load_vec<V>(x + r * ldx + c0);
        for (int o = 0; o < CO; ++o) acc[o] += g[r * CO + o] * xr;
      }
      for (int o = 0; o < CO; ++o)
        for (int c = 0; c < L; ++c) gw[o * CI + c0 + c] += double(acc[o][c]);
    }
  }
}

// Whether every block has kernels (C_i -> C_i / 2 for C_i = 8, 16, 32); with_widths calls
// f.template operator()<CI, CO>() with a block's widths as compile-time constants.
bool has_kernels(const std::vector<Tensor>& w) {
  for (const Tensor& wi : w) {
    const int64_t c = wi.size(1);
    if (!((c == 8 || c == 16 || c == 32) && wi.size(0) == c / 2)) return false;
  }
  return true;
}
template <class F>
void with_widths(int64_t C, F f) {
  if (C == 8) f.template operator()<8, 4>();
  else if (C == 16) f.template operator()<16, 8>();
  else f.template operator()<32, 16>();
}

// Group i's first input channel (i = 0 .. w.size(); the last entry is the total).
std::vector<int64_t> group_starts(const std::vector<Tensor>& w, int dim) {
  std::vector<int64_t> c0{0};
  for (const Tensor& wi : w) c0.push_back(c0.back() + wi.size(dim));
  return c0;
}

// The blocks as one block-diagonal weight (sum O_i, sum C_i, 1, 1), for oneDNN.
Tensor block_diagonal(const std::vector<Tensor>& w) {
  const std::vector<int64_t> o0 = group_starts(w, 0), c0 = group_starts(w, 1);
  Tensor d = Tensor::zeros({o0.back(), c0.back(), 1, 1}, w[0].dtype());
  for (size_t i = 0; i < w.size(); ++i) d.slice_view(0, o0[i], o0[i + 1]).slice_view(1, c0[i], c0[i + 1]).copy_(w[i]);
  return d;
}

}  // namespace

std::vector<Tensor> CpuBackend::conv1x1_split(const Tensor& x_in, const std::vector<Tensor>& w) {
  const MemoryFormat cl = MemoryFormat::ChannelsLast, fmt = x_in.suggest_memory_format();
  std::vector<Tensor> ys;
  if (!has_kernels(w)) {  // other widths: one oneDNN convolution, each block's channels copied out
    const Tensor y = conv2d(x_in, block_diagonal(w), Tensor(), Conv2dParams{});
    const std::vector<int64_t> o0 = group_starts(w, 0);
    for (size_t i = 0; i < w.size(); ++i) ys.push_back(y.slice_view(1, o0[i], o0[i + 1]).contiguous(fmt));
    return ys;
  }
  Tensor x = x_in.contiguous(cl);
  const int64_t N = x.size(0), C = x.size(1), S = x.size(2) * x.size(3);
  const std::vector<int64_t> c0 = group_starts(w, 1);
  for (const Tensor& wi : w)
    ys.push_back(Tensor::empty({N, wi.size(0), x.size(2), x.size(3)}, x.dtype(), Device::CPU, cl));
  SCCONV_DISPATCH_FLOAT(x.dtype(), "conv1x1_split", [&] {
    using T = scalar_t;
    std::vector<std::vector<T>> wt;  // each weight transposed, (C_i, O_i)
    for (const Tensor& wi : w) {
      const int64_t O = wi.size(0), Ci = wi.size(1);
      std::vector<T> v = wi.contiguous().to_vector<T>(), t(Ci * O);
      for (int64_t o = 0; o < O; ++o)
        for (int64_t c = 0; c < Ci; ++c) t[c * O + o] = v[o * Ci + c];
      wt.push_back(std::move(t));
    }
    const T* X = x.data<T>();
    parallel_for(N, per_thread(N), [&](int64_t lo, int64_t hi) {
      for (int64_t n = lo; n < hi; ++n)  // the groups of a sample in turn (its rows stay in cache)
        for (size_t i = 0; i < w.size(); ++i) {
          const int64_t O = w[i].size(0);
          T* y = ys[i].data<T>() + n * S * O;
          with_widths(w[i].size(1), [&]<int CI, int CO>() {
            group_forward<T, CI, CO>(X + n * S * C + c0[i], C, wt[i].data(), S, y);
          });
        }
    });
  });
  if (fmt != cl)
    for (Tensor& y : ys) y = y.contiguous(fmt);
  return ys;
}

Conv1x1SplitGrads CpuBackend::conv1x1_split_backward(const std::vector<Tensor>& grad_y,
                                                     const Tensor& x_in, const std::vector<Tensor>& w) {
  const MemoryFormat cl = MemoryFormat::ChannelsLast, fmt = x_in.suggest_memory_format();
  Conv1x1SplitGrads out;
  if (!has_kernels(w)) {  // other widths: the blocks' gradients side by side, then oneDNN's passes
    const std::vector<int64_t> o0 = group_starts(w, 0), c0 = group_starts(w, 1);
    Tensor gy = Tensor::empty({x_in.size(0), o0.back(), x_in.size(2), x_in.size(3)}, x_in.dtype(),
                              Device::CPU, fmt);
    for (size_t i = 0; i < w.size(); ++i) {
      Tensor window = gy.slice_view(1, o0[i], o0[i + 1]);
      if (grad_y[i].defined()) window.copy_(grad_y[i]);
      else window.fill_(0.0);
    }
    const Tensor wd = block_diagonal(w);
    const Conv2dParams p;
    out.grad_x = conv2d_backward_data(gy, wd, x_in.shape(), p);
    const Tensor gwd = conv2d_backward_weights(gy, x_in, wd.shape(), false, p).first;
    for (size_t i = 0; i < w.size(); ++i)
      out.grad_w.push_back(gwd.slice_view(0, o0[i], o0[i + 1]).slice_view(1, c0[i], c0[i + 1]).contiguous());
    return out;
  }
  Tensor x = x_in.contiguous(cl);
  const int64_t N = x.size(0), C = x.size(1), S = x.size(2) * x.size(3);
  const std::vector<int64_t> c0 = group_starts(w, 1);
  std::vector<Tensor> g;
  int64_t wsize = 0;  // sum of O_i C_i
  for (size_t i = 0; i < w.size(); ++i) {
    g.push_back(grad_y[i].defined() ? grad_y[i].contiguous(cl) : Tensor());
    wsize += w[i].size(0) * w[i].size(1);
  }
  out.grad_x = Tensor::empty(x.shape(), x.dtype(), Device::CPU, cl);
  // each sample's part of every grad_w (a tensor: its block is reused, not fresh pages)
  Tensor per_sample = Tensor::empty({N, wsize}, DType::F64);
  SCCONV_DISPATCH_FLOAT(x.dtype(), "conv1x1_split_backward", [&] {
    using T = scalar_t;
    std::vector<std::vector<T>> wv;
    for (const Tensor& wi : w) wv.push_back(wi.contiguous().to_vector<T>());
    const T* X = x.data<T>();
    T* GX = out.grad_x.data<T>();
    double* PS = per_sample.data<double>();
    parallel_for(N, per_thread(N), [&](int64_t lo, int64_t hi) {
      for (int64_t n = lo; n < hi; ++n) {
        int64_t at = 0;  // this group's place in the sample's row of per_sample
        for (size_t i = 0; i < w.size(); ++i) {
          const int64_t O = w[i].size(0), Ci = w[i].size(1);
          double* gw = PS + n * wsize + at;
          std::fill(gw, gw + O * Ci, 0.0);
          at += O * Ci;
          T* gx = GX + n * S * C + c0[i];
          if (!g[i].defined()) {  // no gradient reached this group's output: its channels get zeros
            for (int64_t r = 0; r < S; ++r) std::fill(gx + r * C, gx + r * C + Ci, T(0));
            continue;
          }
          const T* gy = g[i].data<T>() + n * S * O;
          const T* xs = X + n * S * C + c0[i];
          with_widths(Ci, [&]<int CI, int CO>() {
            group_grad_x<T, CI, CO>(gy, wv[i].data(), S, gx, C);
            group_grad_w<T, CI, CO>(gy, xs, C, S, gw);
          });
        }
      }
    });
  });
  int64_t at = 0;  // each grad_w: its columns of per_sample, summed over the samples in order
  for (const Tensor& wi : w) {
    const int64_t K = wi.size(0) * wi.size(1);
    out.grad_w.push_back(Tensor::from_vector(cpu::sum_in_sample_order(per_sample.data<double>() + at, N, wsize, K),
                                             wi.shape()).to(wi.dtype()));
    at += K;
  }
  if (fmt != cl) out.grad_x = out.grad_x.contiguous(fmt);
  return out;
}

}  // namespace scconv
