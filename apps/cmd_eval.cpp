// apps/cmd_eval.cpp: `scconv eval`: test loss and accuracy of a trained model, per-class
// accuracy and the confusion matrix, images/s.
//   scconv eval --checkpoint runs/quick [--data DIR] [--split test|val] [--tta none|flip] [--json]
//   scconv eval --weights resnet20.safetensors --model resnet20 --data DIR [--dataset cifar10]
// --checkpoint takes a run directory, a checkpoint directory, or a model .safetensors file
// written by scconv train (its metadata holds the config and the class names; a run that kept a
// weight average, ema.decay, is evaluated with it: checkpoint/ema.safetensors). --weights takes
// any safetensors file of the model's parameters and buffers by name (one saved from PyTorch,
// say) with the model given by --model/--model-config; its images are normalised with the
// standard convention (pixel / 255 - mean) / std and CIFAR-10's mean and std. --split val
// evaluates on the run's validation split instead (data.val_split: the same images it held
// out), for choosing hyperparameters without looking at the test set.
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "apps/model_args.h"
#include "apps/trainer.h"
#include "core/device.h"
#include "core/config.h"
#include "core/math/pixels.h"
#include "core/parallel.h"
#include "models/resnet.h"

namespace scconv::apps {

namespace {
void print_text(const std::string& file, const std::string& split, const EvalResult& r,
                const std::vector<std::string>& classes, const std::vector<double>& per_class, double ips) {
  char buf[512];
  std::snprintf(buf, sizeof buf, "%s: %lld %s images, loss %.4f, accuracy %.2f%%, %.0f images/s\n\nper class:\n",
                file.c_str(), (long long)r.count, split.c_str(), r.loss, 100 * r.accuracy, ips);
  std::cout << buf;
  const size_t K = r.confusion.size();
  for (size_t t = 0; t < K; ++t) {
    std::snprintf(buf, sizeof buf, "  %-12s %6.2f%%\n", t < classes.size() ? classes[t].c_str() : "?", 100 * per_class[t]);
    std::cout << buf;
  }
  std::cout << "\nconfusion matrix (rows: true class, columns: predicted):\n";
  for (size_t t = 0; t < K; ++t) {
    std::snprintf(buf, sizeof buf, "  %-12s", t < classes.size() ? classes[t].c_str() : "?");
    std::cout << buf;
    for (int64_t v : r.confusion[t]) {
      std::snprintf(buf, sizeof buf, " %5lld", (long long)v);
      std::cout << buf;
    }
    std::cout << "\n";
  }
}
}  // namespace

int cmd_eval(const Args& args) {
  ArgParser p("eval", "evaluate a trained model on the test set");
  declare_trained_model_options(p);
  p.option("--data", "data directory (default: the one the model was trained on)");
  p.option("--threads", "threads (default: all cores)");
  p.option("--device", "cpu (default), cuda or cuda:N");
  p.option("--precision", "fp32 or bf16 for convolutions and matmuls (default: the checkpoint's, else fp32)");
  p.option("--split", "test (default) or val: the run's validation split (data.val_split)");
  p.option("--tta", "test-time augmentation: none or flip (default: the run's eval.tta, else none)");
  p.option("--json", "print one JSON object", false);
  if (!p.parse(args)) return 0;
  p.require_one_of({"--checkpoint", "--weights"});
  const DeviceSpec device = parse_device(p.get("--device", "cpu"));
  select_device(device);  // before any file is read: a missing GPU says so first
  const TrainedModel tm = trained_model_from(p);
  const TrainConfig& cfg = tm.cfg;
  const std::string& file = tm.file;
  const std::vector<std::string>& classes = tm.classes;
  set_num_threads(p.get_int("--threads", 0, 0, kMaxThreads));
  Generator g(0);
  auto model = build_model(cfg.model, g);
  model->load_state_dict(tm.weights.tensors, true, file);
  check_finite_state(*model, file);
  model->to(device.type);
  const std::string split = p.get("--split", "test");
  SCCONV_USAGE_CHECK(split == "test" || split == "val", "--split: unknown value '" << split << "' (known: test, val)");
  SCCONV_USAGE_CHECK(split == "test" || cfg.val_split > 0,
                     "--split val: " << file << " was trained without a validation split (data.val_split is 0)");
  Dataset test = split == "test" ? load_test_set(cfg, p.get("--data"), classes) : load_datasets(cfg, p.get("--data")).val;
  const Precision precision = effective_precision(p.get("--precision", cfg.precision), device.type);
  autograd::AutocastGuard autocast(precision);
  const TestTimeAugment tta = parse_tta(p.get("--tta", tta_name(cfg.tta)), "--tta");
  EvalResult r = evaluate(*model, test, cfg.augment, tta);
  const size_t K = r.confusion.size();
  std::vector<double> per_class(K, 0);
  for (size_t t = 0; t < K; ++t) {
    int64_t total = 0;
    for (int64_t v : r.confusion[t]) total += v;
    per_class[t] = total ? double(r.confusion[t][t]) / double(total) : 0.0;
  }
  const double ips = double(r.count) / std::max(r.seconds, 1e-9);
  if (p.has("--json")) {
    nlohmann::json j{{"model_file", file}, {"split", split}, {"images", r.count}, {"loss", r.loss}, {"accuracy", r.accuracy},
                     {"images_per_second", ips}, {"precision", precision_name(precision)}, {"tta", tta_name(tta)}, {"classes", test.classes}, {"per_class_acc", per_class},
                     {"confusion", r.confusion}, {"input", math::kInputConvention},
                     {"mean", cfg.augment.mean}, {"std", cfg.augment.std}};
    if (split == "test") j["test_loss"] = r.loss, j["test_acc"] = r.accuracy;  // (the keys before --split)
    std::cout << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    return 0;
  }
  print_text(tta == TestTimeAugment::Flip ? file + " (with its mirror images: --tta flip)" : file, split, r, test.classes,
             per_class, ips);
  return 0;
}

}  // namespace scconv::apps
