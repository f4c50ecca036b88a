// apps/cmd_bench.cpp: `scconv bench`: training-step and inference throughput of a model on
// synthetic data (the loader is not measured), peak resident memory, where the time of a step
// goes by op family, and the achieved FLOP/s as a share of this CPU's measured float32 peak.
//   scconv bench --model resnet20-scconv [--batch 128] [--threads 2] [--seconds 5] [--json]
//   scconv bench                       the whole table: six models at 1 and 2 threads
//   scconv bench --model resnet20-scconv --versus resnet20
//                                      the two models' steps interleaved in one process: their
//                                      speed ratio, robust to a machine whose speed drifts
//   scconv bench --model resnet20 --precision bf16 --versus-precision fp32
//                                      the same model in two precisions, interleaved
// A training step is what `scconv train` runs: forward, cross-entropy, backward, SGD (momentum
// 0.9, weight decay 5e-4). Each table row runs in its own process, so that its peak memory is
// its own. tools/bench_vs_torch.py runs the same steps in PyTorch and prints ratios; the
// numbers and how to reproduce them are in docs/performance.md.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <cstdio>
#include <iostream>
#include <thread>

#include "apps/model_args.h"
#include "apps/peak_flops.h"
#include "core/device.h"
#include "core/parallel.h"
#include "core/profile.h"
#include "layers/summary.h"
#include "models/resnet.h"
#include "optim/sgd.h"

namespace scconv::apps {

namespace {

using Clock = std::chrono::steady_clock;
using json = nlohmann::json;
const char* kTableModels[] = {"resnet20", "resnet20-scconv", "resnet56", "resnet56-scconv",
                              "resnet50-cifar", "resnet50-cifar-scconv"};

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Runs `step` (after `warmup` untimed calls) until `seconds` have passed and at least
// `min_steps` ran; returns the seconds per step.
template <class F>
double time_steps(F step, int warmup, int min_steps, double seconds, int64_t* count) {
  for (int i = 0; i < warmup; ++i) step();
  auto t0 = Clock::now();
  int64_t n = 0;
  while (n < min_steps || since(t0) < seconds) {
    step();
    ++n;
  }
  *count = n;
  return since(t0) / double(n);
}

// Runs `step` a few times with the profiler on: time per op family, per step.
template <class F>
json time_by_family(F step) {
  profile::reset();
  profile::set_enabled(true);
  const int steps = 2;
  auto t0 = Clock::now();
  for (int i = 0; i < steps; ++i) step();
  const double step_s = since(t0) / steps;
  profile::set_enabled(false);
  json families = json::array();
  double accounted = 0;
  for (const profile::FamilyTime& f : profile::totals()) {
    const double s = f.seconds / steps;
    accounted += s;
    families.push_back({{"family", f.family}, {"ms_per_step", 1e3 * s}, {"share", s / step_s},
                        {"calls_per_step", f.calls / steps}});
  }
  const double rest = std::max(0.0, step_s - accounted);
  families.push_back({{"family", "other (autograd, allocation, framework)"},
                      {"ms_per_step", 1e3 * rest}, {"share", rest / step_s}, {"calls_per_step", 0}});
  return families;
}

int64_t peak_rss_bytes() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return int64_t(u.ru_maxrss) * 1024;  // Linux reports KiB
}

// The device the workloads run on (--device); a GPU step ends by waiting for the device, so
// that the clock measures the work, not its queueing.
Device g_device = Device::CPU;
void wait_for_device() {
  if (g_device != Device::CPU) device_runtime(g_device).synchronize();
}

// A model with its optimizer and a synthetic batch: what a training step and an inference
// batch run.
struct Workload {
  std::shared_ptr<Module> model;
  std::unique_ptr<SGD> sgd;
  Tensor x, y;
  int64_t image_size = 32, macs = 0;  // macs: per image, of one forward pass
  Precision precision = Precision::Float32;  // of its convolutions and matmuls (--precision)

  Workload(const json& model_json, const std::string& label, int64_t batch, Precision p) : precision(p) {
    ModelConfig cfg = parse_model_config(model_json, label);
    image_size = cfg.imagenet_stem ? 224 : 32;
    Generator g(0);
    model = build_model(cfg, g);
    {
      SummaryRecorder rec;
      autograd::NoGradGuard ng;
      model->eval();
      (*model)(Tensor::zeros({1, 3, image_size, image_size}));
      for (auto& r : rec.rows) macs += r.macs;
    }
    model->to(g_device);
    sgd = std::make_unique<SGD>(model->named_parameters(), SGDOptions{});  // lr 0.05, momentum 0.9, wd 5e-4
    x = Generator(1).normal({batch, 3, image_size, image_size}).to(g_device);
    std::vector<int64_t> labels(batch);
    for (int64_t i = 0; i < batch; ++i) labels[i] = i % cfg.num_classes;
    y = Tensor::from_vector(labels, {batch}).to(g_device);
  }
  // What `scconv train` runs per batch (call with the model in train mode).
  void train_step() {
    autograd::AutocastGuard autocast(precision);
    Tensor loss = cross_entropy((*model)(x), y);
    sgd->zero_grad();
    autograd::backward(loss);
    sgd->step(0.05);
    wait_for_device();
  }
  // Eval mode, no autograd.
  void eval_step() {
    autograd::AutocastGuard autocast(precision);
    autograd::NoGradGuard ng;
    (*model)(x);
    wait_for_device();
  }
};

// One model at one thread count.
json bench_one(const json& model_json, const std::string& label, int64_t batch, int threads,
               double seconds, Precision precision) {
  set_num_threads(threads);
  Workload w(model_json, label, batch, precision);
  const int64_t hw = w.image_size, macs = w.macs;

  // ---- training steps ----
  w.model->train();
  auto train_step = [&] { w.train_step(); };
  int64_t train_steps = 0;
  const double step_s = time_steps(train_step, 2, 3, seconds, &train_steps);
  const json families = time_by_family(train_step);  // a few more steps, profiled

  // ---- inference ----
  w.model->eval();
  auto eval_step = [&] { w.eval_step(); };
  int64_t eval_steps = 0;
  const double eval_s = time_steps(eval_step, 2, 3, seconds, &eval_steps);
  const json eval_families = time_by_family(eval_step);
  const PeakFlops peak = measure_peak_flops(threads);
  // FLOPs: forward 2 per MAC; a training step also runs the backward of every conv and linear
  // layer for its input and its weights: 6 per MAC (the usual convention).
  const double train_flops = 6.0 * double(macs) * double(batch) / step_s;
  const double eval_flops = 2.0 * double(macs) * double(batch) / eval_s;
  return json{{"model", label}, {"batch", batch}, {"threads", threads}, {"image_size", hw},
              {"macs_per_image", macs}, {"params", w.model->num_parameters()},
              {"train_images_per_second", double(batch) / step_s},
              {"train_step_ms", 1e3 * step_s}, {"train_steps_timed", train_steps},
              {"eval_images_per_second", double(batch) / eval_s},
              {"eval_batch_ms", 1e3 * eval_s}, {"eval_batches_timed", eval_steps},
              {"peak_rss_bytes", peak_rss_bytes()},
              {"peak_flops_per_second", peak.flops_per_second}, {"peak_isa", peak.isa},
              {"train_flops_per_second", train_flops},
              {"train_peak_fraction", train_flops / peak.flops_per_second},
              {"eval_flops_per_second", eval_flops},
              {"eval_peak_fraction", eval_flops / peak.flops_per_second},
              {"conv_algorithm", conv_algorithm_name(conv_algorithm())},
              {"precision", precision_name(precision)},
              {"transparent_huge_pages", transparent_huge_pages_on()},
              {"train_time_by_family", families}, {"eval_time_by_family", eval_families}};
}

void print_one(const json& r) {
  std::printf("%s, batch %lld, %d thread(s), %lldx%lld images, %s\n", r["model"].get<std::string>().c_str(),
              (long long)r["batch"], r["threads"].get<int>(), (long long)r["image_size"],
              (long long)r["image_size"], r["precision"].get<std::string>().c_str());
  std::printf("  train: %8.1f images/s  (%.1f ms/step, %.1f%% of the %.0f GFLOP/s %s peak)\n",
              r["train_images_per_second"].get<double>(), r["train_step_ms"].get<double>(),
              100 * r["train_peak_fraction"].get<double>(), r["peak_flops_per_second"].get<double>() / 1e9,
              r["peak_isa"].get<std::string>().c_str());
  std::printf("  eval:  %8.1f images/s  (%.1f ms/batch, %.1f%% of peak)\n",
              r["eval_images_per_second"].get<double>(), r["eval_batch_ms"].get<double>(),
              100 * r["eval_peak_fraction"].get<double>());
  std::printf("  peak resident memory: %.0f MiB\n", r["peak_rss_bytes"].get<double>() / (1 << 20));
  if (!r["transparent_huge_pages"].get<bool>())
    std::printf("  note: transparent huge pages are off (/sys/kernel/mm/transparent_hugepage/enabled):\n"
                "        big tensors are faulted in 4 KiB pages, which costs speed (docs/performance.md)\n");
  for (const char* phase : {"train", "eval"}) {
    std::printf("  %s by op family:\n",
                phase == std::string("train") ? "a training step" : "an inference batch");
    for (auto& f : r[std::string(phase) + "_time_by_family"])
      std::printf("    %-42s %8.2f ms %5.1f%%\n", f["family"].get<std::string>().c_str(),
                  f["ms_per_step"].get<double>(), 100 * f["share"].get<double>());
  }
}

// ---- two models, steps interleaved -------------------------------------------------------------
// A step of A, then one of B, and again, in `kRounds` rounds: both see the same machine at the
// same moments, so a drift in its speed (here +-10% between runs minutes apart) cancels in
// each round's ratio of median step times.
constexpr int kRounds = 6;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Per round: {median seconds of a's steps, of b's}, over `seconds` in all (>= 3 steps each a round).
template <class A, class B>
std::vector<std::pair<double, double>> interleaved_rounds(A a, B b, double seconds) {
  for (int i = 0; i < 2; ++i) a(), b();  // warm-up: caches, oneDNN's primitives
  std::vector<std::pair<double, double>> rounds;
  for (int r = 0; r < kRounds; ++r) {
    std::vector<double> ta, tb;
    const auto t0 = Clock::now();
    while (ta.size() < 3 || since(t0) < seconds / kRounds) {
      auto t = Clock::now();
      a();
      ta.push_back(since(t));
      t = Clock::now();
      b();
      tb.push_back(since(t));
    }
    rounds.push_back({median(ta), median(tb)});
  }
  return rounds;
}

// One phase's result: each round's median ms of both models and b / a (a's speed relative to b).
json versus_phase(const std::vector<std::pair<double, double>>& rounds) {
  json ms_a = json::array(), ms_b = json::array();
  std::vector<double> ratios;
  for (auto [a, b] : rounds) {
    ms_a.push_back(1e3 * a);
    ms_b.push_back(1e3 * b);
    ratios.push_back(b / a);
  }
  return json{{"ms", ms_a}, {"versus_ms", ms_b}, {"speed_ratio", median(ratios)},
              {"speed_ratio_min", *std::min_element(ratios.begin(), ratios.end())},
              {"speed_ratio_max", *std::max_element(ratios.begin(), ratios.end())}};
}

// Model a at precision pa against model b at pb.
json bench_versus(const json& a_json, const std::string& a_label, Precision pa, const json& b_json,
                  const std::string& b_label, Precision pb, int64_t batch, int threads, double seconds) {
  set_num_threads(threads);
  Workload a(a_json, a_label, batch, pa), b(b_json, b_label, batch, pb);
  a.model->train();
  b.model->train();
  const json train = versus_phase(interleaved_rounds([&] { a.train_step(); }, [&] { b.train_step(); }, seconds));
  a.model->eval();
  b.model->eval();
  const json eval = versus_phase(interleaved_rounds([&] { a.eval_step(); }, [&] { b.eval_step(); }, seconds));
  return json{{"model", a_label}, {"versus", b_label}, {"batch", batch}, {"threads", threads},
              {"rounds", kRounds}, {"train", train}, {"eval", eval}};
}

void print_versus(const json& r) {
  std::printf("%s versus %s, batch %lld, %d thread(s), steps interleaved in one process, %d rounds\n",
              r["model"].get<std::string>().c_str(), r["versus"].get<std::string>().c_str(),
              (long long)r["batch"], r["threads"].get<int>(), r["rounds"].get<int>());
  for (const char* phase : {"train", "eval"}) {
    const json& p = r[phase];
    std::printf("  %-5s %7.1f vs %7.1f ms per %s: %s runs at %.3fx the speed of %s (rounds %.3f-%.3f)\n",
                phase, median(p["ms"].get<std::vector<double>>()),
                median(p["versus_ms"].get<std::vector<double>>()),
                phase == std::string("train") ? "step" : "batch", r["model"].get<std::string>().c_str(),
                p["speed_ratio"].get<double>(), r["versus"].get<std::string>().c_str(),
                p["speed_ratio_min"].get<double>(), p["speed_ratio_max"].get<double>());
  }
}

// The table: each (model, threads) in a child process (`scconv bench --model ... --json`).
int bench_table(const std::vector<std::string>& models, const std::vector<int>& thread_counts,
                int64_t batch, double seconds, const std::string& algo, Precision precision, bool as_json) {
  // popen runs a shell, whose /proc/self/exe is the shell: resolve ours here.
  std::error_code ec;
  const std::string self = std::filesystem::read_symlink("/proc/self/exe", ec).string();
  SCCONV_CHECK(!ec, "bench: cannot find this executable (/proc/self/exe): " << ec.message());
  json rows = json::array();
  if (!as_json)
    std::printf("%-24s %7s %12s %12s %10s %10s %10s\n", "model", "threads", "train img/s",
                "eval img/s", "peak MiB", "train %pk", "eval %pk");
  for (const std::string& m : models) {
    for (int t : thread_counts) {
      std::string cmd = "'" + self + "' bench --json --model '" + m + "' --threads " +
                        std::to_string(t) + " --batch " + std::to_string(batch) + " --seconds " +
                        std::to_string(seconds) + " --conv-algorithm '" + algo + "' --precision " +
                        precision_name(precision);
      FILE* f = popen(cmd.c_str(), "r");
      SCCONV_CHECK(f, "bench: could not start '" << cmd << "'");
      std::string out;
      char buf[4096];
      size_t k;
      while ((k = fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, k);
      const int rc = pclose(f);
      SCCONV_CHECK(rc == 0 && !out.empty(), "bench: '" << cmd << "' failed (status " << rc << ")");
      json r = json::parse(out);
      rows.push_back(r);
      if (!as_json) {
        std::printf("%-24s %7d %12.1f %12.1f %10.0f %9.1f%% %9.1f%%\n", m.c_str(), t,
                    r["train_images_per_second"].get<double>(), r["eval_images_per_second"].get<double>(),
                    r["peak_rss_bytes"].get<double>() / (1 << 20), 100 * r["train_peak_fraction"].get<double>(),
                    100 * r["eval_peak_fraction"].get<double>());
        std::fflush(stdout);
      }
    }
  }
  if (as_json) std::cout << rows.dump(2) << "\n";
  return 0;
}

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t c = s.find(',', start);
    std::string item = s.substr(start, c == std::string::npos ? std::string::npos : c - start);
    if (!item.empty()) out.push_back(item);
    if (c == std::string::npos) break;
    start = c + 1;
  }
  return out;
}

}  // namespace

int cmd_bench(const Args& args) {
  ArgParser p("bench", "training and inference throughput, memory and time by op family (synthetic data)");
  declare_model_options(p);
  p.option("--batch", "batch size (default 128)");
  p.option("--threads", "threads (default: the table runs 1 and 2; one model runs all cores)");
  p.option("--seconds", "minimum seconds timed per phase (default 5)");
  p.option("--models", "the table's models, comma-separated presets (default: the six of issue 5)");
  p.option("--conv-algorithm", "auto (default), direct or winograd: see docs/performance.md");
  p.option("--versus", "a second model preset (--set applies to the first only): steps of both interleaved, their speed ratio");
  p.option("--precision", "fp32 (default) or bf16: what convolutions and matmuls multiply in");
  p.option("--versus-precision", "fp32 or bf16: the same model in this precision, interleaved (as --versus)");
  p.option("--device", "cpu (default), cuda or cuda:N");
  p.option("--cudnn-search", "on a GPU: heuristic (default) or measure (time cuDNN's candidates once per shape)");
  p.option("--deterministic", "on a GPU: only deterministic cuDNN algorithms", false);
  p.option("--json", "print JSON (one object per model)", false);
  if (!p.parse(args)) return 0;
  const DeviceSpec device = parse_device(p.get("--device", "cpu"));
  select_device(device);
  g_device = device.type;
  const std::string algo = p.get("--conv-algorithm", "auto");
  set_conv_algorithm(parse_conv_algorithm(algo));
  const std::string search = p.get("--cudnn-search", "heuristic");
  SCCONV_USAGE_CHECK(search == "heuristic" || search == "measure",
                     "option --cudnn-search: unknown value '" << search << "' (known: heuristic, measure)");
  set_cudnn_options({search == "measure", p.has("--deterministic")});
  const int64_t batch = p.get_int("--batch", 128, 1, 65536);
  const int64_t threads = p.get_int("--threads", 0, 0, kMaxThreads);
  const double seconds = p.get_number("--seconds", 5, 0, 86400);
  const Precision precision = effective_precision(p.get("--precision", "fp32"), device.type);
  for (const char* opt : {"--versus", "--versus-precision"})
    SCCONV_USAGE_CHECK(!p.has(opt) || p.has("--model") || p.has("--model-config"),
                       "option " << opt << ": compares with the model of --model or --model-config; give one");
  SCCONV_USAGE_CHECK(!(p.has("--versus") && p.has("--versus-precision")),
                     "options --versus and --versus-precision: give one of them");
  if (!p.has("--model") && !p.has("--model-config")) {
    std::vector<std::string> models = p.has("--models") ? split_list(p.get("--models"))
                                                        : std::vector<std::string>(std::begin(kTableModels), std::end(kTableModels));
    std::vector<int> tc = threads ? std::vector<int>{int(threads)} : std::vector<int>{1, 2};
    return bench_table(models, tc, batch, seconds, algo, precision, p.has("--json"));
  }
  const std::string label = p.get("--model", p.get("--model-config"));
  const int nthreads = threads ? int(threads) : std::max(1, int(std::thread::hardware_concurrency()));
  const json model_json = model_json_from(p);
  json r;
  if (p.has("--versus")) {
    json b_json;
    try {
      b_json = load_model_preset(p.get("--versus"));
    } catch (const Error& e) {
      SCCONV_FAIL("option --versus: " << e.what());
    }
    r = bench_versus(model_json, label, precision, b_json, p.get("--versus"), precision, batch, nthreads, seconds);
  } else if (p.has("--versus-precision")) {
    const Precision pb = effective_precision(p.get("--versus-precision"), device.type);
    r = bench_versus(model_json, label + " " + precision_name(precision), precision, model_json,
                     label + " " + precision_name(pb), pb, batch, nthreads, seconds);
  } else {
    r = bench_one(model_json, label, batch, nthreads, seconds, precision);
  }
  if (p.has("--json")) std::cout << r.dump() << "\n";
  else if (p.has("--versus") || p.has("--versus-precision")) print_versus(r);
  else print_one(r);
  return 0;
}

}  // namespace scconv::apps
