// apps/trainer.cpp: the training loop. One epoch: batches from the background loader ->
// forward -> cross-entropy -> backward -> SGD step at the scheduled learning rate -> the
// non-finite guard; then the test (and validation) evaluation, metrics.jsonl, a checkpoint, and
// the best weights. The run owns its output folder (apps/run_dir.h) for its whole life.
#include "apps/trainer.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>

#include "apps/explain.h"
#include "apps/format.h"
#include "apps/run_dir.h"
#include "apps/step_guard.h"
#include "core/backend.h"
#include "core/device.h"
#include "core/file_io.h"
#include "core/parallel.h"
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

NonfiniteInjection& inject_nonfinite() {
  static NonfiniteInjection i;
  return i;
}

namespace {
void on_signal(int) { stop_requested().store(true); }

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }


// ---- one run -----------------------------------------------------------------------------------

// The device a run computes on, made current (select_device's Error when it is not usable).
DeviceSpec selected_device(const std::string& name) {
  const DeviceSpec d = parse_device(name);
  select_device(d);
  return d;
}

class Run {
 public:
  Run(const TrainConfig& cfg, bool resume, bool allow_foreign_files);
  int epochs();  // the loop; returns the exit code

 private:
  enum class Step { Done, Skipped };
  Step step(const Tensor& x, const Tensor& y, EpochSums& sums, int64_t epoch, double lr);
  Step skip_checked(const Tensor& loss, const Tensor& x, const std::map<std::string, Tensor>& buffers_before,
                    int64_t epoch, double lr);
  std::string where(int64_t epoch) const;
  void print_progress(int64_t epoch, EpochSums& sums, double lr, Clock::time_point& last_print);
  void flush_pending(EpochSums& sums);
  void end_epoch(int64_t epoch, const EpochSums& sums, double lr, double seconds);
  nlohmann::json evaluate_epoch(int64_t epoch);
  void finish();
  void poison(const std::string& name);
  void prepare_gate_statistics();

  const TrainConfig& cfg_;
  // Selected first, before the output folder is touched: a missing GPU says so before anything
  // else (an Error saying whether the build or the machine lacks it).
  DeviceSpec device_;
  RunDir dir_;
  nlohmann::json cfg_json_;
  Datasets data_;
  std::shared_ptr<Module> model_;
  std::unique_ptr<SGD> sgd_;
  std::unique_ptr<WeightAverage> ema_;  // ema.decay > 0: what every evaluation measures
  TrainState st_;
  std::unique_ptr<Loader> loader_;
  std::unique_ptr<StepGuard> guard_;  // the "stop" mode's guard (null in "skip" mode)
  int64_t steps_ = 0, skipped_in_a_row_ = 0;
  // Loss and correct-prediction sums of the steps since the last progress line, kept on the
  // device (float64 0-d) so that a step never waits for the device; flush_pending reads them.
  Tensor pending_loss_, pending_correct_;
  Clock::time_point run_start_ = Clock::now();
  double run_images_ = 0;
  Precision precision_ = Precision::Float32;  // of convolutions and matmuls (cfg.precision, where it runs)
  // explain.every: the SCConv units and the fixed test images (N, 3, H, W) of the gate statistics
  std::vector<SCConvUnit> gate_units_;
  Tensor gate_x_;
};

Run::Run(const TrainConfig& cfg, bool resume, bool allow_foreign_files)
    : cfg_(cfg), device_(selected_device(cfg.device)), dir_(cfg.out, resume, allow_foreign_files),
      cfg_json_(cfg.to_json()) {
  set_num_threads(cfg.threads);
  set_conv_algorithm(parse_conv_algorithm(cfg.conv_algorithm));
  precision_ = effective_precision(cfg.precision, device_.type);
  set_cudnn_options({cfg.cudnn_search == "measure", cfg.deterministic});
  data_ = load_datasets(cfg);
  SCCONV_CHECK(static_cast<int64_t>(data_.train.classes.size()) <= cfg.model.num_classes,
               "model.num_classes " << cfg.model.num_classes << " is smaller than the " << data_.train.classes.size()
                                    << " classes of the data set");
  Generator init(static_cast<uint64_t>(cfg.seed));
  model_ = build_model(cfg.model, init);  // initialised on the CPU (same weights on every device)
  model_->to(device_.type);
  sgd_ = std::make_unique<SGD>(model_->named_parameters(), cfg.optim);
  if (cfg.ema_decay > 0) ema_ = std::make_unique<WeightAverage>(*model_, cfg.ema_decay);
  pending_loss_ = Tensor::zeros({}, DType::F64, device_.type);
  pending_correct_ = Tensor::zeros({}, DType::F64, device_.type);
  if (cfg.nonfinite == NonfiniteAction::Stop)
    guard_ = std::make_unique<StepGuard>(*model_, device_.type,
                                         "Stopped; the last good checkpoint in '" + cfg.out + "/checkpoint' is kept");
  loader_ = std::make_unique<Loader>(data_.train, cfg.batch_size, true, cfg.augment, static_cast<uint64_t>(cfg.seed));
  loader_->pin_memory(device_.type != Device::CPU);
  if (device_.type != Device::CPU) loader_->set_background(true);  // the host's cores are free while the GPU computes
  steps_ = loader_->batches_per_epoch();
  if (cfg.explain_every > 0) prepare_gate_statistics();
  if (resume) {
    std::string from = load_newest_checkpoint(cfg.out, *model_, sgd_.get(), &st_, ema_.get());
    SCCONV_CHECK(st_.step_in_epoch < steps_, from << "/state.json: step " << st_.step_in_epoch << " of an epoch of "
                                                  << steps_ << " steps (was batch_size or the data set changed?)");
    std::fprintf(stderr, "resumed from %s: %lld epoch(s) done, step %lld of the next\n", from.c_str(),
                 (long long)st_.epoch, (long long)st_.step_in_epoch);
  }
}

// The first explain.images test images, normalised as evaluation sees them.
void Run::prepare_gate_statistics() {
  gate_units_ = scconv_units(*model_);
  SCCONV_CHECK(!gate_units_.empty(), "explain.every: the model has no SCConv units (model.scconv.placement is 'none'?), "
                                     "so there are no gate statistics to record; set explain.every to 0");
  const int64_t N = cfg_.explain_images, C = data_.test.images.size(1), H = data_.test.images.size(2),
                W = data_.test.images.size(3);
  SCCONV_CHECK(N <= data_.test.size(), "explain.images: " << N << ", but the test set has " << data_.test.size() << " images");
  gate_x_ = Tensor::zeros({N, C, H, W}, DType::F32);
  const uint8_t* src = data_.test.images.data<uint8_t>();
  for (int64_t n = 0; n < N; ++n)
    prepare_image(src + n * C * H * W, C, H, W, gate_x_.data<float>() + n * C * H * W, cfg_.augment, false, 0, 0, n);
}

void Run::poison(const std::string& name) {
  autograd::NoGradGuard ng;
  for (auto& [n, p] : model_->named_parameters())
    if (n == name) p.grad().fill_(std::nan(""));
  for (auto& [n, b] : model_->named_buffers())
    if (n == name) b.fill_(std::nan(""));
}

std::string Run::where(int64_t epoch) const {
  return "epoch " + std::to_string(epoch + 1) + ", step " + std::to_string(st_.step_in_epoch + 1) + " (global step " +
         std::to_string(st_.global_step + 1) + ")";
}

// Forward, backward, update, and the guard: before the update, one batched check of the loss
// and every gradient; after it, one of every parameter and buffer (NaN or Inf that the loss need
// not show: a ReLU maps NaN to NaN, but batch norm's running statistics never reach the loss in
// training mode). With nonfinite.action "stop" (the default) the checks stay on the device
// (apps/step_guard.h: the step never waits, and the verdicts are read with the progress line).
// With "skip", a non-finite loss or gradient skips the update instead (as loss scalers do),
// restoring the buffers the forward pass changed: decided here, so the step waits for it.
Run::Step Run::step(const Tensor& x_host, const Tensor& y_host, EpochSums& sums, int64_t epoch, double lr) {
  DeviceSideChecks device_side;  // (layers check on the device; the guard catches what they flag)
  const bool skip_mode = cfg_.nonfinite == NonfiniteAction::Skip;
  const Tensor x = x_host.to(device_.type), y = y_host.to(device_.type);  // (asynchronous from pinned memory)
  std::map<std::string, Tensor> buffers_before;
  if (skip_mode)
    for (auto& [n, b] : model_->named_buffers()) buffers_before[n] = b.clone();
  Tensor logits = (*model_)(x);
  Tensor loss = cross_entropy(logits, y, cfg_.label_smoothing);
  sgd_->zero_grad();
  autograd::backward(loss);
  if (inject_nonfinite().step == st_.global_step + 1) poison(inject_nonfinite().tensor);
  if (!skip_mode) {
    sgd_->step(lr, guard_->before_update(loss, named_grads(*model_)));
    guard_->after_update(where(epoch), x_host, lr);
  } else if (skip_checked(loss, x, buffers_before, epoch, lr) == Step::Skipped) {
    return Step::Skipped;
  }
  // (in "stop" mode a bad step stops the run before its checkpoint, so the average never keeps it)
  if (ema_) ema_->update();
  Backend& be = backend_for(logits);
  Tensor hits = be.compare(CompareOp::Eq, be.argmax_rows(logits), y).to(DType::F64);  // (N)
  pending_correct_.add_(be.sum(hits, {0}, false));
  pending_loss_.add_(loss.detach().to(DType::F64), double(x.size(0)));
  sums.seen += x.size(0);
  return Step::Done;
}

// The skip mode's checks, read at once: a bad loss or gradient skips the update (buffers
// restored), up to nonfinite.max_consecutive_skips steps in a row.
Run::Step Run::skip_checked(const Tensor& loss, const Tensor& x, const std::map<std::string, Tensor>& buffers_before,
                            int64_t epoch, double lr) {
  std::vector<std::pair<std::string, Tensor>> checked{{"(loss)", loss.detach()}};  // (no parameter name has '(')
  for (auto& named : named_grads(*model_)) checked.push_back(named);
  const std::string g = first_nonfinite(checked);
  std::string bad;
  if (g == "(loss)") bad = "the loss is " + std::to_string(loss.to(Device::CPU).item());
  else if (!g.empty()) bad = "the gradient of '" + g + "' is not finite";
  if (!bad.empty()) {
    for (auto& [n, b] : model_->named_buffers()) b.copy_(buffers_before.at(n));
    sgd_->zero_grad();
    ++skipped_in_a_row_;
    std::fprintf(stderr, "\n%s: %s; step skipped (%lld in a row)\n", where(epoch).c_str(), bad.c_str(),
                 (long long)skipped_in_a_row_);
    if (skipped_in_a_row_ > cfg_.max_consecutive_skips && g == "(loss)") bad += ": " + diagnose(*model_, x);
    SCCONV_CHECK(skipped_in_a_row_ <= cfg_.max_consecutive_skips,
                 where(epoch) << ": " << skipped_in_a_row_ << " steps in a row skipped (nonfinite.max_consecutive_skips "
                              << cfg_.max_consecutive_skips << "; the last: " << bad << "). Stopped; the last good checkpoint in '"
                              << cfg_.out << "/checkpoint' is kept");
    return Step::Skipped;
  }
  sgd_->step(lr);
  const std::string after = first_nonfinite(model_->named_tensors());
  SCCONV_CHECK(after.empty(), where(epoch) << ": '" << after << "' holds NaN or Inf after the update (lr " << lr
                                           << "; loss " << loss.to(Device::CPU).item() << " and gradients were finite). "
                                           << "Stopped; the last good checkpoint in '" << cfg_.out << "/checkpoint' is kept");
  skipped_in_a_row_ = 0;
  return Step::Done;
}

void Run::flush_pending(EpochSums& sums) {
  if (guard_) guard_->resolve();  // (first: a bad step throws before its sums are read)
  sums.loss_sum += pending_loss_.to(Device::CPU).item();
  sums.correct += static_cast<int64_t>(std::llround(pending_correct_.to(Device::CPU).item()));
  pending_loss_.zero_();
  pending_correct_.zero_();
}

void Run::print_progress(int64_t epoch, EpochSums& sums, double lr, Clock::time_point& last_print) {
  static const bool tty = isatty(2);
  const bool last = st_.step_in_epoch == steps_;
  if (tty ? !(since(last_print) > 0.5 || last) : !(st_.step_in_epoch % std::max<int64_t>(1, steps_ / 10) == 0 || last))
    return;
  flush_pending(sums);
  last_print = Clock::now();
  const double ips = run_images_ / std::max(since(run_start_), 1e-9);
  const double eta_epoch = double(steps_ - st_.step_in_epoch) * double(cfg_.batch_size) / ips;
  const double eta_run = eta_epoch + double(cfg_.epochs - epoch - 1) * double(data_.train.size()) / ips;
  const double seen = double(std::max<int64_t>(sums.seen, 1));
  std::fprintf(stderr, "%sepoch %lld/%lld step %lld/%lld loss %.4f acc %.2f%% lr %.4g %.0f img/s data wait %.1fs ETA %s / %s%s",
               tty ? "\r" : "", (long long)epoch + 1, (long long)cfg_.epochs, (long long)st_.step_in_epoch, (long long)steps_,
               sums.loss_sum / seen, 100.0 * double(sums.correct) / seen, lr, ips, sums.wait, hms(eta_epoch).c_str(),
               hms(eta_run).c_str(), tty ? "   " : "\n");
  std::fflush(stderr);
}

// The epoch's evaluations (test, validation, gate statistics), of the weight average where the
// run keeps one; a new best selection accuracy saves those weights as best.safetensors.
nlohmann::json Run::evaluate_epoch(int64_t epoch) {
  if (cfg_.sru_threshold_start) set_sru_threshold(*model_, cfg_.model.scconv.sru.threshold);  // evaluations use t
  const auto eval_start = Clock::now();
  WeightAverage::Swapped averaged(ema_.get());
  EvalResult test = evaluate(*model_, data_.test, cfg_.augment, cfg_.tta);
  nlohmann::json m{{"test_loss", test.loss}, {"test_acc", test.accuracy}};
  double select = test.accuracy;
  if (data_.val.size() > 0) {
    EvalResult val = evaluate(*model_, data_.val, cfg_.augment, cfg_.tta);
    m["val_loss"] = val.loss;
    m["val_acc"] = val.accuracy;
    select = val.accuracy;
  }
  if (cfg_.explain_every > 0 && ((epoch + 1) % cfg_.explain_every == 0 || epoch + 1 == cfg_.epochs))
    m["gates"] = gate_statistics(*model_, gate_units_, gate_x_);
  if (select > st_.best_acc) {
    st_.best_acc = select;
    st_.best_epoch = epoch + 1;
    save_safetensors((fs::path(cfg_.out) / "best.safetensors").string(), model_->state_dict(),
                     model_metadata(cfg_json_, epoch + 1, data_.train.classes));
  }
  m["eval_seconds"] = since(eval_start);
  return m;
}

void Run::end_epoch(int64_t epoch, const EpochSums& sums, double lr, double seconds) {
  SCCONV_CHECK(sums.seen > 0, "epoch " << epoch + 1 << ": every step was skipped (non-finite losses or gradients)");
  nlohmann::json m{{"epoch", epoch + 1}, {"train_loss", sums.loss_sum / double(sums.seen)},
                   {"train_acc", double(sums.correct) / double(sums.seen)}, {"lr", lr}, {"epoch_seconds", seconds},
                   {"images_per_second", double(sums.seen) / std::max(seconds, 1e-9)}, {"data_wait_seconds", sums.wait},
                   {"skipped_steps", sums.skipped}};
  if (cfg_.sru_threshold_start) m["sru_threshold"] = cfg_.sru_threshold(epoch);  // of the training steps
  m.update(evaluate_epoch(epoch));
  st_.history.push_back(m);
  st_.epoch = epoch + 1;
  st_.step_in_epoch = 0;
  st_.partial = EpochSums{};
  save_checkpoint(cfg_.out, *model_, *sgd_, st_, cfg_json_, data_.train.classes, ema_.get());
  std::string lines;
  for (auto& h : st_.history) lines += h.dump() + "\n";
  write_file_atomic((fs::path(cfg_.out) / "metrics.jsonl").string(), lines);
  std::string val = data_.val.size() ? " | val acc " + std::to_string(100 * m["val_acc"].get<double>()).substr(0, 5) + "%" : "";
  std::string skips = sums.skipped ? " | " + std::to_string(sums.skipped) + " steps skipped" : "";
  std::fprintf(stderr, "epoch %lld: train loss %.4f acc %.2f%% | test loss %.4f acc %.2f%%%s%s | %.1fs, %.0f img/s\n",
               (long long)epoch + 1, m["train_loss"].get<double>(), 100 * m["train_acc"].get<double>(),
               m["test_loss"].get<double>(), 100 * m["test_acc"].get<double>(), val.c_str(), skips.c_str(), seconds,
               m["images_per_second"].get<double>());
}

void Run::finish() {
  SCCONV_CHECK(!st_.history.empty(), "the run has no completed epoch");
  const nlohmann::json& final_m = st_.history.back();
  double seconds = 0, wall = 0;
  int64_t skipped = 0;
  for (auto& h : st_.history) {
    seconds += h["epoch_seconds"].get<double>();
    wall += h["epoch_seconds"].get<double>() + h.value("eval_seconds", 0.0);
    skipped += h.value("skipped_steps", int64_t(0));
  }
  nlohmann::json summary{{"final_test_acc", final_m["test_acc"]}, {"final_test_loss", final_m["test_loss"]},
                         {"best_acc", st_.best_acc}, {"best_epoch", st_.best_epoch},
                         {"best_selected_on", data_.val.size() ? "val" : "test"}, {"epochs", st_.epoch},
                         {"train_seconds", seconds}, {"wall_seconds", wall}, {"skipped_steps", skipped}};
  write_file_atomic((fs::path(cfg_.out) / "summary.json").string(), summary.dump(2) + "\n");
  std::fprintf(stderr, "done: final test accuracy %.2f%%; best %s accuracy %.2f%% at epoch %lld (weights in %s/best.safetensors); "
               "%s of training and evaluation\n",
               100 * final_m["test_acc"].get<double>(), data_.val.size() ? "val" : "test", 100 * st_.best_acc,
               (long long)st_.best_epoch, cfg_.out.c_str(), hms(wall).c_str());
}

int Run::epochs() {
  std::fprintf(stderr, "training %s on %s: %lld train / %lld val / %lld test images, %lld epochs of %lld steps, %d threads, %s -> %s\n",
               (cfg_.model.arch + (cfg_.model.use_scconv ? " + SCConv" : "")).c_str(), cfg_.dataset.c_str(), (long long)data_.train.size(), (long long)data_.val.size(),
               (long long)data_.test.size(), (long long)cfg_.epochs, (long long)steps_, get_num_threads(),
               precision_name(precision_), cfg_.out.c_str());
  autograd::AutocastGuard autocast(precision_);  // training steps and evaluations alike
  for (int64_t epoch = st_.epoch; epoch < cfg_.epochs; ++epoch) {
    model_->train();
    if (cfg_.sru_threshold_start) set_sru_threshold(*model_, cfg_.sru_threshold(epoch));  // (warm-up)
    loader_->start_epoch(epoch, st_.step_in_epoch);
    EpochSums sums = st_.partial;  // (restored when resuming mid-epoch)
    auto epoch_start = Clock::now(), last_print = Clock::now() - std::chrono::seconds(10);
    double lr = 0, w = 0;
    Tensor x, y;
    while (loader_->next(x, y, &w)) {
      sums.wait += w;
      lr = learning_rate(cfg_.schedule, cfg_.optim.lr, epoch, st_.global_step, steps_);
      if (step(x, y, sums, epoch, lr) == Step::Skipped) ++sums.skipped;
      ++st_.step_in_epoch;
      ++st_.global_step;
      run_images_ += double(x.size(0));
      if (st_.global_step == stop_at_step().load()) stop_requested().store(true);
      print_progress(epoch, sums, lr, last_print);
      if (stop_requested().load() && st_.step_in_epoch < steps_) {
        flush_pending(sums);
        st_.partial = sums;
        st_.partial.seconds += since(epoch_start);
        save_checkpoint(cfg_.out, *model_, *sgd_, st_, cfg_json_, data_.train.classes, ema_.get());
        std::fprintf(stderr, "\nstopped at epoch %lld step %lld; checkpoint written. Continue with: scconv train --resume %s\n",
                     (long long)epoch + 1, (long long)st_.step_in_epoch, cfg_.out.c_str());
        return 130;
      }
    }
    if (isatty(2)) std::fprintf(stderr, "\n");
    flush_pending(sums);
    end_epoch(epoch, sums, lr, sums.seconds + since(epoch_start));
    if (stop_requested().load() && epoch + 1 < cfg_.epochs) {
      std::fprintf(stderr, "stopped after epoch %lld; continue with: scconv train --resume %s\n", (long long)epoch + 1,
                   cfg_.out.c_str());
      return 130;
    }
  }
  finish();
  return 0;
}
}  // namespace

int train(const TrainConfig& cfg, bool resume, bool allow_foreign_files) {
  stop_requested().store(false);
  auto old_int = std::signal(SIGINT, on_signal);
  auto old_term = std::signal(SIGTERM, on_signal);
  struct Restore {
    decltype(old_int) a, b;
    ~Restore() { std::signal(SIGINT, a); std::signal(SIGTERM, b); }
  } restore{old_int, old_term};
  Run run(cfg, resume, allow_foreign_files);
  return run.epochs();
}

}  // namespace scconv::apps
