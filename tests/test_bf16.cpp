// tests/test_bf16.cpp: bfloat16, and training with Precision::BFloat16 (core/dtype.h).
//   - float32 -> bfloat16 rounds as PyTorch does (ties to even, NaN, inf, subnormals); BF16
//     tensors go through safetensors and load into float32 weights;
//   - the reference bf16 convolution and linear (operands rounded, products summed) against
//     PyTorch data (tools/gen_bf16_reference.py);
//   - the CPU backend's bf16 passes against float64 within the bound that bf16's 8-bit mantissa
//     gives, and, pass by pass, against the reference: the ones that run bf16 match it to
//     float32 rounding, the ones routed to float32 (cpu::bf16_slower) match float64 so;
//   - whole training steps of ResNet-20 and ResNet-20 + SCConv in bf16 against float32 (and a bf16
//     run's exact resume: tests/test_train.cpp).
// Run: ./build/tests/test_bf16
#include <cmath>
#include <cstring>

#include "core/backend.h"
#include "core/cpu/cpu_backend.h"
#include "core/safetensors.h"
#include "layers/module.h"
#include "models/resnet.h"
#include "test_util.h"

using namespace scconv;
using namespace scconv::testing;

namespace {

const SafetensorsFile& torch_data() {
  static const SafetensorsFile f = load_safetensors(std::string(SCCONV_TEST_DATA) + "/bf16_torch.safetensors");
  return f;
}

using V = std::vector<Tensor>;
struct Bf16Case {
  std::string name;
  std::function<Tensor(const V&)> f;
  Conv2dParams conv;  // for a convolution (its routing); unused for linear
  bool is_conv = true;
};

Conv2dParams conv_params(int64_t stride, int64_t pad, int64_t groups) {
  Conv2dParams p;
  p.stride = {stride, stride};
  p.padding = {pad, pad};
  p.groups = groups;
  return p;
}

// The cases of tools/gen_bf16_reference.py, same names.
const std::vector<Bf16Case>& cases() {
  static const std::vector<Bf16Case> cs = {
      {"conv_3x3_16_16", [](const V& x) { return conv2d(x[0], x[1], Tensor(), {1, 1}, {1, 1}); }, conv_params(1, 1, 1)},
      {"conv_3x3_s2_16_32_bias", [](const V& x) { return conv2d(x[0], x[1], x[2], {2, 2}, {1, 1}); },
       conv_params(2, 1, 1)},
      {"conv_stem_3_16", [](const V& x) { return conv2d(x[0], x[1], Tensor(), {1, 1}, {1, 1}); }, conv_params(1, 1, 1)},
      {"conv_1x1_32_16", [](const V& x) { return conv2d(x[0], x[1], Tensor()); }, conv_params(1, 0, 1)},
      {"conv_3x3_g2_8_16", [](const V& x) { return conv2d(x[0], x[1], Tensor(), {1, 1}, {1, 1}, {1, 1}, 2); },
       conv_params(1, 1, 2)},
      {"linear_64_10", [](const V& x) { return linear(x[0], x[1], x[2]); }, {}, false},
  };
  return cs;
}

V case_inputs(const std::string& name, bool channels_last = false) {
  V in;
  for (int k = 0;; ++k) {
    auto it = torch_data().tensors.find(name + ".in" + std::to_string(k));
    if (it == torch_data().tensors.end()) break;
    Tensor t = it->second;
    in.push_back(channels_last && t.dim() == 4 && k == 0 ? t.contiguous(MemoryFormat::ChannelsLast) : t);
  }
  return in;
}
Tensor case_proj(const std::string& name) { return torch_data().tensors.at(name + ".proj"); }

V to64(const V& in) {
  V out;
  for (const Tensor& t : in) out.push_back(t.to(DType::F64));
  return out;
}
Tensor abs64(const Tensor& t) {
  Tensor a = t.to(DType::F64).contiguous().clone();
  for (int64_t i = 0; i < a.numel(); ++i) a.data<double>()[i] = std::fabs(a.data<double>()[i]);
  return a;
}
V abs_of(const V& in) {
  V out;
  for (const Tensor& t : in) out.push_back(abs64(t));
  return out;
}

// The most terms any output element of the case sums (forward, both backward passes), + 1 for a bias.
int64_t max_terms(const V& in, const Tensor& y) {
  if (in[0].dim() == 2) return std::max({in[0].size(1), in[1].size(0), in[0].size(0)}) + 1;
  const int64_t taps = in[1].size(2) * in[1].size(3);
  return std::max({in[1].size(1) * taps, in[1].size(0) * taps, y.size(0) * y.size(2) * y.size(3)}) + 1;
}

// The largest excess of |a - b| over factor * bound (elementwise); <= 0 when within. `at` describes it.
double excess(const Tensor& a, const Tensor& b, const Tensor& bound, double factor, std::string* at) {
  std::vector<double> av = a.to(DType::F64).to_vector<double>(), bv = b.to(DType::F64).to_vector<double>(),
                      mv = bound.to(DType::F64).to_vector<double>();
  double worst = -INFINITY;
  for (size_t i = 0; i < av.size(); ++i) {
    const double e = std::fabs(av[i] - bv[i]) - factor * mv[i];
    if (e > worst) {
      worst = e;
      if (at) *at = "element " + std::to_string(i) + ": " + std::to_string(av[i]) + " vs " + std::to_string(bv[i]) +
                    ", bound " + std::to_string(factor * mv[i]);
    }
  }
  return worst;
}

constexpr double kF32Unit = 1.0 / (1 << 24);  // float32's unit roundoff, 2^-24

// The sums of |factors| behind each output and gradient (each is bilinear in its two factors):
// f on |inputs|, backward seeded with |proj|, in float64.
std::vector<Tensor> magnitudes(const Bf16Case& c, const V& in, const Tensor& proj) {
  return forward_backward(c.f, abs_of(in), abs64(proj));
}

}  // namespace

// ---- the type ------------------------------------------------------------------------------------

TEST_CASE("float32 -> bfloat16 rounds as PyTorch does: ties to even, overflow to inf, NaN, subnormals") {
  const Tensor f = torch_data().tensors.at("round.f32"), want = torch_data().tensors.at("round.bf16");
  REQUIRE(want.dtype() == DType::BF16);
  for (bool reference : {false, true}) {
    CAPTURE(reference);
    Tensor got;
    if (reference) {
      ReferenceModeGuard g;
      got = f.to(DType::BF16);
    } else {
      got = f.to(DType::BF16);
    }
    REQUIRE(got.dtype() == DType::BF16);
    const auto* a = got.data<bfloat16>();
    const auto* b = want.data<bfloat16>();
    for (int64_t i = 0; i < f.numel(); ++i) {
      const float src = f.data<float>()[i];
      if (std::isnan(src)) {
        CHECK_MESSAGE(std::isnan(float(a[i])), "element " << i << " (NaN) did not stay NaN");
        continue;
      }
      CHECK_MESSAGE(a[i].bits == b[i].bits, "element " << i << " (" << src << "): bits " << a[i].bits << ", PyTorch's "
                                                       << b[i].bits);
    }
  }
  // widening is exact, and a tie rounds to the even neighbour
  CHECK(float(bfloat16(1.00390625f)) == 1.0f);        // 1 + 2^-8: the tie between 1 and 1 + 2^-7
  CHECK(float(bfloat16(1.01171875f)) == 1.015625f);   // 1 + 3 * 2^-8: to 1 + 2^-6 (even)
  CHECK(bfloat16(3.0f).bits == 0x4040);
}

TEST_CASE("BF16 tensors round-trip through safetensors and load into float32 weights") {
  const Tensor w = Generator(3).normal({4, 3});
  const Tensor w16 = w.to(DType::BF16);
  const SafetensorsFile f = parse_safetensors(serialize_safetensors({{"weight", w16}}, {}), "mem");
  REQUIRE(f.tensors.at("weight").dtype() == DType::BF16);
  CHECK(mismatch(f.tensors.at("weight").to(DType::F32), w16.to(DType::F32), 0, 0).empty());
  // a model with float32 parameters loads bf16 ones (what torch's model.bfloat16() saves)
  Generator g(0);
  ModelConfig cfg = parse_model_config(load_model_preset("resnet20"));
  auto model = build_model(cfg, g);
  std::map<std::string, Tensor> state;
  for (auto& [n, t] : model->state_dict()) state[n] = is_floating(t.dtype()) ? t.to(DType::BF16) : t;
  model->load_state_dict(state, true, "bf16 weights");
  for (auto& [n, t] : model->state_dict()) {
    CHECK(t.dtype() == (is_floating(t.dtype()) ? DType::F32 : t.dtype()));
    CHECK_MESSAGE(mismatch(t, state.at(n).to(t.dtype()), 0, 0).empty(), n);
  }
  // other dtype mismatches stay errors that name the tensor
  const std::string first = state.begin()->first;
  state[first] = state[first].to(DType::F64);
  CHECK_THROWS_WITH_AS(model->load_state_dict(state, true, "w.safetensors"), doctest::Contains(("'" + first + "': expected").c_str()),
                       Error);
}

TEST_CASE("precision names") {
  CHECK(parse_precision("bf16") == Precision::BFloat16);
  CHECK(std::string(precision_name(Precision::Float32)) == "fp32");
  CHECK_THROWS_WITH_AS(parse_precision("fp16"), doctest::Contains("unknown precision 'fp16' (known: fp32, bf16)"), Error);
}

// ---- the ops -------------------------------------------------------------------------------------

TEST_CASE("reference bf16 convolution and linear against PyTorch (float64 on bf16-rounded factors)") {
  for (const Bf16Case& c : cases()) {
    CAPTURE(c.name);
    const V in = case_inputs(c.name);
    std::vector<Tensor> got;
    {
      ReferenceModeGuard ref;
      autograd::AutocastGuard bf16(Precision::BFloat16);
      got = forward_backward(c.f, in, case_proj(c.name));
    }
    // the reference sums in double and rounds to float32 (linear: once more, adding the bias)
    const std::vector<Tensor> mag = magnitudes(c, in, case_proj(c.name));
    std::string at;
    CHECK_MESSAGE(excess(got[0], torch_data().tensors.at(c.name + ".out"), mag[0], 2 * kF32Unit, &at) <= 0, "output: " << at);
    for (size_t k = 0; k < in.size(); ++k)
      CHECK_MESSAGE(excess(got[k + 1], torch_data().tensors.at(c.name + ".grad" + std::to_string(k)), mag[k + 1],
                           2 * kF32Unit, &at) <= 0,
                    "gradient of input " << k << ": " << at);
  }
}

TEST_CASE("CPU bf16 passes: within bf16's error bound of float64, and each pass as the reference defines it") {
  const double u = kBf16UnitRoundoff;  // 2^-8: one rounding to bf16
  if (!cpu_bf16_available())
    MESSAGE("this CPU has no native bf16: every pass runs float32, so only the float32 side of each check is tested");
  for (const Bf16Case& c : cases())
    for (bool channels_last : {false, true}) {
      if (!c.is_conv && channels_last) continue;
      CAPTURE(c.name);
      CAPTURE(channels_last);
      const V in = case_inputs(c.name, channels_last);
      const Tensor proj = case_proj(c.name);
      std::vector<Tensor> fast, ref16;
      {
        autograd::AutocastGuard bf16(Precision::BFloat16);
        fast = forward_backward(c.f, in, proj);
        ReferenceModeGuard ref;
        ref16 = forward_backward(c.f, in, proj);
      }
      const std::vector<Tensor> exact = forward_backward(c.f, to64(in), proj.to(DType::F64));
      const std::vector<Tensor> mag = magnitudes(c, in, proj);
      const int64_t K = max_terms(in, exact[0]);
      // Each product of two bf16-rounded factors is off by at most (2u + u^2) of |a b|; the float32
      // sum of K terms adds at most K 2^-24 of sum |a b|, and rounding the result 2^-24 more.
      const double bf16_bound = 2 * u + u * u + (K + 1) * kF32Unit, f32_bound = (K + 1) * kF32Unit;
      const ConvDims d = c.is_conv ? conv_dims(in[0].shape(), in[1].shape(), c.conv) : ConvDims{};
      Conv2dParams p16 = c.conv;
      p16.precision = Precision::BFloat16;
      // which pass made each tensor: output, grad_x, grad_w; the bias gradient is a float32 sum
      const cpu::ConvPass passes[] = {cpu::ConvPass::Forward, cpu::ConvPass::BackwardData,
                                      cpu::ConvPass::BackwardWeights, cpu::ConvPass::BackwardWeights};
      for (size_t k = 0; k < fast.size(); ++k) {
        CAPTURE(k);
        std::string at;
        CHECK_MESSAGE(excess(fast[k], exact[k], mag[k], bf16_bound, &at) <= 0, "beyond the bf16 bound: " << at);
        const bool is_bias_grad = k == 3;
        const bool runs_bf16 = cpu_bf16_available() && !is_bias_grad &&
                               !(c.is_conv && cpu::bf16_slower(d, p16, passes[k]));
        // bf16 passes equal the reference's rounded-factor sums to float32 rounding (so the
        // factors were rounded, and rounded as defined); float32 ones equal float64 so
        const Tensor& want = runs_bf16 ? ref16[k] : exact[k];
        CHECK_MESSAGE(excess(fast[k], want, mag[k], f32_bound, &at) <= 0,
                      (runs_bf16 ? "bf16 pass differs from the reference: " : "float32 pass differs from float64: ") << at);
        if (runs_bf16 && k == 0)  // not a vacuous check: rounding the factors shows at this bound
          CHECK_MESSAGE(excess(fast[k], exact[k], mag[k], f32_bound, &at) > 0, "the output looks unrounded: " << at);
      }
    }
}

// ---- whole models --------------------------------------------------------------------------------

namespace {
// One training step's loss and parameter gradients of a model preset, in `precision`; with
// round_weights, the float32 weights rounded to bf16 first.
struct StepResult {
  double loss;
  std::map<std::string, Tensor> grads;
};
StepResult training_step(const std::string& preset, Precision precision, bool round_weights = false) {
  Generator g(5);
  auto model = build_model(parse_model_config(load_model_preset(preset)), g);
  model->train();
  if (round_weights)
    for (auto& [n, p] : model->named_parameters()) {
      Tensor handle = p;
      handle.set_data(p.to(DType::BF16).to(DType::F32));
    }
  const Tensor x = Generator(6).normal({32, 3, 32, 32});
  std::vector<int64_t> labels(32);
  for (int i = 0; i < 32; ++i) labels[i] = i % 10;
  autograd::AutocastGuard autocast(precision);
  Tensor loss = cross_entropy((*model)(x), Tensor::from_vector(labels, {32}));
  autograd::backward(loss);
  StepResult r{loss.item(), {}};
  for (auto& [n, p] : model->named_parameters()) r.grads[n] = p.grad();
  return r;
}
double norm(const Tensor& t) {
  double s = 0;
  for (double v : t.to(DType::F64).to_vector<double>()) s += v * v;
  return std::sqrt(s);
}
// |grad b - grad a| / |grad a|, all parameters as one vector.
double gradient_difference(const StepResult& a, const StepResult& b) {
  double diff2 = 0, norm2 = 0;
  for (auto& [n, ga] : a.grads) {
    const double d = norm(sub(b.grads.at(n), ga)), g = norm(ga);
    diff2 += d * d, norm2 += g * g;
  }
  return std::sqrt(diff2 / norm2);
}
}  // namespace

TEST_CASE("a bf16 training step of ResNet-20 and ResNet-20 + SCConv: as close to float32 as bf16 weights allow") {
  // The bound. At initialisation, on random images, these models' gradients are sensitive: only
  // rounding the weights to bf16 (a relative change of at most 2^-8) and computing in float32
  // moves the whole gradient (all parameters as one vector) by ~10% of its norm (measured here).
  // A bf16 step rounds the activations and gradients too, by the same amount; it must stay
  // within twice the weights-only difference, and its loss within 0.1% (or twice the weights-only
  // change of the loss). A pass computing the
  // wrong thing moves the gradient by O(100%), rounding done right by about the same as the
  // weights-only change (measured: 1.2-1.3x).
  if (!cpu_bf16_available()) {
    MESSAGE("skipped: this CPU has no native bf16, so a bf16 step is a float32 step");
    return;
  }
  for (const std::string preset : {"resnet20", "resnet20-scconv"}) {
    CAPTURE(preset);
    const StepResult fp32 = training_step(preset, Precision::Float32);
    const StepResult bf16 = training_step(preset, Precision::BFloat16);
    const StepResult rounded = training_step(preset, Precision::Float32, true);
    const double rel = gradient_difference(fp32, bf16), weights_only = gradient_difference(fp32, rounded);
    MESSAGE(preset << ": loss " << fp32.loss << " (fp32) vs " << bf16.loss << " (bf16); gradient difference "
                   << 100 * rel << "% (bf16 weights in float32: " << 100 * weights_only << "%)");
    CHECK(std::fabs(bf16.loss - fp32.loss) <= std::max(1e-3 * std::fabs(fp32.loss), 2 * std::fabs(rounded.loss - fp32.loss)));
    CHECK(rel <= 2 * weights_only);
    CHECK(rel > 0);  // bf16 did run
  }
}
