// apps/explain_figures.cpp: the PNG figures of `scconv explain` for one SCConv unit
// (apps/explain.h): the input image; channel grids of the SRU's X, R, W1, W2, X1, X2 and its
// reconstructed output (one colour scale per grid family, with a colour bar); the paper's Fig. 5
// panel (feature maps before and after the SRU, for its most and least informative channels);
// bar charts of w, of the informative fraction and of beta1 / beta2 per channel.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numeric>

#include "apps/explain.h"
#include "apps/plot.h"

namespace scconv::apps {

namespace {

// One image's maps of a captured (N, C, H, W) tensor, as float64 values.
struct Maps {
  int64_t C = 0, H = 0, W = 0;
  std::vector<double> v;  // (C, H, W)
  double at(int64_t c, int64_t y, int64_t x) const { return v[size_t((c * H + y) * W + x)]; }
};
Maps maps_of(const Tensor& t, int64_t n) {
  Maps m{t.size(1), t.size(2), t.size(3), {}};
  const std::vector<double> all = t.to(DType::F64).contiguous().to_vector<double>();
  const size_t per = size_t(m.C * m.H * m.W);
  m.v.assign(all.begin() + long(per * size_t(n)), all.begin() + long(per * size_t(n + 1)));
  return m;
}
double min_of(const Maps& m) {
  double a = 0;
  for (double x : m.v)
    if (std::isfinite(x)) a = std::min(a, x);
  return a;
}
double max_abs(const Maps& m) {
  double a = 0;
  for (double x : m.v)
    if (std::isfinite(x)) a = std::max(a, std::fabs(x));
  return a > 0 ? a : 1;
}

// How a map value becomes a colour: diverging around 0 within +-lim, or sequential in [0, 1].
struct Scale {
  bool diverging;
  double lim;  // diverging: the value drawn darkest; sequential: the top of [0, lim]
  Rgb colour(double v) const { return diverging ? diverging_colour(v / lim) : sequential_colour(v / lim); }
};

// "c7": a channel's label (built with snprintf: GCC 12 warns falsely on "c" + std::string)
std::string channel_label(int64_t c) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "c%lld", (long long)c);
  return buf;
}

int pixel_scale(int64_t H, int64_t W) { return int(std::max<int64_t>(1, 64 / std::max(H, W))); }

void draw_map(Canvas& c, const Maps& m, int64_t ch, int x0, int y0, int s, const Scale& sc) {
  for (int64_t y = 0; y < m.H; ++y)
    for (int64_t x = 0; x < m.W; ++x) c.rect(x0 + int(x) * s, y0 + int(y) * s, s, s, sc.colour(m.at(ch, y, x)));
}

Canvas channel_grid(const std::string& title, const Maps& m, const Scale& sc, const std::string& caption) {
  const int s = pixel_scale(m.H, m.W), cw = int(m.W) * s, chh = int(m.H) * s;
  const int cols = int(std::min<int64_t>(m.C, 8)), rows = int((m.C + cols - 1) / cols);
  const int pad = 6, label = 10, top = 28;
  const int width = std::max(380, cols * (cw + pad) + pad), height = top + rows * (chh + label + pad) + 48;
  Canvas c(width, height);
  c.text(pad, 8, title, kBlack, 2);
  for (int64_t ch = 0; ch < m.C; ++ch) {
    const int col = int(ch % cols), row = int(ch / cols);
    const int x = pad + col * (cw + pad), y = top + row * (chh + label + pad);
    c.text(x, y, channel_label(ch), kGrey);
    draw_map(c, m, ch, x, y + label, s, sc);
  }
  c.paste(draw_colour_bar(sc.diverging ? -sc.lim : 0, sc.lim, sc.diverging, caption), pad, height - 44);
  return c;
}

Canvas input_figure(const Tensor& images_u8, int64_t n, const std::string& tag) {
  const int64_t H = images_u8.size(2), W = images_u8.size(3);
  const int s = int(std::max<int64_t>(1, 128 / std::max(H, W)));
  Canvas c(std::max(int(W) * s + 12, 140), int(H) * s + 30);
  c.text(6, 6, "input " + tag);
  const uint8_t* p = images_u8.data<uint8_t>() + n * 3 * H * W;
  for (int64_t y = 0; y < H; ++y)
    for (int64_t x = 0; x < W; ++x)
      c.rect(6 + int(x) * s, 20 + int(y) * s, s, s,
             Rgb{p[y * W + x], p[H * W + y * W + x], p[2 * H * W + y * W + x]});
  return c;
}

// Fig. 5: feature maps before (X) and after (the SRU's output) for the k channels with the
// largest w (the SRU's informative ones) and the k with the smallest.
Canvas fig5_panel(const Maps& X, const Maps& out, const std::vector<double>& w) {
  std::vector<int64_t> order(w.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return w[size_t(a)] > w[size_t(b)]; });
  const int64_t k = std::min<int64_t>(6, int64_t(w.size()) / 2);
  const int s = pixel_scale(X.H, X.W), cw = int(X.W) * s, chh = int(X.H) * s, pad = 6, left = 60;
  const int block = 2 * (chh + 12) + 34;
  Canvas c(std::max(420, left + int(k) * (cw + pad) + pad), 30 + 2 * block + 48);
  c.text(pad, 8, "SRU: feature maps before and after", kBlack, 2);
  const Scale sc{std::min(min_of(X), min_of(out)) < 0, std::max(max_abs(X), max_abs(out))};
  for (int part = 0; part < 2; ++part) {
    const int y0 = 30 + part * block;
    c.text(pad, y0, part == 0 ? "informative channels (largest w)" : "less informative channels (smallest w)");
    for (int64_t i = 0; i < k; ++i) {
      const int64_t ch = part == 0 ? order[size_t(i)] : order[order.size() - 1 - size_t(i)];
      const int x = left + int(i) * (cw + pad);
      c.text(x, y0 + 12, channel_label(ch), kGrey);
      char wl[32];
      std::snprintf(wl, sizeof wl, "w=%.4g", w[size_t(ch)]);
      c.text(x, y0 + 21, wl, kGrey);
      draw_map(c, X, ch, x, y0 + 32, s, sc);
      draw_map(c, out, ch, x, y0 + 32 + chh + 12, s, sc);
    }
    c.text(pad, y0 + 32 + chh / 2, "before");
    c.text(pad, y0 + 32 + chh + 12 + chh / 2, "after");
  }
  c.paste(draw_colour_bar(sc.diverging ? -sc.lim : 0, sc.lim, sc.diverging, "value (X and the SRU output share this scale)"),
          pad, c.height() - 44);
  return c;
}

}  // namespace

std::vector<std::string> write_unit_figures(const std::string& dir, const SCConvUnit& u, const Capture& cap,
                                            const UnitStats& s, const Tensor& images_u8,
                                            const std::vector<std::string>& tags) {
  namespace fs = std::filesystem;
  std::vector<std::string> files;
  auto save = [&](const std::string& name, const Canvas& c) {
    const std::string path = (fs::path(dir) / name).string();
    write_png(path, c);
    files.push_back(path);
  };
  for (size_t n = 0; n < tags.size(); ++n) {
    const std::string& tag = tags[n];
    save("input_" + tag + ".png", input_figure(images_u8, int64_t(n), tag));
    if (!u.sru) continue;
    const std::string m = u.sru->name();
    const Maps X = maps_of(cap.get(m, "X"), int64_t(n)), out = maps_of(cap.get(m, "output"), int64_t(n));
    // X, X1 = W1 X, X2 = W2 X and the output are in X's units: one scale for all four, diverging
    // around 0 when X has negative values (after a ReLU it has none: sequential from 0)
    const Scale values{std::min(min_of(X), min_of(out)) < 0, std::max(max_abs(X), max_abs(out))}, weights{false, 1.0};
    const std::string vcap = "value (one scale for X, X1, X2 and the output)", wcap = "weight in [0, 1]";
    save("sru_X_" + tag + ".png", channel_grid(u.sru->name() + ": X, the SRU's input", X, values, vcap));
    save("sru_R_" + tag + ".png", channel_grid("R = sigmoid(w * GN(X)): importance", maps_of(cap.get(m, "R"), int64_t(n)), weights, wcap));
    save("sru_W1_" + tag + ".png", channel_grid("W1: informative weights", maps_of(cap.get(m, "W1"), int64_t(n)), weights, wcap));
    save("sru_W2_" + tag + ".png", channel_grid("W2: less informative weights", maps_of(cap.get(m, "W2"), int64_t(n)), weights, wcap));
    save("sru_X1_" + tag + ".png", channel_grid("X1 = W1 * X: informative part", maps_of(cap.get(m, "X1"), int64_t(n)), values, vcap));
    save("sru_X2_" + tag + ".png", channel_grid("X2 = W2 * X: less informative part", maps_of(cap.get(m, "X2"), int64_t(n)), values, vcap));
    save("sru_output_" + tag + ".png", channel_grid("SRU output: cross-reconstructed X1, X2", out, values, vcap));
    save("fig5_" + tag + ".png", fig5_panel(X, out, s.w));
  }
  if (u.sru) {
    BarChart w{"SRU channel weights w", "channel", "w", {}, {s.w}, 0, 0};
    save("bars_w.png", draw_bar_chart(w));
    BarChart f{"share of positions gated informative (R > t)", "channel", "fraction", {}, {s.informative_fraction}, 0, 1};
    save("bars_informative.png", draw_bar_chart(f));
  }
  if (u.cru) {
    BarChart b{"CRU fuse weights per channel (mean over images)", "channel", "beta", {"beta1 (upper)", "beta2 (lower)"},
               {s.beta1, s.beta2}, 0, 0};
    save("bars_beta.png", draw_bar_chart(b));
  }
  return files;
}

}  // namespace scconv::apps
