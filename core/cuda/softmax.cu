// core/cuda/softmax.cu: softmax / log-softmax along a dim, cross-entropy with label smoothing and
// the dropout mask on the GPU. Reference: core/reference/softmax.cpp; targets: core/math/loss.h;
// random numbers: core/math/random.h (the same counter-based draws as the CPU).
//   softmax:        one thread per (outer, inner) line, three passes over the line (max, sum, write)
//   cross-entropy:  one block per row (log-softmax, probabilities, the row's loss), then one block
//                   sums the rows into the 0-d loss; nothing is read back to the host
#include "core/cuda/cuda_backend.h"
#include "core/cuda/kernels.cuh"
#include "core/math/loss.h"
#include "core/math/random.h"

namespace scconv {

namespace {

template <class T>
__global__ void softmax_kernel(int64_t outer, int64_t n, int64_t inner, bool log, const T* x, T* y) {
  SCCONV_GRID_LOOP(line, outer * inner) {
    const int64_t o = line / inner, in = line % inner, base = o * n * inner + in;
    double mx = -INFINITY, s = 0;
    for (int64_t k = 0; k < n; ++k) mx = fmax(mx, static_cast<double>(x[base + k * inner]));
    for (int64_t k = 0; k < n; ++k) s += exp(static_cast<double>(x[base + k * inner]) - mx);
    for (int64_t k = 0; k < n; ++k) {
      const double v = static_cast<double>(x[base + k * inner]) - mx;
      y[base + k * inner] = static_cast<T>(log ? v - ::log(s) : exp(v) / s);
    }
  }
}

template <class T>
__global__ void softmax_backward_kernel(int64_t outer, int64_t n, int64_t inner, bool log, const T* y, const T* gy,
                                        T* gx) {
  SCCONV_GRID_LOOP(line, outer * inner) {
    const int64_t o = line / inner, in = line % inner, base = o * n * inner + in;
    double s = 0;
    for (int64_t k = 0; k < n; ++k) {
      const double g = static_cast<double>(gy[base + k * inner]);
      s += log ? g : g * static_cast<double>(y[base + k * inner]);
    }
    for (int64_t k = 0; k < n; ++k) {
      const double g = static_cast<double>(gy[base + k * inner]), v = static_cast<double>(y[base + k * inner]);
      gx[base + k * inner] = static_cast<T>(log ? g - exp(v) * s : v * (g - s));
    }
  }
}

// Block n: row n's probabilities and its loss -sum_c q_c log p_c. A label outside [0, C) marks
// the row in *bad (the host does not read labels; autograd's cross_entropy checks CPU labels).
template <class T>
__global__ void cross_entropy_kernel(int64_t C, double smoothing, const T* logits, const int64_t* labels, T* probs,
                                     double* row_loss, int* bad) {
  __shared__ double shared[32];
  const int64_t n = blockIdx.x;
  const T* x = logits + n * C;
  double mx = -INFINITY;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) mx = fmax(mx, static_cast<double>(x[c]));
  // block max through the sum helper: the max of maxima, lane by lane
  for (int o = 16; o > 0; o >>= 1) mx = fmax(mx, __shfl_down_sync(0xffffffffu, mx, o));
  __syncthreads();
  if ((threadIdx.x & 31) == 0) shared[threadIdx.x >> 5] = mx;
  __syncthreads();
  mx = -INFINITY;
  for (int w = 0; w < int((blockDim.x + 31) >> 5); ++w) mx = fmax(mx, shared[w]);
  double s = 0;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) s += exp(static_cast<double>(x[c]) - mx);
  s = cuda::block_sum(s, shared);
  const double lse = mx + ::log(s);
  const int64_t y = labels[n];
  if (threadIdx.x == 0 && (y < 0 || y >= C)) atomicExch(bad, 1);
  double l = 0;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    const double lp = static_cast<double>(x[c]) - lse;
    probs[n * C + c] = static_cast<T>(exp(lp));
    l -= math::smoothed_target(c, y, smoothing, C) * lp;
  }
  l = cuda::block_sum(l, shared);
  if (threadIdx.x == 0) row_loss[n] = l;
}

// One block: loss = mean of the rows' losses (NaN when a label was out of range).
template <class T>
__global__ void mean_loss_kernel(int64_t N, const double* row_loss, const int* bad, T* loss) {
  __shared__ double shared[32];
  double s = 0;
  for (int64_t n = threadIdx.x; n < N; n += blockDim.x) s += row_loss[n];
  s = cuda::block_sum(s, shared);
  if (threadIdx.x == 0) loss[0] = static_cast<T>(*bad ? NAN : s / double(N));
}

template <class T>
__global__ void cross_entropy_backward_kernel(int64_t N, int64_t C, double smoothing, const T* probs,
                                              const int64_t* labels, const T* grad_loss, T* gx) {
  const double g = static_cast<double>(grad_loss[0]) / double(N);
  SCCONV_GRID_LOOP(i, N * C) {
    const int64_t n = i / C, c = i % C;
    gx[i] = static_cast<T>((static_cast<double>(probs[i]) - math::smoothed_target(c, labels[n], smoothing, C)) * g);
  }
}

template <class T>
__global__ void dropout_kernel(int64_t n, double p, uint64_t seed, uint64_t offset, T* m) {
  const double keep = 1.0 / (1.0 - p);
  SCCONV_GRID_LOOP(i, n) m[i] = static_cast<T>(math::uniform01(seed, offset + uint64_t(i)) >= p ? keep : 0.0);
}

}  // namespace

Tensor CudaBackend::softmax(const Tensor& x_in, int64_t dim, bool log) {
  cuda::OpScope scope(log ? "log_softmax" : "softmax");
  const Tensor x = x_in.contiguous();
  const AroundDim a = around_dim(x.shape(), dim);
  Tensor y = Tensor::empty(x.shape(), x.dtype(), Device::CUDA);
  if (x.numel() == 0) return y;
  SCCONV_CUDA_FLOAT(x.dtype(), "softmax",
                    softmax_kernel<scalar_t><<<cuda::blocks_for(a.outer * a.inner), cuda::kThreads, 0, cuda::stream()>>>(
                        a.outer, a.n, a.inner, log, x.device_data<scalar_t>(), y.device_data<scalar_t>()));
  cuda::check_launch("softmax_kernel");
  return y;
}

Tensor CudaBackend::softmax_backward(const Tensor& y_in, const Tensor& grad_y_in, int64_t dim, bool log) {
  cuda::OpScope scope(log ? "log_softmax_backward" : "softmax_backward");
  const Tensor y = y_in.contiguous(), gy = grad_y_in.contiguous();
  const AroundDim a = around_dim(y.shape(), dim);
  Tensor gx = Tensor::empty(y.shape(), y.dtype(), Device::CUDA);
  if (y.numel() == 0) return gx;
  SCCONV_CUDA_FLOAT(y.dtype(), "softmax_backward",
                    softmax_backward_kernel<scalar_t><<<cuda::blocks_for(a.outer * a.inner), cuda::kThreads, 0,
                                                         cuda::stream()>>>(
                        a.outer, a.n, a.inner, log, y.device_data<scalar_t>(), gy.device_data<scalar_t>(),
                        gx.device_data<scalar_t>()));
  cuda::check_launch("softmax_backward_kernel");
  return gx;
}

Tensor CudaBackend::cross_entropy(const Tensor& logits_in, const Tensor& labels_in, double smoothing, Tensor& probs) {
  cuda::OpScope scope("cross_entropy");
  const Tensor logits = logits_in.contiguous(), labels = labels_in.contiguous();
  SCCONV_CHECK(labels.dtype() == DType::I64, "cross_entropy: labels must be int64, got " << labels.str());
  const int64_t N = logits.size(0), C = logits.size(1);
  probs = Tensor::empty(logits.shape(), logits.dtype(), Device::CUDA);
  Tensor loss = Tensor::empty({}, logits.dtype(), Device::CUDA);
  Tensor rows = Tensor::empty({std::max<int64_t>(N, 1)}, DType::F64, Device::CUDA);
  Tensor flag = cuda::scratch(sizeof(int));
  cuda::check(cudaMemsetAsync(flag.raw_device_data(), 0, sizeof(int), cuda::stream()), "cudaMemsetAsync");
  int* bad_flag = static_cast<int*>(flag.raw_device_data());
  SCCONV_CUDA_FLOAT(logits.dtype(), "cross_entropy", {
    if (N > 0) {
      cross_entropy_kernel<scalar_t><<<unsigned(N), 128, 0, cuda::stream()>>>(
          C, smoothing, logits.device_data<scalar_t>(), labels.device_data<int64_t>(),
          probs.device_data<scalar_t>(), rows.device_data<double>(), bad_flag);
      cuda::check_launch("cross_entropy_kernel");
    }
    mean_loss_kernel<scalar_t><<<1, 256, 0, cuda::stream()>>>(N, rows.device_data<double>(), bad_flag,
                                                              loss.device_data<scalar_t>());
    cuda::check_launch("mean_loss_kernel");
  });
  return loss;
}

Tensor CudaBackend::cross_entropy_backward(const Tensor& probs_in, const Tensor& labels_in, double smoothing,
                                           const Tensor& grad_loss) {
  cuda::OpScope scope("cross_entropy_backward");
  const Tensor probs = probs_in.contiguous(), labels = labels_in.contiguous();
  const int64_t N = probs.size(0), C = probs.size(1);
  Tensor gx = Tensor::empty(probs.shape(), probs.dtype(), Device::CUDA);
  if (probs.numel() == 0) return gx;
  const Tensor gl = grad_loss.to(probs.dtype()).contiguous();
  SCCONV_CUDA_FLOAT(probs.dtype(), "cross_entropy_backward",
                    cross_entropy_backward_kernel<scalar_t><<<cuda::blocks_for(N * C), cuda::kThreads, 0,
                                                               cuda::stream()>>>(
                        N, C, smoothing, probs.device_data<scalar_t>(), labels.device_data<int64_t>(),
                        gl.device_data<scalar_t>(), gx.device_data<scalar_t>()));
  cuda::check_launch("cross_entropy_backward_kernel");
  return gx;
}

Tensor CudaBackend::dropout_mask(const Shape& shape, DType dtype, double p, uint64_t seed, uint64_t offset) {
  cuda::OpScope scope("dropout");
  Tensor m = Tensor::empty(shape, dtype, Device::CUDA);
  const int64_t n = m.numel();
  if (n == 0) return m;
  SCCONV_CUDA_FLOAT(dtype, "dropout",
                    dropout_kernel<scalar_t><<<cuda::blocks_for(n), cuda::kThreads, 0, cuda::stream()>>>(
                        n, p, seed, offset, m.device_data<scalar_t>()));
  cuda::check_launch("dropout_kernel");
  return m;
}

}  // namespace scconv
