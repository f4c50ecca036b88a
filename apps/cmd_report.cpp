// apps/cmd_report.cpp: `scconv report RUN_DIR [RUN_DIR ...] --out report.html`: one
// self-contained HTML page for one or more training runs (apps/report.h): their curves overlaid,
// a table per run, the final checkpoint's per-class accuracy and confusion matrix, the gate
// statistics of explain.every and the figures of `scconv explain --out RUN/explain`.
//   scconv report runs/resnet20 runs/resnet20-scconv --out report.html --png curves/
#include <iostream>

#include "apps/args.h"
#include "apps/report.h"
#include "core/device.h"
#include "core/file_io.h"
#include "core/parallel.h"

namespace scconv::apps {

int cmd_report(const Args& args) {
  ArgParser p("report", "an HTML page (no network needed to view it) of one or more training runs");
  p.positional("RUN_DIR", "an output directory of scconv train; several are overlaid");
  p.option("--out", "the HTML file to write");
  p.option("--png", "also write the curves as PNG files into this directory (loss.png, accuracy.png, lr.png, gates_*.png)");
  p.option("--data", "data directory for evaluating the final checkpoints (default: each run's data.dir)");
  p.option("--no-eval", "skip evaluating the final checkpoints (no per-class accuracy or confusion matrix)", false);
  p.option("--threads", "threads for the evaluation (default: all cores)");
  if (!p.parse(args)) return 0;
  p.require({"--out"});
  SCCONV_USAGE_CHECK(!p.positionals().empty(), "give one or more run directories (see scconv report --help)");
  set_num_threads(p.get_int("--threads", 0, 0, kMaxThreads));
  ReportOptions o{p.get("--data"), !p.has("--no-eval")};
  std::vector<RunRecord> runs;
  for (const std::string& dir : p.positionals()) {
    runs.push_back(load_run(dir, o));
    if (!runs.back().eval_note.empty() && o.evaluate)
      std::cerr << "scconv report: note: " << dir << ": " << runs.back().eval_note << "\n";
  }
  name_runs(runs);
  write_file_atomic(p.get("--out"), render_report(runs));
  std::cout << "wrote " << p.get("--out") << " (" << runs.size() << " run(s))\n";
  if (p.has("--png"))
    for (const std::string& f : write_curve_pngs(runs, p.get("--png"))) std::cout << "wrote " << f << "\n";
  return 0;
}

}  // namespace scconv::apps
