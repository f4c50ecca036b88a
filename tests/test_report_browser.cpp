// tests/test_report_browser.cpp: `scconv report`'s page opened by a real headless browser
// (Debian's chromium; scripts/test.sh installs it through scripts/install-deps.sh --browser).
// A screenshot is neither blank nor uniform, and the DOM the browser rendered (--dump-dom)
// holds every run name, the final accuracies and one chart per metric. Without a browser it
// exits 77, which ctest reports as skipped (never as passed). SCCONV_CHROMIUM names another
// browser binary.
// Run: ./build/tests/test_report_browser
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>
#include <stb_image.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>

#include "report_fixture.h"

using namespace scconv;
using namespace scconv::testing;
namespace fs = std::filesystem;

namespace {
constexpr int kSkipped = 77;  // ctest's SKIP_RETURN_CODE for this test

// The browser: $SCCONV_CHROMIUM, else the first of Debian's names found on PATH ("" if none).
std::string find_browser() {
  if (const char* e = std::getenv("SCCONV_CHROMIUM"); e && *e) return e;
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/bin";
  for (const char* name : {"chromium", "chromium-headless-shell", "chromium-browser", "google-chrome"}) {
    size_t start = 0;
    while (start <= dirs.size()) {
      const size_t end = std::min(dirs.find(':', start), dirs.size());
      const fs::path p = fs::path(dirs.substr(start, end - start)) / name;
      std::error_code ec;
      if (fs::is_regular_file(p, ec) && access(p.c_str(), X_OK) == 0) return p.string();
      start = end + 1;
    }
  }
  return "";
}

std::string& browser() {
  static std::string b;
  return b;
}

// Runs the browser headless on the file; `what` is its output option; returns its exit status.
int run_browser(const fs::path& html, const std::string& what, const fs::path& stdout_file, const fs::path& profile) {
  // --no-sandbox: tests often run as root (CI containers), where chromium's sandbox refuses to start
  const std::string cmd = "timeout 120 '" + browser() + "' --headless --no-sandbox --disable-gpu --hide-scrollbars " +
                          "--no-first-run --user-data-dir='" + profile.string() + "' --window-size=1280,2400 " + what +
                          " 'file://" + fs::absolute(html).string() + "' > '" + stdout_file.string() + "' 2> '" +
                          stdout_file.string() + ".err'";
  return std::system(cmd.c_str());
}

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}
}  // namespace

TEST_CASE("report in a headless browser: a screenshot with content, and the rendered DOM holds runs, accuracies and charts") {
  const ReportRuns& r = report_runs("scconv_test_report_browser_");
  const fs::path html = r.dir / "report.html", shot = r.dir / "shot.png";
  std::ostringstream quiet;
  auto* old = std::cout.rdbuf(quiet.rdbuf());
  apps::cmd_report({r.a.string(), r.b.string(), "--out", html.string(), "--data", r.data.string()});
  std::cout.rdbuf(old);

  REQUIRE(run_browser(html, "--screenshot='" + shot.string() + "'", r.dir / "shot.log", r.dir / "profile1") == 0);
  int w = 0, h = 0, ch = 0;
  unsigned char* px = stbi_load(shot.string().c_str(), &w, &h, &ch, 3);
  REQUIRE_MESSAGE(px, "the screenshot " << shot << " does not decode; browser said: " << slurp(r.dir / "shot.log.err"));
  CHECK(w == 1280);
  CHECK(h == 2400);
  int64_t non_white = 0;
  std::set<uint32_t> colours;
  for (int64_t i = 0; i < int64_t(w) * h; ++i) {
    const uint8_t* p = px + 3 * i;
    non_white += !(p[0] > 245 && p[1] > 245 && p[2] > 245);
    colours.insert(uint32_t(p[0]) << 16 | uint32_t(p[1]) << 8 | p[2]);
  }
  stbi_image_free(px);
  CHECK_MESSAGE(double(non_white) / double(w * h) > 0.02, "the screenshot is (nearly) blank: " << non_white << " non-white pixels");
  CHECK_MESSAGE(colours.size() > 20, "the screenshot is uniform: " << colours.size() << " colours");

  REQUIRE(run_browser(html, "--dump-dom", r.dir / "dom.html", r.dir / "profile2") == 0);
  const std::string dom = slurp(r.dir / "dom.html");
  REQUIRE_MESSAGE(dom.find("</html>") != std::string::npos, "no DOM dumped; browser said: " << slurp(r.dir / "dom.html.err"));
  for (const char* name : {"scconv_a", "plain_b"}) CHECK_MESSAGE(dom.find(name) != std::string::npos, name);
  for (const fs::path& run : {r.a, r.b}) {
    std::ifstream f(run / "metrics.jsonl");
    std::string line, last;
    while (std::getline(f, line)) last = line;
    char acc[32];
    std::snprintf(acc, sizeof acc, "%.2f%%", 100 * nlohmann::json::parse(last)["test_acc"].get<double>());
    CHECK_MESSAGE(dom.find(std::string("final-acc\">") + acc) != std::string::npos, run << ": final accuracy " << acc);
  }
  for (const char* metric : {"loss", "accuracy", "lr"}) {
    const std::string tag = std::string("data-metric=\"") + metric + "\"";
    CHECK_MESSAGE(dom.find(tag) != std::string::npos, tag);
    CHECK_MESSAGE(dom.find(tag) == dom.rfind(tag), tag << " appears more than once");
  }
}

int main(int argc, char** argv) {
  browser() = find_browser();
  if (browser().empty()) {
    std::printf("test_report_browser: SKIPPED (no chromium on PATH: scripts/install-deps.sh --browser installs it, "
                "or set SCCONV_CHROMIUM)\n");
    return kSkipped;
  }
  doctest::Context ctx(argc, argv);
  return ctx.run();
}
