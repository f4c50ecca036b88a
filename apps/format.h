// apps/format.h: the small number formats the apps print: fmt("%.2f", v), counts as 0.27M /
// 40.8M / 1.2G (parameters, MACs), durations as H:MM:SS.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>

namespace scconv::apps {

inline std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}
inline std::string human(double v) {  // 0.27M, 40.8M, 1.2G
  if (v >= 1e9) return fmt("%.2fG", v / 1e9);
  if (v >= 1e6) return fmt("%.2fM", v / 1e6);
  if (v >= 1e3) return fmt("%.1fK", v / 1e3);
  return fmt("%.0f", v);
}
inline std::string hms(double seconds) {  // rounded to the second
  const int64_t t = std::isfinite(seconds) ? std::llround(seconds) : 0;
  char buf[48];
  std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", (long long)(t / 3600), (long long)(t / 60 % 60), (long long)(t % 60));
  return buf;
}

}  // namespace scconv::apps
