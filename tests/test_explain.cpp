// tests/test_explain.cpp: looking inside SCConv. The captured intermediates of the SRU and the
// CRU (layers/capture.h) against the test's own loops from the same weights, and capturing
// leaves the model's output bit for bit unchanged; `scconv explain` end to end (files, stats.json
// against its tensors, figures that decode and are not constant) and its bad-input errors; the
// bar chart's bar heights follow its values.
// Run: ./build/tests/test_explain
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>

#include <stb_image.h>

#include "apps/commands.h"
#include "apps/explain.h"
#include "apps/plot.h"
#include "core/safetensors.h"
#include "hash_init.h"
#include "models/resnet.h"
#include "synthetic_cifar.h"
#include "test_util.h"

using namespace scconv;
using namespace scconv::testing;
using doctest::Contains;
namespace fs = std::filesystem;

namespace {
SCConvOptions opts(const nlohmann::json& j) {
  return parse_model_config({{"arch", "resnet20"}, {"conv", "scconv"}, {"scconv", j}}).scconv;
}

// ---- the test's own loops, float64 ----
struct T4 {  // (N, C, H, W)
  int64_t N = 0, C = 0, H = 0, W = 0;
  std::vector<double> v;
  double& at(int64_t n, int64_t c, int64_t y, int64_t x) { return v[size_t(((n * C + c) * H + y) * W + x)]; }
  double at(int64_t n, int64_t c, int64_t y, int64_t x) const { return v[size_t(((n * C + c) * H + y) * W + x)]; }
};
T4 t4(const Tensor& t) { return {t.size(0), t.size(1), t.size(2), t.size(3), t.to_vector<double>()}; }
T4 zeros4(int64_t N, int64_t C, int64_t H, int64_t W) { return {N, C, H, W, std::vector<double>(size_t(N * C * H * W))}; }
Tensor tensor_of(const T4& a) {
  Tensor t = Tensor::zeros({a.N, a.C, a.H, a.W}, DType::F64);
  std::copy(a.v.begin(), a.v.end(), t.data<double>());
  return t;
}
Tensor param(const Module& m, const std::string& name) {
  for (auto& [n, p] : m.named_parameters())
    if (n == name) return p.contiguous();
  FAIL("no parameter " << name);
  return {};
}
// A direct convolution: w (Co, Ci / groups, k, k), optional bias (Co).
T4 conv(const T4& x, const Tensor& weight, const Tensor* bias, int64_t stride, int64_t pad, int64_t groups) {
  const int64_t Co = weight.size(0), Cg = weight.size(1), k = weight.size(2), cog = Co / groups;
  const std::vector<double> w = weight.to_vector<double>();
  T4 y = zeros4(x.N, Co, (x.H + 2 * pad - k) / stride + 1, (x.W + 2 * pad - k) / stride + 1);
  for (int64_t n = 0; n < x.N; ++n)
    for (int64_t o = 0; o < Co; ++o)
      for (int64_t i = 0; i < y.H; ++i)
        for (int64_t j = 0; j < y.W; ++j) {
          double s = bias ? bias->to_vector<double>()[size_t(o)] : 0;
          for (int64_t ci = 0; ci < Cg; ++ci)
            for (int64_t a = 0; a < k; ++a)
              for (int64_t b = 0; b < k; ++b) {
                const int64_t yy = i * stride + a - pad, xx = j * stride + b - pad;
                if (yy < 0 || xx < 0 || yy >= x.H || xx >= x.W) continue;
                s += w[size_t(((o * Cg + ci) * k + a) * k + b)] * x.at(n, (o / cog) * Cg + ci, yy, xx);
              }
          y.at(n, o, i, j) = s;
        }
  return y;
}
T4 channels(const T4& x, int64_t from, int64_t to) {
  T4 y = zeros4(x.N, to - from, x.H, x.W);
  for (int64_t n = 0; n < x.N; ++n)
    for (int64_t c = from; c < to; ++c)
      for (int64_t i = 0; i < x.H * x.W; ++i) y.v[size_t((n * y.C + c - from) * x.H * x.W + i)] = x.v[size_t((n * x.C + c) * x.H * x.W + i)];
  return y;
}
std::vector<double> pooled(const T4& y) {  // (N, C)
  std::vector<double> s(size_t(y.N * y.C), 0.0);
  for (int64_t n = 0; n < y.N; ++n)
    for (int64_t c = 0; c < y.C; ++c)
      for (int64_t i = 0; i < y.H; ++i)
        for (int64_t j = 0; j < y.W; ++j) s[size_t(n * y.C + c)] += y.at(n, c, i, j) / double(y.H * y.W);
  return s;
}
void check_same(const Tensor& got, const Tensor& want, const std::string& what) {
  CHECK_CLOSE(got, want, 1e-10, 1e-10 * std::max(1.0, max_abs(want)), what);
}
Tensor nc(const std::vector<double>& v, int64_t N, int64_t C) {
  Tensor t = Tensor::zeros({N, C}, DType::F64);
  std::copy(v.begin(), v.end(), t.data<double>());
  return t;
}

// Runs a subcommand with stdout captured.
std::string run_cmd(int (*cmd)(const apps::Args&), const apps::Args& args) {
  std::ostringstream out;
  auto* old = std::cout.rdbuf(out.rdbuf());
  try {
    cmd(args);
  } catch (...) {
    std::cout.rdbuf(old);
    throw;
  }
  std::cout.rdbuf(old);
  return out.str();
}
// Decodes a PNG file: width, height and whether its pixels are not all the same.
struct Png {
  int w = 0, h = 0;
  bool varied = false;
};
Png read_png(const std::string& path) {
  Png p;
  int ch = 0;
  unsigned char* d = stbi_load(path.c_str(), &p.w, &p.h, &ch, 3);
  REQUIRE_MESSAGE(d, path << " does not decode");
  for (int i = 3; i < p.w * p.h * 3 && !p.varied; ++i) p.varied = d[i] != d[i % 3];
  stbi_image_free(d);
  return p;
}
}  // namespace

TEST_CASE("capture: the SRU's recorded steps equal the test's own loops, and the output is the fused one") {
  Generator g(0);
  for (const char* gate : {"soft", "hard", "hard_reweighted"}) {
    const std::string what = std::string("sru_capture_") + gate;
    CAPTURE(what);
    SRU m(8, opts({{"sru", {{"groups", 2}, {"gate", gate}, {"threshold", 0.5}}}}).sru, g);
    m.to(DType::F64);
    hash_init(m, what + "/");
    m.assign_names("unit.SRU");
    const Tensor x = hash_uniform(what + "/x", {2, 8, 5, 4}, -2, 2, DType::F64);
    Tensor plain;
    {
      autograd::NoGradGuard ng;
      plain = m(x);
    }
    Capture cap;
    Tensor y;
    {
      autograd::NoGradGuard ng;
      CaptureScope scope(cap, {&m});
      y = m(x);
    }
    CHECK(m.capture() == nullptr);  // detached when the scope ended
    CHECK(y.to_vector<double>() == plain.to_vector<double>());  // bit for bit: the fused kernel's
    // the spec's steps by hand
    const T4 X = t4(x);
    const std::vector<double> gamma = param(m, "gn.weight").to_vector<double>(), beta = param(m, "gn.bias").to_vector<double>();
    T4 G = zeros4(2, 8, 5, 4), R = G, W1 = G, W2 = G, X1 = G, X2 = G, out = G;
    for (int64_t n = 0; n < 2; ++n)
      for (int64_t grp = 0; grp < 2; ++grp) {
        double s = 0, ss = 0;
        for (int64_t c = grp * 4; c < grp * 4 + 4; ++c)
          for (int64_t i = 0; i < 20; ++i) s += X.v[size_t((n * 8 + c) * 20 + i)];
        const double mean = s / 80;
        for (int64_t c = grp * 4; c < grp * 4 + 4; ++c)
          for (int64_t i = 0; i < 20; ++i) ss += std::pow(X.v[size_t((n * 8 + c) * 20 + i)] - mean, 2);
        const double inv = 1 / std::sqrt(ss / 80 + 1e-5);
        for (int64_t c = grp * 4; c < grp * 4 + 4; ++c)
          for (int64_t i = 0; i < 20; ++i) {
            const size_t k = size_t((n * 8 + c) * 20 + i);
            G.v[k] = (X.v[k] - mean) * inv * gamma[size_t(c)] + beta[size_t(c)];
          }
      }
    double gsum = 0;
    for (double v : gamma) gsum += v;
    std::vector<double> w(8);
    for (int64_t c = 0; c < 8; ++c) w[size_t(c)] = gamma[size_t(c)] / gsum;
    for (size_t k = 0; k < G.v.size(); ++k) {
      const int64_t c = int64_t(k / 20) % 8;
      const double r = 1 / (1 + std::exp(-G.v[k] * w[size_t(c)]));
      const bool info = r > 0.5;
      R.v[k] = r;
      W1.v[k] = std::string(gate) == "soft" ? (info ? 1 : r) : std::string(gate) == "hard" ? info : (info ? r : 0);
      W2.v[k] = std::string(gate) == "soft" ? (info ? 0 : r) : std::string(gate) == "hard" ? !info : (info ? 0 : r);
      X1.v[k] = W1.v[k] * X.v[k];
      X2.v[k] = W2.v[k] * X.v[k];
    }
    for (int64_t n = 0; n < 2; ++n)
      for (int64_t c = 0; c < 8; ++c)
        for (int64_t i = 0; i < 20; ++i)
          out.v[size_t((n * 8 + c) * 20 + i)] =
              X1.v[size_t((n * 8 + c) * 20 + i)] + X2.v[size_t((n * 8 + (c + 4) % 8) * 20 + i)];
    const std::string mod = "unit.SRU";
    check_same(cap.get(mod, "X"), x, "X");
    check_same(cap.get(mod, "G"), tensor_of(G), "G");
    Tensor wt = Tensor::zeros({8}, DType::F64);
    std::copy(w.begin(), w.end(), wt.data<double>());
    check_same(cap.get(mod, "w"), wt, "w");
    for (auto [name, t] : {std::pair{"R", &R}, {"W1", &W1}, {"W2", &W2}, {"X1", &X1}, {"X2", &X2}})
      check_same(cap.get(mod, name), tensor_of(*t), name);
    check_same(cap.get(mod, "output"), tensor_of(out), "output");
    check_same(cap.get(mod, "output_unfused"), tensor_of(out), "output_unfused");
    CHECK_THROWS_WITH(cap.get(mod, "beta1"), Contains("module 'unit.SRU' recorded no 'beta1' (it has: X, G, w, R"));
  }
}

TEST_CASE("capture: the CRU's recorded steps equal the test's own loops, every fuse, both strides") {
  Generator g(0);
  for (const char* fuse : {"branch_softmax", "channel_softmax"})
    for (int64_t stride : {1, 2}) {
      const std::string what = std::string("cru_capture_") + fuse + std::to_string(stride);
      CAPTURE(what);
      const int64_t c_out = stride == 1 ? 8 : 16;
      CRU m(8, c_out, stride, opts({{"cru", {{"fuse", fuse}}}}).cru, g);
      m.to(DType::F64);
      hash_init(m, what + "/");
      m.assign_names("unit.CRU");
      const Tensor x = hash_uniform(what + "/x", {2, 8, 6, 6}, -1, 1, DType::F64);
      Tensor plain, y;
      Capture cap;
      {
        autograd::NoGradGuard ng;
        plain = m(x);
        CaptureScope scope(cap, {&m});
        y = m(x);
      }
      CHECK(y.to_vector<double>() == plain.to_vector<double>());
      // up = low = 4 channels, squeezed to 2 each; GWC 3x3 in 2 groups with bias, PWC1, PWC2
      const T4 X = t4(x);
      const T4 up_s = conv(channels(X, 0, 4), param(m, "squeeze1.weight"), nullptr, 1, 0, 1);
      const T4 low_s = conv(channels(X, 4, 8), param(m, "squeeze2.weight"), nullptr, 1, 0, 1);
      const Tensor gwc_bias = param(m, "GWC.bias");
      T4 Y1 = conv(up_s, param(m, "GWC.weight"), &gwc_bias, stride, 1, 2);
      const T4 p1 = conv(up_s, param(m, "PWC1.weight"), nullptr, stride, 0, 1);
      for (size_t k = 0; k < Y1.v.size(); ++k) Y1.v[k] += p1.v[k];
      const T4 p2 = conv(low_s, param(m, "PWC2.weight"), nullptr, stride, 0, 1);  // c_out - 2 channels
      T4 Y2 = zeros4(2, c_out, Y1.H, Y1.W);
      for (int64_t n = 0; n < 2; ++n)
        for (int64_t c = 0; c < c_out; ++c)
          for (int64_t i = 0; i < Y2.H; ++i)
            for (int64_t j = 0; j < Y2.W; ++j)
              Y2.at(n, c, i, j) = c < c_out - 2 ? p2.at(n, c, i, j) : low_s.at(n, c - (c_out - 2), i * stride, j * stride);
      const std::vector<double> S1 = pooled(Y1), S2 = pooled(Y2);
      std::vector<double> b1(S1.size()), b2(S1.size());
      for (int64_t n = 0; n < 2; ++n) {
        double z = 0;  // channel_softmax: over all 2 c_out pooled channels
        for (int64_t c = 0; c < c_out; ++c) z += std::exp(S1[size_t(n * c_out + c)]) + std::exp(S2[size_t(n * c_out + c)]);
        for (int64_t c = 0; c < c_out; ++c) {
          const size_t k = size_t(n * c_out + c);
          const double e1 = std::exp(S1[k]), e2 = std::exp(S2[k]);
          const bool branch = std::string(fuse) == "branch_softmax";
          b1[k] = branch ? e1 / (e1 + e2) : e1 / z;
          b2[k] = branch ? e2 / (e1 + e2) : e2 / z;
        }
      }
      T4 out = Y1;
      for (size_t k = 0; k < out.v.size(); ++k) {
        const size_t nc_index = k / size_t(Y1.H * Y1.W);
        out.v[k] = b1[nc_index] * Y1.v[k] + b2[nc_index] * Y2.v[k];
      }
      const std::string mod = "unit.CRU";
      check_same(cap.get(mod, "X_up_squeezed"), tensor_of(up_s), "X_up_squeezed");
      check_same(cap.get(mod, "X_low_squeezed"), tensor_of(low_s), "X_low_squeezed");
      check_same(cap.get(mod, "Y1"), tensor_of(Y1), "Y1");
      check_same(cap.get(mod, "Y2"), tensor_of(Y2), "Y2");
      check_same(cap.get(mod, "S1"), nc(S1, 2, c_out), "S1");
      check_same(cap.get(mod, "S2"), nc(S2, 2, c_out), "S2");
      check_same(cap.get(mod, "beta1"), nc(b1, 2, c_out), "beta1");
      check_same(cap.get(mod, "beta2"), nc(b2, 2, c_out), "beta2");
      check_same(cap.get(mod, "output"), tensor_of(out), "output");
    }
}

TEST_CASE("capture: a whole model's logits are bit for bit the same with every unit captured") {
  Generator g(3);
  auto model = build_model(parse_model_config(load_model_preset("resnet20-scconv")), g);
  model->eval();
  const Tensor x = hash_uniform("capture_model/x", {2, 3, 32, 32}, -1, 1, DType::F32);
  Tensor plain;
  {
    autograd::NoGradGuard ng;
    plain = (*model)(x);
  }
  const auto units = apps::select_units(*model, {});
  CHECK(units.size() == 9);
  CHECK(units[0].name == "layer1.0.conv1");
  Capture cap;
  const Tensor logits = apps::capture_units(*model, units, x, cap);
  CHECK(logits.to_vector<float>() == plain.to_vector<float>());
  CHECK(cap.modules().size() == 18);  // an SRU and a CRU per unit
  CHECK(cap.get("layer3.2.conv1.CRU", "beta1").shape() == Shape{2, 64});
  CHECK_THROWS_WITH(apps::select_units(*model, {"layer1.0.conv2"}),
                    Contains("--layer: no SCConv unit 'layer1.0.conv2' in this model; its units are: layer1.0.conv1, layer1.1.conv1"));
  auto plain_model = build_model(parse_model_config(load_model_preset("resnet20")), g);
  CHECK_THROWS_WITH(apps::select_units(*plain_model, {}), Contains("this model has no SCConv units"));
}

TEST_CASE("bar chart: each bar's height follows its value") {
  apps::BarChart c{"t", "x", "y", {}, {{1, 2, 3, 4, 0.5}}, 0, 4};
  apps::BarLayout l;
  const apps::Canvas img = apps::draw_bar_chart(c, &l);
  for (size_t b = 0; b < 5; ++b) {
    const int x = l.bar_x[0][b] + l.bar_w / 2;
    int filled = 0;
    for (int y = l.plot_y; y < l.plot_y + l.plot_h; ++y) filled += img.at(x, y) == apps::series_colour(0);
    CAPTURE(b);
    CHECK(std::abs(filled - int(std::lround(c.series[0][b] / 4 * (l.plot_h - 1)))) <= 1);
  }
}

namespace {
// A fresh resnet20-scconv saved as a weights file, and the synthetic CIFAR-10 files.
struct ExplainFixture {
  fs::path dir = scratch_dir("scconv_test_explain_") / "fixture", data = dir / "data", weights = dir / "w.safetensors";
  ExplainFixture() {
    if (fs::exists(weights)) return;
    write_synthetic_cifar(data);
    Generator g(11);
    auto model = build_model(parse_model_config(load_model_preset("resnet20-scconv")), g);
    // the CRU's fuse weights of a fresh model are all equal: make the stats differ per channel
    hash_init(*model, "explain/");
    save_safetensors(weights.string(), model->state_dict());
  }
  apps::Args base(const fs::path& out) const {
    return {"--model", "resnet20-scconv", "--weights", weights.string(), "--data", data.string(), "--out", out.string()};
  }
};
double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s / double(v.size());
}
}  // namespace

TEST_CASE("explain: tensors, stats.json that agrees with them, and figures, for a test index and an image file") {
  ExplainFixture f;
  const fs::path out = f.dir / "out1", png = f.dir / "wide.png";
  apps::Canvas wide(48, 40);  // not the model's 32x32: resized, with a note
  for (int y = 0; y < 40; ++y)
    for (int x = 0; x < 48; ++x) wide.set(x, y, apps::Rgb{uint8_t(x * 5), uint8_t(y * 6), 90});
  apps::write_png(png.string(), wide);
  apps::Args a = f.base(out);
  a.insert(a.end(), {"--image", "5", "--image", png.string(), "--layer", "layer2.0.conv1", "--json"});
  const nlohmann::json j = nlohmann::json::parse(run_cmd(apps::cmd_explain, a));
  REQUIRE(j["units"].size() == 1);
  CHECK(j["images"][0]["test_index"] == 5);
  CHECK(j["images"][1]["tag"] == "wide");
  const fs::path unit = out / "layer2.0.conv1";
  std::set<std::string> listed;
  for (auto& p : j["units"][0]["files"]) listed.insert(fs::path(p.get<std::string>()).filename().string());
  for (const char* name : {"tensors.safetensors", "stats.json", "input_test5.png", "input_wide.png", "sru_X_test5.png",
                           "sru_R_wide.png", "sru_W1_test5.png", "sru_W2_test5.png", "sru_X1_test5.png", "sru_X2_test5.png",
                           "sru_output_test5.png", "fig5_wide.png", "bars_w.png", "bars_informative.png", "bars_beta.png"}) {
    CAPTURE(name);
    CHECK(listed.count(name) == 1);
    CHECK(fs::exists(unit / name));
  }
  // stats.json follows from the tensors it was computed from
  const SafetensorsFile t = load_safetensors((unit / "tensors.safetensors").string());
  std::ifstream sf(unit / "stats.json");
  const nlohmann::json stats = nlohmann::json::parse(sf);
  // layer2.0.conv1: the SRU sees 16 channels at 32x32, the CRU gives 32 at 16x16 (stride 2)
  const Tensor R = t.tensors.at("SRU.R"), b1 = t.tensors.at("CRU.beta1");
  REQUIRE(R.shape() == Shape{2, 16, 32, 32});
  REQUIRE(b1.shape() == Shape{2, 32});
  CHECK(t.tensors.at("CRU.Y1").shape() == Shape{2, 32, 16, 16});
  const double thr = stats["sru"]["threshold"];
  const std::vector<double> r = R.to(DType::F64).to_vector<double>(), beta1 = b1.to(DType::F64).to_vector<double>();
  std::vector<double> frac(16, 0), bmean(32, 0);
  for (size_t k = 0; k < r.size(); ++k) frac[(k / 1024) % 16] += (r[k] > thr) / 2048.0;
  for (size_t k = 0; k < beta1.size(); ++k) bmean[k % 32] += beta1[k] / 2;
  const std::vector<double> got_frac = stats["sru"]["informative_fraction"], got_b1 = stats["cru"]["beta1"],
                            got_w = stats["sru"]["w"];
  REQUIRE(got_frac.size() == 16);
  REQUIRE(got_b1.size() == 32);
  REQUIRE(got_w.size() == 16);
  for (size_t c = 0; c < 16; ++c) CHECK(got_frac[c] == doctest::Approx(frac[c]).epsilon(1e-12));
  for (size_t c = 0; c < 32; ++c) CHECK(got_b1[c] == doctest::Approx(bmean[c]).epsilon(1e-6));
  CHECK(double(stats["sru"]["mean_informative_fraction"]) == doctest::Approx(mean(frac)));
  CHECK(double(stats["cru"]["mean_beta1"]) + double(stats["cru"]["mean_beta2"]) == doctest::Approx(1.0));
  CHECK(mean(got_w) * 16 == doctest::Approx(1.0));  // w = gamma / sum(gamma)
  CHECK(stats["params"]["total"] == stats["params"]["sru"].get<int64_t>() + stats["params"]["cru"].get<int64_t>());
  CHECK(stats["macs_per_image"]["cru"].get<int64_t>() > 0);
  // figures: the sizes of their layouts, and not blank
  Png input = read_png((unit / "input_test5.png").string()), grid = read_png((unit / "sru_R_test5.png").string());
  CHECK(input.w == 140);
  CHECK(input.h == 128 + 30);
  CHECK(grid.w == 8 * (64 + 6) + 6);  // 8 columns of 32x32 maps drawn 2x, 2 rows
  CHECK(grid.h == 28 + 2 * (64 + 10 + 6) + 48);
  for (const char* name : {"input_test5.png", "input_wide.png", "sru_R_test5.png", "sru_X1_wide.png", "fig5_test5.png",
                           "bars_w.png", "bars_beta.png"}) {
    CAPTURE(name);
    CHECK(read_png((unit / name).string()).varied);
  }
}

TEST_CASE("explain: bad input is a clear error") {
  ExplainFixture f;
  const fs::path out = f.dir / "out2";
  auto fails = [&](apps::Args a, const std::string& msg) {
    CAPTURE(msg);
    CHECK_THROWS_WITH(run_cmd(apps::cmd_explain, a), Contains(msg.c_str()));
  };
  apps::Args a = f.base(out);
  a.insert(a.end(), {"--image", "128"});
  fails(a, "--image 128: the test set has 128 images (indices 0..127)");
  a = f.base(out);
  a.insert(a.end(), {"--image", "99999999999999999999999"});
  fails(a, "the test set has 128 images");
  a = f.base(out);
  a.insert(a.end(), {"--layer", "layer9.conv1"});
  fails(a, "no SCConv unit 'layer9.conv1' in this model; its units are: layer1.0.conv1,");
  a = f.base(out);
  a.insert(a.end(), {"--image", (f.dir / "missing.png").string()});
  fails(a, "missing.png");
  std::ofstream(f.dir / "junk.png") << "not an image at all";
  a = f.base(out);
  a.insert(a.end(), {"--image", (f.dir / "junk.png").string()});
  fails(a, "junk.png: unreadable image");
  fails({"--checkpoint", (f.dir / "no_such_run").string(), "--out", out.string()}, "no_such_run");
  std::ofstream(f.dir / "corrupt.safetensors") << "\x10\0\0\0\0\0\0\0{garbage";
  fails({"--checkpoint", (f.dir / "corrupt.safetensors").string(), "--out", out.string()}, "corrupt.safetensors");
  fails({"--model", "resnet20", "--weights", f.weights.string(), "--out", out.string()}, "unexpected");
  Generator g(1);
  save_safetensors((f.dir / "plain.safetensors").string(),
                   build_model(parse_model_config(load_model_preset("resnet20")), g)->state_dict());
  fails({"--model", "resnet20", "--weights", (f.dir / "plain.safetensors").string(), "--out", out.string()},
        "this model has no SCConv units");
}
