// core/cuda/blas.cpp: matmul and the CRU's block-diagonal 1x1 convolution (conv1x1_split) on
// cuBLAS. Reference: core/reference/linalg.cpp. Row-major products go to column-major cuBLAS as
// their transposes (C^T = B^T A^T); cuBLAS runs in its default math mode, which for float32 is
// true float32 (no TF32), so results match the CPU to float32 rounding.
#include <cublas_v2.h>

#include "core/cuda/cuda_backend.h"
#include "core/cuda/cuda_common.h"

namespace scconv {

namespace {

void check_blas(cublasStatus_t s, const char* what) {
  SCCONV_CHECK(s == CUBLAS_STATUS_SUCCESS,
               "cuBLAS error in " << what << " (during " << cuda::current_op() << "): " << cublasGetStatusString(s));
}

// The current GPU's handle, bound to its stream once, when made.
cublasHandle_t handle() {
  return cuda::per_device<cublasHandle_t>([] {
    cublasHandle_t h = nullptr;
    check_blas(cublasCreate(&h), "cublasCreate");
    check_blas(cublasSetStream(h, cuda::stream()), "cublasSetStream");
    return h;
  });
}

// A 2-D operand as a row-major matrix: itself (ld = row stride), or the transpose of a
// row-major matrix (flips `trans`), or a contiguous copy.
struct Operand {
  Tensor t;
  int64_t ld;
  bool trans;
};
Operand operand(const Tensor& x, bool trans) {
  const int64_t rows = x.size(0), cols = x.size(1);
  if (x.strides()[1] == 1 && x.strides()[0] >= std::max<int64_t>(cols, 1)) return {x, x.strides()[0], trans};
  if (x.strides()[0] == 1 && x.strides()[1] >= std::max<int64_t>(rows, 1)) return {x, x.strides()[1], !trans};
  Tensor c = x.contiguous();
  return {c, std::max<int64_t>(cols, 1), trans};
}

}  // namespace

// ---- gemm (cuda_common.h) --------------------------------------------------------------------
namespace cuda {
void gemm(DType dt, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const void* A, int64_t lda, int64_t sa,
          const void* B, int64_t ldb, int64_t sb, double beta, void* C, int64_t ldc, int64_t sc, int64_t batch) {
  if (M == 0 || N == 0 || batch == 0) return;
  const cublasOperation_t opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  // column-major view: C^T (N, M) = op(B)^T op(A)^T
  if (dt == DType::F32) {
    const float one = 1.f, b = float(beta);
    check_blas(cublasSgemmStridedBatched(handle(), opb, opa, int(N), int(M), int(K), &one, static_cast<const float*>(B),
                                         int(ldb), sb, static_cast<const float*>(A), int(lda), sa, &b,
                                         static_cast<float*>(C), int(ldc), sc, int(batch)),
               "cublasSgemmStridedBatched");
  } else if (dt == DType::F64) {
    const double one = 1.0, b = beta;
    check_blas(cublasDgemmStridedBatched(handle(), opb, opa, int(N), int(M), int(K), &one,
                                         static_cast<const double*>(B), int(ldb), sb, static_cast<const double*>(A),
                                         int(lda), sa, &b, static_cast<double*>(C), int(ldc), sc, int(batch)),
               "cublasDgemmStridedBatched");
  } else {
    SCCONV_FAIL(cuda::current_op() << ": expected float32 or float64 on cuda, got " << dtype_name(dt));
  }
}
}  // namespace cuda

using cuda::gemm;

Tensor CudaBackend::matmul(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b,
                           Precision /*precision: bf16 runs float32 on CUDA for now*/) {
  cuda::OpScope scope("matmul");
  const int64_t M = trans_a ? a.size(1) : a.size(0), K = trans_a ? a.size(0) : a.size(1);
  const int64_t N = trans_b ? b.size(0) : b.size(1);
  Tensor y = Tensor::empty({M, N}, a.dtype(), Device::CUDA);
  if (K == 0) return y.zero_();
  const Operand A = operand(a, trans_a), B = operand(b, trans_b);
  gemm(a.dtype(), A.trans, B.trans, M, N, K, A.t.raw_device_data(), A.ld, 0, B.t.raw_device_data(), B.ld, 0, 0.0,
       y.raw_device_data(), std::max<int64_t>(N, 1), 0, 1);
  return y;
}

// ---- conv1x1_split: x's channel blocks times w_i, one dense output per block ------------------
// Channels-last x (N*S, C) row-major: y_i (N*S, O_i) = x[:, c0:c0+C_i] w_i^T, one product.
// NCHW x: y_i[n] (O_i, S) = w_i (O_i, C_i) x[n, c0:c0+C_i] (C_i, S), batched over n.

namespace {
bool channels_last(const Tensor& x) {
  return x.dim() == 4 && x.is_contiguous(MemoryFormat::ChannelsLast) && !x.is_contiguous();
}
}  // namespace

std::vector<Tensor> CudaBackend::conv1x1_split(const Tensor& x_in, const std::vector<Tensor>& w) {
  cuda::OpScope scope("conv1x1_split");
  const bool cl = channels_last(x_in);
  const Tensor x = cl ? x_in : x_in.contiguous();
  const int64_t N = x.size(0), C = x.size(1), S = x.size(2) * x.size(3), es = int64_t(dtype_size(x.dtype()));
  std::vector<Tensor> ys;
  int64_t c0 = 0;
  for (const Tensor& wi_in : w) {
    const Tensor wi = wi_in.contiguous();
    const int64_t O = wi.size(0), Ci = wi.size(1);
    Tensor y = Tensor::empty({N, O, x.size(2), x.size(3)}, x.dtype(), Device::CUDA,
                             cl ? MemoryFormat::ChannelsLast : MemoryFormat::Contiguous);
    const char* xb = static_cast<const char*>(x.raw_device_data());
    if (cl)
      gemm(x.dtype(), false, true, N * S, O, Ci, xb + c0 * es, C, 0, wi.raw_device_data(), Ci, 0, 0.0,
           y.raw_device_data(), O, 0, 1);
    else
      gemm(x.dtype(), false, false, O, S, Ci, wi.raw_device_data(), Ci, 0, xb + c0 * S * es, S, C * S, 0.0,
           y.raw_device_data(), S, O * S, N);
    ys.push_back(y);
    c0 += Ci;
  }
  SCCONV_CHECK(c0 == C, "conv1x1_split: the weights take " << c0 << " input channels, x " << x.str() << " has " << C);
  return ys;
}

Conv1x1SplitGrads CudaBackend::conv1x1_split_backward(const std::vector<Tensor>& grad_y, const Tensor& x_in,
                                                      const std::vector<Tensor>& w) {
  cuda::OpScope scope("conv1x1_split_backward");
  const bool cl = channels_last(x_in);
  const Tensor x = cl ? x_in : x_in.contiguous();
  const int64_t N = x.size(0), C = x.size(1), S = x.size(2) * x.size(3), es = int64_t(dtype_size(x.dtype()));
  Conv1x1SplitGrads g{Tensor::empty(x.shape(), x.dtype(), Device::CUDA,
                                    cl ? MemoryFormat::ChannelsLast : MemoryFormat::Contiguous),
                      {}};
  char* gxb = static_cast<char*>(g.grad_x.raw_device_data());
  const char* xb = static_cast<const char*>(x.raw_device_data());
  int64_t c0 = 0;
  for (size_t i = 0; i < w.size(); ++i) {
    const Tensor wi = w[i].contiguous();
    const int64_t O = wi.size(0), Ci = wi.size(1);
    if (!grad_y[i].defined()) {  // no gradient: zeros
      Tensor block = g.grad_x.slice_view(1, c0, c0 + Ci);
      fill(block, 0.0);
      g.grad_w.push_back(Tensor::zeros(wi.shape(), x.dtype(), Device::CUDA));
      c0 += Ci;
      continue;
    }
    const Tensor gy = cl ? grad_y[i].contiguous(MemoryFormat::ChannelsLast) : grad_y[i].contiguous();
    Tensor gw = Tensor::empty(wi.shape(), x.dtype(), Device::CUDA);
    if (cl) {
      // grad_x block (N*S, C_i) = gy (N*S, O) w_i (O, C_i); grad_w_i (O, C_i) = gy^T x block
      gemm(x.dtype(), false, false, N * S, Ci, O, gy.raw_device_data(), O, 0, wi.raw_device_data(), Ci, 0, 0.0,
           gxb + c0 * es, C, 0, 1);
      gemm(x.dtype(), true, false, O, Ci, N * S, gy.raw_device_data(), O, 0, xb + c0 * es, C, 0, 0.0,
           gw.raw_device_data(), Ci, 0, 1);
    } else {
      // grad_x[n] block (C_i, S) = w_i^T gy[n]; per-sample grad_w (N, O, C_i) = gy[n] x[n]^T, summed
      gemm(x.dtype(), true, false, Ci, S, O, wi.raw_device_data(), Ci, 0, gy.raw_device_data(), S, O * S, 0.0,
           gxb + c0 * S * es, S, C * S, N);
      Tensor per = Tensor::empty({N, O, Ci}, x.dtype(), Device::CUDA);
      gemm(x.dtype(), false, true, O, Ci, S, gy.raw_device_data(), S, O * S, xb + c0 * S * es, S, C * S, 0.0,
           per.raw_device_data(), Ci, O * Ci, N);
      gw = sum(per, {0}, false).view(wi.shape());
    }
    g.grad_w.push_back(gw);
    c0 += Ci;
  }
  return g;
}

}  // namespace scconv
