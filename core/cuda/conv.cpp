// core/cuda/conv.cpp: 2-D convolution forward, backward-data and backward-weights on cuDNN 9.
// Reference: core/reference/linalg.cpp (the direct loops). Uses cuDNN's convolution API (still
// supported in cuDNN 9; the graph API would add fusion, not precision).
//   Layout: the activation's (channels-last runs NHWC, otherwise NCHW); the filter is given to
//     cuDNN in the same format, the weight gradient comes back in the reference's (O, C/g, KH, KW)
//     row-major layout. Where cuDNN offers no usable channels-last algorithm, the pass runs in
//     NCHW and its result is converted back.
//   Precision: FMA math (true float32, never TF32), so results match the CPU to float32 rounding.
//   Algorithms: chosen once per shape and cached: cuDNN's heuristics by default, a timed search
//     with CudnnOptions::measure; CudnnOptions::deterministic keeps only deterministic ones.
//     Workspace comes from the caching allocator.
#include <cudnn.h>

#include <mutex>
#include <sstream>
#include <unordered_map>

#include "core/cuda/cuda_backend.h"
#include "core/cuda/cuda_common.h"

namespace scconv {

namespace {

void check_dnn(cudnnStatus_t s, const char* what) {
  SCCONV_CHECK(s == CUDNN_STATUS_SUCCESS,
               "cuDNN error in " << what << " (during " << cuda::current_op() << "): " << cudnnGetErrorString(s));
}

// The current GPU's handle, bound to its stream once, when made.
cudnnHandle_t handle() {
  return cuda::per_device<cudnnHandle_t>([] {
    cudnnHandle_t h = nullptr;
    check_dnn(cudnnCreate(&h), "cudnnCreate");
    check_dnn(cudnnSetStream(h, cuda::stream()), "cudnnSetStream");
    return h;
  });
}

cudnnDataType_t dnn_type(DType dt) {
  SCCONV_CHECK(dt == DType::F32 || dt == DType::F64,
               cuda::current_op() << ": expected float32 or float64 on cuda, got " << dtype_name(dt));
  return dt == DType::F32 ? CUDNN_DATA_FLOAT : CUDNN_DATA_DOUBLE;
}

// The descriptors of one convolution problem (x, w, y shapes; layout; dtype; params).
struct Problem {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  cudnnTensorFormat_t format;
  DType dtype;
  std::string key;
  Problem(const Shape& xs, const Shape& ws, const Conv2dParams& p, DType dt, MemoryFormat mf) : dtype(dt) {
    const ConvDims d = conv_dims(xs, ws, p);
    format = mf == MemoryFormat::ChannelsLast ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW;
    const cudnnDataType_t t = dnn_type(dt);
    check_dnn(cudnnCreateTensorDescriptor(&x), "cudnnCreateTensorDescriptor");
    check_dnn(cudnnCreateTensorDescriptor(&y), "cudnnCreateTensorDescriptor");
    check_dnn(cudnnCreateFilterDescriptor(&w), "cudnnCreateFilterDescriptor");
    check_dnn(cudnnCreateConvolutionDescriptor(&conv), "cudnnCreateConvolutionDescriptor");
    check_dnn(cudnnSetTensor4dDescriptor(x, format, t, int(d.N), int(d.C), int(d.H), int(d.W)), "input descriptor");
    check_dnn(cudnnSetTensor4dDescriptor(y, format, t, int(d.N), int(d.O), int(d.OH), int(d.OW)), "output descriptor");
    check_dnn(cudnnSetFilter4dDescriptor(w, t, format, int(d.O), int(d.Cg), int(d.KH), int(d.KW)), "filter descriptor");
    check_dnn(cudnnSetConvolution2dDescriptor(conv, int(p.padding[0]), int(p.padding[1]), int(p.stride[0]),
                                              int(p.stride[1]), int(p.dilation[0]), int(p.dilation[1]),
                                              CUDNN_CROSS_CORRELATION, t),
              "convolution descriptor");
    check_dnn(cudnnSetConvolutionGroupCount(conv, int(p.groups)), "cudnnSetConvolutionGroupCount");
    check_dnn(cudnnSetConvolutionMathType(conv, CUDNN_FMA_MATH), "cudnnSetConvolutionMathType");
    std::ostringstream k;
    k << shape_str(xs) << shape_str(ws) << p.stride[0] << ',' << p.stride[1] << ',' << p.padding[0] << ','
      << p.padding[1] << ',' << p.dilation[0] << ',' << p.dilation[1] << ',' << p.groups << ',' << int(dt) << ','
      << int(format);
    key = k.str();
  }
  ~Problem() {
    cudnnDestroyTensorDescriptor(x);
    cudnnDestroyTensorDescriptor(y);
    cudnnDestroyFilterDescriptor(w);
    cudnnDestroyConvolutionDescriptor(conv);
  }
  Problem(const Problem&) = delete;
  Problem& operator=(const Problem&) = delete;
};

// ---- algorithm choice, cached per (pass, problem, options) ------------------------------------
struct Choice {
  int algo;
  size_t workspace;
};
std::mutex g_cache_mu;
std::unordered_map<std::string, Choice> g_cache;

// The first usable candidate of a cuDNN ranking (best first); algo -1 when there is none.
template <class Perf>
Choice pick(const Perf* perf, int n, bool deterministic) {
  for (int i = 0; i < n; ++i) {
    if (perf[i].status != CUDNN_STATUS_SUCCESS) continue;
    if (deterministic && perf[i].determinism != CUDNN_DETERMINISTIC) continue;
    if (perf[i].mathType == CUDNN_TENSOR_OP_MATH || perf[i].mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION) continue;
    return {int(perf[i].algo), perf[i].memory};
  }
  return {-1, 0};
}

template <class F>
Choice cached(const char* pass, const Problem& pr, F choose_fn) {
  const CudnnOptions o = cudnn_options();
  const std::string key = std::string(pass) + pr.key + (o.measure ? "m" : "h") + (o.deterministic ? "d" : "n");
  {
    std::lock_guard<std::mutex> lock(g_cache_mu);
    auto it = g_cache.find(key);
    if (it != g_cache.end()) return it->second;
  }
  const Choice c = choose_fn(o);
  std::lock_guard<std::mutex> lock(g_cache_mu);
  g_cache[key] = c;
  return c;
}

// One pass's choice: cuDNN's ranking (timed with `measure`, else its heuristics), the first
// usable candidate, and its workspace size. rank(measure, perf, &n) fills perf; workspace(algo,
// &bytes) sizes it.
template <class Perf, int Count, class Rank, class Workspace>
Choice choose(const char* pass, const Problem& pr, Rank rank, Workspace workspace) {
  return cached(pass, pr, [&](const CudnnOptions& o) {
    Perf perf[Count];
    int n = 0;
    rank(o.measure, perf, &n);
    Choice c = pick(perf, n, o.deterministic);
    if (c.algo >= 0) workspace(c.algo, &c.workspace);
    return c;
  });
}

Choice forward_choice(const Problem& pr) {
  constexpr int kCount = CUDNN_CONVOLUTION_FWD_ALGO_COUNT;
  return choose<cudnnConvolutionFwdAlgoPerf_t, kCount>(
      "forward", pr,
      [&](bool measure, cudnnConvolutionFwdAlgoPerf_t* perf, int* n) {
        check_dnn(measure ? cudnnFindConvolutionForwardAlgorithm(handle(), pr.x, pr.w, pr.conv, pr.y, kCount, n, perf)
                          : cudnnGetConvolutionForwardAlgorithm_v7(handle(), pr.x, pr.w, pr.conv, pr.y, kCount, n, perf),
                  "ranking forward algorithms");
      },
      [&](int algo, size_t* bytes) {
        check_dnn(cudnnGetConvolutionForwardWorkspaceSize(handle(), pr.x, pr.w, pr.conv, pr.y,
                                                          cudnnConvolutionFwdAlgo_t(algo), bytes),
                  "cudnnGetConvolutionForwardWorkspaceSize");
      });
}

Choice backward_data_choice(const Problem& pr) {
  constexpr int kCount = CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT;
  return choose<cudnnConvolutionBwdDataAlgoPerf_t, kCount>(
      "backward-data", pr,
      [&](bool measure, cudnnConvolutionBwdDataAlgoPerf_t* perf, int* n) {
        check_dnn(measure ? cudnnFindConvolutionBackwardDataAlgorithm(handle(), pr.w, pr.y, pr.conv, pr.x, kCount, n,
                                                                      perf)
                          : cudnnGetConvolutionBackwardDataAlgorithm_v7(handle(), pr.w, pr.y, pr.conv, pr.x, kCount,
                                                                        n, perf),
                  "ranking backward-data algorithms");
      },
      [&](int algo, size_t* bytes) {
        check_dnn(cudnnGetConvolutionBackwardDataWorkspaceSize(handle(), pr.w, pr.y, pr.conv, pr.x,
                                                               cudnnConvolutionBwdDataAlgo_t(algo), bytes),
                  "cudnnGetConvolutionBackwardDataWorkspaceSize");
      });
}

Choice backward_filter_choice(const Problem& pr) {
  constexpr int kCount = CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT;
  return choose<cudnnConvolutionBwdFilterAlgoPerf_t, kCount>(
      "backward-weights", pr,
      [&](bool measure, cudnnConvolutionBwdFilterAlgoPerf_t* perf, int* n) {
        check_dnn(measure ? cudnnFindConvolutionBackwardFilterAlgorithm(handle(), pr.x, pr.y, pr.conv, pr.w, kCount,
                                                                        n, perf)
                          : cudnnGetConvolutionBackwardFilterAlgorithm_v7(handle(), pr.x, pr.y, pr.conv, pr.w, kCount,
                                                                          n, perf),
                  "ranking backward-weights algorithms");
      },
      [&](int algo, size_t* bytes) {
        check_dnn(cudnnGetConvolutionBackwardFilterWorkspaceSize(handle(), pr.x, pr.y, pr.conv, pr.w,
                                                                 cudnnConvolutionBwdFilterAlgo_t(algo), bytes),
                  "cudnnGetConvolutionBackwardFilterWorkspaceSize");
      });
}

// alpha = 1, beta = 0 in the problem's scalar type
struct Scalars {
  float f1 = 1.f, f0 = 0.f;
  double d1 = 1.0, d0 = 0.0;
  const void* one(DType dt) const { return dt == DType::F32 ? static_cast<const void*>(&f1) : &d1; }
  const void* zero(DType dt) const { return dt == DType::F32 ? static_cast<const void*>(&f0) : &d0; }
};

MemoryFormat layout_of(const Tensor& t) {
  return t.dim() == 4 && t.suggest_memory_format() == MemoryFormat::ChannelsLast ? MemoryFormat::ChannelsLast
                                                                                 : MemoryFormat::Contiguous;
}

// A convolution call's status: true when it ran; false when cuDNN refused a channels-last problem
// as not supported (in_layout then tries NCHW); any other failure is an Error.
bool ran(cudnnStatus_t st, const char* what, MemoryFormat mf) {
  if (st == CUDNN_STATUS_NOT_SUPPORTED && mf == MemoryFormat::ChannelsLast) return false;
  check_dnn(st, what);
  return true;
}

// Runs f(layout) in the activation's layout; where cuDNN offers no usable algorithm there (f
// returns an undefined tensor: FMA math or determinism can rule out every channels-last one), in
// NCHW, converting the result back when `back` is set.
template <class F>
Tensor in_layout(MemoryFormat mf, bool back, const char* pass, F f) {
  Tensor r = f(mf);
  if (!r.defined() && mf == MemoryFormat::ChannelsLast) {
    r = f(MemoryFormat::Contiguous);
    if (r.defined() && back) r = r.contiguous(MemoryFormat::ChannelsLast);
  }
  SCCONV_CHECK(r.defined(), "cuDNN has no " << (cudnn_options().deterministic ? "deterministic " : "")
                                            << "float32/float64 algorithm (without TF32) for the convolution " << pass
                                            << " (during " << cuda::current_op() << "), in NHWC or NCHW");
  return r;
}

void add_bias(Tensor& y, const Tensor& bias, MemoryFormat mf) {
  const Tensor b = bias.contiguous();
  cudnnTensorDescriptor_t bd = nullptr, yd = nullptr;
  check_dnn(cudnnCreateTensorDescriptor(&bd), "cudnnCreateTensorDescriptor");
  check_dnn(cudnnCreateTensorDescriptor(&yd), "cudnnCreateTensorDescriptor");
  cudnnStatus_t st = cudnnSetTensor4dDescriptor(bd, CUDNN_TENSOR_NCHW, dnn_type(b.dtype()), 1, int(y.size(1)), 1, 1);
  if (st == CUDNN_STATUS_SUCCESS)
    st = cudnnSetTensor4dDescriptor(yd, mf == MemoryFormat::ChannelsLast ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW,
                                    dnn_type(y.dtype()), int(y.size(0)), int(y.size(1)), int(y.size(2)),
                                    int(y.size(3)));
  const Scalars s;
  if (st == CUDNN_STATUS_SUCCESS)
    st = cudnnAddTensor(handle(), s.one(y.dtype()), bd, b.raw_device_data(), s.one(y.dtype()), yd, y.raw_device_data());
  cudnnDestroyTensorDescriptor(bd);
  cudnnDestroyTensorDescriptor(yd);
  check_dnn(st, "cudnnAddTensor (bias)");
}

}  // namespace

Tensor CudaBackend::conv2d(const Tensor& x_in, const Tensor& w_in, const Tensor& bias, const Conv2dParams& p) {
  cuda::OpScope scope("conv2d");
  const ConvDims d = conv_dims(x_in.shape(), w_in.shape(), p);
  const MemoryFormat out_mf = layout_of(x_in);
  Tensor y = in_layout(out_mf, true, "forward", [&](MemoryFormat mf) {
    const Tensor x = x_in.contiguous(mf), w = w_in.contiguous(mf);
    Tensor out = Tensor::empty({d.N, d.O, d.OH, d.OW}, x.dtype(), Device::CUDA, mf);
    if (out.numel() == 0) return out;
    if (d.C == 0 || d.KH == 0 || d.KW == 0) return out.zero_();
    const Problem pr(x.shape(), w.shape(), p, x.dtype(), mf);
    const Choice c = forward_choice(pr);
    if (c.algo < 0) return Tensor();
    Tensor ws = cuda::scratch(int64_t(c.workspace));
    const Scalars s;
    if (!ran(cudnnConvolutionForward(handle(), s.one(x.dtype()), pr.x, x.raw_device_data(), pr.w, w.raw_device_data(),
                                      pr.conv, cudnnConvolutionFwdAlgo_t(c.algo), ws.raw_device_data(), c.workspace,
                                      s.zero(x.dtype()), pr.y, out.raw_device_data()),
             "cudnnConvolutionForward", mf))
      return Tensor();
    return out;
  });
  if (bias.defined() && y.numel() > 0) add_bias(y, bias, layout_of(y));
  return y;
}

Tensor CudaBackend::conv2d_backward_data(const Tensor& grad_y_in, const Tensor& w_in, const Shape& x_shape,
                                         const Conv2dParams& p) {
  cuda::OpScope scope("conv2d_backward_data");
  return in_layout(layout_of(grad_y_in), true, "backward-data", [&](MemoryFormat mf) {
    const Tensor gy = grad_y_in.contiguous(mf), w = w_in.contiguous(mf);
    Tensor gx = Tensor::empty(x_shape, gy.dtype(), Device::CUDA, mf);
    if (gx.numel() == 0) return gx;
    if (gy.numel() == 0 || w.numel() == 0) return gx.zero_();
    const Problem pr(x_shape, w.shape(), p, gy.dtype(), mf);
    const Choice c = backward_data_choice(pr);
    if (c.algo < 0) return Tensor();
    Tensor ws = cuda::scratch(int64_t(c.workspace));
    const Scalars s;
    if (!ran(cudnnConvolutionBackwardData(handle(), s.one(gy.dtype()), pr.w, w.raw_device_data(), pr.y,
                                           gy.raw_device_data(), pr.conv, cudnnConvolutionBwdDataAlgo_t(c.algo),
                                           ws.raw_device_data(), c.workspace, s.zero(gy.dtype()), pr.x,
                                           gx.raw_device_data()),
             "cudnnConvolutionBackwardData", mf))
      return Tensor();
    return gx;
  });
}

std::pair<Tensor, Tensor> CudaBackend::conv2d_backward_weights(const Tensor& grad_y_in, const Tensor& x_in,
                                                               const Shape& w_shape, bool want_bias,
                                                               const Conv2dParams& p) {
  cuda::OpScope scope("conv2d_backward_weights");
  // the weight gradient comes back in the reference's (O, C/g, KH, KW) row-major layout
  Tensor gw = in_layout(layout_of(x_in), false, "backward-weights", [&](MemoryFormat mf) {
    const Tensor x = x_in.contiguous(mf), gy = grad_y_in.contiguous(mf);
    Tensor out = Tensor::empty(w_shape, x.dtype(), Device::CUDA, mf);
    if (out.numel() == 0) return out;
    if (gy.numel() == 0 || x.numel() == 0) return out.zero_();
    const Problem pr(x.shape(), w_shape, p, x.dtype(), mf);
    const Choice c = backward_filter_choice(pr);
    if (c.algo < 0) return Tensor();
    Tensor ws = cuda::scratch(int64_t(c.workspace));
    const Scalars s;
    if (!ran(cudnnConvolutionBackwardFilter(handle(), s.one(x.dtype()), pr.x, x.raw_device_data(), pr.y,
                                             gy.raw_device_data(), pr.conv, cudnnConvolutionBwdFilterAlgo_t(c.algo),
                                             ws.raw_device_data(), c.workspace, s.zero(x.dtype()), pr.w,
                                             out.raw_device_data()),
             "cudnnConvolutionBackwardFilter", mf))
      return Tensor();
    return out;
  });
  Tensor gb = want_bias ? sum(grad_y_in, {0, 2, 3}, false) : Tensor();
  return {gw.contiguous(), gb};
}

}  // namespace scconv
