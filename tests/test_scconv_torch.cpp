// tests/test_scconv_torch.cpp: SRU, CRU, SCConv (every option value) and whole ResNets against
// PyTorch. tests/data/scconv_torch.safetensors (tools/gen_scconv_reference.py) lists the cases
// in its metadata and holds PyTorch's float64 outputs and gradients; weights and inputs come
// from tests/hash_init.h on both sides.
//   float64: our reference semantics must match to ~1e-9 (no threshold flips possible).
//   float32: the fast path (oneDNN, fused kernels) must match at float32 tolerances.
// Run: ./build/tests/test_scconv_torch
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
    double grad_tol = c["config"]["arch"] == "resnet50" ? 1e-1 : 5e-3;
    run_model_case(c, DType::F32, 2e-3, grad_tol);
  }
}
