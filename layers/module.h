// layers/module.h: the module base. A module owns parameters, buffers and child modules, each
// registered by name, so that every tensor has a PyTorch-style dotted name
// (`layer1.0.conv1.weight`, `layer1.0.bn1.running_mean`) for checkpoints, weight-decay filters
// and error messages. Calling a module (operator()) runs forward() and, when a summary is
// being recorded (layers/summary.h), reports the call.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autograd/ops.h"

namespace scconv {

class Capture;  // layers/capture.h

class Module {
 public:
  virtual ~Module() = default;
  virtual Tensor forward(const Tensor& x) = 0;  // x (N, C, H, W) for image modules
  virtual std::string type() const = 0;         // "Conv2d", "SRU", ...
  Tensor operator()(const Tensor& x);

  // ---- tree and names ----
  // Dotted name inside the model ("" for the root); set by assign_names() on the root.
  const std::string& name() const { return name_; }
  void assign_names(const std::string& prefix = "");
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const {
    return children_;
  }
  std::vector<std::pair<std::string, Tensor>> named_parameters() const;  // recursive
  std::vector<std::pair<std::string, Tensor>> named_buffers() const;     // recursive
  std::vector<std::pair<std::string, Tensor>> named_tensors() const;     // parameters, then buffers
  std::vector<Tensor> parameters() const;
  int64_t num_parameters() const;
  // The Capture attached to this module (layers/capture.h), or null: modules that record their
  // steps check it in forward().
  Capture* capture() const { return capture_; }
  // Parameters registered on this module itself (not its children).
  const std::vector<std::pair<std::string, Tensor>>& own_parameters() const { return params_; }

  // ---- mode ----
  void train(bool on = true);
  void eval() { train(false); }
  bool training() const { return training_; }
  void zero_grad();  // drops every parameter's .grad
  // Converts every floating parameter and buffer to `dtype` in place (float64 for gradient
  // checks and exact comparisons).
  void to(DType dtype);
  // Moves every parameter and buffer to `device` in place (same names, same handles: an
  // optimizer built on them follows). Gradients are dropped.
  void to(Device device);
  // Where the parameters are (the CPU for a module without any).
  Device device() const;

  // ---- state: parameters and buffers by dotted name ----
  std::map<std::string, Tensor> state_dict() const;
  // Copies values in place. Checks every name, dtype and shape and reports all problems in one
  // Error (strict: missing and unexpected names are errors too; non-strict: only the names
  // both sides have are loaded, and the return value lists what was skipped). bfloat16 values
  // load into float32 or float64 tensors (an exact widening); other dtypes must match.
  std::vector<std::string> load_state_dict(const std::map<std::string, Tensor>& state,
                                           bool strict = true, const std::string& source = "");

 protected:
  Tensor register_parameter(const std::string& name, Tensor t);
  Tensor register_buffer(const std::string& name, Tensor t);
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    children_.emplace_back(name, m);
    return m;
  }
  // Records the multiply-accumulates of this call in a running summary (no-op otherwise).
  static void count_macs(int64_t macs);

 private:
  void collect(const std::string& prefix, bool params,
               std::vector<std::pair<std::string, Tensor>>& out) const;
  std::vector<std::pair<std::string, Tensor>> params_, buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
  std::string name_;
  Capture* capture_ = nullptr;
  friend class CaptureScope;
};

// While alive, every module call checks its output for NaN/Inf and throws an Error naming the
// first module whose output is not finite (the training loop's NaN guard uses it).
class FiniteCheckGuard {
 public:
  FiniteCheckGuard();
  ~FiniteCheckGuard();
  static bool active();
 private:
  bool prev_;
};
// While alive (the training loop's step, whose guard checks the loss and every gradient for NaN
// and Inf on the device), layers skip the host-side checks that would make a GPU wait, and give a
// NaN where they would have refused: the SRU's gamma sum. The guard's diagnosis runs under
// FiniteCheckGuard, where those checks run on the host again and name the cause; so active() is
// false there.
class DeviceSideChecks {
 public:
  DeviceSideChecks();
  ~DeviceSideChecks();
  static bool active();
 private:
  bool prev_;
};
bool all_finite(const Tensor& t);
// The name of the first tensor holding a NaN or an Inf ("" when all are finite), in one batched
// check (Backend::first_nonfinite): e.g. named_parameters() and named_buffers() after a step.
std::string first_nonfinite(const std::vector<std::pair<std::string, Tensor>>& named);

// A module's full name for messages: "SRU 'layer1.0.conv1.SRU'" (or just the type at the root).
std::string describe(const Module& m);

}  // namespace scconv
