// tests/test_apps.cpp: the `scconv` subcommands, called in-process: summary reproduces the
// spec's parameter and MAC table; forward writes logits, loss, gradients and buffers that
// match a direct computation; bad arguments are errors naming the option.
// Run: ./build/tests/test_apps
#include <algorithm>
#include <filesystem>
#include <iostream>
#include <set>
#include <sstream>

#include "apps/commands.h"
#include "core/safetensors.h"
#include "models/resnet.h"
#include "capture.h"
#include "test_util.h"

using namespace scconv;
using namespace scconv::testing;
using doctest::Contains;

namespace {
// Runs the real `scconv` binary with `args`; its stdout (checks that it exits with 0).
std::string run_binary(const std::string& args) {
  FILE* f = popen((std::string(SCCONV_BINARY) + " " + args).c_str(), "r");
  REQUIRE(f);
  std::string out;
  char buf[4096];
  for (size_t k; (k = fread(buf, 1, sizeof buf, f)) > 0;) out.append(buf, k);
  CHECK(pclose(f) == 0);
  return out;
}
nlohmann::json summary(const std::string& preset, const std::vector<std::string>& extra = {}) {
  apps::Args a{"--model", preset, "--json"};
  a.insert(a.end(), extra.begin(), extra.end());
  return nlohmann::json::parse(capture(apps::cmd_summary, a));
}
double rel(double a, double b) { return std::fabs(a - b) / b; }
}  // namespace

TEST_CASE("summary reproduces the spec's table") {
  struct Row {
    const char* preset;
    int64_t params, macs;         // ours, exactly
    double paper_params, paper_macs, tol;  // the paper's numbers and the allowed relative gap
  };
  // Baselines to 3 significant digits; SCConv rows within 3% (ResNet-56 MACs: see
  // docs/scconv.md, "Parameter and MAC counts").
  const Row rows[] = {
      {"resnet20", 269722, 40551040, 0.27e6, 0, 0.005},
      {"resnet56", 853018, 125485696, 0.85e6, 0, 0.005},
      {"resnet50-cifar", 23520842, 1297829888, 23.52e6, 1.30e9, 0.005},
      {"resnet50-imagenet", 25557032, 4089184256, 25.56e6, 4.09e9, 0.005},
      {"resnet101-imagenet", 44549160, 7801405440, 44.55e6, 7.8e9, 0.005},
      {"resnet56-scconv", 526346, 76571264, 0.52e6, 79.55e6, 0.04},
      {"resnet50-cifar-scconv", 14494090, 824922112, 14.69e6, 831.18e6, 0.03},
      {"resnet50-imagenet-scconv", 16530280, 2640904192, 16.78e6, 2.70e9, 0.03},
      {"resnet101-imagenet-scconv", 27527784, 4783620096, 28.00e6, 4.90e9, 0.03},
  };
  for (const Row& r : rows) {
    CAPTURE(r.preset);
    nlohmann::json j = summary(r.preset);
    CHECK(j["params"].get<int64_t>() == r.params);
    CHECK(j["macs"].get<int64_t>() == r.macs);
    CHECK(rel(double(r.params), r.paper_params) < r.tol);
    if (r.paper_macs > 0) CHECK(rel(double(r.macs), r.paper_macs) < r.tol);
  }
  // the alpha = 3/4 row of ImageNet ResNet-50, through --set
  nlohmann::json a = summary("resnet50-imagenet-scconv", {"--set", "scconv.alpha=0.75"});
  CHECK(rel(a["params"].get<double>(), 17.69e6) < 0.03);
  CHECK(rel(a["macs"].get<double>(), 2.87e9) < 0.03);
  // per-layer rows sum to the totals
  nlohmann::json j = summary("resnet20-scconv");
  int64_t p = 0, m = 0;
  for (auto& row : j["layers"]) {
    p += row["params"].get<int64_t>();
    m += row["macs"].get<int64_t>();
  }
  CHECK(p == j["params"].get<int64_t>());
  CHECK(m == j["macs"].get<int64_t>());
  CHECK(j["layers"][0]["name"] == "conv1");
  CHECK(j["layers"][0]["output"] == nlohmann::json::array({16, 32, 32}));
  std::string table = capture(apps::cmd_summary, {"--model", "resnet20"});
  CHECK(table.find("the SCConv paper calls these \"FLOPs\"") != std::string::npos);
  CHECK(table.find("layer3.2.conv2") != std::string::npos);
}

TEST_CASE("forward --train writes logits, loss, gradients and buffers matching a direct run") {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / "scconv_forward_test";
  fs::create_directories(dir);
  ModelConfig cfg = parse_model_config(load_model_preset("resnet20-scconv"));
  Generator g(7);
  auto model = build_model(cfg, g);
  save_safetensors((dir / "w.safetensors").string(), model->state_dict());
  Tensor x = Generator(1).normal({4, 3, 32, 32});
  Tensor labels = Tensor::from_vector<int64_t>({1, 5, 9, 0}, {4});
  save_safetensors((dir / "x.safetensors").string(), {{"input", x}, {"labels", labels}});
  capture(apps::cmd_forward, {"--model", "resnet20-scconv", "--weights", (dir / "w.safetensors").string(), "--input",
                              (dir / "x.safetensors").string(), "--output", (dir / "y.safetensors").string(), "--train"});
  SafetensorsFile y = load_safetensors((dir / "y.safetensors").string());
  // direct computation
  model->train();
  Tensor logits = (*model)(x);
  Tensor loss = cross_entropy(logits, labels);
  autograd::backward(loss);
  CHECK_CLOSE(y.tensors.at("logits"), logits, 1e-5, 1e-6, "logits");
  CHECK_CLOSE(y.tensors.at("loss"), loss, 1e-6, 1e-7, "loss");
  for (auto& [n, p] : model->named_parameters()) CHECK_CLOSE(y.tensors.at("grad." + n), p.grad(), 1e-4, 1e-6, "grad." << n);
  for (auto& [n, b] : model->named_buffers()) CHECK_CLOSE(y.tensors.at("buffer." + n), b, 1e-5, 1e-6, "buffer." << n);
  // eval mode writes only logits
  capture(apps::cmd_forward, {"--model", "resnet20-scconv", "--weights", (dir / "w.safetensors").string(), "--input",
                              (dir / "x.safetensors").string(), "--output", (dir / "e.safetensors").string()});
  CHECK(load_safetensors((dir / "e.safetensors").string()).tensors.size() == 1);
  fs::remove_all(dir);
}

TEST_CASE("bench measures throughput, memory and the time of each op family") {
  nlohmann::json r = nlohmann::json::parse(capture(
      apps::cmd_bench, {"--model", "resnet20-scconv", "--batch", "4", "--threads", "1", "--seconds", "0", "--json"}));
  CHECK(r["train_images_per_second"].get<double>() > 0);
  CHECK(r["eval_images_per_second"].get<double>() > 0);
  CHECK(r["peak_rss_bytes"].get<double>() > 1e6);
  CHECK(r["macs_per_image"].get<int64_t>() == summary("resnet20-scconv")["macs"].get<int64_t>());
  CHECK(r["peak_flops_per_second"].get<double>() > 1e8);
  CHECK(r["train_peak_fraction"].get<double>() > 0);
  double share = 0;
  std::set<std::string> families;
  for (auto& f : r["train_time_by_family"]) {
    share += f["share"].get<double>();
    families.insert(f["family"].get<std::string>());
  }
  CHECK(share == doctest::Approx(1.0).epsilon(0.02));
  CHECK(families.count("conv"));
  CHECK(families.count("optimizer"));
  CHECK(r["eval_time_by_family"].size() >= 2);
  CHECK(r["conv_algorithm"] == "auto");
  CHECK(r["transparent_huge_pages"].is_boolean());
  // the table runs each row in a child process of the real binary
  std::string out = run_binary("bench --models resnet20 --threads 1 --batch 2 --seconds 0 --json");
  nlohmann::json table = nlohmann::json::parse(out);
  REQUIRE(table.size() == 1);
  CHECK(table[0]["model"] == "resnet20");
  CHECK(table[0]["threads"] == 1);
  CHECK(table[0]["train_images_per_second"].get<double>() > 0);
}

TEST_CASE("bench --versus interleaves two models' steps and reports their speed ratio") {
  nlohmann::json r = nlohmann::json::parse(capture(
      apps::cmd_bench, {"--model", "resnet20-scconv", "--versus", "resnet20", "--batch", "2", "--threads", "1",
                        "--seconds", "0", "--json"}));
  CHECK(r["model"] == "resnet20-scconv");
  CHECK(r["versus"] == "resnet20");
  for (const char* phase : {"train", "eval"}) {
    const nlohmann::json& p = r[phase];
    REQUIRE(p["ms"].size() == r["rounds"].get<size_t>());
    REQUIRE(p["versus_ms"].size() == p["ms"].size());
    std::vector<double> ratios;
    for (size_t i = 0; i < p["ms"].size(); ++i)
      ratios.push_back(p["versus_ms"][i].get<double>() / p["ms"][i].get<double>());
    std::sort(ratios.begin(), ratios.end());
    CHECK(p["speed_ratio"].get<double>() == doctest::Approx(ratios[ratios.size() / 2]));  // versus / model
    CHECK(p["speed_ratio_min"].get<double>() == doctest::Approx(ratios.front()));
    CHECK(p["speed_ratio_max"].get<double>() == doctest::Approx(ratios.back()));
  }
  // the text report (printf, so from the real binary)
  std::string text = run_binary("bench --model resnet20 --versus resnet20 --threads 1 --batch 1 --seconds 0");
  CHECK(text.find("train") != std::string::npos);
  CHECK(text.find("resnet20 runs at") != std::string::npos);
}

TEST_CASE("command errors name the option, file or key") {
  CHECK_THROWS_WITH_AS(capture(apps::cmd_bench, {"--versus", "resnet20"}), Contains("option --versus: compares with the model of --model"), Error);
  CHECK_THROWS_WITH_AS(capture(apps::cmd_bench, {"--model", "resnet20", "--versus", "nope", "--batch", "1"}), Contains("option --versus: --model: no preset 'nope'"), Error);
  CHECK_THROWS_WITH_AS(capture(apps::cmd_bench, {"--model", "resnet20", "--batch", "0"}), Contains("option --batch: 0 is outside [1, 65536]"), Error);
  CHECK_THROWS_WITH_AS(capture(apps::cmd_bench, {"--model", "resnet20", "--seconds", "soon"}), Contains("option --seconds: 'soon' is not a finite number"), Error);
  CHECK_THROWS_WITH_AS(capture(apps::cmd_bench, {"--model", "resnet20", "--conv-algorithm", "fast"}), Contains("conv_algorithm: unknown algorithm 'fast'"), Error);
  CHECK_THROWS_WITH_AS(capture(apps::cmd_bench, {"--model", "resnet20", "--cudnn-search", "fast"}),
                       Contains("option --cudnn-search: unknown value 'fast' (known: heuristic, measure)"), Error);
  CHECK_THROWS_WITH_AS(capture(apps::cmd_summary, {"--model", "resnet20", "--bogus"}), Contains("unknown option '--bogus'"), Error);
  CHECK_THROWS_WITH_AS(capture(apps::cmd_summary, {"--model", "nope"}), Contains("--model: no preset 'nope'"), Error);
  CHECK_THROWS_WITH_AS(capture(apps::cmd_summary, {}), Contains("give exactly one of --model or --model-config"), Error);
  CHECK_THROWS_WITH_AS(capture(apps::cmd_summary, {"--model", "resnet20", "--set", "scconv.alpha=2"}),
                       Contains("scconv: options given but conv is \"standard\""), Error);
  CHECK_THROWS_WITH_AS(capture(apps::cmd_summary, {"--model", "resnet20-scconv", "--set", "scconv.sru.gate=maybe"}),
                       Contains("scconv.sru.gate: unknown value \"maybe\""), Error);
  CHECK_THROWS_WITH_AS(capture(apps::cmd_summary, {"--model", "resnet20", "--input", "3x32"}), Contains("--input: expected CxHxW"), Error);
  CHECK_THROWS_WITH_AS(capture(apps::cmd_forward, {"--model", "resnet20", "--input", "/nonexistent.safetensors", "--output", "/tmp/o.safetensors"}),
                       Contains("cannot open '/nonexistent.safetensors'"), Error);
}

TEST_CASE("eval of a ResNet-20 trained in PyTorch gets PyTorch's accuracy and confusion matrix") {
  // tests/data/eval_torch: tools/gen_eval_reference.py trained the model in PyTorch and
  // evaluated it with torchvision's preprocessing, (pixel / 255 - mean) / std
  const std::string dir = std::string(SCCONV_TEST_DATA) + "/eval_torch", weights = dir + "/resnet20.safetensors";
  SafetensorsFile ref = load_safetensors(weights);
  const double torch_acc = std::stod(ref.metadata.at("accuracy"));
  const nlohmann::json torch_confusion = nlohmann::json::parse(ref.metadata.at("confusion"));
  MESSAGE("PyTorch: accuracy " << torch_acc << "; without the division by 255 it scores "
                               << ref.metadata.at("accuracy_without_division_by_255"));
  REQUIRE(torch_acc > 0.5);  // a model that learned something, so that a wrong input scale shows
  nlohmann::json ev = nlohmann::json::parse(
      run_binary("eval --weights " + weights + " --model resnet20 --data " + dir + " --json --threads 2"));
  CHECK(ev["images"] == 200);
  CHECK(ev["test_acc"].get<double>() == doctest::Approx(torch_acc).epsilon(1e-12));
  CHECK(ev["confusion"] == torch_confusion);
  CHECK(ev["input"] == "(pixel / 255 - mean) / std");
}
