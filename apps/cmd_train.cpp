// apps/cmd_train.cpp: `scconv train`: trains a CIFAR classifier from a training config.
//   scconv train --config quick                      (a preset: configs/train/NAME.json, or a file)
//   scconv train --config resnet20-scconv --set epochs=1 --set optim.lr=0.1
//   scconv train --resume runs/quick [--set epochs=40]  (continues exactly where it stopped)
// Ctrl-C / SIGTERM stop at the next step boundary and write a checkpoint.
#include <filesystem>
#include <iostream>

#include "apps/args.h"
#include "apps/trainer.h"
#include "core/config.h"
#include "core/parallel.h"

namespace scconv::apps {

int cmd_train(const Args& args) {
  ArgParser p("train", "train a classifier (see configs/train/ for presets)");
  p.option("--config", "training config: a preset name (configs/train/NAME.json) or a JSON file");
  p.option("--resume", "continue the run in this output directory from its checkpoint");
  p.option("--set", "override a config key by dotted path, e.g. --set optim.lr=0.1", true, true);
  p.option("--data", "data directory (overrides data.dir)");
  p.option("--threads", "threads (overrides threads; 0 = all cores)");
  p.option("--device", "cpu, cuda or cuda:N (overrides device)");
  p.option("--precision", "fp32 or bf16: what convolutions and matmuls multiply in (overrides precision)");
  p.option("--seed", "seed for initial weights, data order and augmentation (overrides seed)");
  p.option("--allow-foreign-files", "the output folder may hold files that are not a run's (they are left alone)", false);
  if (!p.parse(args)) return 0;
  p.require_one_of({"--config", "--resume"});
  nlohmann::json j;
  std::string source;
  if (p.has("--resume")) {
    const std::string out = p.get("--resume");
    config::check_utf8(out, "--resume");
    j = resume_config(out);
    j["out"] = out;
    source = out + "/checkpoint/state.json";
  } else {
    const std::string c = p.get("--config");
    if (std::error_code ec; std::filesystem::is_regular_file(c, ec)) {
      j = config::read_json_file(c);
      source = c;
    } else {
      j = load_train_preset(c);
      source = "configs/train/" + c + ".json";
      if (!j.contains("out")) j["out"] = "runs/" + c;
    }
  }
  for (const std::string& s : p.all("--set")) apply_train_set(j, s);
  if (p.has("--data")) {
    config::check_utf8(p.get("--data"), "--data");
    config::set_path(j, "data.dir", p.get("--data"), "--data");
  }
  if (p.has("--threads")) j["threads"] = p.get_int("--threads", 0, 0, kMaxThreads);
  if (p.has("--device")) j["device"] = p.get("--device");
  if (p.has("--precision")) j["precision"] = p.get("--precision");
  if (p.has("--seed")) j["seed"] = p.get_int("--seed", 0, INT64_MIN, INT64_MAX);
  TrainConfig cfg = parse_train_config(j, source);
  return train(cfg, p.has("--resume"), p.has("--allow-foreign-files"));
}

}  // namespace scconv::apps
