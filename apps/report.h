// apps/report.h: what `scconv report` (apps/cmd_report.cpp) reads from run directories and the
// page it makes of them: one self-contained HTML file (inline SVG charts, PNGs as data: URIs,
// no scripts, nothing fetched) with the curves of every run overlaid, a table per run, the
// final checkpoint's per-class accuracy and confusion matrix, the gate statistics recorded
// during training (explain.every) and the figures of `scconv explain --out RUN/explain`.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "apps/trainer.h"

namespace scconv::apps {

// The figures and stats.json of one SCConv unit, from RUN/explain/<unit>/.
struct ExplainedUnit {
  std::string unit;
  nlohmann::json stats;             // stats.json (null if absent)
  std::vector<std::string> images;  // PNG files, in the order shown
};

struct RunRecord {
  std::string dir, name;                  // name: the folder's name (the path when two share it)
  nlohmann::json config;                  // the training config, defaults filled in
  std::vector<nlohmann::json> history;    // per-epoch metrics (metrics.jsonl's lines)
  nlohmann::json summary;                 // summary.json; null while the run is unfinished
  double best_acc = 0;                    // the best selection accuracy and its epoch
  int64_t best_epoch = 0;
  std::string best_on;                    // "val" (with data.val_split) or "test"
  std::vector<std::string> classes;
  int64_t params = 0, macs_per_image = 0;
  bool evaluated = false;                 // the final checkpoint's test evaluation ran
  EvalResult final_eval;
  std::string eval_note;                  // why it did not run
  std::vector<ExplainedUnit> explained;
};

struct ReportOptions {
  std::string data_dir;  // overrides each run's data.dir for the evaluation
  bool evaluate = true;  // evaluate each run's final checkpoint on its test set
};

// Reads a run directory of `scconv train` (its newest checkpoint, metrics, summary, explain
// figures) and evaluates its final checkpoint. Errors name the directory and the file at fault.
RunRecord load_run(const std::string& dir, const ReportOptions& o);
// Names the runs by their folder names, using the paths where two folder names are the same.
void name_runs(std::vector<RunRecord>& runs);

// Training time and images over a run's epochs (images/s = images / seconds).
struct RunTotals {
  double seconds = 0, images = 0;
};
RunTotals totals(const RunRecord& r);

// The HTML page (apps/report_html.cpp); `preface` (HTML) goes after the heading (scconv ablate
// puts its results table there).
std::string render_report(const std::vector<RunRecord>& runs, const std::string& title = "scconv report",
                          const std::string& preface = "");
// The curves as PNG files in dir (loss.png, accuracy.png, lr.png, and per run with gate
// statistics gates_informative_fraction_<run>.png, gates_beta1_<run>.png); returns the files.
std::vector<std::string> write_curve_pngs(const std::vector<RunRecord>& runs, const std::string& dir);

}  // namespace scconv::apps
