// apps/report_html.cpp: the page of `scconv report` (apps/report.h) and its PNG curves. One
// HTML file, nothing outside it: the charts are inline SVG (apps/svg.h), the explain figures
// PNGs in data: URIs, the style a <style> block, and no scripts.
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <sstream>

#include "apps/format.h"
#include "apps/plot.h"
#include "apps/report.h"
#include "apps/svg.h"
#include "core/file_io.h"

namespace scconv::apps {

namespace fs = std::filesystem;

namespace {
// ---- small formatting helpers ----

std::string pct(double v) { return std::isfinite(v) ? fmt("%.2f%%", 100 * v) : "-"; }
std::string base64(const std::string& in) {
  static const char* k = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  for (size_t i = 0; i < in.size(); i += 3) {
    const uint32_t b = uint32_t(uint8_t(in[i])) << 16 | (i + 1 < in.size() ? uint32_t(uint8_t(in[i + 1])) << 8 : 0) |
                       (i + 2 < in.size() ? uint32_t(uint8_t(in[i + 2])) : 0);
    out += k[b >> 18 & 63];
    out += k[b >> 12 & 63];
    out += i + 1 < in.size() ? k[b >> 6 & 63] : '=';
    out += i + 2 < in.size() ? k[b & 63] : '=';
  }
  return out;
}
std::string css_colour(const Rgb& c) { return "rgb(" + std::to_string(c.r) + "," + std::to_string(c.g) + "," + std::to_string(c.b) + ")"; }

double metric(const nlohmann::json& m, const char* key) {
  return m.contains(key) && m[key].is_number() ? m[key].get<double>() : NAN;
}

// Totals over the epochs: training time and images/s over the whole run.
}  // namespace

RunTotals totals(const RunRecord& r) {
  RunTotals t;
  for (auto& m : r.history) {
    const double s = metric(m, "epoch_seconds"), ips = metric(m, "images_per_second");
    t.seconds += std::isfinite(s) ? s : 0;
    t.images += std::isfinite(s) && std::isfinite(ips) ? s * ips : 0;
  }
  return t;
}

namespace {

// ---- curves ----

// One series per run and split: colour = the run, line style = the split.
SvgChart curves(const std::vector<RunRecord>& runs, const std::string& what) {
  SvgChart c;
  c.metric = what;
  c.x_label = "epoch";
  c.integer_x = true;
  if (what == "loss") c.title = "Loss (train dashed, test solid, val dotted)", c.y_label = "cross-entropy";
  if (what == "accuracy") c.title = "Accuracy (train dashed, test solid, val dotted)", c.y_label = "accuracy", c.percent = true;
  if (what == "lr") c.title = "Learning rate (at the end of each epoch)", c.y_label = "learning rate";
  const std::string suffix = what == "accuracy" ? "_acc" : "_loss";
  for (size_t i = 0; i < runs.size(); ++i) {
    const RunRecord& r = runs[i];
    auto add = [&](const std::string& key, const std::string& label, LineStyle style) {
      SvgSeries s{runs.size() > 1 || what != "lr" ? r.name + label : r.name, {}, {}, i, style};
      bool any = false;
      for (auto& m : r.history) {
        s.x.push_back(metric(m, "epoch"));
        s.y.push_back(metric(m, key.c_str()));
        any = any || std::isfinite(s.y.back());
      }
      if (any) c.series.push_back(std::move(s));
    };
    if (what == "lr") {
      add("lr", "", LineStyle::Solid);
      continue;
    }
    add("train" + suffix, " train", LineStyle::Dashed);
    add("test" + suffix, " test", LineStyle::Solid);
    add("val" + suffix, " val", LineStyle::Dotted);
  }
  return c;
}

// The training-time gate statistics of one run (metrics' "gates"), one series per unit.
SvgChart gate_curves(const RunRecord& r, const std::string& key) {
  SvgChart c;
  c.metric = key;
  c.x_label = "epoch";
  c.integer_x = true;
  c.title = key == "beta1" ? "CRU: mean beta1 per layer (the upper branch's share)"
                           : "SRU: informative fraction per layer (R > threshold)";
  c.y_label = key == "beta1" ? "mean beta1" : "informative fraction";
  c.percent = false;  // (fractions: the PNG and the SVG read alike)
  std::vector<std::string> units;
  for (auto& m : r.history)
    if (m.contains("gates"))
      for (auto& [u, v] : m["gates"].items())
        if (v.contains(key) && std::find(units.begin(), units.end(), u) == units.end()) units.push_back(u);
  for (size_t i = 0; i < units.size(); ++i) {
    SvgSeries s{units[i], {}, {}, i, i < 8 ? LineStyle::Solid : LineStyle::Dashed};
    for (auto& m : r.history)
      if (m.contains("gates") && m["gates"].contains(units[i]) && m["gates"][units[i]].contains(key)) {
        s.x.push_back(metric(m, "epoch"));
        s.y.push_back(m["gates"][units[i]][key].get<double>());
      }
    c.series.push_back(std::move(s));
  }
  return c;
}

// ---- tables ----

std::string row(const std::string& k, const std::string& v) {
  return "<tr><th>" + html_escape(k) + "</th><td>" + v + "</td></tr>\n";
}

std::string model_text(const nlohmann::json& model) {
  std::string s = model.value("arch", std::string("?"));
  if (model.value("conv", std::string("standard")) == "scconv" && model.contains("scconv")) {
    const auto& sc = model["scconv"];
    s += " + SCConv (" + sc.value("placement", std::string("?")) + ", order " + sc.value("order", std::string("?")) +
         ", alpha " + tick_label(sc.value("alpha", 0.0)) + ")";
  }
  return s;
}

std::string run_table(const RunRecord& r) {
  const nlohmann::json& cfg = r.config;
  const RunTotals t = totals(r);
  const nlohmann::json& last = r.history.back();
  const int64_t planned = cfg.value("epochs", int64_t(0)), done = int64_t(r.history.size());
  std::ostringstream o;
  o << "<table class=\"kv\">\n"
    << row("directory", "<code>" + html_escape(r.dir) + "</code>")
    << row("model", html_escape(model_text(cfg["model"])))
    << row("data", html_escape(cfg["data"].value("dataset", std::string("?"))) + " (" + html_escape(cfg["data"].value("dir", std::string())) + ")")
    << row("epochs", std::to_string(done) + " of " + std::to_string(planned) + (r.summary.is_null() ? " (unfinished)" : ""))
    << row("parameters", human(double(r.params)) + " (" + std::to_string(r.params) + ")")
    << row("MACs per image", human(double(r.macs_per_image)))
    << row("final test accuracy", "<span class=\"final-acc\">" + pct(metric(last, "test_acc")) + "</span> (epoch " + std::to_string(done) + ")")
    << row("best " + r.best_on + " accuracy", "<span class=\"best-acc\">" + pct(r.best_acc) + "</span> (epoch " + std::to_string(r.best_epoch) + ")")
    << row("images/s (training)", fmt("%.0f", t.seconds > 0 ? t.images / t.seconds : NAN))
    << row("training time", hms(t.seconds) + " (the epochs' wall time, evaluation excluded)")
    << row("device, threads, batch", html_escape(cfg.value("device", std::string("cpu"))) + ", " +
           std::to_string(cfg.value("threads", 0)) + " (0: all cores), " + std::to_string(cfg.value("batch_size", 0)))
    << row("optimizer", "SGD lr " + tick_label(cfg["optim"].value("lr", 0.0)) + ", momentum " + tick_label(cfg["optim"].value("momentum", 0.0)) +
           ", weight decay " + tick_label(cfg["optim"].value("weight_decay", 0.0)))
    << row("schedule", html_escape(cfg["schedule"].dump()))
    << "</table>\n<details><summary>full training config</summary><pre>" << html_escape(cfg.dump(2)) << "</pre></details>\n";
  return o.str();
}

// Per-class accuracy (with a bar) and the confusion matrix as a heat map (row-normalised).
std::string class_tables(const RunRecord& r) {
  if (!r.evaluated) return "<p class=\"note\">" + html_escape(r.eval_note) + "</p>\n";
  const auto& cm = r.final_eval.confusion;
  const size_t K = cm.size();
  auto cls = [&](size_t k) { return k < r.classes.size() ? r.classes[k] : std::to_string(k); };
  std::ostringstream o;
  o << "<p>The final checkpoint on " << r.final_eval.count << " test images: accuracy <b>" << pct(r.final_eval.accuracy)
    << "</b>, loss " << fmt("%.4f", r.final_eval.loss) << ".</p>\n<div class=\"side\">\n<table class=\"classes\"><tr><th>class</th><th>accuracy</th><th></th></tr>\n";
  for (size_t k = 0; k < K; ++k) {
    int64_t n = 0;
    for (int64_t v : cm[k]) n += v;
    const double acc = n ? double(cm[k][k]) / double(n) : NAN;
    o << "<tr><td>" << html_escape(cls(k)) << "</td><td>" << pct(acc) << "</td><td><div class=\"bar\" style=\"width:"
      << fmt("%.0f", std::isfinite(acc) ? 120 * acc : 0) << "px\"></div></td></tr>\n";
  }
  o << "</table>\n<table class=\"confusion\"><caption>confusion matrix: rows true class, columns predicted (colour: share of the row)</caption>\n<tr><th></th>";
  for (size_t k = 0; k < K; ++k) o << "<th class=\"pred\">" << html_escape(cls(k)) << "</th>";
  o << "</tr>\n";
  for (size_t t = 0; t < K; ++t) {
    int64_t n = 0;
    for (int64_t v : cm[t]) n += v;
    o << "<tr><th>" << html_escape(cls(t)) << "</th>";
    for (size_t p = 0; p < K; ++p) {
      const double share = n ? double(cm[t][p]) / double(n) : 0, s = std::sqrt(share);  // (sqrt: small shares show)
      const Rgb c{uint8_t(std::lround(255 - s * (255 - 8))), uint8_t(std::lround(255 - s * (255 - 48))),
                  uint8_t(std::lround(255 - s * (255 - 107)))};  // white -> dark blue
      o << "<td style=\"background:" << css_colour(c) << ";color:" << (s > 0.6 ? "#fff" : "#000")
        << "\" title=\"" << html_escape(cls(t) + " as " + cls(p)) << ": " << cm[t][p] << "\">" << cm[t][p] << "</td>";
    }
    o << "</tr>\n";
  }
  o << "</table>\n</div>\n";
  return o.str();
}

std::string explain_section(const RunRecord& r) {
  std::ostringstream o;
  bool gates = false;
  for (auto& m : r.history) gates = gates || m.contains("gates");
  if (gates) {
    o << "<h3>Gate statistics during training</h3>\n<p>Recorded every <code>explain.every</code> epochs on the first "
      << r.config["explain"].value("images", 0) << " test images.</p>\n"
      << svg_line_chart(gate_curves(r, "informative_fraction")) << svg_line_chart(gate_curves(r, "beta1"));
  }
  if (r.explained.empty()) return o.str();
  o << "<h3>What SRU and CRU do (scconv explain)</h3>\n";
  for (const ExplainedUnit& u : r.explained) {
    o << "<h4>" << html_escape(u.unit) << "</h4>\n";
    if (!u.stats.is_null()) {
      auto v = [&](const char* part, const char* key) {
        return u.stats.contains(part) && u.stats[part].contains(key) && u.stats[part][key].is_number()
                   ? tick_label(u.stats[part][key].get<double>()) : std::string("-");
      };
      o << "<p class=\"gate-stats\">mean w " << v("sru", "mean_w") << ", informative fraction "
        << v("sru", "mean_informative_fraction") << ", mean beta1 " << v("cru", "mean_beta1") << ", beta2 "
        << v("cru", "mean_beta2") << "</p>\n";
    }
    o << "<div class=\"figures\">\n";
    for (const std::string& f : u.images)
      o << "<figure><img alt=\"" << html_escape(fs::path(f).filename().string()) << "\" src=\"data:image/png;base64,"
        << base64(read_file(f, 64 << 20)) << "\"><figcaption>" << html_escape(fs::path(f).filename().string())
        << "</figcaption></figure>\n";
    o << "</div>\n";
  }
  return o.str();
}

const char* kStyle = R"(body{font-family:sans-serif;margin:24px;color:#222;max-width:1400px}
h1{margin-bottom:4px}h2{border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:36px}
table{border-collapse:collapse;margin:8px 0}th,td{padding:3px 8px;text-align:left}
table.kv th{background:#f3f3f3;font-weight:normal;white-space:nowrap}table.kv td,table.kv th{border:1px solid #ddd}
table.runs th,table.runs td{border:1px solid #ddd}table.runs td.num{text-align:right}
table.confusion td{text-align:right;font-size:11px;min-width:26px}table.confusion th{font-size:11px;font-weight:normal}
table.confusion th.pred{writing-mode:vertical-rl}.bar{background:#1f77b4;height:10px}
.side{display:flex;gap:32px;align-items:flex-start;flex-wrap:wrap}.note{color:#a33}
.figures{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0}figcaption{font-size:11px;color:#555}
svg.chart{display:block;margin:12px 0;border:1px solid #eee}pre{background:#f7f7f7;padding:8px;overflow:auto})";
}  // namespace

// ---- the page ----

std::string render_report(const std::vector<RunRecord>& runs, const std::string& title, const std::string& preface) {
  std::ostringstream o;
  std::string names;
  for (auto& r : runs) names += (names.empty() ? "" : ", ") + r.name;
  char when[32];
  const std::time_t now = std::time(nullptr);
  std::strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
  o << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>" << html_escape(title) << ": "
    << html_escape(names) << "</title>\n<style>" << kStyle << "</style></head>\n<body>\n<h1>" << html_escape(title)
    << "</h1>\n<p>" << runs.size() << " run(s), made by <code>scconv</code> on " << when << ".</p>\n" << preface;
  o << "<h2>Runs</h2>\n<table class=\"runs\"><tr><th>run</th><th>model</th><th>epochs</th><th>params</th><th>MACs</th>"
    << "<th>final test acc</th><th>best acc (split, epoch)</th><th>images/s</th><th>training time</th></tr>\n";
  for (auto& r : runs) {
    const RunTotals t = totals(r);
    o << "<tr class=\"run\"><td><a href=\"#run-" << html_escape(r.name) << "\">" << html_escape(r.name) << "</a></td><td>"
      << html_escape(model_text(r.config["model"])) << "</td><td class=\"num\">" << r.history.size() << "/"
      << r.config.value("epochs", 0) << "</td><td class=\"num\">" << human(double(r.params)) << "</td><td class=\"num\">"
      << human(double(r.macs_per_image)) << "</td><td class=\"num final-acc\">" << pct(metric(r.history.back(), "test_acc"))
      << "</td><td class=\"num\">" << pct(r.best_acc) << " (" << r.best_on << ", " << r.best_epoch << ")</td><td class=\"num\">"
      << fmt("%.0f", t.seconds > 0 ? t.images / t.seconds : NAN) << "</td><td class=\"num\">" << hms(t.seconds) << "</td></tr>\n";
  }
  o << "</table>\n<h2>Curves</h2>\n";
  for (const char* what : {"loss", "accuracy", "lr"}) o << svg_line_chart(curves(runs, what));
  for (auto& r : runs) {
    o << "<h2 id=\"run-" << html_escape(r.name) << "\">Run " << html_escape(r.name) << "</h2>\n" << run_table(r)
      << "<h3>Per class (final checkpoint)</h3>\n" << class_tables(r) << explain_section(r);
  }
  o << "</body></html>\n";
  return o.str();
}

std::vector<std::string> write_curve_pngs(const std::vector<RunRecord>& runs, const std::string& dir) {
  fs::create_directories(dir);
  std::vector<std::string> files;
  for (const char* what : {"loss", "accuracy", "lr"}) {
    const SvgChart s = curves(runs, what);
    LineChart c{s.title.substr(0, s.title.find(" (")), s.x_label, s.y_label, {}, {}, {}};  // (no line styles in PNGs)
    for (auto& series : s.series) {
      c.names.push_back(series.name);
      c.xs.push_back(series.x);
      std::vector<double> y = series.y;
      if (s.percent)
        for (double& v : y) v *= 100;
      c.ys.push_back(y);
    }
    if (s.percent) c.y_label += " (%)";
    const std::string f = (fs::path(dir) / (std::string(what) + ".png")).string();
    write_png(f, draw_line_chart(c, 760, 400));
    files.push_back(f);
  }
  // the gate statistics of explain.every, per run that recorded them
  for (auto& r : runs)
    for (const char* key : {"informative_fraction", "beta1"}) {
      const SvgChart s = gate_curves(r, key);
      if (s.series.empty()) continue;
      LineChart c{s.title, s.x_label, s.y_label, {}, {}, {}};
      for (auto& series : s.series) c.names.push_back(series.name), c.xs.push_back(series.x), c.ys.push_back(series.y);
      const std::string f = (fs::path(dir) / ("gates_" + std::string(key) + "_" + fs::path(r.name).filename().string() + ".png")).string();
      write_png(f, draw_line_chart(c, 760, 400));
      files.push_back(f);
    }
  return files;
}

}  // namespace scconv::apps
