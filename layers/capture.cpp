// layers/capture.cpp: the Capture store and the scope that attaches it (layers/capture.h).
#include "layers/capture.h"

#include <sstream>

#include "layers/module.h"

namespace scconv {

void Capture::put(const Module& m, const std::string& what, const Tensor& t) {
  auto& list = tensors_[m.name()];
  Tensor host = t.detach().to(Device::CPU).contiguous();
  for (auto& [n, v] : list)
    if (n == what) {
      v = host;
      return;
    }
  list.emplace_back(what, host);
}

bool Capture::has(const std::string& module, const std::string& what) const {
  auto it = tensors_.find(module);
  if (it == tensors_.end()) return false;
  for (auto& [n, v] : it->second)
    if (n == what) return true;
  return false;
}

const Tensor& Capture::get(const std::string& module, const std::string& what) const {
  const auto& list = of(module);
  for (auto& [n, v] : list)
    if (n == what) return v;
  std::ostringstream names;
  for (auto& [n, v] : list) names << (names.tellp() > 0 ? ", " : "") << n;
  SCCONV_FAIL("capture: module '" << module << "' recorded no '" << what << "' (it has: " << names.str() << ")");
}

const std::vector<std::pair<std::string, Tensor>>& Capture::of(const std::string& module) const {
  auto it = tensors_.find(module);
  if (it != tensors_.end()) return it->second;
  std::ostringstream names;
  for (auto& [n, v] : tensors_) names << (names.tellp() > 0 ? ", " : "") << "'" << n << "'";
  SCCONV_FAIL("capture: nothing recorded for module '" << module << "' (recorded: "
                                                        << (tensors_.empty() ? "none" : names.str()) << ")");
}

std::vector<std::string> Capture::modules() const {
  std::vector<std::string> out;
  for (auto& [n, v] : tensors_) out.push_back(n);
  return out;
}

CaptureScope::CaptureScope(Capture& cap, std::vector<Module*> modules) : modules_(std::move(modules)) {
  for (Module* m : modules_) {
    SCCONV_CHECK(m->capture_ == nullptr, "capture: " << describe(*m) << " already has a capture attached");
    m->capture_ = &cap;
  }
}

CaptureScope::~CaptureScope() {
  for (Module* m : modules_) m->capture_ = nullptr;
}

}  // namespace scconv
