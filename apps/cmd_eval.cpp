// apps/cmd_eval.cpp: `scconv eval`: test loss and accuracy of a trained model, per-class
// accuracy and the confusion matrix, images/s.
//   scconv eval --checkpoint runs/quick [--data DIR] [--json]
// --checkpoint takes a run directory, a checkpoint directory, or a model .safetensors file
// written by scconv train (its metadata holds the config).
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "apps/args.h"
#include "apps/trainer.h"
#include "core/parallel.h"
#include "core/safetensors.h"
#include "models/resnet.h"

namespace scconv::apps {

int cmd_eval(const Args& args) {
  namespace fs = std::filesystem;
  ArgParser p("eval", "evaluate a trained model on the test set");
  p.option("--checkpoint", "run directory, checkpoint directory or model .safetensors file");
  p.option("--data", "data directory (default: the one the model was trained on)");
  p.option("--threads", "threads (default: all cores)");
  p.option("--json", "print one JSON object", false);
  if (!p.parse(args)) return 0;
  SCCONV_CHECK(p.has("--checkpoint"), "--checkpoint is required");
  fs::path c = p.get("--checkpoint");
  std::string file;
  if (fs::is_regular_file(c)) file = c.string();
  else if (!find_checkpoint(c.string()).empty()) file = find_checkpoint(c.string()) + "/model.safetensors";
  else if (fs::is_regular_file(c / "model.safetensors")) file = (c / "model.safetensors").string();
  SCCONV_CHECK(!file.empty(), "--checkpoint: no model in '" << c.string() << "' (expected a run directory, a checkpoint directory or a .safetensors file)");
  TrainConfig cfg = parse_train_config(checkpoint_config(file), file);
  set_num_threads(static_cast<int>(p.get_int("--threads", 0)));
  Generator g(0);
  auto model = build_model(cfg.model, g);
  model->load_state_dict(load_safetensors(file).tensors, true, file);
  Datasets d = load_datasets(cfg, p.get("--data"));
  EvalResult r = evaluate(*model, d.test, cfg.augment);
  const size_t K = r.confusion.size();
  std::vector<double> per_class(K, 0);
  for (size_t t = 0; t < K; ++t) {
    int64_t total = 0;
    for (int64_t v : r.confusion[t]) total += v;
    per_class[t] = total ? double(r.confusion[t][t]) / double(total) : 0.0;
  }
  const double ips = double(r.count) / std::max(r.seconds, 1e-9);
  if (p.has("--json")) {
    nlohmann::json j{{"model_file", file}, {"images", r.count}, {"test_loss", r.loss}, {"test_acc", r.accuracy},
                     {"images_per_second", ips}, {"classes", d.test.classes}, {"per_class_acc", per_class},
                     {"confusion", r.confusion}};
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  char buf[256];
  std::snprintf(buf, sizeof buf, "%s: %lld test images, loss %.4f, accuracy %.2f%%, %.0f images/s\n\nper class:\n",
                file.c_str(), (long long)r.count, r.loss, 100 * r.accuracy, ips);
  std::cout << buf;
  for (size_t t = 0; t < K; ++t) {
    std::snprintf(buf, sizeof buf, "  %-12s %6.2f%%\n", d.test.classes[t].c_str(), 100 * per_class[t]);
    std::cout << buf;
  }
  std::cout << "\nconfusion matrix (rows: true class, columns: predicted):\n";
  for (size_t t = 0; t < K; ++t) {
    std::snprintf(buf, sizeof buf, "  %-12s", d.test.classes[t].c_str());
    std::cout << buf;
    for (int64_t v : r.confusion[t]) {
      std::snprintf(buf, sizeof buf, " %5lld", (long long)v);
      std::cout << buf;
    }
    std::cout << "\n";
  }
  return 0;
}

}  // namespace scconv::apps
