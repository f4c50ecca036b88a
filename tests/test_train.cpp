// tests/test_train.cpp: training end to end on synthetic images the test draws (no CIFAR
// needed): the model fits them; a run stopped at an epoch boundary, stopped mid-epoch, or
// killed with SIGKILL and resumed ends with exactly the weights of an uninterrupted run; the
// NaN guard names what went non-finite; a failed checkpoint write leaves the previous one;
// metrics.jsonl, summary.json and `scconv eval`.
// Run: ./build/tests/test_train
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "apps/commands.h"
#include "apps/trainer.h"
#include "core/backend.h"
#include "core/config.h"
#include "core/safetensors.h"
#include "models/resnet.h"
#include "capture.h"
#include "synthetic_cifar.h"
#include "test_util.h"

extern char** environ;
using namespace scconv;
using namespace scconv::apps;
using doctest::Contains;
namespace fs = std::filesystem;

namespace {
fs::path scratch() { return testing::scratch_dir("scconv_test_train_"); }
fs::path synthetic_cifar() {
  static fs::path dir = [] {
    fs::path d = scratch() / "scconv_train_data";
    fs::remove_all(d);
    testing::write_synthetic_cifar(d);
    return d;
  }();
  return dir;
}

nlohmann::json base_config(const std::string& out, int epochs) {
  return {{"model", {{"arch", "resnet20"}}},
          // (no flips: a mirror would move the square to the other quadrant, i.e. another class)
          {"data", {{"dataset", "cifar10"}, {"dir", synthetic_cifar().string()}, {"augment", {{"flip", false}}}}},
          {"optim", {{"lr", 0.05}, {"weight_decay", 5e-4}}},
          {"schedule", {{"kind", "multistep"}, {"milestones", {3}}, {"gamma", 0.1}}},
          {"epochs", epochs}, {"batch_size", 64}, {"seed", 3}, {"threads", 2},
          {"out", (scratch() / out).string()}};
}

int run(const nlohmann::json& j, bool resume = false) {
  fs::path out = j["out"].get<std::string>();
  if (!resume) fs::remove_all(out);
  return train(parse_train_config(j), resume);
}

std::map<std::string, Tensor> final_weights(const nlohmann::json& j) {
  return load_safetensors(j["out"].get<std::string>() + "/checkpoint/model.safetensors").tensors;
}

void check_same_weights(const std::map<std::string, Tensor>& a, const std::map<std::string, Tensor>& b) {
  REQUIRE(a.size() == b.size());
  for (auto& [k, v] : a) CHECK_MESSAGE(testing::mismatch(v, b.at(k), 0, 0).empty(), "weights differ at " << k);
}

// `scconv eval ... --json`, its printed object.
nlohmann::json eval_json(std::vector<std::string> args) {
  args.push_back("--json");
  int rc = 1;
  const std::string out = testing::capture(cmd_eval, args, &rc);
  REQUIRE(rc == 0);
  return nlohmann::json::parse(out);
}
}  // namespace

TEST_CASE("a ResNet-20 fits synthetic images; metrics, summary and eval") {
  nlohmann::json j = base_config("scconv_fit", 6);
  j["optim"]["lr"] = 0.1;
  j["schedule"]["milestones"] = {5};
  CHECK(run(j) == 0);
  fs::path out = j["out"].get<std::string>();
  std::ifstream m(out / "metrics.jsonl");
  std::string line;
  std::vector<nlohmann::json> rows;
  while (std::getline(m, line)) rows.push_back(nlohmann::json::parse(line));
  REQUIRE(rows.size() == 6);
  for (const char* k : {"epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "epoch_seconds", "images_per_second"})
    CHECK_MESSAGE(rows.back().contains(k), "metrics.jsonl lacks " << k);
  // an untrained 4-class model sits at ln 4 = 1.39; learning the quadrant must beat it clearly
  MESSAGE("final train loss " << rows.back()["train_loss"] << ", test accuracy " << rows.back()["test_acc"]);
  CHECK(rows.back()["train_loss"].get<double>() < 0.7);
  CHECK(rows.back()["test_acc"].get<double>() > 0.7);
  CHECK(rows.front()["lr"].get<double>() == doctest::Approx(0.1));
  CHECK(rows.back()["lr"].get<double>() == doctest::Approx(0.01));
  nlohmann::json summary = config::read_json_file((out / "summary.json").string());
  CHECK(summary["final_test_acc"] == rows.back()["test_acc"]);
  CHECK(summary.contains("best_acc"));
  CHECK(fs::exists(out / "best.safetensors"));
  // scconv eval reproduces the final test accuracy from the checkpoint
  nlohmann::json ev = eval_json({"--checkpoint", out.string()});
  CHECK(ev["test_acc"].get<double>() == doctest::Approx(rows.back()["test_acc"].get<double>()).epsilon(1e-9));
  CHECK(ev["confusion"].size() == 10);
  CHECK(ev["images"] == 128);
}

TEST_CASE("resume is exact: at an epoch boundary and mid-epoch") {
  nlohmann::json full = base_config("scconv_full", 2);
  REQUIRE(run(full) == 0);
  // stopped after epoch 1, resumed with the same config
  nlohmann::json a = base_config("scconv_resume_a", 2);
  a["epochs"] = 1;
  REQUIRE(run(a) == 0);
  a["epochs"] = 2;
  REQUIRE(cmd_train({"--resume", a["out"].get<std::string>(), "--set", "epochs=2"}) == 0);
  check_same_weights(final_weights(full), final_weights(a));
  // stopped at step 7 of 10 (mid-epoch 2), as Ctrl-C does, then resumed
  nlohmann::json b = base_config("scconv_resume_b", 2);
  stop_at_step().store(7);
  CHECK(run(b) == 130);
  stop_at_step().store(-1);
  nlohmann::json st = config::read_json_file(b["out"].get<std::string>() + "/checkpoint/state.json");
  CHECK(st["epoch"] == 1);
  CHECK(st["step_in_epoch"] == 2);
  REQUIRE(run(b, true) == 0);
  check_same_weights(final_weights(full), final_weights(b));
  // the metrics of the interrupted epoch equal those of the uninterrupted run
  std::ifstream f1(full["out"].get<std::string>() + "/metrics.jsonl"), f2(b["out"].get<std::string>() + "/metrics.jsonl");
  std::string l1, l2;
  std::getline(f1, l1), std::getline(f1, l1), std::getline(f2, l2), std::getline(f2, l2);
  CHECK(nlohmann::json::parse(l1)["train_loss"] == nlohmann::json::parse(l2)["train_loss"]);
}

TEST_CASE("a bf16 run resumes exactly, and bf16 changes the weights") {
  nlohmann::json full = base_config("scconv_bf16_full", 2);
  full["precision"] = "bf16";
  REQUIRE(run(full) == 0);
  nlohmann::json b = base_config("scconv_bf16_resume", 2);
  b["precision"] = "bf16";
  stop_at_step().store(7);
  CHECK(run(b) == 130);
  stop_at_step().store(-1);
  REQUIRE(run(b, true) == 0);
  check_same_weights(final_weights(full), final_weights(b));
  nlohmann::json st = config::read_json_file(b["out"].get<std::string>() + "/checkpoint/state.json");
  CHECK(st["config"]["precision"] == "bf16");
  // checkpoints stay float32; with native bf16 the weights differ from a float32 run's
  for (auto& [k, v] : final_weights(b)) CHECK(v.dtype() != DType::BF16);
  if (cpu_bf16_available()) {
    nlohmann::json f32 = base_config("scconv_full", 2);  // (the run of the test above, if it ran)
    f32["out"] = (scratch() / "scconv_bf16_vs_fp32").string();
    REQUIRE(run(f32) == 0);
    double diff = 0;
    const auto wb = final_weights(b);
    for (auto& [k, v] : final_weights(f32))
      if (is_floating(v.dtype())) diff = std::max(diff, testing::max_abs(sub(v, wb.at(k))));
    CHECK(diff > 0);
  } else {
    MESSAGE("this CPU has no native bf16: the bf16 run trained in float32");
  }
  nlohmann::json bad = base_config("scconv_bf16_bad", 1);
  bad["precision"] = "half";
  CHECK_THROWS_WITH_AS(parse_train_config(bad),
                       Contains("precision: unknown precision 'half' (known: fp32, bf16)"), Error);
}

TEST_CASE("SIGKILL mid-epoch, then --resume, ends with the weights of an uninterrupted run") {
  nlohmann::json full = base_config("scconv_kill_full", 3);
  REQUIRE(run(full) == 0);
  nlohmann::json k = base_config("scconv_kill", 3);
  fs::path out = k["out"].get<std::string>();
  fs::remove_all(out);
  fs::path cfg = scratch() / "scconv_kill.json";
  std::ofstream(cfg) << k.dump();
  const char* argv[] = {SCCONV_BINARY, "train", "--config", cfg.c_str(), nullptr};
  pid_t pid;
  REQUIRE(posix_spawn(&pid, SCCONV_BINARY, nullptr, nullptr, const_cast<char**>(argv), environ) == 0);
  // wait for the first epoch's checkpoint, then kill somewhere in epoch 2
  auto t0 = std::chrono::steady_clock::now();
  while (!fs::exists(out / "checkpoint" / "state.json") && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(300))
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  bool killed = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
  MESSAGE("process " << std::string(killed ? "killed by SIGKILL" : "had already finished"));
  REQUIRE(!find_checkpoint(out.string()).empty());
  nlohmann::json st = config::read_json_file(find_checkpoint(out.string()) + "/state.json");
  MESSAGE("resuming from epoch " << st["epoch"] << ", step " << st["step_in_epoch"]);
  REQUIRE(cmd_train({"--resume", out.string()}) == 0);
  check_same_weights(final_weights(full), final_weights(k));
}

TEST_CASE("NaN guard: stops naming what went non-finite and keeps the last good checkpoint") {
  nlohmann::json j = base_config("scconv_nan", 3);
  j["optim"]["lr"] = 1e30;
  j["optim"]["weight_decay"] = 0;
  try {
    run(j);
    FAIL("expected the NaN guard to stop training");
  } catch (const Error& e) {
    std::string msg = e.what();
    CHECK(msg.find("loss is") != std::string::npos);
    CHECK(msg.find("non-finite output (NaN or Inf) from") != std::string::npos);
    CHECK(msg.find("last good checkpoint") != std::string::npos);
    MESSAGE(msg);
  }
}

TEST_CASE("a failed checkpoint write leaves the previous checkpoint intact") {
  nlohmann::json j = base_config("scconv_atomic", 1);
  REQUIRE(run(j) == 0);
  fs::path out = j["out"].get<std::string>();
  auto before = final_weights(j);
  // a model with a buffer that cannot be serialised (four values on a device without memory)
  struct Bad : Module {
    Bad() {
      Tensor t(std::make_shared<TensorImpl>());
      t.impl_ptr()->storage = std::make_shared<Storage>(0, Device::CUDA);
      t.impl_ptr()->shape = {4};
      t.impl_ptr()->strides = {1};
      register_buffer("weight", t);
    }
    Tensor forward(const Tensor& x) override { return x; }
    std::string type() const override { return "Bad"; }
  } bad;
  Tensor p = Tensor::ones({1}).set_requires_grad(true);
  SGD sgd({{"p", p}}, {});
  CHECK_THROWS_AS(save_checkpoint(out.string(), bad, sgd, TrainState{}, nlohmann::json::object()), Error);
  check_same_weights(before, final_weights(j));
  CHECK(find_checkpoint(out.string()) == (out / "checkpoint").string());
}

TEST_CASE("a validation split is held out and selects the best model") {
  nlohmann::json j = base_config("scconv_val", 2);
  j["data"]["val_split"] = 64;
  REQUIRE(run(j) == 0);
  fs::path out = j["out"].get<std::string>();
  std::ifstream m(out / "metrics.jsonl");
  std::string line;
  std::getline(m, line);
  nlohmann::json row = nlohmann::json::parse(line);
  CHECK(row.contains("val_acc"));
  CHECK(row.contains("val_loss"));
  CHECK(row.contains("test_acc"));
  nlohmann::json summary = config::read_json_file((out / "summary.json").string());
  CHECK(summary["best_selected_on"] == "val");
  // scconv eval --split val measures the held-out images of the run (the final epoch's val_acc)
  std::string last;
  for (std::ifstream again(out / "metrics.jsonl"); std::getline(again, line);) last = line;
  const nlohmann::json ev = eval_json({"--checkpoint", out.string(), "--split", "val"});
  CHECK(ev["split"] == "val");
  CHECK(ev["images"] == 64);
  CHECK(ev["accuracy"].get<double>() == nlohmann::json::parse(last)["val_acc"].get<double>());
  CHECK_FALSE(ev.contains("test_acc"));
  nlohmann::json no_val = base_config("scconv_no_val", 1);
  REQUIRE(run(no_val) == 0);
  CHECK_THROWS_WITH_AS(cmd_eval({"--checkpoint", no_val["out"].get<std::string>(), "--split", "val"}),
                       Contains("was trained without a validation split (data.val_split is 0)"), Error);
  Datasets d = load_datasets(parse_train_config(j));
  CHECK(d.train.size() == 256);
  CHECK(d.val.size() == 64);
  j["data"]["val_split"] = 320;
  CHECK_THROWS_WITH_AS(load_datasets(parse_train_config(j)), Contains("data.val_split 320 must be smaller than the 320"), Error);
}

TEST_CASE("training config errors name the key") {
  nlohmann::json j = base_config("scconv_cfg", 1);
  j["optim"]["momentom"] = 0.9;
  CHECK_THROWS_WITH_AS(parse_train_config(j), Contains("unknown key 'optim.momentom'"), Error);
  j = base_config("scconv_cfg", 1);
  j["schedule"]["kind"] = "linear";
  CHECK_THROWS_WITH_AS(parse_train_config(j), Contains("schedule.kind: unknown value \"linear\""), Error);
  j = base_config("scconv_cfg", 1);
  j["conv_algorithm"] = "fft";
  CHECK_THROWS_WITH_AS(parse_train_config(j), Contains("conv_algorithm: unknown algorithm 'fft'"), Error);
  j["conv_algorithm"] = "direct";
  CHECK(parse_train_config(j).conv_algorithm == "direct");
  j = base_config("scconv_cfg", 1);
  j["model"] = "resnet99";
  CHECK_THROWS_WITH_AS(parse_train_config(j), Contains("--model: no preset 'resnet99'"), Error);
  j = base_config("scconv_cfg", 1);
  j["model"]["scconv"] = {{"alpha", 2}};
  CHECK_THROWS_WITH_AS(parse_train_config(j), Contains("model.scconv: options given but conv is \"standard\""), Error);
  j = base_config("scconv_cfg", 1);
  j["data"]["dir"] = "/nonexistent/cifar";
  CHECK_THROWS_WITH_AS(run(j), Contains("missing file '/nonexistent/cifar/data_batch_1.bin'"), Error);
  {  // a new run never overwrites an existing one
    fs::path busy = scratch() / "scconv_busy";
    fs::create_directories(busy / "checkpoint");
    std::ofstream(busy / "checkpoint" / "state.json") << "{}";
    std::ofstream(busy / "checkpoint" / "model.safetensors") << "";
    j = base_config("scconv_busy", 1);
    CHECK_THROWS_WITH_AS(train(parse_train_config(j), false), Contains("already holds a run"), Error);
    fs::remove_all(busy);
  }
  CHECK_THROWS_WITH_AS(cmd_train({"--resume", "/nonexistent/run"}), Contains("--resume: no checkpoint in '/nonexistent/run/checkpoint'"), Error);
  for (const char* preset : {"quick", "resnet20", "resnet20-scconv", "resnet56", "resnet56-scconv", "resnet50-cifar", "resnet50-cifar-scconv"})
    CHECK_NOTHROW(parse_train_config(load_train_preset(preset)));
}

TEST_CASE("--set model.* works on a preset that names its model by string") {
  nlohmann::json j = load_train_preset("resnet20-scconv");
  REQUIRE(j["model"].is_string());
  apply_train_set(j, "model.scconv.alpha=0.25");
  apply_train_set(j, "model.scconv.order=parallel");
  const TrainConfig c = parse_train_config(j);
  CHECK(c.model.scconv.cru.alpha == 0.25);
  CHECK(c.model.scconv.order == SCConvOrder::Parallel);
  CHECK(c.model.arch == "resnet20");  // the rest of the preset stays
  CHECK(c.model.scconv.sru.groups == 16);
  // replacing the preset by name, then setting one of its keys
  apply_train_set(j, "model=resnet56-scconv");
  apply_train_set(j, "model.scconv.alpha=0.75");
  CHECK(parse_train_config(j).model.arch == "resnet56");
  CHECK(parse_train_config(j).model.scconv.cru.alpha == 0.75);
  // the command line does the same
  nlohmann::json k = load_train_preset("resnet20");
  apply_train_set(k, "model.num_classes=7");
  CHECK(parse_train_config(k).model.num_classes == 7);
  nlohmann::json bad = load_train_preset("resnet20-scconv");
  apply_train_set(bad, "model.scconv.alpah=0.25");
  CHECK_THROWS_WITH_AS(parse_train_config(bad), Contains("unknown key 'model.scconv.alpah'"), Error);
}

TEST_CASE("CIFAR-100 presets: 100 classes, CIFAR-100's statistics and data folder") {
  for (const char* preset : {"resnet50-cifar100", "resnet50-cifar100-scconv", "resnet56-cifar100", "resnet56-cifar100-scconv"}) {
    CAPTURE(preset);
    const TrainConfig c = parse_train_config(load_train_preset(preset));
    CHECK(c.model.num_classes == 100);
    CHECK(c.dataset == "cifar100");
    CHECK(c.data_dir == "data/cifar-100-binary");
    CHECK(c.augment.mean == std::vector<double>{0.5071, 0.4865, 0.4409});
    CHECK(c.augment.std == std::vector<double>{0.2673, 0.2564, 0.2762});
    CHECK(c.model.use_scconv == (std::string(preset).find("scconv") != std::string::npos));
  }
}

TEST_CASE("schedule.sru_threshold_start: seed 004's threshold warm-up in training steps, t in evaluations") {
  nlohmann::json j = base_config("scconv_warmup", 2);
  j["model"] = {{"arch", "resnet20"}, {"conv", "scconv"}, {"scconv", {{"sru", {{"threshold", 0.5}}}}}};
  j["schedule"]["sru_threshold_start"] = 0.3;
  const TrainConfig c = parse_train_config(j);
  CHECK(c.sru_threshold(0) == doctest::Approx(0.3));
  CHECK(c.sru_threshold(1) == doctest::Approx(0.4));  // min(0.5, 0.3 + 0.2 e / 2)
  nlohmann::json ten = j;
  ten["epochs"] = 10;
  CHECK(parse_train_config(ten).sru_threshold(3) == doctest::Approx(0.36));
  CHECK(parse_train_config(parse_train_config(j).to_json()).sru_threshold_start == 0.3);  // round trip
  REQUIRE(run(j) == 0);
  std::vector<double> seen;
  std::ifstream metrics(j["out"].get<std::string>() + "/metrics.jsonl");
  for (std::string line; std::getline(metrics, line);) seen.push_back(nlohmann::json::parse(line)["sru_threshold"]);
  CHECK(seen == std::vector<double>{0.3, 0.4});
  // the final evaluation uses t = 0.5: scconv eval of the checkpoint gives the run's final accuracy
  const nlohmann::json summary = nlohmann::json::parse(std::ifstream(j["out"].get<std::string>() + "/summary.json"));
  Generator g(0);
  auto model = build_model(c.model, g);
  load_checkpoint(j["out"].get<std::string>() + "/checkpoint", *model, nullptr, nullptr);
  const Datasets d = load_datasets(c);
  CHECK(evaluate(*model, d.test, c.augment).accuracy == summary["final_test_acc"].get<double>());
  // bad values
  for (double bad : {0.0, 0.6}) {
    nlohmann::json b = j;
    b["schedule"]["sru_threshold_start"] = bad;
    CHECK_THROWS_WITH_AS(parse_train_config(b), Contains("schedule.sru_threshold_start"), Error);
  }
  nlohmann::json plain = base_config("scconv_warmup_plain", 1);
  plain["schedule"]["sru_threshold_start"] = 0.3;
  CHECK_THROWS_WITH_AS(parse_train_config(plain), Contains("the model has no SCConv units"), Error);
}

TEST_CASE("ema and eval.tta: evaluations measure the weight average with mirror images, resume is exact") {
  nlohmann::json full = base_config("scconv_ema_full", 2);
  full["ema"] = {{"decay", 0.9}};
  full["eval"] = {{"tta", "flip"}};
  REQUIRE(run(full) == 0);
  const fs::path out = full["out"].get<std::string>();
  CHECK(fs::exists(out / "checkpoint" / "ema.safetensors"));
  const SafetensorsFile avg = load_safetensors((out / "checkpoint" / "ema.safetensors").string());
  CHECK(avg.metadata.at("ema_updates") == "10");  // 2 epochs of 5 steps
  double diff = 0;
  const auto trained = final_weights(full);
  for (auto& [k, v] : avg.tensors)
    if (is_floating(v.dtype())) diff = std::max(diff, testing::max_abs(sub(v, trained.at(k))));
  CHECK(diff > 0);  // the average is not the trained weights
  // the run's final test accuracy is the average's with mirror images: what eval reproduces
  const nlohmann::json summary = config::read_json_file((out / "summary.json").string());
  CHECK(summary.contains("wall_seconds"));
  CHECK(summary["wall_seconds"].get<double>() >= summary["train_seconds"].get<double>());
  const TrainConfig c = parse_train_config(full);
  const Datasets d = load_datasets(c);
  Generator g(0);
  auto model = build_model(c.model, g);
  model->load_state_dict(avg.tensors, true, "ema.safetensors");
  CHECK(evaluate(*model, d.test, c.augment, TestTimeAugment::Flip).accuracy == summary["final_test_acc"].get<double>());
  // flip averages the logits of each image and its mirror: the loss differs from one view's
  CHECK(evaluate(*model, d.test, c.augment, TestTimeAugment::Flip).loss != evaluate(*model, d.test, c.augment).loss);
  nlohmann::json ev = eval_json({"--checkpoint", out.string()});
  CHECK(ev["model_file"].get<std::string>().find("ema.safetensors") != std::string::npos);
  CHECK(ev["tta"] == "flip");
  CHECK(ev["test_acc"].get<double>() == summary["final_test_acc"].get<double>());
  // stopped mid-epoch 2 and resumed: the same weights and the same average
  nlohmann::json b = full;
  b["out"] = (scratch() / "scconv_ema_resume").string();
  stop_at_step().store(7);
  CHECK(run(b) == 130);
  stop_at_step().store(-1);
  REQUIRE(run(b, true) == 0);
  check_same_weights(trained, final_weights(b));
  check_same_weights(avg.tensors, load_safetensors(b["out"].get<std::string>() + "/checkpoint/ema.safetensors").tensors);
  // resuming with ema.decay from a checkpoint that has no average says so
  nlohmann::json plain = base_config("scconv_ema_plain", 1);
  REQUIRE(run(plain) == 0);
  nlohmann::json later = plain;
  later["epochs"] = 2;
  later["ema"] = {{"decay", 0.9}};
  CHECK_THROWS_WITH_AS(train(parse_train_config(later), true), Contains("holds no weight average"), Error);
  // bad values
  nlohmann::json bad = full;
  bad["ema"]["decay"] = 1.0;
  CHECK_THROWS_WITH_AS(parse_train_config(bad), Contains("ema.decay: must be in [0, 1)"), Error);
  bad = full;
  bad["eval"]["tta"] = "mirror";
  CHECK_THROWS_WITH_AS(parse_train_config(bad), Contains("eval.tta: unknown value 'mirror' (known: none, flip)"), Error);
  CHECK(parse_train_config(parse_train_config(full).to_json()).tta == TestTimeAugment::Flip);  // round trip
}
