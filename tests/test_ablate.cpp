// tests/test_ablate.cpp: `scconv ablate` without Slurm (apps/ablate.h): plans expand into the
// runs and configs they name, bad plans fail before anything runs, two `--shard` processes side
// by side train every run once, the tables hold the means of the runs' own results, a stopped
// shard resumes its run to the weights of an uninterrupted one, failures are recorded and
// retried, and a dead shard's claim is taken over. (tests/slurm/test_slurm.sh runs the same flow
// through a real one-node Slurm cluster.)
// Run: ./build/tests/test_ablate
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "apps/ablate.h"
#include "apps/file_lock.h"
#include "apps/trainer.h"
#include "core/config.h"
#include "core/safetensors.h"
#include "synthetic_cifar.h"
#include "test_util.h"

extern char** environ;
using namespace scconv;
using namespace scconv::apps;
using doctest::Contains;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {
fs::path scratch() { return testing::scratch_dir("scconv_test_ablate_"); }
fs::path data_dir() { return testing::synthetic_cifar_in(scratch()); }

json tiny_base(int epochs = 1) {
  return {{"model", {{"arch", "resnet20"}}},
          {"data", {{"dataset", "cifar10"}, {"dir", data_dir().string()}, {"augment", {{"flip", false}}}}},
          {"optim", {{"lr", 0.05}}}, {"schedule", {{"kind", "constant"}}},
          {"epochs", epochs}, {"batch_size", 64}, {"threads", 1}};
}
// 2 variants x 2 seeds
json tiny_plan(int epochs = 1) {
  return {{"name", "tiny"}, {"base", tiny_base(epochs)},
          {"axes", {{"variant", {{"plain", json::object()}, {"scconv", {{"model.conv", "scconv"}}}}}}},
          {"seeds", {1, 2}},
          {"paper", {{"variant=scconv", 50.0}}}};
}
std::string write_plan(const json& plan, const std::string& name) {
  const fs::path p = scratch() / (name + ".json");
  std::ofstream(p) << plan.dump(2);
  return p.string();
}
std::string text_of(const fs::path& p) {
  std::ifstream f(p);
  return std::string(std::istreambuf_iterator<char>(f), {});
}
pid_t spawn(const std::vector<std::string>& args, const fs::path& log) {
  std::vector<char*> argv{const_cast<char*>(SCCONV_BINARY)};
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 2, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = 0;
  REQUIRE(posix_spawn(&pid, SCCONV_BINARY, &fa, nullptr, argv.data(), environ) == 0);
  posix_spawn_file_actions_destroy(&fa);
  return pid;
}
int wait_exit(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
std::map<std::string, Tensor> weights(const std::string& run_dir) {
  return load_safetensors(run_dir + "/checkpoint/model.safetensors").tensors;
}
}  // namespace

TEST_CASE("a plan expands into runs with stable ids, in axis order, each a checked training config") {
  json plan = tiny_plan();
  plan["axes"]["model.scconv.alpha"] = {0.25, 0.75};  // (after "variant": the plain model has no scconv options)
  plan["axes"].erase("variant");
  plan["base"]["model"] = "resnet20-scconv";
  plan["set"] = {{"optim.lr", 0.2}};
  plan.erase("paper");
  const std::string f = write_plan(plan, "expand");
  const AblationPlan p = load_plan(f, (scratch() / "out_expand").string(), {"epochs=3"});
  REQUIRE(p.runs.size() == 4);
  CHECK(p.axes == std::vector<std::string>{"alpha"});
  CHECK(p.runs[0].id == "alpha=0.25,seed=1");
  CHECK(p.runs[3].id == "alpha=0.75,seed=2");
  CHECK(p.cells.size() == 2);
  CHECK(p.cells[1].id == "alpha=0.75");
  CHECK(p.runs[3].config["model"]["scconv"]["alpha"] == 0.75);  // the preset became its object
  CHECK(p.runs[3].config["optim"]["lr"] == 0.2);                // "set"
  CHECK(p.runs[3].config["epochs"] == 3);                       // the command line's --set
  CHECK(p.runs[3].config["seed"] == 2);
  CHECK(p.runs[3].config["out"] == (scratch() / "out_expand" / "runs" / "alpha=0.75,seed=2").string());
  // the plan's order, not alphabetical: labelled values and axes keep the order of the file
  const std::string ordered = scratch() / "ordered.json";
  std::ofstream(ordered) << R"({"base": "quick", "axes": {"v": {"z": {}, "a": {}}, "optim.lr": [0.3, 0.1]}, "seeds": [5]})";
  const AblationPlan o = load_plan(ordered, (scratch() / "out_ordered").string(), {});
  CHECK(o.axes == std::vector<std::string>{"v", "lr"});
  CHECK(o.runs[0].id == "v=z,lr=0.3,seed=5");
  CHECK(o.runs[1].id == "v=z,lr=0.1,seed=5");
  CHECK(o.runs[2].id == "v=a,lr=0.3,seed=5");
  // every shipped plan expands and validates (each distinct model is built once)
  for (const char* shipped : {"table1-resnet50-cifar100", "table2-cifar10", "table2-cifar100", "alpha-resnet20",
                              "alpha-resnet56", "seed004-claims", "sru-cru-variants"}) {
    CAPTURE(shipped);
    const AblationPlan s = load_plan(std::string(SCCONV_SOURCE_DIR_TESTS) + "/configs/ablations/" + shipped + ".json",
                                     (scratch() / "shipped").string(), {"epochs=1"});
    CHECK(s.runs.size() >= 12);
  }
}

TEST_CASE("bad plans are errors naming the plan file and the key, before anything runs") {
  const std::string out = (scratch() / "out_bad").string();
  auto fails = [&](json plan, const std::string& name, const std::string& message) {
    CAPTURE(name);
    const std::string f = write_plan(plan, name);
    CHECK_THROWS_WITH_AS(load_plan(f, out, {}), Contains(message.c_str()), Error);
    CHECK_THROWS_WITH_AS(load_plan(f, out, {}), Contains(f.c_str()), Error);
  };
  json p = tiny_plan();
  p["axes"]["variant"]["plain"] = {{"optim.momentom", 0.5}};
  fails(p, "unknown_key", "run variant=plain,seed=1: unknown key 'optim.momentom'");
  p = tiny_plan();
  p["axes"]["variant"]["scconv"] = {{"model.scconv.alpah", 0.5}, {"model.conv", "scconv"}};
  fails(p, "unknown_model_key", "unknown key 'model.scconv.alpah'");
  p = tiny_plan();
  p["axes"]["optim.lr"] = json::array();
  fails(p, "empty_axis", "axis 'optim.lr' has no values, so the plan would expand to zero runs");
  p = tiny_plan();
  p["axes"]["optim.lr"] = {0.1, 0.1};
  fails(p, "duplicate_ids", "two runs have the id 'lr=0.1,variant=plain,seed=1'");  // (dump() sorts the axes)
  p = tiny_plan();
  p["seeds"] = {1, 1};
  fails(p, "duplicate_seeds", "two runs have the id");
  p = tiny_plan();
  p["base"] = "no-such-preset";
  fails(p, "bad_base", "base: --config: no preset 'no-such-preset'");
  p = tiny_plan();
  p["base"]["epochs"] = 0;
  fails(p, "bad_base_value", "epochs");
  p = tiny_plan();
  p["paper"] = {{"variant=scconv,seed=1", 50}};
  fails(p, "paper_cell", "paper: no cell 'variant=scconv,seed=1' (cells: variant=plain, variant=scconv)");
  p = tiny_plan();
  p["axes"]["variant"]["a/b"] = json::object();
  fails(p, "bad_label", "the label 'a/b' holds a character that cannot go into a run id");
  p = tiny_plan();
  p["axes"]["variant"]["wide"] = {{"model.conv", "scconv"}, {"model.scconv.groups", 3}};
  fails(p, "model_fails", "run variant=wide,seed=1: model resnet20, block layer1.0: CRU: groups=3 must divide");
  p = tiny_plan();
  p["extra"] = 1;
  fails(p, "unknown_plan_key", "unknown key 'extra'");
  CHECK_THROWS_WITH_AS(parse_shard("3/2"), Contains("--shard 3/2: K must be in [0, N)"), Error);
  CHECK_THROWS_WITH_AS(parse_shard("1"), Contains("expected K/N"), Error);
  CHECK_THROWS_WITH_AS(parse_shard("-1/2"), Contains("expected K/N with whole numbers"), Error);
  CHECK(parse_shard("2/3").index == 2);
  // a results directory written by another plan (or other --set values) is refused
  const std::string f = write_plan(tiny_plan(), "identity");
  prepare_results_dir(load_plan(f, out, {}), out);
  prepare_results_dir(load_plan(f, out, {}), out);  // the same plan: fine
  CHECK_THROWS_WITH_AS(prepare_results_dir(load_plan(f, out, {"epochs=2"}), out),
                       Contains("holds the results of another plan"), Error);
  json other = tiny_plan();
  other["seeds"] = {7};
  CHECK_THROWS_WITH_AS(prepare_results_dir(load_plan(write_plan(other, "other"), out, {}), out),
                       Contains("holds the results of another plan"), Error);
}

TEST_CASE("Slurm array variables give the shard") {
  setenv("SLURM_ARRAY_TASK_ID", "5", 1);
  setenv("SLURM_ARRAY_TASK_COUNT", "3", 1);
  setenv("SLURM_ARRAY_TASK_MIN", "4", 1);
  CHECK(shard_from_environment().index == 1);
  CHECK(shard_from_environment().count == 3);
  setenv("SLURM_ARRAY_TASK_ID", "9", 1);
  CHECK_THROWS_WITH_AS(shard_from_environment(), Contains("SLURM_ARRAY_TASK_ID=9"), Error);
  for (const char* v : {"SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_MIN"}) unsetenv(v);
  CHECK(shard_from_environment().count == 1);
}

TEST_CASE("two shards side by side train every run once; --collect tables their results") {
  const std::string f = write_plan(tiny_plan(), "shards"), out = (scratch() / "out_shards").string();
  const pid_t a = spawn({"ablate", f, "--out", out, "--shard", "0/2"}, scratch() / "shard0.log");
  const pid_t b = spawn({"ablate", f, "--out", out, "--shard", "1/2"}, scratch() / "shard1.log");
  CHECK(wait_exit(a) == 0);
  CHECK(wait_exit(b) == 0);
  const AblationPlan p = load_plan(f, out, {});
  std::map<std::string, double> acc;
  for (const AblationRun& r : p.runs) {
    CAPTURE(r.id);
    CHECK(run_status(out, r).state == RunState::Done);
    const json s = config::read_json_file(r.config["out"].get<std::string>() + "/summary.json");
    acc[r.id] = 100 * s["final_test_acc"].get<double>();
    // each run trained once: one "training" line in one shard's log, one epoch in its metrics
    CHECK(text_of(out + "/.ablate/" + r.id + ".log").find("done: final test accuracy") != std::string::npos);
  }
  const std::string logs = text_of(scratch() / "shard0.log") + text_of(scratch() / "shard1.log");
  size_t trained = 0;
  for (size_t at = logs.find(": training"); at != std::string::npos; at = logs.find(": training", at + 1)) ++trained;
  CHECK(trained == 4);
  // a second call finds nothing to do
  CHECK(wait_exit(spawn({"ablate", f, "--out", out}, scratch() / "again.log")) == 0);
  CHECK(text_of(scratch() / "again.log").find("takes 0 of 0 pending runs") != std::string::npos);
  // the tables
  const std::string md = collect_results(p, out);
  const double mean = (acc["variant=scconv,seed=1"] + acc["variant=scconv,seed=2"]) / 2;
  char expect[64];
  std::snprintf(expect, sizeof expect, "| scconv | %.2f ± ", mean);
  CHECK_MESSAGE(md.find(expect) != std::string::npos, md);
  CHECK(md.find("2/2 |") != std::string::npos);
  char diff[32];
  std::snprintf(diff, sizeof diff, "| 50.00 | %+.2f |", mean - 50.0);
  CHECK_MESSAGE(md.find(diff) != std::string::npos, md);
  const std::string csv = text_of(out + "/results.csv");
  CHECK(csv.rfind("variant,seeds_finished,seeds,test_acc_mean,", 0) == 0);
  CHECK(std::count(csv.begin(), csv.end(), '\n') == 3);
  const std::string html = text_of(out + "/results.html");
  CHECK(html.find("<table class=\"runs results\">") != std::string::npos);
  CHECK(html.find("variant=scconv,seed=2") != std::string::npos);  // the report of the runs follows
  CHECK(html.find("Not finished") == std::string::npos);
  // a finished run whose folder no longer reads is listed, not averaged, and the rest collect
  const std::string broken = p.runs[3].config["out"].get<std::string>();
  for (const char* c : {"/checkpoint/state.json", "/checkpoint.old/state.json"}) std::ofstream(broken + c) << "{}";
  const std::string md2 = collect_results(p, out);
  CHECK(md2.find("`" + p.runs[3].id + "`: done (finished, but its folder does not read: ") != std::string::npos);
  CHECK(md2.find("1/2 (incomplete)") != std::string::npos);
}

TEST_CASE("a stopped shard's run resumes to the weights of an uninterrupted run") {
  json plan = tiny_plan(3);
  plan["base"]["threads"] = 2;
  plan["axes"]["variant"].erase("scconv");
  plan["seeds"] = {3};
  plan.erase("paper");
  const std::string f = write_plan(plan, "stop"), out = (scratch() / "out_stop").string();
  const pid_t a = spawn({"ablate", f, "--out", out}, scratch() / "stop.log");
  const AblationPlan p = load_plan(f, out, {});
  const std::string run = p.runs[0].config["out"];
  const auto t0 = std::chrono::steady_clock::now();
  while (!fs::exists(run + "/metrics.jsonl") && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(300))
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  CHECK(run_status(out, p.runs[0]).state == RunState::Running);
  kill(a, SIGTERM);  // the shard passes it on; the trainer stops at a step boundary with a checkpoint
  CHECK(wait_exit(a) == 130);
  const RunStatus stopped = run_status(out, p.runs[0]);
  CHECK(stopped.state == RunState::Pending);
  CHECK(stopped.detail.find("resumes after epoch") != std::string::npos);
  CHECK(text_of(scratch() / "stop.log").find("stopped; it resumes on the next call") != std::string::npos);
  CHECK(wait_exit(spawn({"ablate", f, "--out", out}, scratch() / "stop2.log")) == 0);
  CHECK(run_status(out, p.runs[0]).state == RunState::Done);
  // the same config, uninterrupted
  json ref = p.runs[0].config;
  ref["out"] = (scratch() / "stop_ref").string();
  REQUIRE(train(parse_train_config(ref), false) == 0);
  const auto got = weights(run), want = weights(ref["out"]);
  REQUIRE(got.size() == want.size());
  for (auto& [name, t] : want) {
    CAPTURE(name);
    CHECK(testing::max_abs(sub(got.at(name).to(DType::F64), t.to(DType::F64))) == 0);
  }
}

TEST_CASE("failed runs are recorded with their error, listed, and retried on request; stale claims are taken over") {
  json plan = tiny_plan();
  plan["axes"]["variant"]["broken"] = {{"data.dir", (scratch() / "no_data").string()}};
  plan["base"]["threads"] = 2;
  plan["seeds"] = {1};
  const std::string f = write_plan(plan, "fail"), out = (scratch() / "out_fail").string();
  AblationPlan p = load_plan(f, out, {});
  prepare_results_dir(p, out);
  std::sort(p.runs.begin(), p.runs.end(), [](auto& a, auto& b) { return a.id > b.id; });  // scconv, plain, broken
  REQUIRE(p.runs[2].id == "variant=broken,seed=1");
  // a claim left by a shard that died (the record names it; nobody holds the lock): taken over
  std::ofstream(out + "/.ablate/" + p.runs[0].id + ".lock") << "host gone, pid 999999, started 1";
  // a claim held by a live shard (this process): that run is left alone
  FileLock held;
  REQUIRE(held.try_lock(out + "/.ablate/" + p.runs[1].id + ".lock"));
  CHECK(run_status(out, p.runs[1]).state == RunState::Running);
  CHECK(run_status(out, p.runs[1]).detail.find("pid " + std::to_string(getpid())) != std::string::npos);
  CHECK(run_status(out, p.runs[0]).state == RunState::Pending);
  const int rc = wait_exit(spawn({"ablate", f, "--out", out}, scratch() / "fail.log"));
  const std::string log = text_of(scratch() / "fail.log");
  INFO(log);
  CHECK(rc == 1);
  CHECK(log.find("taking over the claim of a shard that ended (host gone, pid 999999") != std::string::npos);
  CHECK(log.find(p.runs[1].id + ": taken by another shard") != std::string::npos);
  CHECK(log.find("variant=broken,seed=1: FAILED") != std::string::npos);
  CHECK(run_status(out, p.runs[0]).state == RunState::Done);
  const RunStatus failed = run_status(out, p.runs[2]);
  CHECK(failed.state == RunState::Failed);
  CHECK(failed.detail.find("missing file") != std::string::npos);
  // listed under the table, not averaged
  const std::string md = collect_results(p, out);
  CHECK(md.find("Not finished (2 runs") != std::string::npos);
  CHECK(md.find("`variant=broken,seed=1`: failed (") != std::string::npos);
  CHECK(md.find("`variant=plain,seed=1`: running") != std::string::npos);
  CHECK(md.find("| plain | - | - |") != std::string::npos);
  CHECK(md.find("0/1 (incomplete)") != std::string::npos);
  // without --retry-failed a failed run stays failed; with it, it runs again (and fails again)
  CHECK(wait_exit(spawn({"ablate", f, "--out", out, "--shard", "0/1"}, scratch() / "fail2.log")) == 0);
  CHECK(text_of(scratch() / "fail2.log").find("broken") == std::string::npos);
  CHECK(wait_exit(spawn({"ablate", f, "--out", out, "--retry-failed"}, scratch() / "fail3.log")) == 1);
  CHECK(text_of(scratch() / "fail3.log").find("variant=broken,seed=1: FAILED") != std::string::npos);
}
