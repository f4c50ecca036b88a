// core/backend.h: the kernel interface, and the one place that picks a backend for a tensor.
//
// Every heavy or per-element computation goes through a Backend. Three implement it:
//   ReferenceBackend (core/reference/): plain loops with double accumulators, one per op. The
//     readable definition of each op, and what the tests compare the fast paths against.
//   CpuBackend (core/cpu/): derives from ReferenceBackend and overrides the ops that have fast
//     kernels (oneDNN convolution and matmul; vectorised, multi-threaded element-wise ops,
//     reductions, norms, softmax and loss).
//   CudaBackend (core/cuda/, behind -DSCCONV_CUDA=ON): cuDNN convolutions, cuBLAS matmul and our
//     kernels for the rest; each kernel file names the reference function it matches.
// backend_for() in core/dispatch.cpp is the single dispatch point. Kernels receive tensors of
// one dtype and device (autograd/ checks that and names the op on mismatch) and allocate their
// outputs; they never see autograd state.
#pragma once
#include <array>
#include <cstdint>
#include <vector>

#include "core/math/cru.h"
#include "core/math/norm.h"
#include "core/math/sru.h"
#include "core/tensor.h"

namespace scconv {

enum class UnaryOp : uint8_t { Neg, Relu, Sigmoid, Exp, Log, Sqrt, Pow, Clamp };
enum class BinaryOp : uint8_t { Add, Sub, Mul, Div };
enum class CompareOp : uint8_t { Gt, Lt, Ge, Le, Eq };

const char* unary_op_name(UnaryOp op);
const char* binary_op_name(BinaryOp op);

struct Conv2dParams {
  std::array<int64_t, 2> stride{1, 1}, padding{0, 0}, dilation{1, 1};
  int64_t groups = 1;
  Precision precision = Precision::Float32;  // of float32 operands (core/dtype.h); all three passes
};
// Output spatial size of a convolution or pooling window.
int64_t conv_out_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad, int64_t dilation);
// The sizes of a convolution of x (N, C, H, W) with w (O, C / G, KH, KW): output (N, O, OH, OW),
// G groups of Cg input and Og output channels.
struct ConvDims {
  int64_t N, C, H, W, O, KH, KW, OH, OW, G, Cg, Og;
};
ConvDims conv_dims(const Shape& x_shape, const Shape& w_shape, const Conv2dParams& p);

// How a backend computes a float32 convolution (process-wide; the apps' `conv_algorithm`).
//   Auto:     Winograd F(4x4, 3x3) for the shapes where it is clearly faster here (3x3, stride 1,
//             dilation 1, not grouped, >= 32 input and output channels: 2 to 2.3x fewer cycles
//             for forward and both backward passes), direct otherwise.
//   Direct:   always the direct algorithm (the same arithmetic as the reference loops, summed in
//             another order).
//   Winograd: Winograd wherever the backend supports it (tests use this to reach small shapes).
// Winograd multiplies transformed tiles instead of the raw ones: the same convolution, rounded
// differently (relative error ~1e-6 instead of ~1e-7 in float32). Float64 always runs direct.
enum class ConvAlgorithm { Auto, Direct, Winograd };
void set_conv_algorithm(ConvAlgorithm a);
ConvAlgorithm conv_algorithm();
ConvAlgorithm parse_conv_algorithm(const std::string& name);  // "auto" | "direct" | "winograd"
const char* conv_algorithm_name(ConvAlgorithm a);
// Whether this processor runs the CPU backend's Winograd kernels (oneDNN's need AVX-512; on an
// AVX2-only CPU every convolution runs direct, whatever the algorithm asked for).
bool cpu_winograd_available();
// "fp32" | "bf16" (the apps' `precision` key and --precision); an error names the known values.
Precision parse_precision(const std::string& name);
// Whether this processor multiplies bfloat16 natively (AVX512_BF16 or AMX, as oneDNN reports
// it). Where not, Precision::BFloat16 runs float32 on the CPU backend (oneDNN 2.6's emulation
// on plain AVX-512 is slower than its float32 kernels); the apps say so once.
bool cpu_bf16_available();

// How cuDNN picks convolution algorithms on a GPU (process-wide, like set_conv_algorithm;
// the apps' `cudnn_search` and `deterministic` keys; the CPU ignores them). Heuristic:
// cuDNN's first suggestion per shape;
// measure: each candidate timed once per shape. Deterministic: only algorithms whose results do
// not depend on scheduling (same bits every run). The choice is cached per shape either way.
struct CudnnOptions {
  bool measure = false;
  bool deterministic = false;
};
void set_cudnn_options(const CudnnOptions& o);
CudnnOptions cudnn_options();

struct Pool2dParams {
  std::array<int64_t, 2> kernel{2, 2}, stride{2, 2}, padding{0, 0};
};

// What batch norm applies after normalising, in the same pass: y = act(bn(x) + residual), with
// the residual (x's shape) optional and act ReLU or identity (a ResNet block's tail).
struct NormEpilogue {
  Tensor residual;
  bool relu = false;
};
// (N,C,H,W), (C), (C), and the residual's gradient (grad_y masked by the ReLU) when there is one
struct BatchNormGrads { Tensor grad_x, grad_gamma, grad_beta, grad_residual; };
struct GroupNormGrads { Tensor grad_x, grad_gamma, grad_beta; };
using math::GroupNormKind;  // core/math/norm.h

// The fused SRU (spec "SRU"; layers/sru.cpp shows the same steps as separate ops):
//   G = GN(x; gamma, beta), R = sigmoid(G * w), W1, W2 = gate(R), out[c] = W1 x[c] + W2 x[c'].
// w (C) = gamma / sum(gamma) or softmax(gamma) is computed by the caller.
struct SRUParams {
  int64_t groups = 16;
  double eps = 1e-5, threshold = 0.5;
  GroupNormKind gn = GroupNormKind::Torch;
  math::SRUGate gate = math::SRUGate::Soft;
};
struct SRUGrads { Tensor grad_x, grad_gamma, grad_beta, grad_w; };  // (N,C,H,W), (C) x 3

// The fused CRU fuse (spec "CRU", step 5; core/math/cru.h): y = b0 * y1 + b1 * y2 with branch
// weights b (N, 2, C) from a softmax of the branches' global average pools. y2 arrives as its
// channel parts (the lower branch's cat(PWC2(x), S(x)) is never built).
struct CRUFuseGrads {
  Tensor grad_y1;                    // (N,C,H,W)
  std::vector<Tensor> grad_y2_parts;  // one per part of y2
};
// The same fuse with the lower branch's 1x1 convolution folded in: y2 = conv1x1(low, w), never
// stored (core/cpu/cru_lower.cpp).
struct CRUFuseLowerGrads {
  Tensor grad_y1;   // (N,C,H,W)
  Tensor grad_low;  // (N,Q,H,W)
  Tensor grad_w;    // (C,Q,1,1)
};

// A block-diagonal 1x1 convolution whose blocks' outputs are separate dense tensors (the CRU's
// two squeezes): x's channels in consecutive groups, group i (w_i.size(1) channels) times w_i
// (O_i, C_i, 1, 1) -> y_i (N, O_i, H, W). grad_y_i may be undefined (no gradient: zeros).
struct Conv1x1SplitGrads {
  Tensor grad_x;               // (N, sum C_i, H, W)
  std::vector<Tensor> grad_w;  // one per group
};

// One parameter's SGD update (core/math/sgd.h): param, grad and buffer dense and alike in shape
// and dtype; buffer undefined without momentum; first: the buffer starts from the gradient.
struct SGDParamUpdate {
  Tensor param, grad, buffer;
  double weight_decay = 0;
  bool first = false;
};
struct SGDHyper {
  double lr = 0, momentum = 0, dampening = 0;
  bool nesterov = false;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;

  // ---- memory: dst and src of any strides (src broadcast to dst), dtype converted ----
  virtual void copy(Tensor& dst, const Tensor& src) = 0;
  virtual void fill(Tensor& dst, double value) = 0;
  virtual void axpy(Tensor& y, const Tensor& x, double alpha) = 0;  // y += alpha * x, same shape
  virtual void scale(Tensor& y, double alpha) = 0;                   // y *= alpha

  // ---- element-wise; binary ops broadcast. p0/p1: exponent for Pow, bounds for Clamp ----
  virtual Tensor unary(UnaryOp op, const Tensor& x, double p0, double p1) = 0;
  // grad_x given x, y = op(x) and grad_y (each op reads what it needs).
  virtual Tensor unary_backward(UnaryOp op, const Tensor& x, const Tensor& y,
                                const Tensor& grad_y, double p0, double p1) = 0;
  virtual Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b) = 0;
  virtual Tensor compare(CompareOp op, const Tensor& a, const Tensor& b) = 0;  // -> uint8 mask
  virtual Tensor where(const Tensor& mask, const Tensor& a, const Tensor& b) = 0;

  // ---- reductions ----
  virtual Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) = 0;
  // The index in `ts` of the first tensor holding a NaN or an Inf, or -1 when all are finite
  // (integer tensors always are), as an int64 0-d tensor on the tensors' device (the CPU for an
  // empty list): one launch checks a whole model, and nothing waits for the answer until it is
  // read. The training loop's guard.
  virtual Tensor nonfinite_index(const std::vector<Tensor>& ts) = 0;
  // The same, read at once (on a GPU: waits for it).
  int64_t first_nonfinite(const std::vector<Tensor>& ts);
  // x (N, K) float -> int64 (N): the index of each row's maximum (the first one on ties).
  virtual Tensor argmax_rows(const Tensor& x) = 0;

  // ---- dense linear algebra: 2-D, op(a) (M,K) x op(b) (K,N) -> (M,N) ----
  virtual Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b,
                        Precision precision) = 0;

  // ---- convolution: x (N,C,H,W), w (O,C/groups,KH,KW), bias (O) or undefined ----
  virtual Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias,
                        const Conv2dParams& p) = 0;
  virtual Tensor conv2d_backward_data(const Tensor& grad_y, const Tensor& w, const Shape& x_shape,
                                      const Conv2dParams& p) = 0;
  // grad_w (O,C/g,KH,KW); grad_bias (O) when want_bias.
  virtual std::pair<Tensor, Tensor> conv2d_backward_weights(const Tensor& grad_y, const Tensor& x,
                                                            const Shape& w_shape, bool want_bias,
                                                            const Conv2dParams& p) = 0;

  // ---- normalisation. x (N,C,H,W) (or (N,C)); gamma, beta (C) ----
  // Training: batch statistics; writes mean (C) and invstd (C) for backward and the running update.
  virtual Tensor batch_norm_train(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                  double eps, Tensor& mean, Tensor& invstd,
                                  const NormEpilogue& ep) = 0;
  // Eval: y = (x - mean) * invstd * gamma + beta with given per-channel mean and invstd.
  virtual Tensor batch_norm_apply(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                  const Tensor& mean, const Tensor& invstd,
                                  const NormEpilogue& ep) = 0;
  // y: the output, when the epilogue had a ReLU (grad_y counts where y > 0); else undefined.
  // want_residual: also return grad_residual.
  virtual BatchNormGrads batch_norm_backward(const Tensor& grad_y, const Tensor& x,
                                             const Tensor& gamma, const Tensor& mean,
                                             const Tensor& invstd, bool training, const Tensor& y,
                                             bool want_residual) = 0;
  // Writes per-(n, group) mean and rstd ((N, G)); rstd is the factor that multiplies x - mean.
  virtual Tensor group_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                            int64_t groups, double eps, GroupNormKind kind, Tensor& mean,
                            Tensor& rstd) = 0;
  virtual GroupNormGrads group_norm_backward(const Tensor& grad_y, const Tensor& x,
                                             const Tensor& gamma, int64_t groups, double eps,
                                             GroupNormKind kind, const Tensor& mean,
                                             const Tensor& rstd) = 0;

  // ---- fused SRU: x (N,C,H,W); gamma, beta, w (C). Writes the GN statistics mean, rstd (N,G) ----
  virtual Tensor sru_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                             const Tensor& w, const SRUParams& p, Tensor& mean, Tensor& rstd) = 0;
  virtual SRUGrads sru_backward(const Tensor& grad_y, const Tensor& x, const Tensor& gamma,
                                const Tensor& beta, const Tensor& w, const SRUParams& p,
                                const Tensor& mean, const Tensor& rstd) = 0;

  // ---- fused CRU fuse: y1 (N,C,H,W), y2_parts (N,C_k,H,W) with sum C_k = C; kind: math::CRUFuse.
  // Writes the branch weights b (N,2,C) for backward ----
  virtual Tensor cru_fuse(const Tensor& y1, const std::vector<Tensor>& y2_parts, math::CRUFuse kind,
                          Tensor& b) = 0;
  virtual CRUFuseGrads cru_fuse_backward(const Tensor& grad_y, const Tensor& y1,
                                         const std::vector<Tensor>& y2_parts, math::CRUFuse kind,
                                         const Tensor& b) = 0;
  // The same with y2 = conv1x1(low, w): low (N,Q,H,W), w (C,Q,1,1).
  virtual Tensor cru_fuse_lower(const Tensor& y1, const Tensor& low, const Tensor& w, math::CRUFuse kind,
                                Tensor& b) = 0;
  virtual CRUFuseLowerGrads cru_fuse_lower_backward(const Tensor& grad_y, const Tensor& y1,
                                                    const Tensor& low, const Tensor& w, math::CRUFuse kind,
                                                    const Tensor& b) = 0;

  // ---- block-diagonal 1x1 convolution with one output per block (see Conv1x1SplitGrads) ----
  virtual std::vector<Tensor> conv1x1_split(const Tensor& x, const std::vector<Tensor>& w) = 0;
  virtual Conv1x1SplitGrads conv1x1_split_backward(const std::vector<Tensor>& grad_y,
                                                   const Tensor& x,
                                                   const std::vector<Tensor>& w) = 0;

  // ---- pooling (x (N,C,H,W)); max pooling writes int64 argmax indices into each H*W plane ----
  virtual Tensor max_pool2d(const Tensor& x, const Pool2dParams& p, Tensor& indices) = 0;
  virtual Tensor max_pool2d_backward(const Tensor& grad_y, const Tensor& indices,
                                     const Shape& x_shape) = 0;
  // count_include_pad = true, as PyTorch's default.
  virtual Tensor avg_pool2d(const Tensor& x, const Pool2dParams& p) = 0;
  virtual Tensor avg_pool2d_backward(const Tensor& grad_y, const Shape& x_shape,
                                     const Pool2dParams& p) = 0;

  // ---- softmax family, along `dim` ----
  virtual Tensor softmax(const Tensor& x, int64_t dim, bool log) = 0;
  virtual Tensor softmax_backward(const Tensor& y, const Tensor& grad_y, int64_t dim, bool log) = 0;
  // logits (N,C), labels int64 (N): mean over N of the (label-smoothed) cross-entropy. Returns
  // the 0-d loss and writes softmax probabilities (N,C) for backward.
  virtual Tensor cross_entropy(const Tensor& logits, const Tensor& labels, double smoothing,
                               Tensor& probs) = 0;
  virtual Tensor cross_entropy_backward(const Tensor& probs, const Tensor& labels,
                                        double smoothing, const Tensor& grad_loss) = 0;

  // ---- random: a {0, 1/(1-p)} dropout mask from a counter-based generator ----
  virtual Tensor dropout_mask(const Shape& shape, DType dtype, double p, uint64_t seed,
                              uint64_t offset) = 0;

  // ---- optimizer: every parameter's update in one call (one fused launch on a GPU) ----
  // skip: undefined, or a 0-d tensor on the parameters' device; when it holds a nonzero value no
  // parameter or buffer changes. Read by the kernel itself, so the caller need not wait for it.
  virtual void sgd_update(const std::vector<SGDParamUpdate>& ps, const SGDHyper& h, const Tensor& skip) = 0;
};

// The single dispatch point: the backend for tensors on `device` (honouring ReferenceModeGuard).
Backend& backend_for(Device device);
inline Backend& backend_for(const Tensor& t) { return backend_for(t.device()); }
Backend& reference_backend();
Backend& cpu_backend();

// While alive, CPU ops on this thread run the reference kernels (tests compare the two paths).
class ReferenceModeGuard {
 public:
  ReferenceModeGuard();
  ~ReferenceModeGuard();
 private:
  bool prev_;
};
bool reference_mode();

}  // namespace scconv
