// tests/test_optim.cpp: SGD and the learning-rate schedules against PyTorch trajectories
// (tests/data/optim_torch.safetensors, written by tools/gen_optim_reference.py); the weight
// average against its formula.
// Run: ./build/tests/test_optim
#include "core/safetensors.h"
#include "hash_init.h"
#include "layers/norm.h"
#include "optim/ema.h"
#include "optim/schedule.h"
#include "optim/sgd.h"
#include "test_util.h"

using namespace scconv;
using namespace scconv::testing;

namespace {
const SafetensorsFile& data() {
  static SafetensorsFile f = load_safetensors(std::string(SCCONV_TEST_DATA) + "/optim_torch.safetensors");
  return f;
}
void run_sgd(const std::string& name, SGDOptions o, DType dt, double tol) {
  CAPTURE(name);
  Tensor w = hash_uniform(name + "/w", {4, 3}, -1, 1, dt).set_requires_grad(true);
  Tensor b = hash_uniform(name + "/b", {3}, -1, 1, dt).set_requires_grad(true);
  SGD sgd({{"w", w}, {"b", b}}, o);
  const double lrs[] = {0.1, 0.1, 0.05, 0.05, 0.01};
  for (int k = 0; k < 5; ++k) {
    w.set_grad(hash_uniform(name + "/g" + std::to_string(k) + "/w", {4, 3}, -1, 1, dt));
    b.set_grad(hash_uniform(name + "/g" + std::to_string(k) + "/b", {3}, -1, 1, dt));
    sgd.step(lrs[k]);
    CHECK_CLOSE(w, data().tensors.at("sgd." + name + ".step" + std::to_string(k) + ".w"), tol, tol, name << " step " << k << " w");
    CHECK_CLOSE(b, data().tensors.at("sgd." + name + ".step" + std::to_string(k) + ".b"), tol, tol, name << " step " << k << " b");
  }
}
}  // namespace

TEST_CASE("SGD matches torch.optim.SGD step for step") {
  for (DType dt : {DType::F64, DType::F32}) {
    double tol = dt == DType::F64 ? 1e-12 : 1e-6;
    run_sgd("momentum", {0.1, 0.9, 0, 5e-4, false, true}, dt, tol);
    run_sgd("nesterov", {0.1, 0.9, 0, 5e-4, true, true}, dt, tol);
    run_sgd("dampening", {0.1, 0.9, 0.1, 1e-3, false, true}, dt, tol);
    run_sgd("plain", {0.1, 0.0, 0, 5e-4, false, true}, dt, tol);
    run_sgd("exclude_norm_bias", {0.1, 0.9, 0, 5e-4, false, false}, dt, tol);
  }
}

TEST_CASE("SGD state round trip, skipping parameters without gradients, bad options") {
  Tensor w = Tensor::ones({2}).set_requires_grad(true), u = Tensor::ones({2}).set_requires_grad(true);
  SGD a({{"w", w}, {"u", u}}, {0.1, 0.9, 0, 0, false, true});
  w.set_grad(Tensor::ones({2}));
  a.step(0.1);
  CHECK(u.to_vector<float>() == std::vector<float>{1, 1});  // no gradient: untouched
  auto st = a.state();
  CHECK(st.count("momentum.w"));
  CHECK_FALSE(st.count("momentum.u"));
  Tensor w2 = w.clone().set_requires_grad(true);
  SGD b({{"w", w2}}, {0.1, 0.9, 0, 0, false, true});
  b.load_state(st, "test");
  w.set_grad(Tensor::ones({2}));
  w2.set_grad(Tensor::ones({2}));
  a.step(0.1);
  b.step(0.1);
  CHECK(w.to_vector<float>() == w2.to_vector<float>());
  CHECK_THROWS_WITH_AS(b.load_state({{"momentum.w", Tensor::ones({3})}}, "opt.safetensors"),
                       doctest::Contains("opt.safetensors: momentum buffer for 'w' is float32(3,)"), Error);
  CHECK_THROWS_WITH_AS(SGD({{"w", w}}, {0.1, 0.0, 0, 0, true, true}), doctest::Contains("nesterov needs momentum > 0"), Error);
}

TEST_CASE("schedules match PyTorch's MultiStepLR, CosineAnnealingLR and LinearLR warm-up") {
  auto check = [](const char* key, const ScheduleOptions& s, int64_t steps_per_epoch, bool per_iteration) {
    std::vector<double> want = data().tensors.at(key).to_vector<double>();
    for (size_t t = 0; t < want.size(); ++t) {
      int64_t epoch = per_iteration ? 0 : static_cast<int64_t>(t), step = per_iteration ? static_cast<int64_t>(t) : 0;
      CHECK_MESSAGE(std::fabs(learning_rate(s, 0.1, epoch, step, steps_per_epoch) - want[t]) < 1e-12, key << " at " << t);
    }
  };
  ScheduleOptions ms;
  ms.kind = "multistep";
  ms.milestones = {2, 4};
  ms.gamma = 0.1;
  check("lr.multistep", ms, 1, false);
  ScheduleOptions cos;
  cos.kind = "cosine";
  cos.epochs = 6;
  cos.eta_min = 0.001;
  check("lr.cosine", cos, 1, false);
  ScheduleOptions warm;
  warm.kind = "constant";
  warm.warmup_epochs = 5;
  warm.warmup_start_factor = 0.1;
  check("lr.warmup", warm, 1, true);
  // warm-up composes with the epoch schedule as a product
  ScheduleOptions both = ms;
  both.warmup_epochs = 1;
  CHECK(std::fabs(learning_rate(both, 0.1, 0, 5, 10) - 0.1 * (0.1 + 0.9 * 0.5)) < 1e-12);
  CHECK(std::fabs(learning_rate(both, 0.1, 3, 30, 10) - 0.01) < 1e-12);
}

// ---- the weight average (optim/ema.h) -----------------------------------------------------------

TEST_CASE("WeightAverage: avg = d avg + (1 - d) w with d's warm-up, buffers averaged, swap and restore") {
  CHECK(WeightAverage::decay_at(0.999, 0) == doctest::Approx(0.1));
  CHECK(WeightAverage::decay_at(0.999, 10) == doctest::Approx(11.0 / 20.0));
  CHECK(WeightAverage::decay_at(0.9, 1000) == 0.9);
  BatchNorm2d bn(2);  // weight, bias; running_mean, running_var (float) and num_batches_tracked (int64)
  auto set = [&](double v) {
    autograd::NoGradGuard ng;
    for (auto& [n, t] : bn.named_tensors()) t.fill_(n == "num_batches_tracked" ? 7 * v : v);
  };
  set(1.0);
  WeightAverage avg(bn, 0.5);
  // hand-computed: updates with the weights at 3, then 5: d0 = min(0.5, 1/10) = 0.1, d1 = min(0.5, 2/11)
  set(3.0);
  avg.update();
  set(5.0);
  avg.update();
  const double d0 = 0.1, d1 = 2.0 / 11.0, a1 = d0 * 1 + (1 - d0) * 3, a2 = d1 * a1 + (1 - d1) * 5;
  CHECK(avg.updates() == 2);
  for (auto& [n, t] : avg.state_dict()) {
    CAPTURE(n);
    if (n == "num_batches_tracked") CHECK(t.to_vector<int64_t>() == std::vector<int64_t>{35});  // copied
    else for (float v : t.to_vector<float>()) CHECK(v == doctest::Approx(a2).epsilon(1e-6));
  }
  {
    WeightAverage::Swapped s(&avg);  // the module holds the average ...
    CHECK(bn.weight.to_vector<float>()[0] == doctest::Approx(a2).epsilon(1e-6));
    CHECK(bn.running_var.to_vector<float>()[1] == doctest::Approx(a2).epsilon(1e-6));
  }
  CHECK(bn.weight.to_vector<float>()[0] == 5.0f);  // ... and its own weights again afterwards
  CHECK(avg.state_dict().at("bias").to_vector<float>()[0] == doctest::Approx(a2).epsilon(1e-6));
  // round trip and its checks
  WeightAverage other(bn, 0.5);
  other.load_state_dict(avg.state_dict(), avg.updates(), "ema.safetensors");
  CHECK(other.updates() == 2);
  CHECK(other.state_dict().at("running_mean").to_vector<float>() == avg.state_dict().at("running_mean").to_vector<float>());
  auto missing = avg.state_dict();
  missing.erase("bias");
  missing["bogus"] = Tensor::zeros({2});
  CHECK_THROWS_WITH_AS(other.load_state_dict(missing, 2, "ema.safetensors"),
                       doctest::Contains("ema.safetensors: no average of 'bias'"), Error);
  auto wrong = avg.state_dict();
  wrong["weight"] = Tensor::zeros({3});
  CHECK_THROWS_WITH_AS(other.load_state_dict(wrong, 2, "ema.safetensors"),
                       doctest::Contains("the average of 'weight' is"), Error);
  wrong["weight"] = Tensor::from_vector<float>({1.0f, NAN}, {2});
  CHECK_THROWS_WITH_AS(other.load_state_dict(wrong, 2, "ema.safetensors"), doctest::Contains("holds NaN or Inf"), Error);
  CHECK_THROWS_WITH_AS(WeightAverage(bn, 1.0), doctest::Contains("ema.decay: must be in (0, 1)"), Error);
}
