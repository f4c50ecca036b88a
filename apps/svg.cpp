// apps/svg.cpp: the SVG line chart of apps/svg.h. Ticks and colours are apps/plot.h's, so the
// HTML charts and the PNG ones (`scconv report --png`) read the same.
#include "apps/svg.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "apps/plot.h"

namespace scconv::apps {

std::string html_escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

namespace {
std::string hex(const Rgb& c) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x", c.r, c.g, c.b);
  return buf;
}

std::string num(double v) {  // coordinates: one decimal is plenty
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

const char* dash(LineStyle s) {
  return s == LineStyle::Dashed ? " stroke-dasharray=\"7 4\"" : s == LineStyle::Dotted ? " stroke-dasharray=\"2 3\"" : "";
}

struct Range {
  double lo = INFINITY, hi = -INFINITY;
  void add(double v) {
    if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  }
  void settle(double pad_fraction) {
    if (!(hi >= lo)) lo = 0, hi = 1;
    if (hi == lo) hi = lo + (lo == 0 ? 1 : std::fabs(lo) * 0.1);
    const double pad = (hi - lo) * pad_fraction;
    lo -= pad, hi += pad;
  }
};
}  // namespace

// ---- the chart ----

std::string svg_line_chart(const SvgChart& chart, int width, int height) {
  height = std::max(height, int(36 + 18 * chart.series.size() + 24));  // room for the legend
  Range xr, yr;
  for (auto& s : chart.series)
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i)
      if (std::isfinite(s.y[i])) xr.add(s.x[i]), yr.add(s.y[i]);
  xr.settle(0);
  yr.settle(0.05);
  const double left = 70, top = 36, right = 200, bottom = 50;  // the legend sits in `right`
  const double pw = width - left - right, ph = height - top - bottom;
  auto px = [&](double v) { return left + (v - xr.lo) / (xr.hi - xr.lo) * pw; };
  auto py = [&](double v) { return top + ph - (v - yr.lo) / (yr.hi - yr.lo) * ph; };
  auto label = [&](double v) { return chart.percent ? tick_label(100 * v) + "%" : tick_label(v); };

  std::ostringstream o;
  o << "<svg class=\"chart\" data-metric=\"" << html_escape(chart.metric) << "\" xmlns=\"http://www.w3.org/2000/svg\" "
    << "width=\"" << width << "\" height=\"" << height << "\" viewBox=\"0 0 " << width << " " << height
    << "\" role=\"img\" aria-label=\"" << html_escape(chart.title) << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
    << "<title>" << html_escape(chart.title) << "</title>\n"
    << "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n"
    << "<text x=\"" << num(left + pw / 2) << "\" y=\"22\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\">"
    << html_escape(chart.title) << "</text>\n";
  // grid, ticks and tick labels
  o << "<g class=\"y-ticks\">\n";
  for (double t : nice_ticks(yr.lo, yr.hi, 6)) {
    const double y = py(t);
    o << "<line x1=\"" << num(left) << "\" x2=\"" << num(left + pw) << "\" y1=\"" << num(y) << "\" y2=\"" << num(y)
      << "\" stroke=\"#e1e1e1\"/><line x1=\"" << num(left - 5) << "\" x2=\"" << num(left) << "\" y1=\"" << num(y)
      << "\" y2=\"" << num(y) << "\" stroke=\"#000\"/><text x=\"" << num(left - 8) << "\" y=\"" << num(y + 4)
      << "\" text-anchor=\"end\">" << html_escape(label(t)) << "</text>\n";
  }
  o << "</g>\n<g class=\"x-ticks\">\n";
  for (double t : nice_ticks(xr.lo, xr.hi, 8)) {
    if (chart.integer_x && t != std::floor(t)) continue;
    const double x = px(t);
    o << "<line x1=\"" << num(x) << "\" x2=\"" << num(x) << "\" y1=\"" << num(top) << "\" y2=\"" << num(top + ph)
      << "\" stroke=\"#f0f0f0\"/><line x1=\"" << num(x) << "\" x2=\"" << num(x) << "\" y1=\"" << num(top + ph)
      << "\" y2=\"" << num(top + ph + 5) << "\" stroke=\"#000\"/><text x=\"" << num(x) << "\" y=\"" << num(top + ph + 19)
      << "\" text-anchor=\"middle\">" << html_escape(tick_label(t)) << "</text>\n";
  }
  o << "</g>\n<rect x=\"" << num(left) << "\" y=\"" << num(top) << "\" width=\"" << num(pw) << "\" height=\"" << num(ph)
    << "\" fill=\"none\" stroke=\"#000\"/>\n"
    << "<text x=\"" << num(left + pw / 2) << "\" y=\"" << height - 10 << "\" text-anchor=\"middle\">"
    << html_escape(chart.x_label) << "</text>\n"
    << "<text transform=\"translate(16 " << num(top + ph / 2) << ") rotate(-90)\" text-anchor=\"middle\">"
    << html_escape(chart.y_label) << "</text>\n";
  // the series: a polyline per unbroken stretch, a marker with a tooltip per point
  for (auto& s : chart.series) {
    const std::string col = hex(series_colour(s.colour));
    o << "<g class=\"series\" data-name=\"" << html_escape(s.name) << "\">\n";
    std::string pts;
    auto flush = [&] {
      if (!pts.empty())
        o << "<polyline fill=\"none\" stroke=\"" << col << "\" stroke-width=\"2\"" << dash(s.style) << " points=\"" << pts
          << "\"/>\n";
      pts.clear();
    };
    const bool markers = s.x.size() <= 60;
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      if (!std::isfinite(s.y[i])) {
        flush();
        continue;
      }
      if (!pts.empty()) pts += ' ';
      pts += num(px(s.x[i]));
      pts += ',';
      pts += num(py(s.y[i]));
      if (markers)
        o << "<circle cx=\"" << num(px(s.x[i])) << "\" cy=\"" << num(py(s.y[i])) << "\" r=\"2.5\" fill=\"" << col
          << "\"><title>" << html_escape(s.name) << ": " << tick_label(s.x[i]) << ", " << html_escape(label(s.y[i]))
          << "</title></circle>\n";
    }
    flush();
    o << "</g>\n";
  }
  // the legend, right of the plot
  o << "<g class=\"legend\">\n";
  double ly = top + 8;
  for (auto& s : chart.series) {
    o << "<line x1=\"" << num(left + pw + 12) << "\" x2=\"" << num(left + pw + 36) << "\" y1=\"" << num(ly) << "\" y2=\""
      << num(ly) << "\" stroke=\"" << hex(series_colour(s.colour)) << "\" stroke-width=\"2\"" << dash(s.style)
      << "/><text x=\"" << num(left + pw + 42) << "\" y=\"" << num(ly + 4) << "\">" << html_escape(s.name) << "</text>\n";
    ly += 18;
  }
  o << "</g>\n</svg>\n";
  return o.str();
}

}  // namespace scconv::apps
