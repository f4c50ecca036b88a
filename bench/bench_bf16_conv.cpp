// bench/bench_bf16_conv.cpp: each convolution pass of the CIFAR ResNets (ResNet-20/56 and the
// SCConv units' GWC and PWC at alpha 1/2, squeeze 2, groups 2), batch 128, channels-last, timed
// on the CPU backend in float32 and in bf16, interleaved; prints ms per pass and the bf16 speed-up.
// What core/cpu/dnnl.cpp's bf16_slower() table routes to float32 comes from this run: the table is
// off here (every bf16 pass is oneDNN's bf16), and a '<' marks the passes it sends to float32.
// Not a test: no assertions.
//   build/release/bench_bf16_conv [--threads N] [--rounds R]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/cpu/cpu_backend.h"
#include "core/parallel.h"
#include "core/rng.h"

using namespace scconv;

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct Shape4 {
  const char* what;
  int64_t c_in, c_out, hw, k, stride, groups;
};

// ResNet-20's six 3x3 shapes (ResNet-56 has the same ones), then SCConv's at each stage width
// (CRU: the upper half squeezed 2x then GWC 3x3 groups 2 and PWC1 1x1; the lower quarter's PWC2),
// then three of the CIFAR ResNet-50's first bottleneck stage.
const Shape4 kShapes[] = {
    {"stem 3->16", 3, 16, 32, 3, 1, 1},        {"stage1 16->16", 16, 16, 32, 3, 1, 1},
    {"down 16->32 s2", 16, 32, 32, 3, 2, 1},   {"stage2 32->32", 32, 32, 16, 3, 1, 1},
    {"down 32->64 s2", 32, 64, 16, 3, 2, 1},   {"stage3 64->64", 64, 64, 8, 3, 1, 1},
    {"GWC 4->16 g2", 4, 16, 32, 3, 1, 2},      {"PWC1 4->16", 4, 16, 32, 1, 1, 1},
    {"PWC2 4->12", 4, 12, 32, 1, 1, 1},        {"GWC 8->32 g2", 8, 32, 16, 3, 1, 2},
    {"PWC1 8->32", 8, 32, 16, 1, 1, 1},        {"PWC2 8->24", 8, 24, 16, 1, 1, 1},
    {"GWC 16->64 g2", 16, 64, 8, 3, 1, 2},     {"PWC1 16->64", 16, 64, 8, 1, 1, 1},
    {"PWC2 16->48", 16, 48, 8, 1, 1, 1},       {"bneck 64->256 1x1", 64, 256, 32, 1, 1, 1},
    {"bneck 256->64 1x1", 256, 64, 32, 1, 1, 1}, {"bneck 64->64 3x3", 64, 64, 32, 3, 1, 1},
};

// Median seconds per call of fa and of fb, alternating calls.
std::pair<double, double> interleaved(const std::function<void()>& fa, const std::function<void()>& fb, int rounds) {
  fa(), fb(), fa(), fb();
  std::vector<double> ta, tb;
  for (int r = 0; r < rounds; ++r) {
    double t = now();
    fa();
    ta.push_back(now() - t);
    t = now();
    fb();
    tb.push_back(now() - t);
  }
  std::sort(ta.begin(), ta.end());
  std::sort(tb.begin(), tb.end());
  return {ta[ta.size() / 2], tb[tb.size() / 2]};
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 2, rounds = 15;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--rounds")) rounds = std::atoi(argv[i + 1]);
  }
  set_num_threads(threads);
  cpu::set_bf16_table_enabled(false);
  std::printf("batch 128, channels-last, %d thread(s), native bf16: %s; ms per pass (median of %d), fp32 / bf16\n",
              threads, cpu_bf16_available() ? "yes" : "no (bf16 runs float32)", rounds);
  std::printf("%-16s | %-22s | %-22s | %-22s\n", "shape", "forward", "backward-data", "backward-weights");
  Backend& be = cpu_backend();
  Generator g(1);
  double sum32 = 0, sum16 = 0, sum_routed = 0;
  for (const Shape4& s : kShapes) {
    const Tensor x = g.normal({128, s.c_in, s.hw, s.hw}).contiguous(MemoryFormat::ChannelsLast);
    const Tensor w = g.normal({s.c_out, s.c_in / s.groups, s.k, s.k}, 0, 0.1);
    Conv2dParams p;
    p.stride = {s.stride, s.stride};
    p.padding = {s.k / 2, s.k / 2};
    p.groups = s.groups;
    Conv2dParams p16 = p;
    p16.precision = Precision::BFloat16;
    const Tensor gy = be.conv2d(x, w, Tensor(), p);  // (a gradient of the output's shape and layout)
    std::string row;
    char cell[64];
    const ConvDims d = conv_dims(x.shape(), w.shape(), p);
    auto pass = [&](cpu::ConvPass which, auto run) {
      auto [a, b] = interleaved([&] { run(p); }, [&] { run(p16); }, rounds);
      const bool routed = cpu::bf16_slower(d, p16, which);
      sum32 += a, sum16 += b, sum_routed += routed ? a : b;
      std::snprintf(cell, sizeof cell, " | %6.2f %6.2f %5.2fx %c", 1e3 * a, 1e3 * b, a / b, routed ? '<' : ' ');
      row += cell;
    };
    pass(cpu::ConvPass::Forward, [&](const Conv2dParams& q) { be.conv2d(x, w, Tensor(), q); });
    pass(cpu::ConvPass::BackwardData, [&](const Conv2dParams& q) { be.conv2d_backward_data(gy, w, x.shape(), q); });
    pass(cpu::ConvPass::BackwardWeights,
         [&](const Conv2dParams& q) { be.conv2d_backward_weights(gy, x, w.shape(), false, q); });
    std::printf("%-16s%s\n", s.what, row.c_str());
  }
  std::printf("all passes: %.2f ms fp32, %.2f ms bf16 (%.2fx), %.2f ms as the table routes them (%.2fx)\n",
              1e3 * sum32, 1e3 * sum16, sum32 / sum16, 1e3 * sum_routed, sum32 / sum_routed);
  return 0;
}
