// apps/svg.h: line charts as inline SVG for `scconv report`'s HTML page: a frame, round ticks
// on both axes with grid lines, axis labels, a title and a legend beside the plot; several
// named series, each a colour and a line style (runs overlaid: one colour per run, train
// dashed, test solid). No scripts and no external files: the page opens offline.
#pragma once
#include <string>
#include <vector>

namespace scconv::apps {

enum class LineStyle { Solid, Dashed, Dotted };

struct SvgSeries {
  std::string name;          // the legend entry
  std::vector<double> x, y;  // points (non-finite y: a gap)
  size_t colour = 0;         // index into the palette (series_colour in apps/plot.h)
  LineStyle style = LineStyle::Solid;
};

struct SvgChart {
  std::string metric;  // the chart's data-metric attribute ("loss", "accuracy", "lr")
  std::string title, x_label, y_label;
  std::vector<SvgSeries> series;
  bool percent = false;    // y values are fractions shown as percentages
  bool integer_x = false;  // x ticks only at whole numbers (epochs)
};

// The <svg> element (width x height pixels, scalable by its viewBox).
std::string svg_line_chart(const SvgChart& chart, int width = 760, int height = 380);

// Text for HTML and SVG: & < > " ' escaped.
std::string html_escape(const std::string& s);

}  // namespace scconv::apps
