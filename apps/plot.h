// apps/plot.h: a small RGB canvas for the figures of `scconv explain` and `scconv report --png`:
// rectangles, lines, text (stb_easy_font's segment font, scaled), colour maps, and PNG output
// (stb_image_write, written atomically). Then the charts built on it: a bar chart (one or two
// series), a line chart (several named series over epochs) and a colour-bar legend.
// Coordinates are pixels, (0, 0) at the top left.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace scconv::apps {

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
  bool operator==(const Rgb& o) const { return r == o.r && g == o.g && b == o.b; }
};
inline constexpr Rgb kWhite{255, 255, 255}, kBlack{0, 0, 0}, kGrey{150, 150, 150}, kLightGrey{225, 225, 225};
// Series colours (Tableau's first eight): blue, orange, green, red, purple, brown, pink, grey.
inline constexpr Rgb kSeries[8] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44},   {214, 39, 40},
                                   {148, 103, 189}, {140, 86, 75}, {227, 119, 194}, {127, 127, 127}};
const Rgb& series_colour(size_t i);

// t in [0, 1] -> a perceptually ordered map (dark blue -> green -> yellow, after viridis).
Rgb sequential_colour(double t);
// t in [-1, 1] -> blue (negative), white (0), red (positive).
Rgb diverging_colour(double t);

class Canvas {
 public:
  Canvas(int width, int height, Rgb background = kWhite);
  int width() const { return w_; }
  int height() const { return h_; }
  Rgb at(int x, int y) const;
  void set(int x, int y, Rgb c);  // outside the canvas: ignored
  void rect(int x, int y, int w, int h, Rgb c);
  void frame(int x, int y, int w, int h, Rgb c);  // a one-pixel outline
  void line(int x0, int y0, int x1, int y1, Rgb c, int thickness = 1);
  // Text with its top-left corner at (x, y); `scale` 1 is ~7 pixels high.
  void text(int x, int y, const std::string& s, Rgb c = kBlack, int scale = 1);
  static int text_width(const std::string& s, int scale = 1);
  static int text_height(int scale = 1) { return 7 * scale; }
  // Copies another canvas with its top-left corner at (x, y).
  void paste(const Canvas& src, int x, int y);
  std::string png() const;  // encoded PNG bytes
  const std::vector<uint8_t>& pixels() const { return px_; }  // RGB, row by row

 private:
  int w_, h_;
  std::vector<uint8_t> px_;
};

// Writes the canvas as a PNG file (atomically: a reader never sees half a file).
void write_png(const std::string& path, const Canvas& c);

// A number for axis ticks and labels: 3 significant digits, no trailing zeros.
std::string tick_label(double v);
// Round tick values (steps of 1, 2 or 5 times a power of ten) covering [lo, hi], about n of them.
std::vector<double> nice_ticks(double lo, double hi, int n);

// ---- charts ----
struct BarChart {
  std::string title, x_label, y_label;
  std::vector<std::string> series_names;  // one or two series (a legend when named)
  std::vector<std::vector<double>> series;  // [series][bar], all the same length
  double y_min = 0;                          // the bars rise from y_min (values below it: none)
  double y_max = 0;                          // 0: the largest value, rounded up
};
// Where the chart drew what, for tests and for placing labels.
struct BarLayout {
  int plot_x = 0, plot_y = 0, plot_w = 0, plot_h = 0;  // the plotting area
  std::vector<std::vector<int>> bar_x;                  // [series][bar]: left edge of each bar
  int bar_w = 0;
  double y_min = 0, y_max = 1;
};
Canvas draw_bar_chart(const BarChart& chart, BarLayout* layout = nullptr, int width = 640, int height = 320);

struct LineChart {
  std::string title, x_label, y_label;
  std::vector<std::string> names;                 // one per series (the legend)
  std::vector<std::vector<double>> xs, ys;        // [series][point]
};
Canvas draw_line_chart(const LineChart& chart, int width = 640, int height = 360);

// A horizontal colour bar from lo to hi with its end and middle values and a caption.
Canvas draw_colour_bar(double lo, double hi, bool diverging, const std::string& caption, int width = 360);

}  // namespace scconv::apps
