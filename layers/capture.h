// layers/capture.h: named intermediate tensors of one forward pass, for looking inside a module
// (`scconv explain`, docs/scconv.md). A Capture is attached to chosen modules explicitly, as a
// PyTorch forward hook is:
//   Capture cap;
//   CaptureScope scope(cap, {sru.get(), cru.get()});   // attached until the scope ends
//   Tensor y = model(x);                                 // the same y as without the capture
//   cap.get("layer1.0.conv1.SRU", "R");                  // (N, C, H, W) on the host
// Capturing does not change the result: an attached SRU or CRU still returns its fused kernel's
// output, and records its steps from a separate step-by-step pass (forward_unfused's ops, no
// gradient), plus that pass's own output as "output_unfused" so that a reader can compare.
// What each module records is listed beside its class (layers/scconv.h).
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace scconv {

class Module;

class Capture {
 public:
  // Stores a host copy of t (detached) as `what` of module `m` (its dotted name()).
  void put(const Module& m, const std::string& what, const Tensor& t);
  bool has(const std::string& module, const std::string& what) const;
  // The tensor, or an Error naming the module and the names it has.
  const Tensor& get(const std::string& module, const std::string& what) const;
  // Every tensor of a module in the order recorded.
  const std::vector<std::pair<std::string, Tensor>>& of(const std::string& module) const;
  std::vector<std::string> modules() const;
  void clear() { tensors_.clear(); }

 private:
  std::map<std::string, std::vector<std::pair<std::string, Tensor>>> tensors_;
};

// Attaches `cap` to each module for the scope's lifetime (a module holds one capture at a time).
class CaptureScope {
 public:
  CaptureScope(Capture& cap, std::vector<Module*> modules);
  ~CaptureScope();
  CaptureScope(const CaptureScope&) = delete;
  CaptureScope& operator=(const CaptureScope&) = delete;

 private:
  std::vector<Module*> modules_;
};

}  // namespace scconv
