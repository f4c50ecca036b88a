// apps/report.cpp: reading run directories for `scconv report` (apps/report.h): the newest
// checkpoint's state (config, per-epoch metrics, best accuracy), summary.json, the model's size,
// the final checkpoint evaluated on the test set, and RUN/explain/. The page itself is
// apps/report_html.cpp.
#include "apps/report.h"

#include <algorithm>
#include <filesystem>
#include <map>

#include "apps/checkpoint.h"
#include "apps/explain.h"
#include "core/config.h"
#include "models/resnet.h"

namespace scconv::apps {

namespace fs = std::filesystem;

namespace {
// RUN/explain/<unit>/: stats.json and the PNGs, the paper's Fig. 5 panel and the bar charts
// first, then the input and the channel grids.
std::vector<ExplainedUnit> explained_units(const fs::path& dir) {
  std::vector<ExplainedUnit> out;
  std::error_code ec;
  if (!fs::is_directory(dir / "explain", ec)) return out;
  std::vector<fs::path> units;
  for (auto& e : fs::directory_iterator(dir / "explain", ec))
    if (e.is_directory()) units.push_back(e.path());
  std::sort(units.begin(), units.end());
  auto rank = [](const std::string& f) {
    for (int i = 0; const char* p : {"fig5_", "bars_w", "bars_informative", "bars_beta", "input_", "sru_"}) {
      if (f.rfind(p, 0) == 0) return i;
      ++i;
    }
    return 9;
  };
  for (const fs::path& u : units) {
    ExplainedUnit x;
    x.unit = u.filename().string();
    if (fs::is_regular_file(u / "stats.json", ec)) x.stats = config::read_json_file((u / "stats.json").string());
    for (auto& e : fs::directory_iterator(u, ec))
      if (e.is_regular_file() && e.path().extension() == ".png") x.images.push_back(e.path().string());
    std::sort(x.images.begin(), x.images.end(), [&](const std::string& a, const std::string& b) {
      const std::string fa = fs::path(a).filename().string(), fb = fs::path(b).filename().string();
      return rank(fa) != rank(fb) ? rank(fa) < rank(fb) : fa < fb;
    });
    if (!x.images.empty() || !x.stats.is_null()) out.push_back(std::move(x));
  }
  return out;
}

// The model's parameters and multiply-accumulates per image; with `eval`, its accuracy on the
// test set (eval_note says why not when the data is missing).
void measure_model(RunRecord& r, const TrainConfig& cfg, const std::string& model_file, const ReportOptions& o) {
  ModelFile mf = read_model_file(model_file);
  r.classes = mf.classes;
  Generator g(0);
  auto model = build_model(cfg.model, g);
  model->load_state_dict(mf.file.tensors, true, model_file);
  check_finite_state(*model, model_file);
  r.params = model->num_parameters();
  for (auto& [name, macs] : macs_by_module(*model, Tensor::zeros({1, 3, cfg.image_h, cfg.image_w}, DType::F32)))
    r.macs_per_image += macs;
  if (!o.evaluate) {
    r.eval_note = "not evaluated (--no-eval)";
    return;
  }
  try {
    const Dataset test = load_test_set(cfg, o.data_dir, r.classes);
    r.final_eval = evaluate(*model, test, cfg.augment, cfg.tta);  // (as the run evaluated)
    r.evaluated = true;
    if (r.classes.empty()) r.classes = test.classes;
  } catch (const Error& e) {
    r.eval_note = std::string("no per-class accuracy or confusion matrix: the test set could not be read (") + e.what() +
                  "); give its folder with --data DIR";
  }
}
}  // namespace

RunRecord load_run(const std::string& dir, const ReportOptions& o) {
  std::error_code ec;
  SCCONV_CHECK(fs::is_directory(dir, ec), "report: '" << dir << "' is not a directory (expected a run directory of scconv train)");
  const std::string ckpt = find_checkpoint(dir);
  SCCONV_CHECK(!ckpt.empty(), "report: '" << dir << "' has no checkpoint (scconv train writes " << dir
                                          << "/checkpoint/ after its first epoch): not a run directory, or a run that never finished an epoch");
  RunRecord r;
  r.dir = dir;
  const std::string state_file = ckpt + "/state.json";
  const nlohmann::json state = config::read_json_file(state_file);
  const TrainState st = TrainState::from_json(state, state_file);
  SCCONV_CHECK(state.contains("config") && state["config"].is_object(), state_file << ": missing key 'config' (the training config)");
  const TrainConfig cfg = parse_train_config(state["config"], state_file);
  r.config = cfg.to_json();
  for (auto& m : st.history) r.history.push_back(m);
  SCCONV_CHECK(!r.history.empty(), state_file << ": no completed epoch to report");
  r.best_acc = st.best_acc;
  r.best_epoch = st.best_epoch;
  r.best_on = cfg.val_split > 0 ? "val" : "test";
  if (fs::is_regular_file(fs::path(dir) / "summary.json", ec))
    r.summary = config::read_json_file((fs::path(dir) / "summary.json").string());
  measure_model(r, cfg, evaluated_model_file(ckpt), o);
  r.explained = explained_units(dir);
  return r;
}

void name_runs(std::vector<RunRecord>& runs) {
  std::map<std::string, int> count;
  for (auto& r : runs) {
    fs::path p = fs::absolute(r.dir).lexically_normal();
    if (p.filename().empty()) p = p.parent_path();  // ("runs/a/")
    r.name = p.filename().string();
    ++count[r.name];
  }
  for (auto& r : runs)
    if (r.name.empty() || count[r.name] > 1) r.name = fs::path(r.dir).lexically_normal().string();
}

}  // namespace scconv::apps
