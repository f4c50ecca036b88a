// autograd/ops.h: the differentiable ops. Each checks its arguments (errors name the op and the
// shapes), runs the kernel of backend_for(device) and, when an input requires grad, records a
// node whose backward sits right beside the forward in autograd/ops_*.cpp:
//   ops_elementwise.cpp  add sub mul div neg relu sigmoid exp log sqrt pow clamp where compare
//   ops_reduce.cpp       sum mean global_avg_pool2d max_pool2d avg_pool2d cru_fuse
//                        cru_fuse_lower
//   ops_linalg.cpp       matmul linear conv2d conv1x1_split
//   ops_norm.cpp         batch_norm batch_norm_relu group_norm group_norm_seed sru
//   ops_shape.cpp        reshape flatten slice split cat subsample2d pad_channels contiguous
//   ops_loss.cpp         softmax log_softmax cross_entropy dropout
#pragma once
#include <array>
#include <cstdint>
#include <vector>

#include "autograd/node.h"
#include "core/backend.h"
#include "core/rng.h"
#include "core/tensor.h"

namespace scconv {

// ---- element-wise (binary ops broadcast like PyTorch) --------------------------------------------
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor add(const Tensor& a, double b);
Tensor mul(const Tensor& a, double b);
inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator*(const Tensor& a, double b) { return mul(a, b); }
inline Tensor operator+(const Tensor& a, double b) { return add(a, b); }
Tensor neg(const Tensor& x);
Tensor relu(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor pow(const Tensor& x, double exponent);
Tensor clamp(const Tensor& x, double lo, double hi);
// Masks (uint8, 0/1), no gradient.
Tensor gt(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor eq(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, double b);
// mask ? a : b, all three broadcast. Gradient flows to a where mask, to b elsewhere.
Tensor where(const Tensor& mask, const Tensor& a, const Tensor& b);

// ---- reductions and pooling ----------------------------------------------------------------------
Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false);
Tensor sum(const Tensor& x);  // all elements -> 0-d
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false);
Tensor mean(const Tensor& x);
// Sums g over the broadcast dims so that it has `shape` (the backward of broadcasting).
Tensor sum_to(const Tensor& g, const Shape& shape);
Tensor global_avg_pool2d(const Tensor& x);  // (N,C,H,W) -> (N,C,1,1)
Tensor max_pool2d(const Tensor& x, std::array<int64_t, 2> kernel, std::array<int64_t, 2> stride,
                  std::array<int64_t, 2> padding = {0, 0});
Tensor avg_pool2d(const Tensor& x, std::array<int64_t, 2> kernel, std::array<int64_t, 2> stride,
                  std::array<int64_t, 2> padding = {0, 0});

// The fused CRU fuse (SCConv's channel reconstruction, last step; layers/cru.cpp shows it as
// separate ops): y1 (N,C,H,W) and y2 = cat(y2_parts, 1) (the parts are read in place), branch
// weights from a softmax of their global average pools (kind 0, branch_softmax: over each
// channel's pair; 1, channel_softmax: over all 2C of a sample), y = b0 y1 + b1 y2 -> (N,C,H,W).
Tensor cru_fuse(const Tensor& y1, const std::vector<Tensor>& y2_parts, math::CRUFuse kind);
// The same with y2 = conv1x1(low, w) folded in and never stored: low (N,Q,H,W), w (C,Q,1,1).
Tensor cru_fuse_lower(const Tensor& y1, const Tensor& low, const Tensor& w, math::CRUFuse kind);

// ---- linear algebra and convolution --------------------------------------------------------------
Tensor matmul(const Tensor& a, const Tensor& b);  // (M,K) x (K,N) -> (M,N)
// x (N,in), weight (out,in), bias (out) or undefined -> (N,out)
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias);
// x (N,C,H,W), weight (O,C/groups,KH,KW), bias (O) or undefined -> (N,O,OH,OW)
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias,
              std::array<int64_t, 2> stride = {1, 1}, std::array<int64_t, 2> padding = {0, 0},
              std::array<int64_t, 2> dilation = {1, 1}, int64_t groups = 1);
// A block-diagonal 1x1 convolution whose blocks' outputs are separate dense tensors (the CRU's
// two squeezes, read by different branches): x's channels in consecutive groups, group i
// (w[i].size(1) channels) times w[i] (O_i, C_i, 1, 1) -> (N, O_i, H, W). One node.
std::vector<Tensor> conv1x1_split(const Tensor& x, const std::vector<Tensor>& w);

// ---- normalisation -------------------------------------------------------------------------------
// x (N,C,...) ; gamma, beta, running_mean, running_var (C) (any may be undefined).
// training: batch statistics; running stats (if given) updated in place with `momentum` and the
// unbiased batch variance, as torch.nn.BatchNorm2d. Eval: running statistics.
Tensor batch_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                  const Tensor& running_mean, const Tensor& running_var, bool training,
                  double momentum = 0.1, double eps = 1e-5);
// relu(batch_norm(x) + residual) in one pass forward and one backward: the tail of a ResNet
// block (residual undefined: relu(batch_norm(x))). Same arguments and running update as
// batch_norm; residual has x's shape.
Tensor batch_norm_relu(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                       const Tensor& running_mean, const Tensor& running_var, bool training,
                       const Tensor& residual = Tensor(), double momentum = 0.1, double eps = 1e-5);
// PyTorch GroupNorm: (x - mean) / sqrt(biased var + eps) per (sample, group); gamma, beta with C
// elements (any shape, e.g. (C) or the seeds' (C,1,1)).
Tensor group_norm(const Tensor& x, int64_t groups, const Tensor& gamma, const Tensor& beta,
                  double eps = 1e-5);
// The seeds' GroupBatchnorm2d: (x - mean) / (unbiased std + eps).
Tensor group_norm_seed(const Tensor& x, int64_t groups, const Tensor& gamma, const Tensor& beta,
                       double eps = 1e-10);

// The fused SRU (SCConv's spatial reconstruction unit; layers/sru.cpp shows the same steps as
// separate ops): group norm with gamma, beta (C elements each), R = sigmoid(GN(x) * w) with the
// channel weights w (C), the gate and the cross reconstruction, in two passes over x forward
// and backward. x (N,C,H,W) with C even -> (N,C,H,W).
Tensor sru(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& w,
           const SRUParams& p);

// ---- shape ---------------------------------------------------------------------------------------
Tensor reshape(const Tensor& x, const Shape& shape);  // one dim may be -1
// The same values in the given layout (a copy unless x already has it); the gradient passes
// through. ResNets turn their input channels-last so that every layer runs in NHWC.
Tensor contiguous(const Tensor& x, MemoryFormat format);
Tensor flatten(const Tensor& x, int64_t start_dim = 1);  // (N, ...) -> (N, prod)
Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step = 1);
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim);
Tensor cat(const std::vector<Tensor>& xs, int64_t dim);
Tensor subsample2d(const Tensor& x, int64_t stride);  // x[:, :, ::s, ::s]
// Zero channels before/after: (N,C,H,W) -> (N,before+C+after,H,W) (ResNet option-A shortcut).
Tensor pad_channels(const Tensor& x, int64_t before, int64_t after);

// ---- softmax, loss, dropout ----------------------------------------------------------------------
Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);
// logits (N,C), labels int64 (N) in [0,C) -> 0-d mean loss (fused log-softmax).
Tensor cross_entropy(const Tensor& logits, const Tensor& labels, double label_smoothing = 0.0);
// Zeroes elements with probability p and scales the rest by 1/(1-p); identity unless training.
Tensor dropout(const Tensor& x, double p, bool training, Generator& gen = default_generator());

}  // namespace scconv
