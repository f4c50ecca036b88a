// core/profile.cpp: the per-family timers and the timing Backend decorator (see profile.h).
#include "core/profile.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>

#include "core/backend.h"

namespace scconv::profile {

namespace {
std::atomic<bool> g_enabled{false};
std::mutex g_mu;
std::map<std::string, FamilyTime>& table() {
  static std::map<std::string, FamilyTime> t;
  return t;
}
int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

bool enabled() { return g_enabled.load(std::memory_order_relaxed); }
void set_enabled(bool on) { g_enabled.store(on); }
void reset() {
  std::lock_guard<std::mutex> g(g_mu);
  table().clear();
}

Scope::Scope(const char* family) : family_(family) {
  if (enabled()) start_ns_ = now_ns();
}
Scope::~Scope() {
  if (start_ns_ < 0) return;
  const double s = double(now_ns() - start_ns_) * 1e-9;
  std::lock_guard<std::mutex> g(g_mu);
  FamilyTime& f = table()[family_];
  f.family = family_;
  f.seconds += s;
  f.calls += 1;
}

std::vector<FamilyTime> totals() {
  std::lock_guard<std::mutex> g(g_mu);
  std::vector<FamilyTime> out;
  for (auto& [k, v] : table()) out.push_back(v);
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.seconds > b.seconds; });
  return out;
}

// ---- the decorator: each kernel of the inner backend inside a Scope of its family ----------------

namespace {
class ProfilingBackend : public Backend {
 public:
  explicit ProfilingBackend(Backend& inner) : in_(inner) {}
  const char* name() const override { return in_.name(); }

  void copy(Tensor& d, const Tensor& s) override { Scope p("copy"); in_.copy(d, s); }
  void fill(Tensor& d, double v) override { Scope p("elementwise"); in_.fill(d, v); }
  void axpy(Tensor& y, const Tensor& x, double a) override { Scope p("elementwise"); in_.axpy(y, x, a); }
  void scale(Tensor& y, double a) override { Scope p("elementwise"); in_.scale(y, a); }
  Tensor unary(UnaryOp op, const Tensor& x, double p0, double p1) override {
    Scope p("elementwise");
    return in_.unary(op, x, p0, p1);
  }
  Tensor unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& gy, double p0,
                        double p1) override {
    Scope p("elementwise");
    return in_.unary_backward(op, x, y, gy, p0, p1);
  }
  Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b) override {
    Scope p("elementwise");
    return in_.binary(op, a, b);
  }
  Tensor compare(CompareOp op, const Tensor& a, const Tensor& b) override {
    Scope p("elementwise");
    return in_.compare(op, a, b);
  }
  Tensor where(const Tensor& m, const Tensor& a, const Tensor& b) override {
    Scope p("elementwise");
    return in_.where(m, a, b);
  }
  Tensor nonfinite_index(const std::vector<Tensor>& ts) override {
    Scope p("reduce");
    return in_.nonfinite_index(ts);
  }
  Tensor argmax_rows(const Tensor& x) override {
    Scope p("reduce");
    return in_.argmax_rows(x);
  }
  void sgd_update(const std::vector<SGDParamUpdate>& ps, const SGDHyper& h, const Tensor& skip) override {
    Scope p("optimizer");
    in_.sgd_update(ps, h, skip);
  }
  Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) override {
    Scope p("reduce");
    return in_.sum(x, dims, keepdim);
  }
  Tensor matmul(const Tensor& a, const Tensor& b, bool ta, bool tb, Precision pr) override {
    Scope p("matmul");
    return in_.matmul(a, b, ta, tb, pr);
  }
  Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dParams& c) override {
    Scope p("conv");
    return in_.conv2d(x, w, b, c);
  }
  Tensor conv2d_backward_data(const Tensor& gy, const Tensor& w, const Shape& xs,
                              const Conv2dParams& c) override {
    Scope p("conv");
    return in_.conv2d_backward_data(gy, w, xs, c);
  }
  std::pair<Tensor, Tensor> conv2d_backward_weights(const Tensor& gy, const Tensor& x,
                                                    const Shape& ws, bool wb,
                                                    const Conv2dParams& c) override {
    Scope p("conv");
    return in_.conv2d_backward_weights(gy, x, ws, wb, c);
  }
  Tensor batch_norm_train(const Tensor& x, const Tensor& g, const Tensor& b, double eps,
                          Tensor& mean, Tensor& invstd, const NormEpilogue& ep) override {
    Scope p("batch_norm");
    return in_.batch_norm_train(x, g, b, eps, mean, invstd, ep);
  }
  Tensor batch_norm_apply(const Tensor& x, const Tensor& g, const Tensor& b, const Tensor& mean,
                          const Tensor& invstd, const NormEpilogue& ep) override {
    Scope p("batch_norm");
    return in_.batch_norm_apply(x, g, b, mean, invstd, ep);
  }
  BatchNormGrads batch_norm_backward(const Tensor& gy, const Tensor& x, const Tensor& g,
                                     const Tensor& mean, const Tensor& invstd, bool tr,
                                     const Tensor& y, bool want_residual) override {
    Scope p("batch_norm");
    return in_.batch_norm_backward(gy, x, g, mean, invstd, tr, y, want_residual);
  }
  Tensor group_norm(const Tensor& x, const Tensor& g, const Tensor& b, int64_t groups, double eps,
                    GroupNormKind k, Tensor& mean, Tensor& rstd) override {
    Scope p("group_norm");
    return in_.group_norm(x, g, b, groups, eps, k, mean, rstd);
  }
  GroupNormGrads group_norm_backward(const Tensor& gy, const Tensor& x, const Tensor& g,
                                     int64_t groups, double eps, GroupNormKind k,
                                     const Tensor& mean, const Tensor& rstd) override {
    Scope p("group_norm");
    return in_.group_norm_backward(gy, x, g, groups, eps, k, mean, rstd);
  }
  Tensor sru_forward(const Tensor& x, const Tensor& g, const Tensor& b, const Tensor& w,
                     const SRUParams& sp, Tensor& mean, Tensor& rstd) override {
    Scope p("sru");
    return in_.sru_forward(x, g, b, w, sp, mean, rstd);
  }
  SRUGrads sru_backward(const Tensor& gy, const Tensor& x, const Tensor& g, const Tensor& b,
                        const Tensor& w, const SRUParams& sp, const Tensor& mean,
                        const Tensor& rstd) override {
    Scope p("sru");
    return in_.sru_backward(gy, x, g, b, w, sp, mean, rstd);
  }
  Tensor cru_fuse(const Tensor& y1, const std::vector<Tensor>& y2, math::CRUFuse kind, Tensor& b) override {
    Scope p("cru_fuse");
    return in_.cru_fuse(y1, y2, kind, b);
  }
  CRUFuseGrads cru_fuse_backward(const Tensor& gy, const Tensor& y1, const std::vector<Tensor>& y2,
                                 math::CRUFuse kind, const Tensor& b) override {
    Scope p("cru_fuse");
    return in_.cru_fuse_backward(gy, y1, y2, kind, b);
  }
  Tensor cru_fuse_lower(const Tensor& y1, const Tensor& low, const Tensor& w, math::CRUFuse kind,
                        Tensor& b) override {
    Scope p("cru_fuse");
    return in_.cru_fuse_lower(y1, low, w, kind, b);
  }
  CRUFuseLowerGrads cru_fuse_lower_backward(const Tensor& gy, const Tensor& y1, const Tensor& low,
                                            const Tensor& w, math::CRUFuse kind, const Tensor& b) override {
    Scope p("cru_fuse");
    return in_.cru_fuse_lower_backward(gy, y1, low, w, kind, b);
  }
  std::vector<Tensor> conv1x1_split(const Tensor& x, const std::vector<Tensor>& w) override {
    Scope p("conv");
    return in_.conv1x1_split(x, w);
  }
  Conv1x1SplitGrads conv1x1_split_backward(const std::vector<Tensor>& gy, const Tensor& x,
                                           const std::vector<Tensor>& w) override {
    Scope p("conv");
    return in_.conv1x1_split_backward(gy, x, w);
  }
  Tensor max_pool2d(const Tensor& x, const Pool2dParams& c, Tensor& idx) override {
    Scope p("pool");
    return in_.max_pool2d(x, c, idx);
  }
  Tensor max_pool2d_backward(const Tensor& gy, const Tensor& idx, const Shape& xs) override {
    Scope p("pool");
    return in_.max_pool2d_backward(gy, idx, xs);
  }
  Tensor avg_pool2d(const Tensor& x, const Pool2dParams& c) override {
    Scope p("pool");
    return in_.avg_pool2d(x, c);
  }
  Tensor avg_pool2d_backward(const Tensor& gy, const Shape& xs, const Pool2dParams& c) override {
    Scope p("pool");
    return in_.avg_pool2d_backward(gy, xs, c);
  }
  Tensor softmax(const Tensor& x, int64_t dim, bool log) override {
    Scope p("softmax_loss");
    return in_.softmax(x, dim, log);
  }
  Tensor softmax_backward(const Tensor& y, const Tensor& gy, int64_t dim, bool log) override {
    Scope p("softmax_loss");
    return in_.softmax_backward(y, gy, dim, log);
  }
  Tensor cross_entropy(const Tensor& l, const Tensor& lab, double sm, Tensor& probs) override {
    Scope p("softmax_loss");
    return in_.cross_entropy(l, lab, sm, probs);
  }
  Tensor cross_entropy_backward(const Tensor& probs, const Tensor& lab, double sm,
                                const Tensor& gl) override {
    Scope p("softmax_loss");
    return in_.cross_entropy_backward(probs, lab, sm, gl);
  }
  Tensor dropout_mask(const Shape& s, DType dt, double pr, uint64_t seed, uint64_t off) override {
    Scope p("elementwise");
    return in_.dropout_mask(s, dt, pr, seed, off);
  }

 private:
  Backend& in_;
};
}  // namespace

Backend& profiling_backend(Backend& inner) {
  static std::mutex mu;
  static std::map<Backend*, std::unique_ptr<ProfilingBackend>> wrappers;
  std::lock_guard<std::mutex> g(mu);
  auto& w = wrappers[&inner];
  if (!w) w = std::make_unique<ProfilingBackend>(inner);
  return *w;
}

}  // namespace scconv::profile
