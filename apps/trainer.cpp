// apps/trainer.cpp: the training loop. One epoch: batches from the background loader ->
// forward -> cross-entropy -> backward -> SGD step at the scheduled learning rate; then the
// test (and validation) evaluation, metrics.jsonl, a checkpoint, and the best weights.
#include "apps/trainer.h"

#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>

#include "core/backend.h"
#include "core/file_io.h"
#include "core/parallel.h"
#include "core/safetensors.h"
#include "models/resnet.h"

namespace scconv::apps {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::atomic<bool>& stop_requested() {
  static std::atomic<bool> flag{false};
  return flag;
}

std::atomic<int64_t>& stop_at_step() {
  static std::atomic<int64_t> step{-1};
  return step;
}

namespace {
void on_signal(int) { stop_requested().store(true); }

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::string hms(double s) {
  char buf[32];
  int64_t t = static_cast<int64_t>(s);
  std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", (long long)(t / 3600), (long long)(t / 60 % 60), (long long)(t % 60));
  return buf;
}

int64_t count_correct(const Tensor& logits, const Tensor& labels) {
  Tensor l = logits.contiguous();
  const int64_t N = l.size(0), C = l.size(1);
  const float* p = l.data<float>();
  int64_t ok = 0;
  for (int64_t n = 0; n < N; ++n) {
    int64_t best = 0;
    for (int64_t c = 1; c < C; ++c)
      if (p[n * C + c] > p[n * C + best]) best = c;
    ok += best == labels.data<int64_t>()[n];
  }
  return ok;
}

// Names what went non-finite: a parameter, a gradient, or (re-running the batch with checks)
// the first layer output.
std::string diagnose(Module& model, const Tensor& x) {
  for (auto& [n, p] : model.named_parameters()) {
    if (!all_finite(p)) return "parameter '" + n + "' is not finite";
    if (p.grad().defined() && !all_finite(p.grad())) return "the gradient of '" + n + "' is not finite";
  }
  try {
    autograd::NoGradGuard ng;
    FiniteCheckGuard check;
    model(x);
  } catch (const Error& e) {
    return e.what();
  }
  return "the loss is not finite although every layer output is";
}
}  // namespace

Datasets load_datasets(const TrainConfig& cfg, const std::string& dir_override) {
  const std::string dir = dir_override.empty() ? cfg.data_dir : dir_override;
  Datasets d;
  if (cfg.dataset == "folder") {
    ImageFolderOptions o{cfg.image_h, cfg.image_w, cfg.resize, cfg.skip_bad};
    std::vector<std::string> skipped;
    d.train = load_image_folder((fs::path(dir) / "train").string(), o, &skipped);
    d.test = load_image_folder((fs::path(dir) / "test").string(), o, &skipped);
    if (!skipped.empty()) {
      std::fprintf(stderr, "scconv: skipped %zu unusable image(s):\n", skipped.size());
      for (size_t i = 0; i < skipped.size() && i < 10; ++i) std::fprintf(stderr, "  %s\n", skipped[i].c_str());
    }
  } else {
    d.train = load_cifar(dir, cfg.dataset == "cifar100", true);
    d.test = load_cifar(dir, cfg.dataset == "cifar100", false);
  }
  if (cfg.val_split > 0) {
    SCCONV_CHECK(cfg.val_split < d.train.size(), "data.val_split " << cfg.val_split << " must be smaller than the "
                                                                   << d.train.size() << " training images");
    std::vector<int64_t> order = epoch_order(d.train.size(), true, static_cast<uint64_t>(cfg.seed) ^ 0x7a1ULL, -1);
    std::vector<int64_t> tr(order.begin(), order.end() - cfg.val_split), va(order.end() - cfg.val_split, order.end());
    d.val = d.train.subset(va);
    d.train = d.train.subset(tr);
  }
  return d;
}

EvalResult evaluate(Module& model, const Dataset& data, const AugmentOptions& norm, int64_t batch) {
  EvalResult r;
  const int64_t C = static_cast<int64_t>(std::max<size_t>(data.classes.size(), 1));
  r.confusion.assign(C, std::vector<int64_t>(C, 0));
  bool was_training = model.training();
  model.eval();
  autograd::NoGradGuard ng;
  Loader loader(data, batch, false, norm, 0);
  loader.start_epoch(0);
  auto t0 = Clock::now();
  Tensor x, y;
  double loss_sum = 0;
  int64_t correct = 0;
  while (loader.next(x, y)) {
    Tensor logits = model(x);
    loss_sum += cross_entropy(logits, y).item() * double(x.size(0));
    Tensor l = logits.contiguous();
    const int64_t K = l.size(1);
    for (int64_t n = 0; n < x.size(0); ++n) {
      int64_t best = 0;
      for (int64_t c = 1; c < K; ++c)
        if (l.data<float>()[n * K + c] > l.data<float>()[n * K + best]) best = c;
      int64_t t = y.data<int64_t>()[n];
      correct += best == t;
      if (t < C && best < C) ++r.confusion[t][best];
    }
    r.count += x.size(0);
  }
  r.seconds = since(t0);
  r.loss = loss_sum / double(r.count);
  r.accuracy = double(correct) / double(r.count);
  model.train(was_training);
  return r;
}

int train(const TrainConfig& cfg_in, bool resume) {
  TrainConfig cfg = cfg_in;
  SCCONV_CHECK(resume || find_checkpoint(cfg.out).empty(),
               "'" << cfg.out << "' already holds a run (" << find_checkpoint(cfg.out) << "); continue it with "
                   << "--resume " << cfg.out << ", or train into another directory (--set out=DIR)");
  set_num_threads(static_cast<int>(cfg.threads));
  set_conv_algorithm(parse_conv_algorithm(cfg.conv_algorithm));
  nlohmann::json cfg_json = cfg.to_json();
  Datasets data = load_datasets(cfg);
  SCCONV_CHECK(static_cast<int64_t>(data.train.classes.size()) <= cfg.model.num_classes,
               "model.num_classes " << cfg.model.num_classes << " is smaller than the " << data.train.classes.size()
                                    << " classes of the data set");
  Generator init(static_cast<uint64_t>(cfg.seed));
  auto model = build_model(cfg.model, init);
  SGD sgd(model->named_parameters(), cfg.optim);
  TrainState st;
  if (resume) {
    std::string dir = find_checkpoint(cfg.out);
    SCCONV_CHECK(!dir.empty(), "--resume: no checkpoint in '" << cfg.out << "/checkpoint'");
    load_checkpoint(dir, *model, &sgd, &st);
    std::fprintf(stderr, "resumed from %s: %lld epoch(s) done, step %lld of the next\n", dir.c_str(),
                 (long long)st.epoch, (long long)st.step_in_epoch);
  }
  fs::create_directories(cfg.out);
  Loader loader(data.train, cfg.batch_size, true, cfg.augment, static_cast<uint64_t>(cfg.seed));
  const int64_t steps = loader.batches_per_epoch();
  stop_requested().store(false);
  auto old_int = std::signal(SIGINT, on_signal);
  auto old_term = std::signal(SIGTERM, on_signal);
  struct Restore {
    decltype(old_int) a, b;
    ~Restore() { std::signal(SIGINT, a); std::signal(SIGTERM, b); }
  } restore{old_int, old_term};
  const bool tty = isatty(2);
  std::fprintf(stderr, "training %s on %s: %lld train / %lld val / %lld test images, %lld epochs of %lld steps, %d threads -> %s\n",
               cfg.model.arch.c_str(), cfg.dataset.c_str(), (long long)data.train.size(), (long long)data.val.size(),
               (long long)data.test.size(), (long long)cfg.epochs, (long long)steps, get_num_threads(), cfg.out.c_str());
  auto run_start = Clock::now();
  double run_images = 0;

  for (int64_t epoch = st.epoch; epoch < cfg.epochs; ++epoch) {
    model->train();
    loader.start_epoch(epoch, st.step_in_epoch);
    // running sums of this epoch (restored when resuming mid-epoch)
    double loss_sum = st.partial.value("loss_sum", 0.0), wait = st.partial.value("wait", 0.0);
    double secs_before = st.partial.value("seconds", 0.0);
    int64_t correct = st.partial.value("correct", int64_t(0)), seen = st.partial.value("seen", int64_t(0));
    auto epoch_start = Clock::now();
    auto last_print = Clock::now() - std::chrono::seconds(10);
    double lr = 0;
    Tensor x, y;
    double w = 0;
    while (loader.next(x, y, &w)) {
      wait += w;
      lr = learning_rate(cfg.schedule, cfg.optim.lr, epoch, st.global_step, steps);
      Tensor logits = (*model)(x);
      Tensor loss = cross_entropy(logits, y, cfg.label_smoothing);
      const double lv = loss.item();
      if (!std::isfinite(lv))
        SCCONV_FAIL("epoch " << epoch + 1 << ", step " << st.step_in_epoch + 1 << ": loss is " << lv << ": "
                             << diagnose(*model, x) << ". Stopped; the last good checkpoint in '" << cfg.out
                             << "/checkpoint' is kept");
      sgd.zero_grad();
      autograd::backward(loss);
      sgd.step(lr);
      loss_sum += lv * double(x.size(0));
      correct += count_correct(logits, y);
      seen += x.size(0);
      ++st.step_in_epoch;
      ++st.global_step;
      run_images += double(x.size(0));
      if (st.global_step == stop_at_step().load()) stop_requested().store(true);
      const bool last = st.step_in_epoch == steps;
      if (tty ? since(last_print) > 0.5 || last : (st.step_in_epoch % std::max<int64_t>(1, steps / 10) == 0 || last)) {
        last_print = Clock::now();
        const double ips = run_images / std::max(since(run_start), 1e-9);
        const double eta_epoch = double(steps - st.step_in_epoch) * double(cfg.batch_size) / ips;
        const double eta_run = eta_epoch + double(cfg.epochs - epoch - 1) * double(data.train.size()) / ips;
        std::fprintf(stderr, "%sepoch %lld/%lld step %lld/%lld loss %.4f acc %.2f%% lr %.4g %.0f img/s data wait %.1fs ETA %s / %s%s",
                     tty ? "\r" : "", (long long)epoch + 1, (long long)cfg.epochs, (long long)st.step_in_epoch, (long long)steps,
                     loss_sum / double(seen), 100.0 * double(correct) / double(seen), lr, ips, wait, hms(eta_epoch).c_str(),
                     hms(eta_run).c_str(), tty ? "   " : "\n");
        std::fflush(stderr);
      }
      if (stop_requested().load() && !last) {
        st.partial = {{"loss_sum", loss_sum}, {"correct", correct}, {"seen", seen}, {"wait", wait},
                      {"seconds", secs_before + since(epoch_start)}};
        save_checkpoint(cfg.out, *model, sgd, st, cfg_json);
        std::fprintf(stderr, "\nstopped at epoch %lld step %lld; checkpoint written. Continue with: scconv train --resume %s\n",
                     (long long)epoch + 1, (long long)st.step_in_epoch, cfg.out.c_str());
        return 130;
      }
    }
    const double epoch_seconds = secs_before + since(epoch_start);
    if (tty) std::fprintf(stderr, "\n");
    EvalResult test = evaluate(*model, data.test, cfg.augment);
    nlohmann::json m{{"epoch", epoch + 1}, {"train_loss", loss_sum / double(seen)},
                     {"train_acc", double(correct) / double(seen)}, {"test_loss", test.loss}, {"test_acc", test.accuracy},
                     {"lr", lr}, {"epoch_seconds", epoch_seconds},
                     {"images_per_second", double(seen) / std::max(epoch_seconds, 1e-9)}, {"data_wait_seconds", wait}};
    double select = test.accuracy;
    if (data.val.size() > 0) {
      EvalResult val = evaluate(*model, data.val, cfg.augment);
      m["val_loss"] = val.loss;
      m["val_acc"] = val.accuracy;
      select = val.accuracy;
    }
    st.history.push_back(m);
    st.epoch = epoch + 1;
    st.step_in_epoch = 0;
    st.partial = nlohmann::json::object();
    if (select > st.best_acc) {
      st.best_acc = select;
      st.best_epoch = epoch + 1;
      save_safetensors((fs::path(cfg.out) / "best.safetensors").string(), model->state_dict(),
                       {{"config", cfg_json.dump()}, {"epoch", std::to_string(epoch + 1)}});
    }
    save_checkpoint(cfg.out, *model, sgd, st, cfg_json);
    std::string lines;
    for (auto& h : st.history) lines += h.dump() + "\n";
    write_file_atomic((fs::path(cfg.out) / "metrics.jsonl").string(), lines);
    std::fprintf(stderr, "epoch %lld: train loss %.4f acc %.2f%% | test loss %.4f acc %.2f%%%s | %.1fs, %.0f img/s\n",
                 (long long)epoch + 1, m["train_loss"].get<double>(), 100 * m["train_acc"].get<double>(), test.loss,
                 100 * test.accuracy,
                 data.val.size() ? (" | val acc " + std::to_string(100 * m["val_acc"].get<double>()).substr(0, 5) + "%").c_str() : "",
                 epoch_seconds, m["images_per_second"].get<double>());
    if (stop_requested().load() && epoch + 1 < cfg.epochs) {
      std::fprintf(stderr, "stopped after epoch %lld; continue with: scconv train --resume %s\n", (long long)epoch + 1,
                   cfg.out.c_str());
      return 130;
    }
  }
  const nlohmann::json& final_m = st.history.back();
  nlohmann::json summary{{"final_test_acc", final_m["test_acc"]}, {"final_test_loss", final_m["test_loss"]},
                         {"best_acc", st.best_acc}, {"best_epoch", st.best_epoch},
                         {"best_selected_on", data.val.size() ? "val" : "test"}, {"epochs", st.epoch},
                         {"train_seconds", [&] { double s = 0; for (auto& h : st.history) s += h["epoch_seconds"].get<double>(); return s; }()}};
  write_file_atomic((fs::path(cfg.out) / "summary.json").string(), summary.dump(2) + "\n");
  std::fprintf(stderr, "done: final test accuracy %.2f%%; best %s accuracy %.2f%% at epoch %lld (weights in %s/best.safetensors)\n",
               100 * final_m["test_acc"].get<double>(), data.val.size() ? "val" : "test", 100 * st.best_acc,
               (long long)st.best_epoch, cfg.out.c_str());
  return 0;
}

}  // namespace scconv::apps
