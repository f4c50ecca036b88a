// layers/module.cpp: registration, traversal, modes, state loading and summary reporting.
#include "layers/module.h"

#include <cmath>
#include <set>
#include <sstream>

#include "core/backend.h"
#include "layers/summary.h"

namespace scconv {

// ---- summary recording -------------------------------------------------------------------------

namespace {
thread_local SummaryRecorder* t_recorder = nullptr;
}
SummaryRecorder::SummaryRecorder() : prev_(t_recorder) { t_recorder = this; }
SummaryRecorder::~SummaryRecorder() { t_recorder = prev_; }
SummaryRecorder* SummaryRecorder::active() { return t_recorder; }

namespace {
thread_local bool t_check_finite = false;
}
FiniteCheckGuard::FiniteCheckGuard() : prev_(t_check_finite) { t_check_finite = true; }
FiniteCheckGuard::~FiniteCheckGuard() { t_check_finite = prev_; }
bool FiniteCheckGuard::active() { return t_check_finite; }

namespace {
thread_local bool t_device_checks = false;
}
DeviceSideChecks::DeviceSideChecks() : prev_(t_device_checks) { t_device_checks = true; }
DeviceSideChecks::~DeviceSideChecks() { t_device_checks = prev_; }
bool DeviceSideChecks::active() { return t_device_checks && !FiniteCheckGuard::active(); }

bool all_finite(const Tensor& t) { return backend_for(t).first_nonfinite({t}) < 0; }

std::string first_nonfinite(const std::vector<std::pair<std::string, Tensor>>& named) {
  if (named.empty()) return "";
  std::vector<Tensor> ts;
  for (auto& [n, t] : named) ts.push_back(t);
  const int64_t k = backend_for(ts[0]).first_nonfinite(ts);
  return k < 0 ? "" : named[k].first;
}

Tensor Module::operator()(const Tensor& x) {
  SummaryRecorder* rec = SummaryRecorder::active();
  if (t_check_finite) {
    Tensor y = forward(x);
    SCCONV_CHECK(all_finite(y), "non-finite output (NaN or Inf) from " << describe(*this) << ", shape "
                                                                       << shape_str(y.shape()));
    return y;
  }
  if (!rec) return forward(x);
  size_t row = rec->rows.size();
  int64_t own = 0;
  for (auto& [n, p] : params_) own += p.numel();
  rec->rows.push_back({name_, type(), rec->depth, {}, own, 0});
  rec->open.push_back(row);
  ++rec->depth;
  Tensor y = forward(x);
  --rec->depth;
  rec->open.pop_back();
  rec->rows[row].output = y.shape();
  return y;
}

void Module::count_macs(int64_t macs) {
  SummaryRecorder* rec = SummaryRecorder::active();
  if (rec && !rec->open.empty()) rec->rows[rec->open.back()].macs += macs;
}

// ---- tree and names ----------------------------------------------------------------------------

void Module::assign_names(const std::string& prefix) {
  name_ = prefix;
  for (auto& [n, child] : children_) child->assign_names(prefix.empty() ? n : prefix + "." + n);
}

Tensor Module::register_parameter(const std::string& name, Tensor t) {
  t.set_requires_grad(true);
  params_.emplace_back(name, t);
  return t;
}

Tensor Module::register_buffer(const std::string& name, Tensor t) {
  buffers_.emplace_back(name, t);
  return t;
}

void Module::collect(const std::string& prefix, bool params,
                     std::vector<std::pair<std::string, Tensor>>& out) const {
  for (auto& [n, t] : params ? params_ : buffers_) out.emplace_back(prefix + n, t);
  for (auto& [n, child] : children_) child->collect(prefix + n + ".", params, out);
}

std::vector<std::pair<std::string, Tensor>> Module::named_parameters() const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect("", true, out);
  return out;
}
std::vector<std::pair<std::string, Tensor>> Module::named_buffers() const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect("", false, out);
  return out;
}
std::vector<std::pair<std::string, Tensor>> Module::named_tensors() const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect("", true, out);
  collect("", false, out);
  return out;
}
std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [n, t] : named_parameters()) out.push_back(t);
  return out;
}
int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (auto& [k, t] : named_parameters()) n += t.numel();
  return n;
}

// ---- mode ----------------------------------------------------------------------------------------

void Module::train(bool on) {
  training_ = on;
  for (auto& [n, child] : children_) child->train(on);
}

void Module::zero_grad() {
  for (auto& [n, p] : named_parameters()) p.set_grad(Tensor());
}

void Module::to(DType dtype) {
  for (auto& [n, t] : state_dict())
    if (is_floating(t.dtype()) && t.dtype() != dtype) {
      Tensor handle = t;
      handle.set_data(t.to(dtype));
    }
}

void Module::to(Device device) {
  for (auto& [n, t] : named_tensors())
    if (t.device() != device) {
      Tensor handle = t;
      handle.set_data(t.to(device));
    }
}

Device Module::device() const {
  for (auto& [n, t] : named_tensors()) return t.device();
  return Device::CPU;
}

// ---- state -----------------------------------------------------------------------------------------

std::map<std::string, Tensor> Module::state_dict() const {
  std::map<std::string, Tensor> out;
  for (auto& [n, t] : named_tensors()) out.emplace(n, t);
  return out;
}

std::vector<std::string> Module::load_state_dict(const std::map<std::string, Tensor>& state,
                                                 bool strict, const std::string& source) {
  std::map<std::string, Tensor> mine = state_dict();
  std::vector<std::string> problems, skipped;
  for (auto& [n, t] : mine) {
    auto it = state.find(n);
    if (it == state.end()) {
      (strict ? problems : skipped).push_back("missing '" + n + "' (" + t.str() + ")");
      continue;
    }
    const Tensor& src = it->second;
    // bfloat16 weights (saved by PyTorch in bf16) widen exactly into float32 or float64 ones
    const bool widens = src.dtype() == DType::BF16 && is_floating(t.dtype());
    if ((src.dtype() != t.dtype() && !widens) || src.shape() != t.shape())
      problems.push_back("'" + n + "': expected " + t.str() + ", found " + src.str());
  }
  for (auto& [n, t] : state)
    if (!mine.count(n))
      (strict ? problems : skipped).push_back("unexpected '" + n + "' (" + t.str() + ")");
  if (!problems.empty()) {
    std::ostringstream os;
    os << "loading " << (source.empty() ? "weights" : "'" + source + "'") << " into "
       << type() << ": " << problems.size() << " problem" << (problems.size() > 1 ? "s" : "")
       << ":";
    for (auto& p : problems) os << "\n  " << p;
    throw Error(os.str());
  }
  autograd::NoGradGuard ng;
  for (auto& [n, t] : mine) {
    auto it = state.find(n);
    if (it != state.end()) t.copy_(it->second.to(t.device()));
  }
  return skipped;
}

std::string describe(const Module& m) {
  return m.name().empty() ? m.type() : m.type() + " '" + m.name() + "'";
}

}  // namespace scconv
