// core/reference/reference_backend.h: the reference backend. Each op is written as plain loops
// over logical indices (any strides), accumulating in double: slow, obviously correct, and the
// place to learn what an op computes. Tests compare every fast kernel against these.
// Implementations live beside this header, one op family per file.
#pragma once
#include "core/backend.h"

namespace scconv {

class ReferenceBackend : public Backend {
 public:
  const char* name() const override { return "reference"; }

  void copy(Tensor& dst, const Tensor& src) override;
  void fill(Tensor& dst, double value) override;
  void axpy(Tensor& y, const Tensor& x, double alpha) override;
  void scale(Tensor& y, double alpha) override;

  Tensor unary(UnaryOp op, const Tensor& x, double p0, double p1) override;
  Tensor unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& grad_y,
                        double p0, double p1) override;
  Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b) override;
  Tensor compare(CompareOp op, const Tensor& a, const Tensor& b) override;
  Tensor where(const Tensor& mask, const Tensor& a, const Tensor& b) override;

  Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) override;
  Tensor nonfinite_index(const std::vector<Tensor>& ts) override;
  Tensor argmax_rows(const Tensor& x) override;

  Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b,
                Precision precision) override;

  Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias,
                const Conv2dParams& p) override;
  Tensor conv2d_backward_data(const Tensor& grad_y, const Tensor& w, const Shape& x_shape,
                              const Conv2dParams& p) override;
  std::pair<Tensor, Tensor> conv2d_backward_weights(const Tensor& grad_y, const Tensor& x,
                                                    const Shape& w_shape, bool want_bias,
                                                    const Conv2dParams& p) override;

  Tensor batch_norm_train(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps,
                          Tensor& mean, Tensor& invstd, const NormEpilogue& ep) override;
  Tensor batch_norm_apply(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                          const Tensor& mean, const Tensor& invstd, const NormEpilogue& ep) override;
  BatchNormGrads batch_norm_backward(const Tensor& grad_y, const Tensor& x, const Tensor& gamma,
                                     const Tensor& mean, const Tensor& invstd, bool training,
                                     const Tensor& y, bool want_residual) override;
  Tensor group_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, int64_t groups,
                    double eps, GroupNormKind kind, Tensor& mean, Tensor& rstd) override;
  GroupNormGrads group_norm_backward(const Tensor& grad_y, const Tensor& x, const Tensor& gamma,
                                     int64_t groups, double eps, GroupNormKind kind,
                                     const Tensor& mean, const Tensor& rstd) override;

  Tensor sru_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& w,
                     const SRUParams& p, Tensor& mean, Tensor& rstd) override;
  SRUGrads sru_backward(const Tensor& grad_y, const Tensor& x, const Tensor& gamma,
                        const Tensor& beta, const Tensor& w, const SRUParams& p,
                        const Tensor& mean, const Tensor& rstd) override;

  Tensor cru_fuse(const Tensor& y1, const std::vector<Tensor>& y2_parts, math::CRUFuse kind,
                  Tensor& b) override;
  CRUFuseGrads cru_fuse_backward(const Tensor& grad_y, const Tensor& y1,
                                 const std::vector<Tensor>& y2_parts, math::CRUFuse kind,
                                 const Tensor& b) override;
  Tensor cru_fuse_lower(const Tensor& y1, const Tensor& low, const Tensor& w, math::CRUFuse kind,
                        Tensor& b) override;
  CRUFuseLowerGrads cru_fuse_lower_backward(const Tensor& grad_y, const Tensor& y1,
                                            const Tensor& low, const Tensor& w, math::CRUFuse kind,
                                            const Tensor& b) override;

  std::vector<Tensor> conv1x1_split(const Tensor& x, const std::vector<Tensor>& w) override;
  Conv1x1SplitGrads conv1x1_split_backward(const std::vector<Tensor>& grad_y, const Tensor& x,
                                           const std::vector<Tensor>& w) override;

  Tensor max_pool2d(const Tensor& x, const Pool2dParams& p, Tensor& indices) override;
  Tensor max_pool2d_backward(const Tensor& grad_y, const Tensor& indices,
                             const Shape& x_shape) override;
  Tensor avg_pool2d(const Tensor& x, const Pool2dParams& p) override;
  Tensor avg_pool2d_backward(const Tensor& grad_y, const Shape& x_shape,
                             const Pool2dParams& p) override;

  Tensor softmax(const Tensor& x, int64_t dim, bool log) override;
  Tensor softmax_backward(const Tensor& y, const Tensor& grad_y, int64_t dim, bool log) override;
  Tensor cross_entropy(const Tensor& logits, const Tensor& labels, double smoothing,
                       Tensor& probs) override;
  Tensor cross_entropy_backward(const Tensor& probs, const Tensor& labels, double smoothing,
                                const Tensor& grad_loss) override;

  void sgd_update(const std::vector<SGDParamUpdate>& ps, const SGDHyper& h, const Tensor& skip) override;
  Tensor dropout_mask(const Shape& shape, DType dtype, double p, uint64_t seed,
                      uint64_t offset) override;
};

// ---- helpers shared by the reference files ----
namespace ref {
// Storage offset (elements, relative to t.offset()) of logical element i in row-major order.
int64_t strided_offset(int64_t i, const Shape& shape, const Strides& strides);
// Reads logical element i of a tensor of any dtype and strides, as double.
double get(const Tensor& t, int64_t i);
// Reads logical element i of `t` broadcast to `shape`.
double get_broadcast(const Tensor& t, const Shape& shape, int64_t i);
// Writes v to logical element i of a tensor of any dtype and strides.
void set(Tensor& t, int64_t i, double v);
}  // namespace ref

}  // namespace scconv
