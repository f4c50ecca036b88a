// autograd/ops_loss.cpp: softmax, log_softmax, cross_entropy and dropout.
//   softmax:       grad_x = y * (g - sum(g * y))
//   log_softmax:   grad_x = g - softmax(x) * sum(g)
//   cross_entropy: grad_logits = (softmax(logits) - target) * g / N  (fused; see core/math/loss.h)
//   dropout:       y = x * mask, grad_x = g * mask, mask in {0, 1/(1-p)}
#include "autograd/ops.h"
#include "core/backend.h"

namespace scconv {

using autograd::SavedTensor;

static Tensor softmax_impl(const Tensor& x, int64_t dim, bool log) {
  const char* op = log ? "log_softmax" : "softmax";
  check_float(x, op, "x");
  int64_t d = wrap_dim(dim, x.dim(), op);
  Tensor y = backend_for(x).softmax(x, d, log);
  if (!autograd::needs_grad({&x})) return y;
  SavedTensor sy(y, op);
  return autograd::record(op, y, {&x}, [sy, d, log](const Tensor& g) {
    return std::vector<Tensor>{backend_for(g).softmax_backward(sy.get(), g, d, log)};
  });
}

Tensor softmax(const Tensor& x, int64_t dim) { return softmax_impl(x, dim, false); }
Tensor log_softmax(const Tensor& x, int64_t dim) { return softmax_impl(x, dim, true); }

Tensor cross_entropy(const Tensor& logits, const Tensor& labels, double smoothing) {
  const char* op = "cross_entropy";
  check_float(logits, op, "logits");
  check_defined(labels, op, "labels");
  SCCONV_CHECK(logits.dim() == 2, op << ": logits must be (N, C), got " << logits.str());
  SCCONV_CHECK(labels.dtype() == DType::I64 && labels.dim() == 1 &&
                   labels.size(0) == logits.size(0),
               op << ": labels must be int64 (N,) = (" << logits.size(0) << ",), got "
                  << labels.str());
  check_same_device(logits, labels, op);
  SCCONV_CHECK(smoothing >= 0 && smoothing <= 1,
               op << ": label_smoothing must be in [0, 1], got " << smoothing);
  const int64_t C = logits.size(1);
  Tensor lab = labels.contiguous();
  // Labels on the host are checked here; on a GPU (no read-back inside a step) the kernel makes
  // the loss NaN for a label outside [0, C), which the training loop's guard then reports.
  if (lab.device() == Device::CPU) {
    const int64_t* L = lab.data<int64_t>();
    for (int64_t n = 0; n < lab.numel(); ++n)
      SCCONV_CHECK(L[n] >= 0 && L[n] < C, op << ": label " << L[n] << " at index " << n
                                             << " is outside [0, " << C << ")");
  }
  Tensor probs;
  Tensor loss = backend_for(logits).cross_entropy(logits, lab, smoothing, probs);
  if (!autograd::needs_grad({&logits})) return loss;
  return autograd::record(op, loss, {&logits}, [probs, lab, smoothing](const Tensor& g) {
    return std::vector<Tensor>{backend_for(g).cross_entropy_backward(probs, lab, smoothing, g)};
  });
}

Tensor dropout(const Tensor& x, double p, bool training, Generator& gen) {
  check_float(x, "dropout", "x");
  SCCONV_CHECK(p >= 0 && p < 1, "dropout: p must be in [0, 1), got " << p);
  if (!training || p == 0) return x;
  Tensor mask = backend_for(x).dropout_mask(x.shape(), x.dtype(), p, gen.seed(),
                                            gen.reserve(static_cast<uint64_t>(x.numel())));
  return mul(x, mask);
}

}  // namespace scconv
