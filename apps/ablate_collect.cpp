// apps/ablate_collect.cpp: `scconv ablate PLAN --out DIR --collect`: one row per cell of the
// plan with mean ± std over its finished seeds (final test accuracy, best validation accuracy
// where the runs hold out a split), params, MACs, images/s, wall time, the number of finished
// seeds and the paper's value with the difference. Runs that have not finished are listed under
// the table by state, never averaged in silently: a cell short of seeds says so in its row.
#include <cmath>
#include <filesystem>
#include <sstream>

#include "apps/ablate.h"
#include "apps/format.h"
#include "apps/report.h"
#include "apps/svg.h"
#include "core/error.h"
#include "core/file_io.h"

namespace scconv::apps {

namespace fs = std::filesystem;

namespace {

struct Stat {
  std::vector<double> v;
  double mean() const {
    double s = 0;
    for (double x : v) s += x;
    return v.empty() ? NAN : s / double(v.size());
  }
  double sd() const {  // the sample standard deviation (n - 1); NaN below 2 values
    if (v.size() < 2) return NAN;
    double m = mean(), s = 0;
    for (double x : v) s += (x - m) * (x - m);
    return std::sqrt(s / double(v.size() - 1));
  }
};

struct CellRow {
  const AblationCell* cell = nullptr;
  Stat test_acc, val_acc, images_per_s, wall_s;  // accuracies in percent
  int64_t params = -1, macs = -1;
  size_t finished = 0;
};

std::string mean_std(const Stat& s) {
  if (s.v.empty()) return "-";
  return std::isfinite(s.sd()) ? fmt("%.2f", s.mean()) + " ± " + fmt("%.2f", s.sd()) : fmt("%.2f", s.mean());
}
std::string num_or_dash(double v, const char* f) { return std::isfinite(v) ? fmt(f, v) : ""; }

std::vector<std::string> header(const AblationPlan& plan) {
  std::vector<std::string> h(plan.axes.begin(), plan.axes.end());
  for (const char* c : {"test acc %", "best val acc %", "params", "MACs", "images/s", "wall time", "seeds", "paper %", "diff"})
    h.push_back(c);
  return h;
}

std::vector<std::string> cells_of(const CellRow& r, size_t seeds) {
  std::vector<std::string> c;
  for (auto& [axis, label] : r.cell->labels) c.push_back(label);
  c.push_back(mean_std(r.test_acc));
  c.push_back(mean_std(r.val_acc));
  c.push_back(r.params >= 0 ? human(double(r.params)) : "-");
  c.push_back(r.macs >= 0 ? human(double(r.macs)) : "-");
  c.push_back(r.images_per_s.v.empty() ? "-" : fmt("%.0f", r.images_per_s.mean()));
  c.push_back(r.wall_s.v.empty() ? "-" : hms(r.wall_s.mean()));
  c.push_back(std::to_string(r.finished) + "/" + std::to_string(seeds) + (r.finished < seeds ? " (incomplete)" : ""));
  c.push_back(r.cell->paper ? fmt("%.2f", *r.cell->paper) : "-");
  c.push_back(r.cell->paper && !r.test_acc.v.empty() ? fmt("%+.2f", r.test_acc.mean() - *r.cell->paper) : "-");
  return c;
}

// The finished runs of a cell; a finished run whose folder does not read goes to `unreadable`.
CellRow gather(const AblationPlan& plan, const AblationCell& cell, std::vector<RunRecord>& done,
               std::vector<std::pair<const AblationRun*, std::string>>& unreadable) {
  CellRow row;
  row.cell = &cell;
  for (size_t i : cell.runs) {
    const AblationRun& r = plan.runs[i];
    const std::string dir = r.config["out"].get<std::string>();
    if (!fs::exists(fs::path(dir) / "summary.json")) continue;
    RunRecord rec;
    try {
      rec = load_run(dir, ReportOptions{"", false});
    } catch (const Error& e) {
      unreadable.emplace_back(&r, e.what());
      continue;
    }
    rec.name = r.id;
    row.finished++;
    row.test_acc.v.push_back(100 * rec.summary.value("final_test_acc", NAN));
    if (rec.summary.value("best_selected_on", std::string()) == "val") row.val_acc.v.push_back(100 * rec.best_acc);
    const RunTotals t = totals(rec);
    if (t.seconds > 0) row.images_per_s.v.push_back(t.images / t.seconds);
    row.wall_s.v.push_back(rec.summary.value("train_seconds", t.seconds));
    row.params = rec.params;
    row.macs = rec.macs_per_image;
    done.push_back(std::move(rec));
  }
  return row;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

}  // namespace

std::string collect_results(const AblationPlan& plan, const std::string& out) {
  std::vector<RunRecord> done;
  std::vector<CellRow> rows;
  std::vector<std::pair<const AblationRun*, std::string>> unreadable;
  for (const AblationCell& c : plan.cells) rows.push_back(gather(plan, c, done, unreadable));
  const size_t seeds = plan.cells.empty() ? 0 : plan.cells[0].runs.size();
  std::vector<std::pair<const AblationRun*, RunStatus>> missing;
  for (const AblationRun& r : plan.runs)
    if (RunStatus s = run_status(out, r); s.state != RunState::Done) missing.emplace_back(&r, s);
  for (auto& [r, why] : unreadable) missing.emplace_back(r, RunStatus{RunState::Done, "finished, but its folder does not read: " + why});

  // ---- Markdown ----
  const std::vector<std::string> h = header(plan);
  std::ostringstream md;
  md << "# " << plan.name << "\n\nPlan `" << plan.file << "`, " << plan.runs.size() << " runs (" << plan.cells.size()
     << " cells x " << seeds << " seeds), " << plan.runs.size() - missing.size() << " finished. Accuracies in percent, "
     << "mean ± sample std over the finished seeds; diff = mean - paper.\n\n|";
  for (const std::string& c : h) md << " " << c << " |";
  md << "\n|";
  for (size_t i = 0; i < h.size(); ++i) md << (i < plan.axes.size() ? "---|" : "---:|");
  md << "\n";
  for (const CellRow& r : rows) {
    md << "|";
    for (const std::string& c : cells_of(r, seeds)) md << " " << c << " |";
    md << "\n";
  }
  if (!missing.empty()) {
    md << "\nNot finished (" << missing.size() << " runs, not in the means above):\n\n";
    for (auto& [r, s] : missing)
      md << "- `" << r->id << "`: " << name_of(s.state) << (s.detail.empty() ? "" : " (" + s.detail + ")") << "\n";
  }
  write_file_atomic((fs::path(out) / "results.md").string(), md.str());

  // ---- CSV (plain numbers) ----
  std::ostringstream csv;
  for (const std::string& a : plan.axes) csv << csv_field(a) << ",";
  csv << "seeds_finished,seeds,test_acc_mean,test_acc_std,val_acc_mean,val_acc_std,params,macs,images_per_s,wall_s,paper,diff\n";
  for (const CellRow& r : rows) {
    for (auto& [axis, label] : r.cell->labels) csv << csv_field(label) << ",";
    const double paper = r.cell->paper ? *r.cell->paper : NAN;
    csv << r.finished << "," << seeds << "," << num_or_dash(r.test_acc.mean(), "%.4f") << ","
        << num_or_dash(r.test_acc.sd(), "%.4f") << "," << num_or_dash(r.val_acc.mean(), "%.4f") << ","
        << num_or_dash(r.val_acc.sd(), "%.4f") << "," << (r.params >= 0 ? std::to_string(r.params) : "") << ","
        << (r.macs >= 0 ? std::to_string(r.macs) : "") << "," << num_or_dash(r.images_per_s.mean(), "%.1f") << ","
        << num_or_dash(r.wall_s.mean(), "%.1f") << "," << num_or_dash(paper, "%.2f") << ","
        << num_or_dash(r.test_acc.mean() - paper, "%.4f") << "\n";
  }
  write_file_atomic((fs::path(out) / "results.csv").string(), csv.str());

  // ---- HTML: the table, then the report page of the finished runs ----
  std::ostringstream t;
  t << "<h2>Results</h2>\n<p>Plan <code>" << html_escape(plan.file) << "</code>: accuracies in percent, mean ± sample "
    << "std over the finished seeds; diff = mean - paper.</p>\n<table class=\"runs results\"><tr>";
  for (const std::string& c : h) t << "<th>" << html_escape(c) << "</th>";
  t << "</tr>\n";
  for (const CellRow& r : rows) {
    t << "<tr class=\"cell\">";
    for (const std::string& c : cells_of(r, seeds)) t << "<td>" << html_escape(c) << "</td>";
    t << "</tr>\n";
  }
  t << "</table>\n";
  if (!missing.empty()) {
    t << "<h3>Not finished (" << missing.size() << " runs, not in the means)</h3>\n<ul>\n";
    for (auto& [r, s] : missing)
      t << "<li><code>" << html_escape(r->id) << "</code>: " << name_of(s.state)
        << html_escape(s.detail.empty() ? "" : " (" + s.detail + ")") << "</li>\n";
    t << "</ul>\n";
  }
  std::string html = render_report(done, "scconv ablate " + plan.name, t.str());
  write_file_atomic((fs::path(out) / "results.html").string(), html);
  return md.str();
}

}  // namespace scconv::apps
