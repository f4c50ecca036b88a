// autograd/ops_norm.cpp: batch_norm (and batch_norm_relu, a ResNet block's tail in one pass),
// group_norm (PyTorch), group_norm_seed (the seeds' GroupBatchnorm2d) and the fused SRU, whose first step is a group norm. Kernels and formulas:
// core/*/norm.cpp, core/*/sru.cpp, core/math/norm.h, core/math/sru.h.
#include <cmath>

#include "autograd/ops.h"
#include "core/backend.h"
#include "core/math/norm.h"

namespace scconv {

using autograd::SavedTensor;

namespace {
// gamma/beta of C elements (any shape) or undefined (then 1 and 0).
Tensor affine_or(const Tensor& t, int64_t C, double fill, const Tensor& x, const char* op,
                 const char* name) {
  if (!t.defined()) return Tensor::full({C}, fill, x.dtype(), x.device());
  check_same_dtype(x, t, op);
  check_same_device(x, t, op);
  SCCONV_CHECK(t.numel() == C, op << ": " << name << " " << t.str() << " must have " << C
                                  << " elements (one per channel of input " << x.str() << ")");
  return t.contiguous().view({C});
}
bool wants(const Tensor& t) { return t.defined() && (t.requires_grad() || !t.is_leaf()); }
}  // namespace

// batch_norm and batch_norm_relu: y = act(bn(x) + residual), act ReLU when `relu`.
static Tensor batch_norm_impl(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                              const Tensor& running_mean, const Tensor& running_var, bool training,
                              double momentum, double eps, const Tensor& residual, bool relu,
                              const char* op) {
  check_float(x, op, "input");
  SCCONV_CHECK(x.dim() >= 2 && x.size(1) >= 1, op << ": input must be (N, C, ...) with C >= 1, got " << x.str());
  const int64_t C = x.size(1), M = x.numel() / C;
  Tensor g = affine_or(gamma, C, 1.0, x, op, "weight");
  Tensor b = affine_or(beta, C, 0.0, x, op, "bias");
  if (residual.defined()) {
    check_same_dtype(x, residual, op);
    check_same_device(x, residual, op);
    SCCONV_CHECK(residual.shape() == x.shape(), op << ": residual " << residual.str()
                                                   << " must have the shape of input " << x.str());
  }
  const NormEpilogue ep{residual, relu};
  Backend& be = backend_for(x);
  Tensor y, mean, invstd;
  if (training) {
    SCCONV_CHECK(M > 1, op << ": training needs more than one value per channel, got input "
                           << x.str());
    y = be.batch_norm_train(x, g, b, eps, mean, invstd, ep);
    autograd::NoGradGuard no_grad;
    if (running_mean.defined()) {
      Tensor rm = affine_or(running_mean, C, 0.0, x, op, "running_mean");
      rm.mul_(1.0 - momentum).add_(mean, momentum);
    }
    if (running_var.defined()) {
      // unbiased batch variance from invstd: var = 1/invstd^2 - eps, times M/(M-1)
      Tensor var = sub(div(Tensor::full({}, 1.0, x.dtype(), x.device()), mul(invstd, invstd)),
                       Tensor::full({}, eps, x.dtype(), x.device()));
      Tensor rv = affine_or(running_var, C, 1.0, x, op, "running_var");
      rv.mul_(1.0 - momentum).add_(var, momentum * double(M) / double(M - 1));
    }
  } else {
    SCCONV_CHECK(running_mean.defined() && running_var.defined(),
                 op << ": eval mode needs running_mean and running_var");
    autograd::NoGradGuard no_grad;
    mean = affine_or(running_mean, C, 0.0, x, op, "running_mean").clone();
    invstd = pow(add(affine_or(running_var, C, 1.0, x, op, "running_var"), eps), -0.5);
    y = be.batch_norm_apply(x, g, b, mean, invstd, ep);
  }
  if (!autograd::needs_grad({&x, &gamma, &beta, &residual})) return y;
  SavedTensor sx(x, op), sg(g, op), sy(relu ? y : Tensor(), op);  // y: the ReLU's mask
  Shape gs = gamma.defined() ? gamma.shape() : Shape{}, bs = beta.defined() ? beta.shape() : Shape{};
  bool wg = wants(gamma), wb = wants(beta), wr = wants(residual);
  return autograd::record(op, y, {&x, &gamma, &beta, &residual}, [=](const Tensor& gy) {
    BatchNormGrads gr = backend_for(gy).batch_norm_backward(gy, sx.get(), sg.get(), mean, invstd,
                                                            training, sy.get(), wr);
    return std::vector<Tensor>{gr.grad_x, wg ? gr.grad_gamma.view(gs) : Tensor(),
                               wb ? gr.grad_beta.view(bs) : Tensor(), wr ? gr.grad_residual : Tensor()};
  });
}

Tensor batch_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                  const Tensor& running_mean, const Tensor& running_var, bool training,
                  double momentum, double eps) {
  return batch_norm_impl(x, gamma, beta, running_mean, running_var, training, momentum, eps,
                         Tensor(), false, "batch_norm");
}

Tensor batch_norm_relu(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                       const Tensor& running_mean, const Tensor& running_var, bool training,
                       const Tensor& residual, double momentum, double eps) {
  return batch_norm_impl(x, gamma, beta, running_mean, running_var, training, momentum, eps,
                         residual, true, "batch_norm_relu");
}

static Tensor group_norm_impl(const Tensor& x, int64_t groups, const Tensor& gamma,
                              const Tensor& beta, double eps, GroupNormKind kind, const char* op) {
  check_float(x, op, "input");
  SCCONV_CHECK(x.dim() >= 2 && x.size(1) >= 1, op << ": input must be (N, C, ...) with C >= 1, got " << x.str());
  const int64_t C = x.size(1);
  SCCONV_CHECK(groups >= 1 && C % groups == 0,
               op << ": groups=" << groups << " must divide the " << C << " channels of input "
                  << x.str());
  const int64_t M = C / groups * numel_from(x.shape(), 2);  // per (sample, group)
  if (kind == GroupNormKind::Seed)
    SCCONV_CHECK(M > 1, op << ": the unbiased std needs more than one value per group, got input "
                           << x.str() << " with groups=" << groups);
  Tensor g = affine_or(gamma, C, 1.0, x, op, "weight");
  Tensor b = affine_or(beta, C, 0.0, x, op, "bias");
  Tensor mean, rstd;
  Tensor y = backend_for(x).group_norm(x, g, b, groups, eps, kind, mean, rstd);
  if (!autograd::needs_grad({&x, &gamma, &beta})) return y;
  SavedTensor sx(x, op), sg(g, op);
  Shape gs = gamma.defined() ? gamma.shape() : Shape{}, bs = beta.defined() ? beta.shape() : Shape{};
  bool wg = wants(gamma), wb = wants(beta);
  return autograd::record(op, y, {&x, &gamma, &beta}, [=](const Tensor& gy) {
    GroupNormGrads gr =
        backend_for(gy).group_norm_backward(gy, sx.get(), sg.get(), groups, eps, kind, mean, rstd);
    return std::vector<Tensor>{gr.grad_x, wg ? gr.grad_gamma.view(gs) : Tensor(),
                               wb ? gr.grad_beta.view(bs) : Tensor()};
  });
}

Tensor group_norm(const Tensor& x, int64_t groups, const Tensor& gamma, const Tensor& beta,
                  double eps) {
  return group_norm_impl(x, groups, gamma, beta, eps, GroupNormKind::Torch, "group_norm");
}

Tensor group_norm_seed(const Tensor& x, int64_t groups, const Tensor& gamma, const Tensor& beta,
                       double eps) {
  return group_norm_impl(x, groups, gamma, beta, eps, GroupNormKind::Seed, "group_norm_seed");
}

Tensor sru(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& w,
           const SRUParams& p) {
  const char* op = "sru";
  check_float(x, op, "input");
  SCCONV_CHECK(x.dim() == 4 && x.size(1) % 2 == 0,
               op << ": input must be (N, C, H, W) with an even C (the cross reconstruction "
                  << "swaps channel halves), got " << x.str());
  const int64_t C = x.size(1);
  SCCONV_CHECK(p.groups >= 1 && C % p.groups == 0,
               op << ": groups=" << p.groups << " must divide the " << C << " channels of input " << x.str());
  SCCONV_CHECK(static_cast<int>(p.gate) <= static_cast<int>(math::SRUGate::HardReweighted),
               op << ": unknown gate " << static_cast<int>(p.gate));
  if (p.gn == GroupNormKind::Seed)
    SCCONV_CHECK(C / p.groups * x.size(2) * x.size(3) > 1,
                 op << ": the unbiased std needs more than one value per group, got input " << x.str());
  SCCONV_CHECK(gamma.defined() && beta.defined() && w.defined(), op << ": gamma, beta and w are required");
  Tensor g = affine_or(gamma, C, 1.0, x, op, "gamma");
  Tensor b = affine_or(beta, C, 0.0, x, op, "beta");
  Tensor wv = affine_or(w, C, 1.0, x, op, "w");
  Tensor mean, rstd;
  Tensor y = backend_for(x).sru_forward(x, g, b, wv, p, mean, rstd);
  if (!autograd::needs_grad({&x, &gamma, &beta, &w})) return y;
  SavedTensor sx(x, op), sg(g, op), sb(b, op), sw(wv, op);
  Shape gs = gamma.shape(), bs = beta.shape(), ws = w.shape();
  return autograd::record(op, y, {&x, &gamma, &beta, &w}, [=](const Tensor& gy) {
    SRUGrads gr = backend_for(gy).sru_backward(gy, sx.get(), sg.get(), sb.get(), sw.get(), p, mean, rstd);
    return std::vector<Tensor>{gr.grad_x, gr.grad_gamma.view(gs), gr.grad_beta.view(bs), gr.grad_w.view(ws)};
  });
}

}  // namespace scconv
