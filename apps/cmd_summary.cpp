// apps/cmd_summary.cpp: `scconv summary`: a per-layer table of a model (name, type, output
// shape, parameters, MACs) and the totals, from one forward pass of a single image.
//   scconv summary --model resnet56-scconv [--set key=value ...] [--input 3x32x32] [--json]
// MACs count the multiply-accumulates of convolutions and linear layers; the SCConv paper
// calls these "FLOPs".
#include <cstdio>
#include <iostream>

#include "apps/format.h"
#include "apps/model_args.h"
#include "layers/summary.h"
#include "models/resnet.h"

namespace scconv::apps {

namespace {
Shape parse_input(const std::string& s) {
  Shape out{1};
  size_t start = 0;
  while (start <= s.size()) {
    size_t x = s.find('x', start);
    std::string part = s.substr(start, x == std::string::npos ? std::string::npos : x - start);
    try {
      size_t used = 0;
      int64_t v = std::stoll(part, &used);
      SCCONV_CHECK(used == part.size() && v > 0 && v <= 16384, "");  // (a larger image is a typo)
      out.push_back(v);
    } catch (...) {
      SCCONV_USAGE_CHECK(false, "--input: expected CxHxW like 3x32x32 (sizes 1..16384), got '" << s << "'");
    }
    if (x == std::string::npos) break;
    start = x + 1;
  }
  SCCONV_USAGE_CHECK(out.size() == 4, "--input: expected CxHxW like 3x32x32, got '" << s << "'");
  return out;
}

// printf-style formatting onto std::cout (so that callers can redirect it).
template <class... A>
void out(const char* fmt, A... a) {
  char buf[4096];
  std::snprintf(buf, sizeof buf, fmt, a...);
  std::cout << buf;
}

}  // namespace

int cmd_summary(const Args& args) {
  ArgParser p("summary", "per-layer table of a model: output shapes, parameters, MACs");
  declare_model_options(p);
  p.option("--input", "input image size CxHxW (default 3x32x32; 3x224x224 for the imagenet stem)");
  p.option("--json", "print one JSON object instead of the table", false);
  if (!p.parse(args)) return 0;
  nlohmann::json mj = model_json_from(p);
  ModelConfig cfg = parse_model_config(mj, p.get("--model-config", p.get("--model")));
  Shape input = parse_input(p.get("--input", cfg.imagenet_stem ? "3x224x224" : "3x32x32"));
  Generator g(0);
  auto model = build_model(cfg, g);
  model->eval();
  SummaryRecorder rec;
  {
    autograd::NoGradGuard ng;
    (*model)(Tensor::zeros(input));
  }
  int64_t params = model->num_parameters(), macs = 0;
  for (auto& r : rec.rows) macs += r.macs;

  if (p.has("--json")) {
    nlohmann::json layers = nlohmann::json::array();
    for (auto& r : rec.rows) {
      if (r.depth == 0) continue;  // the model itself
      Shape out(r.output.begin() + 1, r.output.end());
      layers.push_back({{"name", r.name}, {"type", r.type}, {"depth", r.depth}, {"output", out},
                        {"params", r.params}, {"macs", r.macs}});
    }
    nlohmann::json j{{"model", cfg.to_json()}, {"input", Shape(input.begin() + 1, input.end())},
                     {"params", params}, {"macs", macs}, {"layers", layers}};
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  out("%-44s %-18s %-16s %10s %12s\n", "layer", "type", "output", "params", "MACs");
  // Composite rows (SCConv, blocks, ...) show their subtree's totals in parentheses.
  for (size_t i = 0; i < rec.rows.size(); ++i) {
    const SummaryRow& r = rec.rows[i];
    if (r.depth == 0) continue;
    int64_t sub_p = r.params, sub_m = r.macs;
    size_t j = i + 1;
    for (; j < rec.rows.size() && rec.rows[j].depth > r.depth; ++j) {
      sub_p += rec.rows[j].params;
      sub_m += rec.rows[j].macs;
    }
    const bool composite = j > i + 1;
    auto cell = [&](int64_t own, int64_t sub) {
      if (composite) return sub ? std::string("(").append(std::to_string(sub)).append(")") : std::string();
      return own ? std::to_string(own) : std::string();
    };
    std::string name = std::string(2 * (r.depth - 1), ' ') + r.name;
    std::string shape = shape_str(Shape(r.output.begin() + 1, r.output.end()));
    out("%-44s %-18s %-16s %10s %12s\n", name.c_str(), r.type.c_str(), shape.c_str(),
        cell(r.params, sub_p).c_str(), cell(r.macs, sub_m).c_str());
  }
  out("\nmodel: %s\ninput: %s\nparameters: %lld (%s)\nMACs: %lld (%s)  "
              "(multiply-accumulates of convolutions and linear layers; the SCConv paper calls "
              "these \"FLOPs\")\n",
              mj.dump().c_str(), shape_str(Shape(input.begin() + 1, input.end())).c_str(),
              static_cast<long long>(params), human(double(params)).c_str(),
              static_cast<long long>(macs), human(double(macs)).c_str());
  return 0;
}

}  // namespace scconv::apps
