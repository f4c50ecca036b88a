// apps/step_guard.cpp: see step_guard.h. Every check is Backend::nonfinite_index, whose answer
// stays on the device; the only read is resolve()'s single copy of the verdict table.
#include "apps/step_guard.h"

#include "autograd/node.h"
#include "core/backend.h"

namespace scconv::apps {

std::string diagnose(Module& model, const Tensor& x) {
  for (auto& [n, p] : model.named_parameters()) {
    if (!all_finite(p)) return "parameter '" + n + "' is not finite";
    if (p.grad().defined() && !all_finite(p.grad())) return "the gradient of '" + n + "' is not finite";
  }
  try {
    autograd::NoGradGuard ng;
    FiniteCheckGuard check;
    model(x);
  } catch (const Error& e) {
    return e.what();
  }
  return "the loss is not finite although every layer output is";
}

std::vector<std::pair<std::string, Tensor>> named_grads(const Module& model) {
  std::vector<std::pair<std::string, Tensor>> g;
  for (auto& [n, p] : model.named_parameters())
    if (p.grad().defined()) g.emplace_back(n, p.grad());
  return g;
}

StepGuard::StepGuard(Module& model, Device device, std::string stopped)
    : model_(model), device_(device), stopped_(std::move(stopped)) {
  for (auto& [n, t] : model.named_tensors()) tensor_names_.push_back(n);
  verdicts_ = Tensor::full({kWindow, 2}, -1.0, DType::I64, device);
  halt_ = Tensor::zeros({}, DType::F64, device);
  one_ = Tensor::ones({}, DType::F64, device);
  zero_ = Tensor::zeros({}, DType::F64, device);
}

const Tensor& StepGuard::before_update(const Tensor& loss, const std::vector<std::pair<std::string, Tensor>>& grads) {
  Backend& be = backend_for(device_);
  std::vector<Tensor> checked{loss.detach()};
  auto names = std::make_shared<std::vector<std::string>>();
  for (auto& [n, g] : grads) {
    checked.push_back(g);
    names->push_back(n);
  }
  const Tensor v = be.nonfinite_index(checked);  // 0: the loss, k: grads[k - 1]
  Tensor row = verdicts_.slice_view(0, int64_t(records_.size()), int64_t(records_.size()) + 1).slice_view(1, 0, 1);
  row.copy_(v);
  halt_ = be.where(be.compare(CompareOp::Ge, v.to(DType::F64), zero_), one_, halt_);  // (sticky)
  pending_ = Record{"", Tensor(), loss.detach(), 0, std::move(names)};
  return halt_;
}

void StepGuard::after_update(std::string where, const Tensor& x_host, double lr) {
  std::vector<Tensor> ts;
  for (auto& [n, t] : model_.named_tensors()) ts.push_back(t);
  const Tensor u = backend_for(device_).nonfinite_index(ts);
  Tensor row = verdicts_.slice_view(0, int64_t(records_.size()), int64_t(records_.size()) + 1).slice_view(1, 1, 2);
  row.copy_(u);
  pending_.where = std::move(where);
  pending_.x_host = x_host;
  pending_.lr = lr;
  records_.push_back(std::move(pending_));
  pending_ = Record{};
  if (int64_t(records_.size()) == kWindow) resolve();
}

void StepGuard::resolve() {
  if (records_.empty()) return;
  const int64_t n = int64_t(records_.size());
  const std::vector<int64_t> v = verdicts_.slice_view(0, 0, n).to(Device::CPU).to_vector<int64_t>();  // the wait
  std::vector<Record> recs = std::move(records_);
  records_.clear();
  verdicts_.fill_(-1.0);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t before = v[2 * i], after = v[2 * i + 1];
    const Record& r = recs[i];
    if (before == 0) {  // the loss: the model is still as it was for this step (updates cancelled)
      const std::string loss = std::to_string(r.loss.to(Device::CPU).item());
      for (auto& [name, p] : model_.named_parameters()) p.set_grad(Tensor());  // (a later step's)
      SCCONV_FAIL(r.where << ": the loss is " << loss << ": " << diagnose(model_, r.x_host.to(device_)) << ". "
                          << stopped_);
    }
    if (before > 0)
      SCCONV_FAIL(r.where << ": the gradient of '" << (*r.grad_names)[before - 1] << "' is not finite. " << stopped_);
    if (after >= 0)
      SCCONV_FAIL(r.where << ": '" << tensor_names_.at(after) << "' holds NaN or Inf after the update (lr " << r.lr
                          << "; loss " << r.loss.to(Device::CPU).item() << " and gradients were finite). " << stopped_);
  }
}

}  // namespace scconv::apps
