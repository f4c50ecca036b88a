// tests/test_layers.cpp: modules: names, modes, state loading, initialisation; SRU, CRU and
// SCConv finite-difference gradient checks (input and every parameter) for the
// differentiable variants; construction and forward errors naming the module and values.
// Run: ./build/tests/test_layers
#include "hash_init.h"
#include "layers/basic.h"
#include "models/resnet.h"
#include "test_util.h"

using namespace scconv;
using namespace scconv::testing;
using doctest::Contains;

namespace {
SCConvOptions opts(const nlohmann::json& j) {
  return parse_model_config({{"arch", "resnet20"}, {"conv", "scconv"}, {"scconv", j}}).scconv;
}

// Finite differences of L = sum(m(x) * proj) w.r.t. x and every parameter, float64.
void module_gradcheck(const std::string& what, Module& m, const Shape& in_shape) {
  CAPTURE(what);
  m.to(DType::F64);
  hash_init(m, what + "/");
  Tensor x = hash_uniform(what + "/x", in_shape, -1, 1, DType::F64);
  Tensor proj;
  auto loss = [&]() {
    autograd::NoGradGuard ng;
    Tensor y = m(x);
    if (!proj.defined()) proj = hash_uniform(what + "/proj", y.shape(), -1, 1, DType::F64);
    return sum(mul(y, proj)).item();
  };
  loss();
  x.set_requires_grad(true);
  m.zero_grad();
  autograd::backward(sum(mul(m(x), proj)));
  std::vector<std::pair<std::string, Tensor>> targets{{"input", x}};
  for (auto& np : m.named_parameters()) targets.push_back(np);
  const double eps = 1e-6;
  for (auto& [name, t] : targets) {
    Tensor analytic = t.grad().defined() ? t.grad() : Tensor::zeros(t.shape(), DType::F64);
    Tensor numeric = Tensor::empty(t.shape(), DType::F64);
    double* p = t.data<double>();
    for (int64_t i = 0; i < t.numel(); ++i) {
      const double orig = p[i];
      p[i] = orig + eps;
      double lp = loss();
      p[i] = orig - eps;
      double lm = loss();
      p[i] = orig;
      numeric.data<double>()[i] = (lp - lm) / (2 * eps);
    }
    CHECK_CLOSE(analytic, numeric, 1e-5, 1e-6, what << ": gradient of " << name);
  }
}

// A module's fused forward() against its step-by-step forward_unfused(): output, input gradient
// and every parameter gradient of L = sum(y * proj).
template <class M>
void check_fused_matches_unfused(M& m, const Tensor& x0, const Tensor& proj, double tol, const std::string& what) {
  std::vector<Tensor> results[2];
  for (int unfused = 0; unfused < 2; ++unfused) {
    Tensor x = x0.clone().set_requires_grad(true);
    m.zero_grad();
    Tensor y = unfused ? m.forward_unfused(x) : m.forward(x);
    autograd::backward(sum(mul(y, proj)));
    results[unfused] = {y.detach(), x.grad()};
    for (auto& [n, p] : m.named_parameters())
      results[unfused].push_back(p.grad().defined() ? p.grad() : Tensor::zeros(p.shape(), p.dtype()));
  }
  for (size_t k = 0; k < results[0].size(); ++k)
    CHECK_CLOSE(results[0][k], results[1][k], tol, tol * std::max(1.0, max_abs(results[1][k])),
                what << " tensor " << k << " (output, grad x, grad of each parameter)");
}
}  // namespace

TEST_CASE("module tree: dotted names, modes, parameter counts") {
  Generator g(0);
  ModelConfig cfg = parse_model_config({{"arch", "resnet20"}});
  auto m = build_model(cfg, g);
  auto params = m->named_parameters();
  CHECK(params.front().first == "conv1.weight");
  CHECK(params.back().first == "linear.bias");
  std::map<std::string, Tensor> sd = m->state_dict();
  for (const char* k : {"layer1.0.conv1.weight", "layer1.0.bn1.running_mean", "layer2.0.bn2.num_batches_tracked",
                        "layer3.2.conv2.weight", "bn1.bias", "linear.weight"})
    CHECK_MESSAGE(sd.count(k), "missing " << k);
  CHECK(m->num_parameters() == 269722);
  CHECK(m->training());
  m->eval();
  for (auto& [n, c] : m->children()) CHECK_FALSE(c->training());
  // option B adds projection shortcuts with PyTorch's names
  auto mb = build_model(parse_model_config({{"arch", "resnet20"}, {"shortcut", "B"}}), g);
  CHECK(mb->state_dict().count("layer2.0.shortcut.0.weight"));
  CHECK(mb->state_dict().count("layer2.0.shortcut.1.running_var"));
  // SCConv names follow the community code
  auto ms = build_model(parse_model_config({{"arch", "resnet20"}, {"conv", "scconv"}}), g);
  auto sds = ms->state_dict();
  for (const char* k : {"layer1.0.conv1.SRU.gn.weight", "layer1.0.conv1.SRU.gn.bias", "layer1.0.conv1.CRU.squeeze1.weight",
                        "layer1.0.conv1.CRU.squeeze2.weight", "layer1.0.conv1.CRU.GWC.weight", "layer1.0.conv1.CRU.GWC.bias",
                        "layer1.0.conv1.CRU.PWC1.weight", "layer1.0.conv1.CRU.PWC2.weight", "layer1.0.conv2.weight"})
    CHECK_MESSAGE(sds.count(k), "missing " << k);
  auto seed = build_model(parse_model_config({{"arch", "resnet20"}, {"conv", "scconv"}, {"scconv", {{"sru", {{"gn", "seed"}}}}}}), g);
  CHECK(seed->state_dict().at("layer1.0.conv1.SRU.gn.gamma").shape() == Shape{16, 1, 1});
  CHECK(seed->state_dict().count("layer1.0.conv1.SRU.gn.beta"));
  // bottleneck: torchvision names
  auto r50 = build_model(parse_model_config({{"arch", "resnet50"}}), g);
  auto s50 = r50->state_dict();
  for (const char* k : {"layer1.0.downsample.0.weight", "layer1.0.downsample.1.weight", "layer4.2.conv3.weight", "fc.weight"})
    CHECK_MESSAGE(s50.count(k), "missing " << k);
}

TEST_CASE("initialisation: Kaiming fan_out for convs, BN 1/0, seeded and reproducible") {
  Generator g1(3), g2(3);
  Conv2d a(Conv2dOptions{64, 64, 3, 1, 1}, g1), b(Conv2dOptions{64, 64, 3, 1, 1}, g2);
  CHECK(a.weight.to_vector<float>() == b.weight.to_vector<float>());
  Tensor w = a.weight.to(DType::F64);
  double var = mean(mul(w, w)).item();
  CHECK(std::fabs(var - 2.0 / (64 * 9)) < 0.1 * 2.0 / (64 * 9));
  BatchNorm2d bn(8);
  CHECK(bn.weight.to_vector<float>() == std::vector<float>(8, 1.f));
  CHECK(bn.bias.to_vector<float>() == std::vector<float>(8, 0.f));
}

TEST_CASE("batch norm module: running statistics in training, used in eval") {
  BatchNorm2d bn(3);
  Tensor x = Generator(1).normal({4, 3, 5, 5}, 2.0, 3.0);
  bn(x);
  CHECK(bn.num_batches_tracked.item() == 1);
  auto rm = bn.running_mean.to_vector<float>();
  for (float v : rm) CHECK(std::fabs(v - 0.2f) < 0.1f);  // 0.1 * batch mean ~ 2
  bn.eval();
  Tensor y1 = bn(x), y2 = bn(x);
  CHECK(mismatch(y1, y2, 0, 0).empty());  // eval is a fixed function
  CHECK(bn.num_batches_tracked.item() == 1);
}

TEST_CASE("load_state_dict reports every mismatch at once; non-strict loads the overlap") {
  Generator g(0);
  auto m = build_model(parse_model_config({{"arch", "resnet20"}}), g);
  auto sd = m->state_dict();
  std::map<std::string, Tensor> bad;
  for (auto& [k, v] : sd) bad[k] = v.clone();
  bad.erase("layer1.0.conv1.weight");
  bad["layer2.0.bn1.weight"] = Tensor::ones({5});
  bad["linear.bias"] = Tensor::ones({10}, DType::F64);
  bad["extra.weight"] = Tensor::ones({2});
  try {
    m->load_state_dict(bad, true, "w.safetensors");
    FAIL("expected an error");
  } catch (const Error& e) {
    std::string msg = e.what();
    CHECK(msg.find("loading 'w.safetensors' into ResNet: 4 problems") != std::string::npos);
    CHECK(msg.find("missing 'layer1.0.conv1.weight' (float32(16, 16, 3, 3))") != std::string::npos);
    CHECK(msg.find("'layer2.0.bn1.weight': expected float32(32,), found float32(5,)") != std::string::npos);
    CHECK(msg.find("'linear.bias': expected float32(10,), found float64(10,)") != std::string::npos);
    CHECK(msg.find("unexpected 'extra.weight'") != std::string::npos);
  }
  std::map<std::string, Tensor> partial{{"linear.bias", Tensor::full({10}, 0.5)}, {"nope", Tensor::ones({1})}};
  auto skipped = m->load_state_dict(partial, false);
  CHECK(skipped.size() == sd.size() - 1 + 1);  // everything else missing, plus "nope"
  CHECK(m->state_dict().at("linear.bias").to_vector<float>()[3] == 0.5f);
}

TEST_CASE("gradcheck: SRU variants (float64, input and GN parameters)") {
  Generator g(0);
  for (const char* gate : {"soft", "hard", "hard_reweighted"})
    for (const char* norm : {"sum", "softmax"})
      for (const char* gn : {"torch", "seed"}) {
        SRU m(8, opts({{"sru", {{"groups", 2}, {"gate", gate}, {"gamma_norm", norm}, {"gn", gn}}}}).sru, g);
        module_gradcheck(std::string("sru_") + gate + "_" + norm + "_" + gn, m, {2, 8, 3, 4});
      }
}

TEST_CASE("the fused SRU equals the SRU step by step, every option, float64 and float32") {
  Generator g(0);
  for (const char* gate : {"soft", "hard", "hard_reweighted"})
    for (const char* norm : {"sum", "softmax"})
      for (const char* gn : {"torch", "seed"})
        for (DType dt : {DType::F64, DType::F32}) {
          const std::string what = std::string("sru_") + gate + "_" + norm + "_" + gn;
          CAPTURE(what);
          CAPTURE(dtype_name(dt));
          SRU m(16, opts({{"sru", {{"groups", 4}, {"gate", gate}, {"gamma_norm", norm}, {"gn", gn}}}}).sru, g);
          m.to(dt);
          hash_init(m, what + "/");
          Tensor x0 = hash_uniform(what + "/x", {3, 16, 7, 6}, -1, 1, dt);
          Tensor proj = hash_uniform(what + "/proj", {3, 16, 7, 6}, -1, 1, dt);
          // float32: the fast kernel's exp has a relative error below 2e-7
          check_fused_matches_unfused(m, x0, proj, dt == DType::F64 ? 1e-10 : 2e-4, what);
        }
}

TEST_CASE("the fused CRU fuse equals the CRU step by step, every fuse and stride") {
  Generator g(0);
  for (const char* fuse : {"branch_softmax", "channel_softmax", "split_conv", "branch_fc"})
    for (int64_t stride : {1, 2})
      for (DType dt : {DType::F64, DType::F32}) {
        const std::string what = std::string("cru_") + fuse + "_s" + std::to_string(stride);
        CAPTURE(what);
        CAPTURE(dtype_name(dt));
        CRU m(16, 32, stride, opts({{"cru", {{"fuse", fuse}}}}).cru, g);
        m.to(dt);
        hash_init(m, what + "/");
        Tensor x0 = hash_uniform(what + "/x", {3, 16, 8, 6}, -1, 1, dt);
        Tensor proj = hash_uniform(what + "/proj", {3, 32, 8 / stride, 6 / stride}, -1, 1, dt);
        check_fused_matches_unfused(m, x0, proj, dt == DType::F64 ? 1e-10 : 1e-4, what);
      }
}

TEST_CASE("gradcheck: CRU variants (float64, input and every conv parameter)") {
  Generator g(0);
  for (const char* fuse : {"branch_softmax", "channel_softmax", "split_conv"}) {
    CRU same(8, 8, 1, opts({{"cru", {{"fuse", fuse}}}}).cru, g);
    module_gradcheck(std::string("cru_") + fuse, same, {2, 8, 4, 4});
    CRU down(8, 12, 2, opts({{"cru", {{"fuse", fuse}}}}).cru, g);
    module_gradcheck(std::string("cru_down_") + fuse, down, {1, 8, 5, 5});
  }
  CRU wide(8, 9, 1, opts({{"alpha", 0.75}, {"kernel", 5}, {"groups", 3}}).cru, g);
  module_gradcheck("cru_alpha075_k5_g3", wide, {1, 8, 5, 5});
  // the seeds' variants: seed 004's fuse and squeeze, seed 000's GWC without bias
  CRU fc(8, 12, 2, opts({{"cru", {{"fuse", "branch_fc"}}}}).cru, g);
  module_gradcheck("cru_branch_fc", fc, {2, 8, 5, 5});
  CRU strided(16, 12, 1, opts({{"alpha", 0.75}, {"squeeze", 4}, {"groups", 1}, {"cru", {{"squeeze_kind", "channel_stride"}}}}).cru, g);
  module_gradcheck("cru_channel_stride", strided, {2, 16, 4, 4});
  CRU no_bias(8, 12, 2, opts({{"cru", {{"gwc_bias", false}}}}).cru, g);
  module_gradcheck("cru_gwc_no_bias", no_bias, {1, 8, 5, 5});
  CHECK(no_bias.num_parameters() + 12 == CRU(8, 12, 2, opts({}).cru, g).num_parameters());
  // (no squeeze convolutions: 12 -> 3 and 4 -> 1)
  CHECK(strided.num_parameters() + 12 * 3 + 4 * 1 == CRU(16, 12, 1, opts({{"alpha", 0.75}, {"squeeze", 4}, {"groups", 1}}).cru, g).num_parameters());
}

TEST_CASE("gradcheck: SRU with the mask on w (seed 003, float64)") {
  Generator g(0);
  for (const char* gate : {"soft", "hard_reweighted"}) {
    SRU m(8, opts({{"sru", {{"groups", 2}, {"mask_on", "w"}, {"gate", gate}, {"threshold", 0.125}}}}).sru, g);
    module_gradcheck(std::string("sru_mask_on_w_") + gate, m, {2, 8, 4, 4});
  }
}

TEST_CASE("gradcheck: SCConv orders (float64)") {
  Generator g(0);
  for (const char* order : {"S+C", "C+S", "S", "C"}) {
    SCConv m(8, 12, 2, opts({{"order", order}, {"sru", {{"groups", 2}}}}), g);
    module_gradcheck(std::string("scconv_") + order, m, {2, 8, 5, 5});
  }
  SCConv par(8, 8, 1, opts({{"order", "parallel"}, {"sru", {{"groups", 4}}}}), g);
  module_gradcheck("scconv_parallel", par, {2, 8, 4, 4});
  // parallel where SRU(x) is mapped onto CRU(x): stride 2, and stride 2 with more channels
  SCConv par_down(8, 8, 2, opts({{"order", "parallel"}, {"sru", {{"groups", 4}}}}), g);
  module_gradcheck("scconv_parallel_stride2", par_down, {2, 8, 5, 5});
  SCConv par_wide(8, 12, 2, opts({{"order", "parallel"}, {"sru", {{"groups", 4}}}}), g);
  module_gradcheck("scconv_parallel_wide", par_wide, {2, 8, 5, 5});
  // and it keeps the parameters of order "C" plus the SRU's group norm (the paper's Table 1)
  SCConv only_c(8, 12, 2, opts({{"order", "C"}}), g);
  CHECK(par_wide.num_parameters() == only_c.num_parameters() + 2 * 8);
}

TEST_CASE("invalid SCConv combinations fail naming the module and values") {
  Generator g(0);
  CHECK_THROWS_WITH_AS(SRU(15, SRUOptions{5}, g), Contains("SRU: the cross reconstruction splits channels in halves, so channels must be even, got 15"), Error);
  CHECK_THROWS_WITH_AS(SRU(16, SRUOptions{3}, g), Contains("SRU: sru.groups=3 must divide channels=16"), Error);
  CHECK_THROWS_WITH_AS(CRU(16, 16, 1, opts({{"groups", 3}}).cru, g),
                       Contains("CRU: groups=3 must divide the GWC's input channels 4 and output channels 16"), Error);
  CHECK_THROWS_WITH_AS(CRU(4, 4, 1, opts({{"alpha", 0.2}}).cru, g),
                       Contains("CRU: alpha=0.2 leaves a branch empty with c_in=4 (up=0, low=4)"), Error);
  CHECK_THROWS_WITH_AS(CRU(4, 4, 1, opts({{"squeeze", 4}}).cru, g), Contains("squeeze=4 leaves a branch empty"), Error);
  CHECK_THROWS_WITH_AS(SCConv(32, 16, 1, opts({{"order", "parallel"}}), g),
                       Contains("order \"parallel\" adds SRU(x) (32 channels) to CRU(x) (16), so it needs c_out >= c_in"), Error);
  // In a model the error names the block.
  CHECK_THROWS_WITH_AS(build_model(parse_model_config({{"arch", "resnet20"}, {"conv", "scconv"}, {"scconv", {{"sru", {{"groups", 32}}}}}}), g),
                       Contains("model resnet20, block layer1.0: SRU: sru.groups=32 must divide channels=16"), Error);
  // A GN gamma summing to ~0 makes w = gamma / sum(gamma) undefined: caught at forward time.
  SRU sru(4, SRUOptions{2}, g);
  sru.assign_names("layer1.0.conv1.SRU");
  Tensor gamma = sru.gamma();
  gamma.copy_(Tensor::from_vector<float>({1, -1, 2, -2}, {4}));
  CHECK_THROWS_WITH_AS(sru(Tensor::ones({1, 4, 2, 2})),
                       Contains("SRU 'layer1.0.conv1.SRU': sum of the GN gamma is 0"), Error);
  {  // in a training step the same test runs on the device: NaN channel weights, a NaN output
    DeviceSideChecks device_side;
    CHECK(!all_finite(sru(Tensor::ones({1, 4, 2, 2}))));
    const Tensor x = Generator(3).normal({2, 4, 3, 3});
    gamma.copy_(Tensor::from_vector<float>({1, 1, 2, -2}, {4}));  // sum 2: both paths give the same
    const Tensor y_device = sru(x);
    {
      FiniteCheckGuard host_side;
      CHECK_CLOSE(y_device, sru(x), 0, 0, "device-side vs host-side check");
    }
    gamma.copy_(Tensor::from_vector<float>({1, -1, 2, -2}, {4}));
    FiniteCheckGuard diagnosis;  // the guard's diagnosis checks on the host again, naming the cause
    CHECK_THROWS_WITH_AS(sru(Tensor::ones({1, 4, 2, 2})),
                         Contains("SRU 'layer1.0.conv1.SRU': sum of the GN gamma is 0"), Error);
  }
  SRU soft(4, opts({{"sru", {{"groups", 2}, {"gamma_norm", "softmax"}}}}).sru, g);  // the documented way out
  soft.gamma().copy_(Tensor::from_vector<float>({1, -1, 2, -2}, {4}));
  CHECK(soft(Generator(2).normal({1, 4, 2, 2})).shape() == Shape{1, 4, 2, 2});
  CHECK_THROWS_WITH_AS(soft(Tensor::ones({1, 6, 2, 2})), Contains("expected (N, 4, H, W), got float32(1, 6, 2, 2)"), Error);
}

TEST_CASE("model config: defaults, unknown keys and bad values name the key") {
  ModelConfig c = parse_model_config({{"arch", "resnet56"}, {"conv", "scconv"}});
  CHECK(c.placement == Placement::Conv1);
  CHECK(c.scconv.sru.groups == 16);
  CHECK(c.scconv.cru.alpha == 0.5);
  CHECK(parse_model_config({{"arch", "resnet50"}, {"conv", "scconv"}}).placement == Placement::Conv2);
  CHECK(parse_model_config(c.to_json()).to_json() == c.to_json());  // round trip
  using nlohmann::json;
  CHECK_THROWS_WITH_AS(parse_model_config(json{{"arch", "resnet20"}, {"colour", 1}}), Contains("unknown key 'colour'"), Error);
  CHECK_THROWS_WITH_AS(parse_model_config(json{{"arch", "resnet20"}, {"conv", "scconv"}, {"scconv", {{"sru", {{"gate", "fuzzy"}}}}}}),
                       Contains("scconv.sru.gate: unknown value \"fuzzy\" (accepted: \"soft\", \"hard\", \"hard_reweighted\")"), Error);
  CHECK_THROWS_WITH_AS(parse_model_config(json{{"arch", "resnet20"}, {"conv", "scconv"}, {"scconv", {{"cru", {{"fuse", 3}}}}}}),
                       Contains("scconv.cru.fuse: expected a string, got 3"), Error);
  CHECK_THROWS_WITH_AS(parse_model_config(json{{"arch", "resnet20"}, {"conv", "scconv"}, {"scconv", {{"alpha", 1.5}}}}),
                       Contains("scconv.alpha: must be in (0, 1), got 1.5"), Error);
  CHECK_THROWS_WITH_AS(parse_model_config(json{{"arch", "resnet21"}}), Contains("arch: unknown value \"resnet21\""), Error);
  CHECK_THROWS_WITH_AS(parse_model_config(json{{"num_classes", 10}}), Contains("missing key 'arch'"), Error);
  CHECK_THROWS_WITH_AS(parse_model_config(json{{"arch", "resnet20"}, {"scconv", {{"alpha", 0.5}}}}),
                       Contains("scconv: options given but conv is \"standard\""), Error);
  CHECK_THROWS_WITH_AS(parse_model_config(json{{"arch", "resnet50"}, {"conv", "scconv"}, {"scconv", {{"placement", "conv1"}}}}),
                       Contains("scconv.placement: \"conv1\" is not valid for resnet50"), Error);
  CHECK_THROWS_WITH_AS(parse_model_config(json{{"arch", "resnet20"}, {"conv", "scconv"}, {"scconv", {{"sru", {{"groups", 2.5}}}}}}),
                       Contains("scconv.sru.groups: expected an integer, got 2.5"), Error);
}

TEST_CASE("placements replace the intended 3x3 convolutions") {
  Generator g(0);
  auto count = [&](const char* placement) {
    auto m = build_model(parse_model_config({{"arch", "resnet20"}, {"conv", "scconv"}, {"scconv", {{"placement", placement}}}}), g);
    int n = 0;
    for (auto& [k, v] : m->state_dict())
      if (k.find("CRU.squeeze1.weight") != std::string::npos) ++n;
    return n;
  };
  CHECK(count("conv1") == 9);
  CHECK(count("conv2") == 9);
  CHECK(count("both") == 18);
  CHECK(count("stride1_only") == 16);  // every 3x3 but the two stride-2 conv1s
}
