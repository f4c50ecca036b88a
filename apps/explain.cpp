// apps/explain.cpp: finding a model's SCConv units, capturing their intermediates, and the
// statistics of stats.json (apps/explain.h). The figures are in apps/explain_figures.cpp.
#include "apps/explain.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "layers/summary.h"

namespace scconv::apps {

namespace {
void collect_units(const Module& m, std::vector<SCConvUnit>& out) {
  if (m.type() == "SCConv") {
    SCConvUnit u{m.name(), &m, nullptr, nullptr};
    for (auto& [n, c] : m.children()) {
      if (n == "SRU") u.sru = dynamic_cast<const SRU*>(c.get());
      if (n == "CRU") u.cru = dynamic_cast<const CRU*>(c.get());
    }
    out.push_back(u);
    return;
  }
  for (auto& [n, c] : m.children()) collect_units(*c, out);
}

std::vector<double> host_values(const Tensor& t) { return t.to(DType::F64).contiguous().to_vector<double>(); }

double mean_of(const std::vector<double>& v) {
  if (v.empty()) return NAN;
  double s = 0;
  for (double x : v) s += x;
  return s / double(v.size());
}

int64_t param_count(const Module* m) { return m ? m->num_parameters() : 0; }

int64_t macs_under(const std::map<std::string, int64_t>& macs, const std::string& prefix) {
  int64_t n = 0;
  for (auto& [name, v] : macs)
    if (name == prefix || name.rfind(prefix + ".", 0) == 0) n += v;
  return n;
}
}  // namespace

std::vector<SCConvUnit> scconv_units(const Module& model) {
  std::vector<SCConvUnit> out;
  collect_units(model, out);
  return out;
}

std::vector<SCConvUnit> select_units(const Module& model, const std::vector<std::string>& names) {
  std::vector<SCConvUnit> all = scconv_units(model);
  SCCONV_CHECK(!all.empty(), "this model has no SCConv units (model.scconv.placement is 'none'?): nothing to explain");
  if (names.empty()) return all;
  std::vector<SCConvUnit> out;
  for (const std::string& n : names) {
    bool found = false;
    for (auto& u : all)
      if (u.name == n) out.push_back(u), found = true;
    if (found) continue;
    std::ostringstream valid;
    for (auto& u : all) valid << (valid.tellp() > 0 ? ", " : "") << u.name;
    SCCONV_FAIL("--layer: no SCConv unit '" << n << "' in this model; its units are: " << valid.str());
  }
  return out;
}

Tensor capture_units(Module& model, const std::vector<SCConvUnit>& units, const Tensor& x, Capture& cap) {
  std::vector<Module*> watched;
  for (auto& u : units) {
    if (u.sru) watched.push_back(const_cast<SRU*>(u.sru));
    if (u.cru) watched.push_back(const_cast<CRU*>(u.cru));
  }
  const bool was_training = model.training();
  model.eval();
  Tensor logits;
  {
    autograd::NoGradGuard ng;
    CaptureScope scope(cap, watched);
    logits = model(x.to(model.device()));
  }
  model.train(was_training);
  return logits.to(Device::CPU);
}

UnitStats unit_stats(const SCConvUnit& u, const Capture& cap) {
  UnitStats s;
  if (u.sru) {
    const std::string m = u.sru->name();
    s.w = host_values(cap.get(m, "w"));
    const Tensor& R = cap.get(m, "R");  // (N, C, H, W)
    const int64_t N = R.size(0), C = R.size(1), HW = R.size(2) * R.size(3);
    const std::vector<double> r = host_values(R);
    const double t = u.sru->options().threshold;
    s.informative_fraction.assign(size_t(C), 0.0);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = 0; c < C; ++c) {
        int64_t hits = 0;
        for (int64_t i = 0; i < HW; ++i) hits += r[size_t((n * C + c) * HW + i)] > t;
        s.informative_fraction[size_t(c)] += double(hits) / double(HW * N);
      }
    s.mean_w = mean_of(s.w);
    s.mean_informative = mean_of(s.informative_fraction);
  }
  if (u.cru) {
    const std::string m = u.cru->name();
    for (auto [what, out] : {std::pair{"beta1", &s.beta1}, std::pair{"beta2", &s.beta2}}) {
      const Tensor& b = cap.get(m, what);  // (N, c_out)
      const int64_t N = b.size(0), C = b.size(1);
      const std::vector<double> v = host_values(b);
      out->assign(size_t(C), 0.0);
      for (int64_t n = 0; n < N; ++n)
        for (int64_t c = 0; c < C; ++c) (*out)[size_t(c)] += v[size_t(n * C + c)] / double(N);
    }
    s.mean_beta1 = mean_of(s.beta1);
    s.mean_beta2 = mean_of(s.beta2);
  }
  return s;
}

nlohmann::json gate_statistics(Module& model, const std::vector<SCConvUnit>& units, const Tensor& x, int64_t chunk) {
  const int64_t N = x.size(0);
  std::vector<double> informative(units.size(), 0.0), beta1(units.size(), 0.0);
  for (int64_t n0 = 0; n0 < N; n0 += chunk) {
    const int64_t n = std::min(chunk, N - n0);
    Capture cap;
    capture_units(model, units, slice(x, 0, n0, n0 + n), cap);
    for (size_t i = 0; i < units.size(); ++i) {
      const UnitStats s = unit_stats(units[i], cap);  // (means over the chunk's images)
      informative[i] += s.mean_informative * double(n) / double(N);
      beta1[i] += s.mean_beta1 * double(n) / double(N);
    }
  }
  nlohmann::json out = nlohmann::json::object();
  for (size_t i = 0; i < units.size(); ++i) {
    nlohmann::json u = nlohmann::json::object();
    if (units[i].sru) u["informative_fraction"] = informative[i];
    if (units[i].cru) u["beta1"] = beta1[i];
    out[units[i].name] = u;
  }
  return out;
}

std::map<std::string, int64_t> macs_by_module(Module& model, const Tensor& x) {
  const bool was_training = model.training();
  model.eval();
  std::map<std::string, int64_t> out;
  {
    autograd::NoGradGuard ng;
    SummaryRecorder rec;
    model(x.to(model.device()));
    for (auto& row : rec.rows) out[row.name] += row.macs;
  }
  model.train(was_training);
  return out;
}

nlohmann::json stats_json(const SCConvUnit& u, const UnitStats& s, const std::map<std::string, int64_t>& macs) {
  auto num = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); };
  nlohmann::json j{{"unit", u.name}};
  const int64_t p_sru = param_count(u.sru), p_cru = param_count(u.cru), p_all = param_count(u.module);
  const int64_t m_all = macs_under(macs, u.name);
  nlohmann::json params{{"sru", p_sru}, {"cru", p_cru}}, mac{{"sru", u.sru ? macs_under(macs, u.sru->name()) : 0},
                                                            {"cru", u.cru ? macs_under(macs, u.cru->name()) : 0}};
  if (u.sru) {
    const SRUOptions& o = u.sru->options();
    j["sru"] = {{"module", u.sru->name()},
                {"threshold", o.threshold},
                {"groups", o.groups},
                {"channels", s.w.size()},
                {"w", s.w},
                {"informative_fraction", s.informative_fraction},
                {"mean_w", num(s.mean_w)},
                {"mean_informative_fraction", num(s.mean_informative)}};
  }
  if (u.cru) {
    const CRUOptions& o = u.cru->options();
    j["cru"] = {{"module", u.cru->name()},
                {"alpha", o.alpha},
                {"squeeze", o.squeeze},
                {"groups", o.groups},
                {"fuse", name_of(o.fuse)},
                {"channels", s.beta1.size()},
                {"beta1", s.beta1},
                {"beta2", s.beta2},
                {"mean_beta1", num(s.mean_beta1)},
                {"mean_beta2", num(s.mean_beta2)}};
  }
  params["other"] = p_all - p_sru - p_cru;  // order "S": the plain convolution after the SRU
  params["total"] = p_all;
  mac["other"] = m_all - mac["sru"].get<int64_t>() - mac["cru"].get<int64_t>();
  mac["total"] = m_all;
  j["params"] = params;
  j["macs_per_image"] = mac;
  j["macs_note"] = "multiply-accumulates of convolutions and linear layers, as scconv summary counts them";
  return j;
}

}  // namespace scconv::apps
