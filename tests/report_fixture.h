// tests/report_fixture.h: two short training runs on the synthetic CIFAR-10 files, made once per
// test process, for the tests of `scconv report` (test_report.cpp, test_report_browser.cpp):
//   scconv_a: resnet20-scconv, 2 epochs, gate statistics every epoch (explain.every 1), and the
//             figures of `scconv explain --out scconv_a/explain` for two units;
//   plain_b:  resnet20, 2 epochs, with a validation split (best accuracy on val).
#pragma once
#include <filesystem>
#include <iostream>
#include <sstream>

#include "apps/commands.h"
#include "apps/trainer.h"
#include "synthetic_cifar.h"

namespace scconv::testing {

struct ReportRuns {
  std::filesystem::path dir, data, a, b;
};

inline nlohmann::json report_run_config(const std::filesystem::path& data, const std::filesystem::path& out,
                                        const std::string& model) {
  return {{"model", model},
          {"data", {{"dataset", "cifar10"}, {"dir", data.string()}, {"augment", {{"flip", false}}}}},
          {"optim", {{"lr", 0.05}}},
          {"schedule", {{"kind", "cosine"}}},
          {"epochs", 2}, {"batch_size", 64}, {"seed", 1}, {"threads", 2},
          {"out", out.string()}};
}

inline const ReportRuns& report_runs(const std::string& prefix) {
  static const ReportRuns runs = [&] {
    ReportRuns r;
    r.dir = scratch_dir(prefix);
    r.data = r.dir / "data";
    r.a = r.dir / "scconv_a";
    r.b = r.dir / "plain_b";
    write_synthetic_cifar(r.data);
    nlohmann::json a = report_run_config(r.data, r.a, "resnet20-scconv");
    a["explain"] = {{"every", 1}, {"images", 40}};
    apps::train(apps::parse_train_config(a), false);
    nlohmann::json b = report_run_config(r.data, r.b, "resnet20");
    b["data"]["val_split"] = 64;
    apps::train(apps::parse_train_config(b), false);
    std::ostringstream quiet;  // (explain lists its files on stdout)
    auto* old = std::cout.rdbuf(quiet.rdbuf());
    apps::cmd_explain({"--checkpoint", r.a.string(), "--data", r.data.string(), "--image", "3", "--layer",
                       "layer1.0.conv1", "--layer", "layer3.2.conv1", "--out", (r.a / "explain").string()});
    std::cout.rdbuf(old);
    return r;
  }();
  return runs;
}

}  // namespace scconv::testing
