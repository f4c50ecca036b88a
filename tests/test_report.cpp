// tests/test_report.cpp: `scconv report` and the training-time gate statistics. The SVG chart
// (ticks, a polyline per series whose points follow the values, the legend); explain.every's
// "gates" in metrics.jsonl against gate_statistics of the final weights (and chunking leaves
// the means exact); the page of two runs holds every run, its accuracies, one chart per metric,
// the per-class tables and the explain figures, and nothing from outside the file; --png; bad
// input. The page in a real browser: test_report_browser.cpp.
// Run: ./build/tests/test_report
#include <stb_image.h>

#include <filesystem>
#include <fstream>
#include <iostream>

#include "apps/checkpoint.h"
#include "apps/explain.h"
#include "apps/svg.h"
#include "core/config.h"
#include "data/loader.h"
#include "models/resnet.h"
#include "report_fixture.h"
#include "test_util.h"

using namespace scconv;
using namespace scconv::testing;
using doctest::Contains;
namespace fs = std::filesystem;

namespace {
const ReportRuns& runs() { return report_runs("scconv_test_report_"); }

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

std::vector<nlohmann::json> metrics(const fs::path& run) {
  std::vector<nlohmann::json> out;
  std::ifstream f(run / "metrics.jsonl");
  for (std::string line; std::getline(f, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

std::string pct(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f%%", 100 * v);
  return buf;
}

std::string report(const apps::Args& args) {
  std::ostringstream out;
  auto* old = std::cout.rdbuf(out.rdbuf());
  struct Restore {
    std::streambuf* b;
    ~Restore() { std::cout.rdbuf(b); }
  } restore{old};
  apps::cmd_report(args);
  return out.str();
}

// The test images the trainer's gate statistics use: the first n, normalised, no augmentation.
Tensor first_test_images(const apps::TrainConfig& cfg, int64_t n) {
  const Dataset test = apps::load_test_set(cfg, "", {});
  Tensor x = Tensor::zeros({n, 3, 32, 32}, DType::F32);
  for (int64_t i = 0; i < n; ++i)
    prepare_image(test.images.data<uint8_t>() + i * 3072, 3, 32, 32, x.data<float>() + i * 3072, cfg.augment, false, 0, 0, i);
  return x;
}
}  // namespace

TEST_CASE("svg chart: ticks, axis labels, a legend, and points that follow the values") {
  apps::SvgChart c;
  c.metric = "accuracy";
  c.title = "Accuracy";
  c.x_label = "epoch";
  c.y_label = "accuracy";
  c.percent = true;
  c.integer_x = true;
  c.series.push_back({"rising", {1, 2, 3, 4}, {0.1, 0.4, 0.5, 0.9}, 0, apps::LineStyle::Solid});
  c.series.push_back({"with gap", {1, 2, 3, 4}, {0.3, NAN, 0.2, 0.25}, 1, apps::LineStyle::Dashed});
  const std::string svg = apps::svg_line_chart(c);
  CHECK(svg.rfind("<svg class=\"chart\" data-metric=\"accuracy\"", 0) == 0);
  for (const char* s : {">Accuracy</text>", ">epoch</text>", ">accuracy</text>", ">rising</text>", ">with gap</text>", "%</text>"})
    CHECK_MESSAGE(svg.find(s) != std::string::npos, s);
  CHECK_MESSAGE(svg.find(">1.5</text>") == std::string::npos, "epochs are whole numbers: no tick at 1.5");
  // series 1 is split by its gap: 1 + 2 polylines; the rising series' y coordinates fall
  CHECK(count(svg, "<polyline") == 3);
  const size_t series = svg.find("data-name=\"rising\">");
  REQUIRE(series != std::string::npos);
  const size_t from = svg.find("points=\"", series) + 8;
  std::vector<double> ys;
  std::istringstream pts(svg.substr(from, svg.find('"', from) - from));
  for (std::string p; pts >> p;) ys.push_back(std::stod(p.substr(p.find(',') + 1)));
  REQUIRE(ys.size() == 4);
  for (size_t i = 1; i < ys.size(); ++i) CHECK(ys[i] < ys[i - 1]);
  CHECK((ys[1] - ys[2]) * 4 == doctest::Approx(ys[2] - ys[3]).epsilon(0.02));  // +0.1 vs +0.4: linear scale
  CHECK(apps::html_escape("<a & \"b\">") == "&lt;a &amp; &quot;b&quot;&gt;");
}

TEST_CASE("explain.every: the gates in metrics.jsonl are the final weights' gate means on the first test images") {
  const ReportRuns& r = runs();
  const std::vector<nlohmann::json> m = metrics(r.a);
  REQUIRE(m.size() == 2);
  for (auto& epoch : m) REQUIRE(epoch.contains("gates"));
  const nlohmann::json& gates = m.back()["gates"];
  CHECK(gates.size() == 9);  // resnet20-scconv: SCConv in every block's first convolution
  const apps::TrainConfig cfg = apps::parse_train_config(apps::resume_config(r.a.string()));
  Generator g(0);
  auto model = build_model(cfg.model, g);
  model->load_state_dict(load_safetensors((r.a / "checkpoint" / "model.safetensors").string()).tensors, true, "");
  const Tensor x = first_test_images(cfg, 40);
  const auto units = apps::scconv_units(*model);
  const nlohmann::json again = apps::gate_statistics(*model, units, x), chunked = apps::gate_statistics(*model, units, x, 7);
  Capture cap;
  apps::capture_units(*model, units, x, cap);
  for (auto& u : units) {
    CAPTURE(u.name);
    REQUIRE(gates.contains(u.name));
    const double inf = gates[u.name]["informative_fraction"], b1 = gates[u.name]["beta1"];
    CHECK(inf > 0);
    CHECK(inf < 1);
    CHECK(b1 > 0);
    CHECK(b1 < 1);
    CHECK(inf == doctest::Approx(again[u.name]["informative_fraction"].get<double>()).epsilon(1e-9));
    CHECK(b1 == doctest::Approx(again[u.name]["beta1"].get<double>()).epsilon(1e-6));
    const apps::UnitStats all = apps::unit_stats(u, cap);  // one capture of all 40 images
    CHECK(chunked[u.name]["informative_fraction"].get<double>() == doctest::Approx(all.mean_informative).epsilon(1e-12));
    CHECK(chunked[u.name]["beta1"].get<double>() == doctest::Approx(all.mean_beta1).epsilon(1e-9));
  }
  CHECK(m.front()["gates"] != m.back()["gates"]);  // the gates moved with training
  CHECK_FALSE(metrics(r.b).front().contains("gates"));
}

TEST_CASE("explain.every: a model without SCConv units, too many images, and bad gate values are errors") {
  const ReportRuns& r = runs();
  nlohmann::json j = report_run_config(r.data, r.dir / "bad1", "resnet20");
  j["explain"] = {{"every", 1}};
  CHECK_THROWS_WITH_AS(apps::train(apps::parse_train_config(j), false), Contains("explain.every: the model has no SCConv units"), Error);
  j = report_run_config(r.data, r.dir / "bad2", "resnet20-scconv");
  j["explain"] = {{"every", 1}, {"images", 500}};
  CHECK_THROWS_WITH_AS(apps::train(apps::parse_train_config(j), false), Contains("explain.images: 500, but the test set has 128 images"), Error);
  j["explain"] = {{"evry", 1}};
  CHECK_THROWS_WITH_AS(apps::parse_train_config(j), Contains("explain.evry"), Error);
  // a checkpoint whose history holds a gate value outside [0, 1] does not load
  nlohmann::json state = config::read_json_file((r.a / "checkpoint" / "state.json").string());
  state["history"][0]["gates"]["layer1.0.conv1"]["beta1"] = 1.5;
  CHECK_THROWS_WITH_AS(apps::TrainState::from_json(state, "state.json"), Contains("history[0].gates.layer1.0.conv1.beta1: must be in [0, 1]"), Error);
}

TEST_CASE("report: every run, its accuracies, one chart per metric, per-class tables and explain figures, all inline") {
  const ReportRuns& r = runs();
  const fs::path out = r.dir / "report.html", png = r.dir / "png";
  const std::string said = report({r.a.string(), r.b.string(), "--out", out.string(), "--png", png.string(), "--data", r.data.string()});
  CHECK(said.find("wrote " + out.string()) != std::string::npos);
  const std::string html = slurp(out);
  REQUIRE(!html.empty());
  for (const char* name : {"scconv_a", "plain_b"}) CHECK(html.find(std::string("id=\"run-") + name + "\"") != std::string::npos);
  for (const fs::path& run : {r.a, r.b}) {
    const double final_acc = metrics(run).back()["test_acc"];
    const nlohmann::json summary = config::read_json_file((run / "summary.json").string());
    CAPTURE(run);
    CHECK(count(html, "final-acc\">" + pct(final_acc)) == 2);  // the runs table and the run's own
    CHECK(html.find("best-acc\">" + pct(summary["best_acc"].get<double>())) != std::string::npos);
  }
  CHECK(html.find("best val accuracy") != std::string::npos);  // plain_b selects on its val split
  for (const char* metric : {"loss", "accuracy", "lr"})
    CHECK_MESSAGE(count(html, std::string("data-metric=\"") + metric + "\"") == 1, metric);
  CHECK(count(html, "data-metric=\"informative_fraction\"") == 1);  // only scconv_a recorded gates
  CHECK(count(html, "data-metric=\"beta1\"") == 1);
  CHECK(count(html, "<table class=\"confusion\">") == 2);
  size_t pngs = 0;
  for (auto& u : fs::directory_iterator(r.a / "explain"))
    for (auto& f : fs::directory_iterator(u.path())) pngs += f.path().extension() == ".png";
  CHECK(pngs > 20);
  CHECK(count(html, "src=\"data:image/png;base64,") == pngs);
  CHECK(html.find("fig5_test3.png") != std::string::npos);
  // self-contained: no scripts, styles or images from elsewhere
  for (const char* bad : {"<script", "<link", "src=\"http", "href=\"http", "url(", "@import"})
    CHECK_MESSAGE(html.find(bad) == std::string::npos, bad);
  // the confusion matrices count every test image: their cells add up to 128 per run (plain
  // string search: std::regex recurses per character and overflows the stack on a page this size)
  size_t at = 0;
  for (int t = 0; t < 2; ++t) {
    at = html.find("<table class=\"confusion\">", at);
    REQUIRE(at != std::string::npos);
    const size_t end = html.find("</table>", at);
    REQUIRE(end != std::string::npos);
    int64_t total = 0, cells = 0;
    for (size_t td = html.find("<td ", at); td < end; td = html.find("<td ", td + 1)) {
      const size_t open = html.find('>', td);
      total += std::stoll(html.substr(open + 1, html.find("</td>", open) - open - 1));
      ++cells;
    }
    CHECK(cells == 100);  // CIFAR-10: 10 x 10
    CHECK(total == 128);
    at = end;
  }
  for (const char* f : {"loss.png", "accuracy.png", "lr.png"}) {
    int w = 0, h = 0, ch = 0;
    unsigned char* d = stbi_load((png / f).string().c_str(), &w, &h, &ch, 3);
    REQUIRE_MESSAGE(d, f);
    bool varied = false;
    for (int i = 3; i < w * h * 3 && !varied; ++i) varied = d[i] != d[i % 3];
    stbi_image_free(d);
    CHECK(w == 760);
    CHECK(h == 400);
    CHECK(varied);
  }
}

TEST_CASE("report: without the test data the page says so instead of the per-class tables") {
  const ReportRuns& r = runs();
  const fs::path out = r.dir / "nodata.html";
  report({r.b.string(), "--out", out.string(), "--data", (r.dir / "missing").string()});
  const std::string html = slurp(out);
  CHECK(html.find("no per-class accuracy or confusion matrix: the test set could not be read") != std::string::npos);
  CHECK(html.find("<table class=\"confusion\">") == std::string::npos);
  CHECK(html.find("data-metric=\"loss\"") != std::string::npos);
  report({r.b.string(), "--out", out.string(), "--no-eval"});
  CHECK(slurp(out).find("not evaluated (--no-eval)") != std::string::npos);
}

TEST_CASE("report: bad input is a clear error") {
  const ReportRuns& r = runs();
  const std::string out = (r.dir / "bad.html").string();
  CHECK_THROWS_WITH_AS(report({(r.dir / "nowhere").string(), "--out", out}), Contains("nowhere' is not a directory"), Error);
  fs::create_directories(r.dir / "empty_run");
  CHECK_THROWS_WITH_AS(report({(r.dir / "empty_run").string(), "--out", out}), Contains("empty_run' has no checkpoint"), Error);
  CHECK_THROWS_WITH_AS(report({"--out", out}), Contains("give one or more run directories"), UsageError);
  CHECK_THROWS_WITH_AS(report({r.a.string()}), Contains("--out is required"), UsageError);
  // a damaged state.json is named
  const fs::path copy = r.dir / "damaged";
  fs::remove_all(copy);
  fs::create_directories(copy);
  fs::copy(r.b / "checkpoint", copy / "checkpoint");
  { std::ofstream(copy / "checkpoint" / "state.json") << "{\"epoch\": 2, "; }
  CHECK_THROWS_WITH_AS(report({copy.string(), "--out", out}), Contains("state.json"), Error);
  CHECK_FALSE(fs::exists(out));
}
