// apps/plot.cpp: the canvas, colour maps and charts of apps/plot.h. stb_image_write (Debian's
// libstb-dev) encodes the PNGs; stb_easy_font gives the text as quads, which are filled here.
#include "apps/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "core/error.h"
#include "core/file_io.h"

#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#include <stb_image_write.h>
#include <stb_easy_font.h>

namespace scconv::apps {

const Rgb& series_colour(size_t i) { return kSeries[i % 8]; }

namespace {
Rgb mix(Rgb a, Rgb b, double t) {
  auto m = [t](uint8_t x, uint8_t y) { return uint8_t(std::lround(x + (double(y) - double(x)) * t)); };
  return {m(a.r, b.r), m(a.g, b.g), m(a.b, b.b)};
}
Rgb ramp(const Rgb* stops, int n, double t) {
  if (!(t >= 0)) t = 0;  // NaN too
  if (t > 1) t = 1;
  const double p = t * (n - 1);
  const int i = std::min(n - 2, int(p));
  return mix(stops[i], stops[i + 1], p - i);
}
}  // namespace

Rgb sequential_colour(double t) {
  static const Rgb stops[] = {{68, 1, 84}, {59, 82, 139}, {33, 145, 140}, {94, 201, 98}, {253, 231, 37}};
  return ramp(stops, 5, t);
}

Rgb diverging_colour(double t) {
  static const Rgb stops[] = {{33, 102, 172}, {146, 197, 222}, {247, 247, 247}, {244, 165, 130}, {178, 24, 43}};
  return ramp(stops, 5, (t + 1) / 2);
}

// ---- canvas ----

Canvas::Canvas(int width, int height, Rgb background) : w_(width), h_(height) {
  SCCONV_CHECK(width > 0 && height > 0 && width <= 16384 && height <= 16384,
               "plot: canvas size " << width << "x" << height << " out of range");
  px_.resize(size_t(w_) * h_ * 3);
  rect(0, 0, w_, h_, background);
}

Rgb Canvas::at(int x, int y) const {
  const size_t i = (size_t(y) * w_ + x) * 3;
  return {px_[i], px_[i + 1], px_[i + 2]};
}

void Canvas::set(int x, int y, Rgb c) {
  if (x < 0 || y < 0 || x >= w_ || y >= h_) return;
  const size_t i = (size_t(y) * w_ + x) * 3;
  px_[i] = c.r, px_[i + 1] = c.g, px_[i + 2] = c.b;
}

void Canvas::rect(int x, int y, int w, int h, Rgb c) {
  const int x0 = std::max(0, x), y0 = std::max(0, y), x1 = std::min(w_, x + w), y1 = std::min(h_, y + h);
  for (int j = y0; j < y1; ++j)
    for (int i = x0; i < x1; ++i) set(i, j, c);
}

void Canvas::frame(int x, int y, int w, int h, Rgb c) {
  rect(x, y, w, 1, c);
  rect(x, y + h - 1, w, 1, c);
  rect(x, y, 1, h, c);
  rect(x + w - 1, y, 1, h, c);
}

void Canvas::line(int x0, int y0, int x1, int y1, Rgb c, int thickness) {
  const int steps = std::max(std::abs(x1 - x0), std::abs(y1 - y0));
  for (int s = 0; s <= steps; ++s) {
    const double t = steps ? double(s) / steps : 0;
    const int x = int(std::lround(x0 + (x1 - x0) * t)), y = int(std::lround(y0 + (y1 - y0) * t));
    rect(x - thickness / 2, y - thickness / 2, thickness, thickness, c);
  }
}

void Canvas::text(int x, int y, const std::string& s, Rgb c, int scale) {
  std::vector<char> str(s.begin(), s.end());
  str.push_back('\0');
  static thread_local std::vector<char> quads(64 * 1024);
  const int n = stb_easy_font_print(0, 0, str.data(), nullptr, quads.data(), int(quads.size()));
  for (int q = 0; q < n; ++q) {  // 4 vertices of 16 bytes (x, y, z floats, colour) per quad
    const float* v0 = reinterpret_cast<const float*>(quads.data() + q * 64);
    const float* v2 = reinterpret_cast<const float*>(quads.data() + q * 64 + 32);
    rect(x + int(v0[0]) * scale, y + int(v0[1]) * scale, int(v2[0] - v0[0]) * scale, int(v2[1] - v0[1]) * scale, c);
  }
}

int Canvas::text_width(const std::string& s, int scale) {
  std::vector<char> str(s.begin(), s.end());
  str.push_back('\0');
  return stb_easy_font_width(str.data()) * scale;
}

void Canvas::paste(const Canvas& src, int x, int y) {
  for (int j = 0; j < src.h_; ++j)
    for (int i = 0; i < src.w_; ++i) set(x + i, y + j, src.at(i, j));
}

std::string Canvas::png() const {
  std::string out;
  auto sink = [](void* ctx, void* data, int size) {
    static_cast<std::string*>(ctx)->append(static_cast<const char*>(data), size_t(size));
  };
  SCCONV_CHECK(stbi_write_png_to_func(sink, &out, w_, h_, 3, px_.data(), w_ * 3) != 0,
               "plot: PNG encoding failed for a " << w_ << "x" << h_ << " image");
  return out;
}

void write_png(const std::string& path, const Canvas& c) { write_file_atomic(path, c.png()); }

std::string tick_label(double v) {
  if (std::fabs(v) < 1e-12) return "0";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

// ---- axes ----

std::vector<double> nice_ticks(double lo, double hi, int n) {
  if (!(hi > lo)) hi = lo + 1;
  const double raw = (hi - lo) / n, mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  std::vector<double> t;
  for (double v = std::ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) t.push_back(std::fabs(v) < step * 1e-9 ? 0 : v);
  return t;
}

namespace {
double round_up(double v) {
  if (!(v > 0)) return 1;
  const double mag = std::pow(10.0, std::floor(std::log10(v)));
  for (double m : {1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0})
    if (m * mag >= v * (1 - 1e-12)) return m * mag;
  return 10 * mag;
}
struct Axes {
  int x, y, w, h;
  double x_lo, x_hi, y_lo, y_hi;
  int px(double v) const { return x + int(std::lround((v - x_lo) / (x_hi - x_lo) * (w - 1))); }
  int py(double v) const { return y + h - 1 - int(std::lround((v - y_lo) / (y_hi - y_lo) * (h - 1))); }
};
// The frame, the y ticks with grid lines, the title and the axis labels.
void draw_axes(Canvas& c, const Axes& a, const std::string& title, const std::string& x_label,
               const std::string& y_label) {
  for (double t : nice_ticks(a.y_lo, a.y_hi, 5)) {
    const int y = a.py(t);
    c.rect(a.x, y, a.w, 1, kLightGrey);
    c.rect(a.x - 4, y, 4, 1, kBlack);
    const std::string s = tick_label(t);
    c.text(a.x - 6 - Canvas::text_width(s), y - 3, s);
  }
  c.frame(a.x, a.y, a.w, a.h, kBlack);
  c.text((c.width() - Canvas::text_width(title, 2)) / 2, 8, title, kBlack, 2);
  c.text(a.x + (a.w - Canvas::text_width(x_label)) / 2, c.height() - 12, x_label);
  c.text(4, a.y - 14, y_label);
}
void draw_legend(Canvas& c, const std::vector<std::string>& names, int right, int top) {
  int y = top;
  for (size_t i = 0; i < names.size(); ++i, y += 12) {
    const int w = Canvas::text_width(names[i]);
    c.rect(right - w - 18, y, 10, 8, series_colour(i));
    c.text(right - w - 4, y, names[i]);
  }
}
}  // namespace

Canvas draw_bar_chart(const BarChart& chart, BarLayout* layout, int width, int height) {
  SCCONV_CHECK(!chart.series.empty() && chart.series.size() <= 4, "plot: a bar chart takes 1 to 4 series");
  const size_t n = chart.series[0].size();
  for (auto& s : chart.series) SCCONV_CHECK(s.size() == n && n > 0, "plot: bar series of different or zero length");
  double hi = chart.y_max;
  if (!(hi > chart.y_min)) {
    hi = chart.y_min;
    for (auto& s : chart.series)
      for (double v : s)
        if (std::isfinite(v)) hi = std::max(hi, v);
    hi = chart.y_min + round_up(hi - chart.y_min);
  }
  Canvas c(width, height);
  Axes a{56, 40, width - 72, height - 40 - 34, 0, double(n), chart.y_min, hi};
  draw_axes(c, a, chart.title, chart.x_label, chart.y_label);
  const int groups_w = a.w - 2, slot = std::max(1, groups_w / int(n));
  const int k = int(chart.series.size()), bar_w = std::max(1, (slot - std::max(1, slot / 5)) / k);
  BarLayout l{a.x, a.y, a.w, a.h, {}, bar_w, chart.y_min, hi};
  l.bar_x.assign(size_t(k), std::vector<int>(n));
  for (size_t b = 0; b < n; ++b) {
    const int x0 = a.x + 1 + int(b) * slot + std::max(1, slot / 10);
    for (int s = 0; s < k; ++s) {
      const double v = chart.series[size_t(s)][b];
      const int x = x0 + s * bar_w;
      l.bar_x[size_t(s)][b] = x;
      if (std::isfinite(v) && v > chart.y_min) {
        const int top = a.py(std::min(v, hi));
        c.rect(x, top, bar_w, a.y + a.h - 1 - top, series_colour(size_t(s)));
      }
    }
    if (n <= 32 || b % ((n + 15) / 16) == 0) {  // x tick labels: the bar index
      const std::string s = std::to_string(b);
      c.text(x0 + (k * bar_w - Canvas::text_width(s)) / 2, a.y + a.h + 4, s);
    }
  }
  if (!chart.series_names.empty()) draw_legend(c, chart.series_names, a.x + a.w - 4, a.y + 4);
  if (layout) *layout = l;
  return c;
}

Canvas draw_line_chart(const LineChart& chart, int width, int height) {
  double x_lo = INFINITY, x_hi = -INFINITY, y_lo = INFINITY, y_hi = -INFINITY;
  for (size_t s = 0; s < chart.ys.size(); ++s)
    for (size_t i = 0; i < chart.ys[s].size(); ++i) {
      if (!std::isfinite(chart.ys[s][i])) continue;
      x_lo = std::min(x_lo, chart.xs[s][i]), x_hi = std::max(x_hi, chart.xs[s][i]);
      y_lo = std::min(y_lo, chart.ys[s][i]), y_hi = std::max(y_hi, chart.ys[s][i]);
    }
  if (!(x_hi >= x_lo)) x_lo = 0, x_hi = 1, y_lo = 0, y_hi = 1;  // nothing to draw
  if (x_hi == x_lo) x_hi = x_lo + 1;
  if (y_hi == y_lo) y_hi = y_lo + (y_lo == 0 ? 1 : std::fabs(y_lo) * 0.1);
  const double pad = (y_hi - y_lo) * 0.05;
  Canvas c(width, height);
  Axes a{56, 40, width - 72, height - 40 - 34, x_lo, x_hi, y_lo - pad, y_hi + pad};
  draw_axes(c, a, chart.title, chart.x_label, chart.y_label);
  for (double t : nice_ticks(x_lo, x_hi, 6)) {
    const int x = a.px(t);
    c.rect(x, a.y + a.h, 1, 4, kBlack);
    const std::string s = tick_label(t);
    c.text(x - Canvas::text_width(s) / 2, a.y + a.h + 6, s);
  }
  for (size_t s = 0; s < chart.ys.size(); ++s) {
    const Rgb col = series_colour(s);
    for (size_t i = 0; i < chart.ys[s].size(); ++i) {
      if (!std::isfinite(chart.ys[s][i])) continue;
      const int x = a.px(chart.xs[s][i]), y = a.py(chart.ys[s][i]);
      c.rect(x - 2, y - 2, 5, 5, col);
      if (i > 0 && std::isfinite(chart.ys[s][i - 1]))
        c.line(a.px(chart.xs[s][i - 1]), a.py(chart.ys[s][i - 1]), x, y, col, 2);
    }
  }
  draw_legend(c, chart.names, a.x + a.w - 4, a.y + 4);
  return c;
}

Canvas draw_colour_bar(double lo, double hi, bool diverging, const std::string& caption, int width) {
  Canvas c(width, 40);
  const int x0 = 10, w = width - 20;
  for (int i = 0; i < w; ++i) {
    const double t = double(i) / (w - 1);
    c.rect(x0 + i, 14, 1, 12, diverging ? diverging_colour(2 * t - 1) : sequential_colour(t));
  }
  c.frame(x0, 14, w, 12, kBlack);
  c.text(x0, 2, caption);
  const std::string l = tick_label(lo), m = tick_label((lo + hi) / 2), h = tick_label(hi);
  c.text(x0, 29, l);
  c.text(x0 + (w - Canvas::text_width(m)) / 2, 29, m);
  c.text(x0 + w - Canvas::text_width(h), 29, h);
  return c;
}

}  // namespace scconv::apps
