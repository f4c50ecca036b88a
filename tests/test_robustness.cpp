// tests/test_robustness.cpp: scconv against a hostile or careless user (issue 14): exit codes,
// integers and JSON from users and files, crafted checkpoint states, the non-finite guard, owned
// output folders and their lock, empty batches. Each case failed (crashed, hung, lost a file or
// reported success over garbage) before its fix. The readers' own cases are in test_data.cpp and
// test_safetensors.cpp; their fuzz targets in tests/fuzz/.
// Run: ./build/tests/test_robustness
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <optional>
#include <filesystem>
#include <fstream>
#include <thread>

#include "apps/commands.h"
#include "apps/run_dir.h"
#include "apps/step_guard.h"
#include "apps/trainer.h"
#include "core/backend.h"
#include "core/config.h"
#include "core/file_io.h"
#include "core/parallel.h"
#include "core/safetensors.h"
#include "models/resnet.h"
#include "optim/sgd.h"
#include "op_cases.h"
#include "synthetic_cifar.h"
#include "test_util.h"

extern char** environ;
using namespace scconv;
using namespace scconv::apps;
using doctest::Contains;
namespace fs = std::filesystem;

namespace {
fs::path scratch() { return testing::scratch_dir("scconv_test_robust_"); }
fs::path data_dir() { return testing::synthetic_cifar_in(scratch()); }
void write(const fs::path& p, const std::string& s) { std::ofstream(p, std::ios::binary) << s; }

// The real binary: exit code and stderr.
struct Result {
  int rc;
  std::string err;
};
Result run_scconv(const std::string& args) {
  const fs::path err = scratch() / "stderr.txt";
  const std::string cmd = std::string(SCCONV_BINARY) + " " + args + " > /dev/null 2> " + err.string();
  const int status = std::system(cmd.c_str());
  Result r{WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), read_file(err.string(), 1 << 20)};
  return r;
}
#define CHECK_EXIT(args, code, text)                                     \
  do {                                                                   \
    Result r_ = run_scconv(args);                                            \
    CHECK_MESSAGE(r_.rc == (code), (args) << "\n" << r_.err);            \
    CHECK_MESSAGE(r_.err.find(text) != std::string::npos, (args) << "\n" << r_.err); \
  } while (0)

nlohmann::json base(const std::string& out, int epochs = 1) {
  return {{"model", {{"arch", "resnet20"}}},
          {"data", {{"dataset", "cifar10"}, {"dir", data_dir().string()}, {"augment", {{"flip", false}}}}},
          {"optim", {{"lr", 0.05}}},
          {"schedule", {{"kind", "constant"}}},
          {"epochs", epochs}, {"batch_size", 64}, {"seed", 3}, {"threads", 2},
          {"out", (scratch() / out).string()}};
}
std::string config_file(const nlohmann::json& j, const std::string& name) {
  fs::path p = scratch() / (name + ".json");
  write(p, j.dump());
  return p.string();
}
int run(const nlohmann::json& j, bool resume = false) { return train(parse_train_config(j), resume); }
}  // namespace

// ---- exit codes ----------------------------------------------------------------------------------

TEST_CASE("exit codes: 0 success, 1 user error, 2 usage error, 130 interrupted with a checkpoint") {
  CHECK_EXIT("help", 0, "");
  CHECK_EXIT("nope", 2, "unknown command 'nope'");
  CHECK_EXIT("summary --model resnet20 --bogus", 2, "unknown option '--bogus'");
  CHECK_EXIT("summary", 2, "give exactly one of --model or --model-config");
  CHECK_EXIT("eval", 2, "give exactly one of --checkpoint or --weights");
  CHECK_EXIT("summary --model resnet20 --input 3x99999999x32", 2, "--input: expected CxHxW");
  CHECK_EXIT("train --config quick --threads lots", 2, "option --threads: 'lots' is not an integer");
  CHECK_EXIT("train --config quick --threads 4294967297", 2, "option --threads: 4294967297 is outside [0, 1024]");
  CHECK_EXIT("demo --steps 99999999999999999999", 2, "option --steps: '99999999999999999999' is not an integer");
  CHECK_EXIT("bench --model resnet20 --seconds inf", 2, "option --seconds: 'inf' is not a finite number");
  CHECK_EXIT("summary --model nope", 1, "--model: no preset 'nope'");
  CHECK_EXIT("summary --model-config /nonexistent.json", 1, "cannot open '/nonexistent.json'");
  // user errors that were "internal error" (exit 3): number overflow, a symlink loop, a bad folder
  const std::string overflow = config_file({{"arch", "resnet20"}, {"num_classes", 1}}, "num") ;
  write(overflow, R"({"arch": "resnet20", "num_classes": 1e400})");
  CHECK_EXIT("summary --model-config " + overflow, 1, "number overflow");
  fs::create_symlink(scratch() / "loop.json", scratch() / "loop.json");
  CHECK_EXIT("summary --model-config " + (scratch() / "loop.json").string(), 1, "Too many levels of symbolic links");
  nlohmann::json j = base("proc_out");
  j["out"] = "/proc/scconv_cannot_be_here";
  CHECK_EXIT("train --config " + config_file(j, "proc"), 1, "cannot create the output folder '/proc/scconv_cannot_be_here'");
  // 130: SIGINT stops at a step boundary and writes a checkpoint first
  nlohmann::json s = base("sigint", 50);
  fs::path out = s["out"].get<std::string>();
  const std::string cfg = config_file(s, "sigint");
  const char* argv[] = {SCCONV_BINARY, "train", "--config", cfg.c_str(), nullptr};
  pid_t pid;
  REQUIRE(posix_spawn(&pid, SCCONV_BINARY, nullptr, nullptr, const_cast<char**>(argv), environ) == 0);
  auto t0 = std::chrono::steady_clock::now();
  while (!fs::exists(out / "checkpoint" / "state.json") && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(300))
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  kill(pid, SIGINT);
  int status = 0;
  waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 130);
  CHECK_FALSE(find_checkpoint(out.string()).empty());
}

// ---- integers and JSON from users and files ------------------------------------------------------

TEST_CASE("integers: out-of-range values are errors naming the key, never wrapped or truncated") {
  auto err = [](nlohmann::json j) -> std::string {
    try {
      parse_train_config(j);
    } catch (const Error& e) {
      return e.what();
    }
    return "(accepted)";
  };
  nlohmann::json j = base("ints");
  j["epochs"] = 1e300;
  CHECK(err(j).find("epochs: 1e+300 is outside [1, 1000000]") != std::string::npos);
  j = base("ints");
  j["batch_size"] = 9223372036854775807LL;
  CHECK(err(j).find("batch_size: 9223372036854775807 is outside [2, 65536]") != std::string::npos);
  j = base("ints");
  j["batch_size"] = 18446744073709551615ULL;
  CHECK(err(j).find("batch_size: 18446744073709551615 is outside") != std::string::npos);
  j = base("ints");
  j["threads"] = 4294967297LL;
  CHECK(err(j).find("threads: 4294967297 is outside [0, 1024]") != std::string::npos);
  j = base("ints");
  j["epochs"] = 2.5;
  CHECK(err(j).find("epochs: expected an integer, got 2.5") != std::string::npos);
  j = base("ints");
  j["schedule"] = {{"milestones", {-1}}};
  CHECK(err(j).find("schedule.milestones: expected epochs") != std::string::npos);
  j = base("ints");
  j["data"]["image_size"] = {1e300, 32};
  CHECK(err(j).find("data.image_size") != std::string::npos);
  j = base("ints");
  j["model"]["num_classes"] = 1e18;
  CHECK(err(j).find("model.num_classes: 1e+18 is outside [2, 100000]") != std::string::npos);
  j = base("ints");
  j["nonfinite"] = {{"action", "ignore"}};
  CHECK(err(j).find("nonfinite.action: unknown value \"ignore\"") != std::string::npos);
  CHECK_THROWS_WITH_AS(set_num_threads(-1), Contains("threads: -1 is outside"), Error);
}

TEST_CASE("JSON: deep nesting, trailing bytes, NUL, duplicate keys, overflow and broken --set values are errors") {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  CHECK_THROWS_WITH_AS(config::parse_json("{\"model\": " + deep + "}", "c.json"),
                       Contains("c.json: invalid JSON: nested deeper than 64 levels"), Error);
  CHECK_THROWS_WITH_AS(config::parse_json("{\"a\": 1} {\"b\": 2}", "c.json"), Contains("c.json: invalid JSON"), Error);
  CHECK_THROWS_WITH_AS(config::parse_json(std::string("{\"a\": 1}\0garbage", 16), "c.json"), Contains("a NUL byte at offset 8"), Error);
  CHECK_THROWS_WITH_AS(config::parse_json("{\"epochs\": 1, \"epochs\": 2}", "c.json"), Contains("duplicate key \"epochs\""), Error);
  CHECK_THROWS_WITH_AS(config::parse_json("[1e400]", "c.json"), Contains("number overflow"), Error);
  CHECK(config::parse_json("{\"a\": [1, {\"b\": null}]}\n  ", "c.json")["a"][1].contains("b"));
  // a value nested 60 levels (accepted) in the wrong place: the message prints it cut short
  nlohmann::json j = base("json");
  j["model"] = config::parse_json(std::string(60, '[') + std::string(60, ']'), "x");
  try {
    parse_train_config(j);
    FAIL("accepted");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).size() < 400);
  }
  nlohmann::json k = base("json");
  CHECK_THROWS_WITH_AS(config::apply_set(k, "epochs=5.0.1"), Contains("--set epochs: '5.0.1' is not valid JSON (a number"), Error);
  config::apply_set(k, "epochs=5x");  // a word: taken as a string, which the key's reader refuses
  CHECK_THROWS_WITH_AS(parse_train_config(k), Contains("epochs: expected an integer, got \"5x\""), Error);
  k = base("json");
  CHECK_THROWS_WITH_AS(config::apply_set(k, "epochs=1e400"), Contains("--set epochs: '1e400' is not valid JSON"), Error);
  CHECK_THROWS_WITH_AS(config::apply_set(k, "optim.lr=[0.1"), Contains("a broken list, object or string"), Error);
  CHECK_THROWS_WITH_AS(config::apply_set(k, "epochs.x=1"), Contains("--set epochs.x: 'epochs' is not an object"), Error);
  CHECK_THROWS_WITH_AS(config::apply_set(k, "out=\xff\xfe"), Contains("not valid UTF-8"), Error);
  config::apply_set(k, "out=2024-run");
  CHECK(k["out"] == "2024-run");
  config::apply_set(k, "epochs=3");
  CHECK(k["epochs"] == 3);
}

// ---- checkpoints ---------------------------------------------------------------------------------

TEST_CASE("crafted checkpoint states are errors naming the key, not crashes") {
  nlohmann::json good = {{"epoch", 1}, {"step_in_epoch", 0}, {"global_step", 5}, {"best_acc", 0.5}, {"best_epoch", 1},
                         {"history", {{{"epoch", 1}, {"train_loss", 1.0}, {"train_acc", 0.5}, {"test_loss", 1.0},
                                       {"test_acc", 0.5}, {"lr", 0.1}, {"epoch_seconds", 2.0}}}},
                         {"partial", nlohmann::json::object()}};
  CHECK_NOTHROW(TrainState::from_json(good, "s.json"));
  struct Case {
    const char* key;
    nlohmann::json value;
    const char* message;
  };
  const Case cases[] = {
      {"step_in_epoch", -1, "s.json: malformed checkpoint state: step_in_epoch: -1 is outside"},
      {"history", nlohmann::json::array(), "history: expected a list of 1 per-epoch metrics"},
      {"epoch", 3, "history: expected a list of 3"},
      {"best_epoch", 7, "best_epoch: 7 is outside [0, 1]"},
      {"best_acc", "high", "best_acc: expected a number"},
      {"global_step", 1e300, "global_step: 1e+300 is outside"},
      {"partial", {{"loss_sum", 1.0}, {"correct", 1}, {"seen", 2}, {"wait", 0.0}, {"seconds", 1.0}},
       "partial: running sums given without step 0"},
      {"history", {{{"epoch", 1}}}, "missing key 'history[0].train_loss'"},
      {"surprise", 1, "unknown key 'surprise'"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.key);
    nlohmann::json j = good;
    j[c.key] = c.value;
    CHECK_THROWS_WITH_AS(TrainState::from_json(j, "s.json"), Contains(c.message), Error);
  }
  nlohmann::json j = good;
  j.erase("partial");
  CHECK_THROWS_WITH_AS(TrainState::from_json(j, "s.json"), Contains("missing key 'partial'"), Error);
  j = good;
  j["step_in_epoch"] = 2;
  j["partial"] = {{"loss_sum", 1.0}, {"correct", 9}, {"seen", 4}, {"wait", 0.0}, {"seconds", 1.0}};
  CHECK_THROWS_WITH_AS(TrainState::from_json(j, "s.json"), Contains("partial.correct: 9 is outside [0, 4]"), Error);
}

TEST_CASE("resume falls back to checkpoint.old when the newest checkpoint is damaged, and names every problem") {
  nlohmann::json j = base("fallback", 2);
  fs::path out = j["out"].get<std::string>();
  REQUIRE(run(j) == 0);
  REQUIRE(fs::exists(out / "checkpoint.old" / "model.safetensors"));  // the previous epoch's checkpoint stays
  // damaged newest model file: resume starts again from epoch 1's checkpoint and finishes with
  // the same weights (the run is deterministic)
  std::string m = read_file((out / "checkpoint" / "model.safetensors").string(), 1 << 30);
  const std::map<std::string, Tensor> before = parse_safetensors(m, "before").tensors;
  write(out / "checkpoint" / "model.safetensors", m.substr(0, m.size() / 2));
  REQUIRE(train(parse_train_config(resume_config(out.string())), true) == 0);
  nlohmann::json st = config::read_json_file((out / "checkpoint" / "state.json").string());
  CHECK(st["epoch"] == 2);
  CHECK(fs::exists(out / "checkpoint.damaged" / "model.safetensors"));  // set aside, not made checkpoint.old
  for (auto& [k, v] : load_safetensors((out / "checkpoint" / "model.safetensors").string()).tensors)
    CHECK_MESSAGE(testing::mismatch(v, before.at(k), 0, 0).empty(), "weights differ at " << k);
  // files of two checkpoints mixed: the model's epoch must match the state's
  {
    fs::path mixed = scratch() / "mixed";
    fs::create_directories(mixed);
    fs::copy(out / "checkpoint", mixed / "checkpoint", fs::copy_options::recursive);
    fs::copy_file(out / "checkpoint.old" / "model.safetensors", mixed / "checkpoint" / "model.safetensors",
                  fs::copy_options::overwrite_existing);
    Generator g(0);
    auto model = build_model(parse_train_config(j).model, g);
    CHECK_THROWS_WITH_AS(load_checkpoint((mixed / "checkpoint").string(), *model, nullptr, nullptr),
                         Contains("metadata epoch 1 does not match the state's epoch 2 (files of different checkpoints?)"), Error);
  }
  // both damaged: an error listing both
  for (const char* d : {"checkpoint", "checkpoint.old"}) {
    nlohmann::json s = config::read_json_file((out / d / "state.json").string());
    s["step_in_epoch"] = -3;
    write(out / d / "state.json", s.dump());
  }
  try {
    train(parse_train_config(resume_config(out.string())), true);
    FAIL("resumed from damaged checkpoints");
  } catch (const Error& e) {
    std::string msg = e.what();
    CHECK(msg.find("no usable checkpoint") != std::string::npos);
    CHECK(msg.find("checkpoint/state.json: malformed checkpoint state: step_in_epoch: -3") != std::string::npos);
    CHECK(msg.find("checkpoint.old/state.json: malformed") != std::string::npos);
  }
}

TEST_CASE("model files from before the pixel scaling fix are refused, naming the reason") {
  nlohmann::json j = base("legacy");
  fs::path out = j["out"].get<std::string>();
  REQUIRE(run(j) == 0);
  SafetensorsFile f = load_safetensors((out / "checkpoint" / "model.safetensors").string());
  CHECK(f.metadata.at("input") == "(pixel / 255 - mean) / std");
  CHECK(nlohmann::json::parse(f.metadata.at("classes")).size() == 10);
  f.metadata.erase("input");  // as every file written before the fix
  save_safetensors((out / "checkpoint" / "model.safetensors").string(), f.tensors, f.metadata);
  CHECK_EXIT("eval --checkpoint " + out.string(), 1, "written by an scconv from before the pixel scaling fix");
  fs::remove_all(out / "checkpoint.old");
  CHECK_EXIT("train --resume " + out.string(), 1, "raw 0..255 pixels");
  // a PyTorch file given as a checkpoint: the message says how to evaluate it
  const std::string torch_file = std::string(SCCONV_TEST_DATA) + "/eval_torch/resnet20.safetensors";
  CHECK_EXIT("eval --checkpoint " + torch_file, 1, "give --weights FILE with --model PRESET");
}

// ---- the non-finite guard ------------------------------------------------------------------------

TEST_CASE("non-finite guard: a NaN the loss cannot see stops the run naming the tensor and the step") {
  // a NaN in a batch-norm buffer: training mode never reads running statistics, so the loss stays
  // finite; the check after the step names it
  nlohmann::json j = base("nan_buffer", 2);
  fs::path out = j["out"].get<std::string>();
  inject_nonfinite() = {7, "layer1.0.bn1.running_var"};  // epoch 2, step 2 (5 steps per epoch)
  try {
    run(j);
    FAIL("the run went on with a NaN buffer");
  } catch (const Error& e) {
    std::string msg = e.what();
    CHECK(msg.find("epoch 2, step 2 (global step 7): 'layer1.0.bn1.running_var' holds NaN or Inf after the update") != std::string::npos);
    CHECK(msg.find("the last good checkpoint") != std::string::npos);
  }
  inject_nonfinite() = {};
  nlohmann::json st = config::read_json_file((out / "checkpoint" / "state.json").string());
  CHECK(st["epoch"] == 1);  // epoch 1's checkpoint is kept, nothing non-finite was written
  check_finite_state(*[&] {
    Generator g(0);
    auto m = build_model(parse_train_config(j).model, g);
    load_checkpoint((out / "checkpoint").string(), *m, nullptr, nullptr);
    return m;
  }(), "kept checkpoint");
  // a NaN gradient: stops too
  nlohmann::json k = base("nan_grad", 1);
  inject_nonfinite() = {2, "conv1.weight"};
  CHECK_THROWS_WITH_AS(run(k), Contains("epoch 1, step 2 (global step 2): the gradient of 'conv1.weight' is not finite"), Error);
  inject_nonfinite() = {};
  // a tiny data.std: inputs overflow to Inf
  nlohmann::json t = base("tiny_std", 1);
  t["data"]["std"] = {1e-300, 1e-300, 1e-300};
  CHECK_THROWS_WITH_AS(run(t), Contains("the loss is -nan: non-finite output (NaN or Inf) from Conv2d 'conv1'"), Error);
}

TEST_CASE("non-finite guard, stop mode: verdicts stay on the device until resolve(); a bad step cancels its update and every later one") {
  Generator g(0);
  auto m = build_model(parse_model_config({{"arch", "resnet20"}}), g);
  SGD opt(m->named_parameters(), SGDOptions{});
  StepGuard guard(*m, Device::CPU, "Stopped here.");
  const Tensor x = Generator(1).normal({2, 3, 8, 8}), y = Tensor::from_vector<int64_t>({1, 7}, {2});
  Tensor w = m->named_parameters().front().second;  // conv1.weight
  auto train_step = [&](int k, bool poison_grad) {
    Tensor loss = cross_entropy((*m)(x), y);
    opt.zero_grad();
    autograd::backward(loss);
    if (poison_grad) w.grad().fill_(std::nan(""));
    opt.step(0.1, guard.before_update(loss, named_grads(*m)));
    guard.after_update("step " + std::to_string(k), x, 0.1);
  };
  train_step(1, false);
  const Tensor after_1 = w.clone();
  train_step(2, true);
  train_step(3, false);  // (a finite step after the bad one: cancelled too)
  CHECK(testing::mismatch(w, after_1, 0, 0).empty());
  CHECK_THROWS_WITH_AS(guard.resolve(), "step 2: the gradient of 'conv1.weight' is not finite. Stopped here.", Error);
  guard.resolve();  // nothing left to read
  // a non-finite loss: diagnosed from the kept batch, with the model as it was for that step
  StepGuard fresh(*m, Device::CPU, "Stopped.");
  Tensor loss = cross_entropy((*m)(x), y);
  opt.zero_grad();
  autograd::backward(loss);
  w.fill_(std::nan(""));
  const Tensor bad_loss = cross_entropy((*m)(x), y);
  opt.step(0.1, fresh.before_update(bad_loss, named_grads(*m)));
  fresh.after_update("step 4", x, 0.1);
  try {
    fresh.resolve();
    FAIL("a NaN loss was not reported");
  } catch (const Error& e) {
    const std::string msg = e.what();
    CHECK(msg.rfind("step 4: the loss is ", 0) == 0);
    CHECK(msg.find("nan: parameter 'conv1.weight' is not finite. Stopped.") != std::string::npos);
  }
}

TEST_CASE("non-finite guard, skip mode: the bad step is skipped (buffers restored), counted, and the run goes on") {
  nlohmann::json j = base("skip", 2);
  j["nonfinite"] = {{"action", "skip"}};
  fs::path out = j["out"].get<std::string>();
  inject_nonfinite() = {3, "layer2.0.conv1.weight"};
  CHECK(run(j) == 0);
  inject_nonfinite() = {};
  std::ifstream m(out / "metrics.jsonl");
  std::string line;
  std::getline(m, line);
  CHECK(nlohmann::json::parse(line)["skipped_steps"] == 1);
  CHECK(config::read_json_file((out / "summary.json").string())["skipped_steps"] == 1);
  // every step non-finite: stops after max_consecutive_skips in a row
  nlohmann::json t = base("skip_all", 1);
  t["nonfinite"] = {{"action", "skip"}, {"max_consecutive_skips", 2}};
  t["data"]["std"] = {1e-300, 1e-300, 1e-300};
  CHECK_THROWS_WITH_AS(run(t),
                       Contains("3 steps in a row skipped (nonfinite.max_consecutive_skips 2; the last: the loss is -nan: "
                                "non-finite output (NaN or Inf) from Conv2d 'conv1', shape (64, 16, 32, 32))"),
                       Error);
}

TEST_CASE("non-finite weights are refused when loading: resume, eval") {
  nlohmann::json j = base("nan_load", 1);
  fs::path out = j["out"].get<std::string>();
  REQUIRE(run(j) == 0);
  const std::string file = (out / "checkpoint" / "model.safetensors").string();
  SafetensorsFile f = load_safetensors(file);
  f.tensors.at("layer2.1.conv2.weight").data<float>()[5] = std::nanf("");
  save_safetensors(file, f.tensors, f.metadata);
  CHECK_EXIT("eval --checkpoint " + out.string(), 1, "tensor 'layer2.1.conv2.weight' holds NaN or Inf values");
  j["epochs"] = 2;
  CHECK_THROWS_WITH_AS(train(parse_train_config(resume_config(out.string())), true),
                       Contains("model.safetensors: tensor 'layer2.1.conv2.weight' holds NaN or Inf values"), Error);
}

// ---- output folders ------------------------------------------------------------------------------

TEST_CASE("output folders: foreign files, the root, symbolic links and a second run are refused; nothing is lost") {
  fs::path mine = scratch() / "users_folder";
  fs::create_directories(mine);
  write(mine / "notes.txt", "my notes");
  nlohmann::json j = base("users_folder");
  CHECK_THROWS_WITH_AS(run(j), Contains("holds files that are not from an scconv run (notes.txt)"), Error);
  CHECK(train(parse_train_config(j), false, /*allow_foreign_files=*/true) == 0);
  CHECK(read_file((mine / "notes.txt").string(), 100) == "my notes");  // left alone
  CHECK_THROWS_WITH_AS(run(j), Contains("already holds a run"), Error);
  // our name, someone else's folder: would be renamed and deleted by the checkpoint swap
  fs::path theirs = scratch() / "their_checkpoint";
  fs::create_directories(theirs / "checkpoint");
  write(theirs / "checkpoint" / "weights.pt", "precious");
  CHECK_THROWS_WITH_AS(train(parse_train_config(base("their_checkpoint")), false, true),
                       Contains("checkpoint' exists but is not an scconv checkpoint"), Error);
  nlohmann::json root = base("x");
  root["out"] = "/";
  CHECK_THROWS_WITH_AS(run(root), Contains("is the root folder"), Error);
  fs::path linked = scratch() / "linked";
  fs::create_directories(linked);
  fs::create_directory_symlink(scratch() / "elsewhere", linked / "checkpoint.tmp");
  CHECK_THROWS_WITH_AS(run(base("linked")), Contains("checkpoint.tmp' is a symbolic link"), Error);
  // the lock: a second claim on the same folder names the holder; released at the end
  fs::path busy = scratch() / "busy";
  {
    RunDir first(busy.string(), false, false);
    CHECK_THROWS_WITH_AS(RunDir(busy.string(), false, false),
                         Contains("is in use by another scconv run (host "), Error);
    CHECK(read_file((busy / ".scconv.lock").string(), 1000).find("pid " + std::to_string(getpid())) != std::string::npos);
  }
  CHECK_NOTHROW(RunDir(busy.string(), false, false));
  write(busy / ".scconv.lock", "host gone, pid 1, started 0");  // left by a killed run: taken over
  CHECK_NOTHROW(RunDir(busy.string(), false, false));
}

TEST_CASE("two processes started into one folder at once: one trains, the other is refused") {
  nlohmann::json j = base("race", 1);
  const std::string cfg = config_file(j, "race");
  const char* argv[] = {SCCONV_BINARY, "train", "--config", cfg.c_str(), nullptr};
  pid_t a, b;
  REQUIRE(posix_spawn(&a, SCCONV_BINARY, nullptr, nullptr, const_cast<char**>(argv), environ) == 0);
  REQUIRE(posix_spawn(&b, SCCONV_BINARY, nullptr, nullptr, const_cast<char**>(argv), environ) == 0);
  int sa = 0, sb = 0;
  waitpid(a, &sa, 0);
  waitpid(b, &sb, 0);
  REQUIRE(WIFEXITED(sa));
  REQUIRE(WIFEXITED(sb));
  const int ra = WEXITSTATUS(sa), rb = WEXITSTATUS(sb);
  MESSAGE("exit codes " << ra << " and " << rb);
  CHECK(((ra == 0 && rb == 1) || (ra == 1 && rb == 0)));  // never both 0
  CHECK(config::read_json_file(j["out"].get<std::string>() + "/summary.json")["epochs"] == 1);
}

// ---- empty batches -------------------------------------------------------------------------------

TEST_CASE("an empty batch: eval gives (0, classes) logits, training is an error naming batch norm") {
  const fs::path in = scratch() / "empty.safetensors", out = scratch() / "out.safetensors";
  save_safetensors(in.string(), {{"input", Tensor::empty({0, 3, 32, 32})}, {"labels", Tensor::empty({0}, DType::I64)}});
  for (const char* model : {"resnet20", "resnet20-scconv", "resnet50-imagenet-scconv"}) {
    CAPTURE(model);
    CHECK_EXIT(std::string("forward --model ") + model + " --input " + in.string() + " --output " + out.string(), 0, "");
    CHECK(load_safetensors(out.string()).tensors.at("logits").shape()[0] == 0);
    CHECK_EXIT(std::string("forward --model ") + model + " --train --input " + in.string() + " --output " + out.string(), 1,
               "training needs more than one value per channel");
  }
  // convolution forward and both backward passes on both backends
  for (bool reference : {false, true}) {
    std::optional<ReferenceModeGuard> guard;
    if (reference) guard.emplace();
    Tensor x = Tensor::empty({0, 4, 8, 8}).set_requires_grad(true);
    Tensor w = Tensor::ones({8, 4, 3, 3}).set_requires_grad(true);
    Tensor y = conv2d(x, w, Tensor(), {1, 1}, {1, 1});
    CHECK(y.shape() == Shape{0, 8, 8, 8});
    autograd::backward(sum(y));
    CHECK(w.grad().shape() == w.shape());
    CHECK(testing::max_abs(w.grad()) == 0);
    CHECK(linear(Tensor::empty({0, 8}), Tensor::ones({3, 8}), Tensor()).shape() == Shape{0, 3});
  }
}

TEST_CASE("every op case with a zero-size input: a result or an Error, on both backends, never a crash") {
  // each input in turn gets a first dimension of 0 (an empty batch, or an empty weight)
  int ran = 0, refused = 0;
  for (const testing::OpCase& c : testing::op_cases())
    for (size_t k = 0; k < c.shapes.size(); ++k) {
      if (c.shapes[k].empty()) continue;
      for (bool reference : {false, true}) {
        CAPTURE(c.name);
        CAPTURE(k);
        CAPTURE(reference);
        std::optional<ReferenceModeGuard> guard;
        if (reference) guard.emplace();
        std::vector<Tensor> in;
        Generator g(1);
        for (size_t i = 0; i < c.shapes.size(); ++i) {
          Shape s = c.shapes[i];
          if (i == k) s[0] = 0;
          in.push_back(g.normal(s).set_requires_grad(true));
        }
        try {
          Tensor y = c.f(in);
          if (y.requires_grad()) autograd::backward(sum(y));
          ++ran;
        } catch (const Error&) {
          ++refused;  // e.g. a shape that no longer broadcasts
        }
      }
    }
  MESSAGE(ran << " ran, " << refused << " refused with an Error");
  CHECK(ran > 0);
}

TEST_CASE("cudnn_search and deterministic: checked, kept in the run's config, CPU runs unaffected") {
  nlohmann::json j = base("cudnn");
  j["cudnn_search"] = "fastest";
  CHECK_THROWS_WITH_AS(parse_train_config(j), Contains("cudnn_search: unknown value 'fastest' (known: heuristic, measure)"),
                       Error);
  j["cudnn_search"] = "measure";
  j["deterministic"] = "yes";
  CHECK_THROWS_WITH_AS(parse_train_config(j), Contains("deterministic"), Error);
  j["deterministic"] = true;
  const apps::TrainConfig c = parse_train_config(j);
  CHECK(c.cudnn_search == "measure");
  CHECK(c.deterministic);
  CHECK(c.to_json()["cudnn_search"] == "measure");
  CHECK(c.to_json()["deterministic"] == true);
  CHECK(parse_train_config(base("cudnn2")).cudnn_search == "heuristic");
}
