// apps/evaluate.cpp: the data side of train and eval: loading the configured data set (train,
// validation and test splits, or the test split alone) and the evaluation loop (loss, accuracy,
// confusion matrix).
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "apps/trainer.h"
#include "core/backend.h"

namespace scconv::apps {

namespace fs = std::filesystem;

namespace {
Dataset load_split(const TrainConfig& cfg, const std::string& dir, bool train, const std::vector<std::string>* classes,
                   std::vector<std::string>& skipped) {
  if (cfg.dataset != "folder") return load_cifar(dir, cfg.dataset == "cifar100", train);
  ImageFolderOptions o{cfg.image_h, cfg.image_w, cfg.resize, cfg.skip_bad};
  return load_image_folder((fs::path(dir) / (train ? "train" : "test")).string(), o, &skipped, classes);
}
void report_skipped(const std::vector<std::string>& skipped) {
  if (skipped.empty()) return;
  std::fprintf(stderr, "scconv: skipped %zu unusable image(s):\n", skipped.size());
  for (size_t i = 0; i < skipped.size() && i < 10; ++i) std::fprintf(stderr, "  %s\n", skipped[i].c_str());
}
}  // namespace

Datasets load_datasets(const TrainConfig& cfg, const std::string& dir_override) {
  const std::string dir = dir_override.empty() ? cfg.data_dir : dir_override;
  Datasets d;
  std::vector<std::string> skipped;
  d.train = load_split(cfg, dir, true, nullptr, skipped);
  d.test = load_split(cfg, dir, false, &d.train.classes, skipped);  // labels by the training set's class names
  report_skipped(skipped);
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

Dataset load_test_set(const TrainConfig& cfg, const std::string& dir_override, const std::vector<std::string>& classes) {
  std::vector<std::string> skipped;
  Dataset d = load_split(cfg, dir_override.empty() ? cfg.data_dir : dir_override, false,
                         classes.empty() ? nullptr : &classes, skipped);
  report_skipped(skipped);
  return d;
}

std::vector<int64_t> argmax_rows(const Tensor& logits) {
  return backend_for(logits).argmax_rows(logits).to_vector<int64_t>();
}

EvalResult evaluate(Module& model, const Dataset& data, const AugmentOptions& norm, TestTimeAugment tta, int64_t batch) {
  EvalResult r;
  const bool was_training = model.training();
  model.eval();
  autograd::NoGradGuard ng;
  const Device device = model.device();
  Loader loader(data, batch, false, norm, 0);
  loader.pin_memory(device != Device::CPU);
  loader.start_epoch(0);
  auto t0 = std::chrono::steady_clock::now();
  Tensor x, y;
  double loss_sum = 0;
  int64_t correct = 0;
  while (loader.next(x, y)) {
    Tensor logits = model(x.to(device));
    if (tta == TestTimeAugment::Flip) logits = mul(add(logits, model(mirrored(x).to(device))), 0.5);
    SCCONV_CHECK(all_finite(logits), "evaluation: the model's outputs for images " << r.count << ".."
                                         << r.count + x.size(0) - 1 << " are not finite (NaN or Inf)");
    loss_sum += cross_entropy(logits, y.to(device)).to(Device::CPU).item() * double(x.size(0));
    // the confusion matrix covers the data's classes and every class the model can predict
    const size_t K = std::max<size_t>(data.classes.size(), static_cast<size_t>(logits.size(1)));
    if (r.confusion.size() < K) {
      r.confusion.resize(K);
      for (auto& row : r.confusion) row.resize(K, 0);
    }
    std::vector<int64_t> pred = argmax_rows(logits);
    for (int64_t n = 0; n < x.size(0); ++n) {
      const int64_t t = y.data<int64_t>()[n];
      correct += pred[n] == t;
      ++r.confusion[t][pred[n]];
    }
    r.count += x.size(0);
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.loss = loss_sum / double(r.count);
  r.accuracy = double(correct) / double(r.count);
  model.train(was_training);
  return r;
}

}  // namespace scconv::apps
