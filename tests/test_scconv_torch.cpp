// tests/test_scconv_torch.cpp: SRU, CRU, SCConv (every option value) and whole ResNets against
// PyTorch. tests/data/scconv_torch.safetensors (tools/gen_scconv_reference.py) lists the cases
// in its metadata and holds PyTorch's float64 outputs and gradients; weights and inputs come
// from tests/hash_init.h on both sides.
//   float64: our reference semantics must match to ~1e-9 (no threshold flips possible).
//   float32: the fast path (oneDNN, fused kernels) must match at float32 tolerances.
// Run: ./build/tests/test_scconv_torch
#include "core/backend.h"
#include "core/safetensors.h"
#include "hash_init.h"
#include "models/resnet.h"
#include "test_util.h"

using namespace scconv;
using namespace scconv::testing;
using json = nlohmann::json;

namespace {
const SafetensorsFile& data() {
  static SafetensorsFile f = load_safetensors(std::string(SCCONV_TEST_DATA) + "/scconv_torch.safetensors");
  return f;
}
const json& cases() {
  static json j = json::parse(data().metadata.at("cases"));
  return j;
}
Tensor torch_ref(const std::string& key) {
  auto it = data().tensors.find(key);
  REQUIRE_MESSAGE(it != data().tensors.end(), "missing " << key);
  return it->second;
}
SCConvOptions options_of(const json& scconv_opts) {
  return parse_model_config(json{{"arch", "resnet20"}, {"conv", "scconv"}, {"scconv", scconv_opts}}).scconv;
}
std::shared_ptr<Module> module_of(const json& c, Generator& g) {
  SCConvOptions o = options_of(c["scconv"]);
  int64_t cin = c["c_in"], cout = c["c_out"], stride = c["stride"];
  std::string kind = c["kind"];
  std::shared_ptr<Module> m;
  if (kind == "sru") m = std::make_shared<SRU>(cin, o.sru, g);
  else if (kind == "cru") m = std::make_shared<CRU>(cin, cout, stride, o.cru, g);
  else m = std::make_shared<SCConv>(cin, cout, stride, o, g);
  m->assign_names();
  return m;
}
// Relative error of a against b in the L2 sense: ||a - b|| / max(||b||, tiny).
double rel_l2(const Tensor& a, const Tensor& b) {
  auto av = a.to(DType::F64).to_vector<double>(), bv = b.to(DType::F64).to_vector<double>();
  double num = 0, den = 0;
  for (size_t i = 0; i < av.size(); ++i) {
    num += (av[i] - bv[i]) * (av[i] - bv[i]);
    den += bv[i] * bv[i];
  }
  return std::sqrt(num) / std::max(std::sqrt(den), 1e-30);
}

void run_module_case(const json& c, DType dt, double rtol, double atol) {
  const std::string name = c["name"];
  CAPTURE(name);
  Generator g(0);
  auto m = module_of(c, g);
  m->to(dt);
  hash_init(*m, name + "/");
  Shape in_shape = c["input"].get<Shape>();
  Tensor x = hash_uniform(name + "/input", in_shape, -1, 1, dt).set_requires_grad(true);
  Tensor y = (*m)(x);
  Tensor proj = hash_uniform(name + "/proj", y.shape(), -1, 1, dt);
  autograd::backward(sum(mul(y, proj)));
  CHECK_CLOSE(y, torch_ref(name + ".out"), rtol, atol, name << ": output");
  CHECK_CLOSE(x.grad(), torch_ref(name + ".grad.input"), rtol, atol, name << ": grad of input");
  for (auto& [pn, p] : m->named_parameters()) {
    Tensor gp = p.grad().defined() ? p.grad() : Tensor::zeros(p.shape(), dt);
    CHECK_CLOSE(gp, torch_ref(name + ".grad." + pn), rtol, atol * std::max(1.0, max_abs(torch_ref(name + ".grad." + pn))),
                name << ": grad of " << pn);
  }
}

void run_model_case(const json& c, DType dt, double rtol, double grad_tol) {
  const std::string name = c["name"];
  CAPTURE(name);
  ModelConfig cfg = parse_model_config(c["config"]);
  Generator g(0);
  auto model = build_model(cfg, g);
  model->to(dt);
  hash_init(*model, name + "/");
  model->train();
  Shape in_shape = c["input"].get<Shape>();
  Tensor x = hash_uniform(name + "/input", in_shape, -1, 1, dt);
  std::vector<int64_t> lab(in_shape[0]);
  for (int64_t i = 0; i < in_shape[0]; ++i) lab[i] = (i * 7 + 3) % cfg.num_classes;
  Tensor logits = (*model)(x);
  Tensor loss = cross_entropy(logits, Tensor::from_vector(lab, {in_shape[0]}));
  autograd::backward(loss);
  CHECK_CLOSE(logits, torch_ref(name + ".logits"), rtol, rtol, name << ": logits");
  CHECK_CLOSE(loss, torch_ref(name + ".loss"), rtol, rtol, name << ": loss");
  int checked = 0;
  for (auto& [pn, p] : model->named_parameters()) {
    REQUIRE_MESSAGE(p.grad().defined(), name << ": no gradient for " << pn);
    auto full = data().tensors.find(name + ".grad." + pn);
    if (full != data().tensors.end()) {
      CHECK_MESSAGE(rel_l2(p.grad(), full->second) < grad_tol,
                    name << ": grad of " << pn << " relative L2 error " << rel_l2(p.grad(), full->second));
    } else {
      Tensor stats = torch_ref(name + ".gradstats." + pn);
      Tensor r = hash_uniform(name + "/r/" + pn, p.shape(), -1, 1, DType::F64);
      Tensor gp = p.grad().to(DType::F64);
      Tensor mine = Tensor::from_vector<double>({sum(gp).item(), sum(mul(gp, r)).item(), sum(mul(gp, gp)).item()}, {3});
      // sum and projection are compared against the gradient's scale sqrt(sum g^2).
      double scale = std::sqrt(stats.to_vector<double>()[2]);
      auto a = mine.to_vector<double>(), b = stats.to_vector<double>();
      CHECK_MESSAGE(std::fabs(a[0] - b[0]) <= grad_tol * scale * 10, name << ": sum of grad " << pn << ": " << a[0] << " vs " << b[0]);
      CHECK_MESSAGE(std::fabs(a[1] - b[1]) <= grad_tol * scale * 10, name << ": projection of grad " << pn << ": " << a[1] << " vs " << b[1]);
      CHECK_MESSAGE(std::fabs(std::sqrt(a[2]) - scale) <= grad_tol * scale, name << ": norm of grad " << pn);
    }
    ++checked;
  }
  CHECK(checked == static_cast<int>(model->named_parameters().size()));
  for (auto& [bn, b] : model->named_buffers()) {
    Tensor rb = torch_ref(name + ".buffer." + bn);
    if (b.dtype() == DType::I64) CHECK(b.item() == rb.item());
    else CHECK_CLOSE(b, rb, rtol, rtol, name << ": buffer " << bn);
  }
}
}  // namespace

TEST_CASE("SRU, CRU, SCConv: every option against PyTorch (float64)") {
  REQUIRE(cases()["modules"].size() >= 19);
  for (const json& c : cases()["modules"]) run_module_case(c, DType::F64, 1e-9, 1e-11);
}

TEST_CASE("SRU, CRU, SCConv: every option against PyTorch (float32 fast path)") {
  for (const json& c : cases()["modules"]) run_module_case(c, DType::F32, 2e-4, 2e-5);
}

TEST_CASE("whole models against PyTorch (float64): logits, loss, every gradient and buffer") {
  REQUIRE(cases()["models"].size() >= 6);
  for (const json& c : cases()["models"]) run_model_case(c, DType::F64, 1e-8, 1e-8);
}

TEST_CASE("whole models against PyTorch (float32 fast path)") {
  for (const json& c : cases()["models"]) {
    // The ResNet-50 cases (batch 2, small inputs, random weights) are ill-conditioned in
    // float32: BN in the last stage normalises 8 values per channel, 50 layers deep. Our own
    // float32 and float64 gradients differ by up to 2.5% (relative L2) there, with or without
    // SCConv, and ours against PyTorch float64 by up to 5.2%;
    // the float64 test above pins the semantics. A wrong formula errs by O(1).
    // resnet20_B too: at this tiny input a pre-activation sits within float32 rounding of a
    // ReLU's kink, and which side it lands on depends on summation order. With batch-norm
    // statistics summed four rows at a time (instead of one) its gradients moved from ~3e-6 to
    // up to 5.9e-2 (relative L2) from PyTorch float64, while perturbing its input by 1e-6 (four
    // seeds) brings them back to 2e-6 - 3e-6. A wrong formula errs by O(1).
    // The other CIFAR ResNets are well-conditioned here (measured: at most 3e-6 for resnet20_A,
    // 7e-6 for resnet20_scconv and 6e-6 for resnet56_scconv at t = 0.5 until a rounding change
    // flipped a gate of the latter: see below) and are held to 1e-4.
    const std::string name = c["name"];
    const bool kinked = name == "resnet20_B" || name.rfind("resnet50", 0) == 0;
    const double grad_tol = kinked ? 1e-1 : 1e-4;
    // The SRU gate jumps (W1 from R to 1 at R = t), and R crowds around 0.5: a float32 run
    // can take the other branch where a value lies within its rounding of t. The generator
    // stores each case's smallest |R - t| in float64 ("gate_margin"); the SCConv cases compared
    // here have thresholds where it is wide (tools/gen_scconv_reference.py), and a
    // regenerated case that fell to a knife edge fails here rather than at random.
    // ResNet-50 + SCConv at the default t = 0.5 has a value 2.6e-8 from t (one flipped gate with
    // 2x2 pixels in the last stage moves its logits by ~10%; a 1e-6 input perturbation does the
    // same): its float64 check above pins the semantics to 1e-8; its float32 fast path is
    // checked block by block below.
    if (name == "resnet50_cifar_scconv") continue;
    REQUIRE_MESSAGE(c.contains("gate_margin"), name << ": no gate_margin (regenerate with tools/gen_scconv_reference.py)");
    if (!c["gate_margin"].is_null())
      REQUIRE_MESSAGE(c["gate_margin"].get<double>() >= 5e-6, name << ": a gate value lies "
                          << c["gate_margin"].get<double>() << " from the SRU threshold, within float32 rounding");
    run_model_case(c, DType::F32, 2e-3, grad_tol);
  }
}

TEST_CASE("ResNet-50 SCConv bottlenecks: fast channels-last float32 against the reference loops") {
  // Threshold 0.45, not 0.5: with 0.5 one element of the (512, 256, s2) block lies within float32
  // resolution of the gate and flips between the paths (measured: 1.2% relative gradient error
  // at t = 0.5 on the NCHW and the NHWC fast path alike; 7e-7 at t = 0.37, 0.45 and 0.55).
  ModelConfig cfg = parse_model_config(json{{"arch", "resnet50"}, {"conv", "scconv"}, {"scconv", {{"sru", {{"threshold", 0.45}}}}}});
  // (in, planes, stride, H = W) of each stage's first block and of a later one, CIFAR input
  const std::array<int64_t, 4> blocks[] = {{64, 64, 1, 16}, {256, 64, 1, 16}, {256, 128, 2, 16}, {512, 256, 2, 8}, {1024, 512, 2, 4}, {2048, 512, 1, 2}};
  for (auto [in, planes, stride, hw] : blocks) {
    const std::string what = "bottleneck_" + std::to_string(in) + "_" + std::to_string(planes) + "_s" + std::to_string(stride);
    CAPTURE(what);
    Generator g(0);
    Bottleneck b(in, planes, stride, cfg, g);
    b.assign_names();
    hash_init(b, what + "/");
    Tensor x0 = hash_uniform(what + "/x", {2, in, hw, hw}, -1, 1, DType::F32);
    Tensor proj = hash_uniform(what + "/proj", {2, planes * 4, hw / stride, hw / stride}, -1, 1, DType::F32);
    std::vector<Tensor> results[2];
    for (int ref = 0; ref < 2; ++ref) {
      ReferenceModeGuard* guard = ref ? new ReferenceModeGuard : nullptr;
      Tensor x = (ref ? x0 : x0.contiguous(MemoryFormat::ChannelsLast)).clone().set_requires_grad(true);
      b.zero_grad();
      autograd::backward(sum(mul(b(x), proj)));
      results[ref] = {x.grad()};
      for (auto& [n, p] : b.named_parameters()) results[ref].push_back(p.grad());
      delete guard;
    }
    for (size_t k = 0; k < results[0].size(); ++k)
      CHECK_MESSAGE(rel_l2(results[0][k], results[1][k]) < 1e-4,
                    what << " tensor " << k << " (grad x, grads of parameters): relative L2 error " << rel_l2(results[0][k], results[1][k]));
  }
}
