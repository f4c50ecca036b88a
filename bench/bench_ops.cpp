// bench/bench_ops.cpp: op throughput on the CPU, at CIFAR ResNet layer sizes (batch 128).
// Prints, per op, the median time of forward and of forward + backward (through autograd,
// backward seeded with a given gradient), and the conv2d GFLOP/s. Not a test: no assertions.
//   build/release/bench_ops [--threads N] [--json] [--filter NAME]
// tools/bench_ops_torch.py runs the same list in PyTorch and prints ratios.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "core/parallel.h"

using namespace scconv;

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Median seconds of f over repetitions (>= 5, until ~0.4 s), after 2 warm-up calls.
double time_it(const std::function<void()>& f) {
  f();
  f();
  std::vector<double> ts;
  double start = now();
  while (ts.size() < 5 || (now() - start < 0.4 && ts.size() < 200)) {
    double t0 = now();
    f();
    ts.push_back(now() - t0);
  }
  std::sort(ts.begin(), ts.end());
  return ts[ts.size() / 2];
}

struct Bench {
  std::string name;
  std::vector<Shape> shapes;  // float inputs, all requiring grad
  std::function<Tensor(const std::vector<Tensor>&)> f;
  double flops = 0;  // of the forward, if meaningful
  bool channels_last = false;  // the 4-D inputs in channels-last (NHWC) memory
};

Tensor labels128() {
  std::vector<int64_t> v(128);
  for (int i = 0; i < 128; ++i) v[i] = i % 10;
  return Tensor::from_vector(v, {128});
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 0;
  bool json = false;
  std::string filter;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--json")) json = true;
    else if (!std::strcmp(argv[i], "--filter") && i + 1 < argc) filter = argv[++i];
    else {
      std::fprintf(stderr, "usage: bench_ops [--threads N] [--json] [--filter NAME]\n");
      return 2;
    }
  }
  set_num_threads(threads);
  using V = std::vector<Tensor>;
  const Shape act{128, 16, 32, 32};
  const double conv_flops = 2.0 * 128 * 16 * 16 * 9 * 32 * 32;
  std::vector<Bench> benches = {
      {"conv2d_16x16_3x3", {act, {16, 16, 3, 3}},
       [](const V& x) { return conv2d(x[0], x[1], Tensor(), {1, 1}, {1, 1}); }, conv_flops},
      {"conv2d_16x32_3x3_s2", {act, {32, 16, 3, 3}},
       [](const V& x) { return conv2d(x[0], x[1], Tensor(), {2, 2}, {1, 1}); }, conv_flops / 2},
      {"batch_norm_train", {act, {16}, {16}},
       [](const V& x) { return batch_norm(x[0], x[1], x[2], Tensor(), Tensor(), true); }},
      {"batch_norm_relu_nhwc", {act, {16}, {16}},
       [](const V& x) { return batch_norm_relu(x[0], x[1], x[2], Tensor(), Tensor(), true); }, 0, true},
      {"group_norm_g4", {act, {16}, {16}}, [](const V& x) { return group_norm(x[0], 4, x[1], x[2]); }},
      {"sru_fused", {act, {16}, {16}, {16}},
       [](const V& x) {
         SRUParams p;  // ResNet-20's first stage: 16 groups of one channel, soft gate
         return sru(x[0], x[1], x[2], x[3], p);
       }},
      {"sru_fused_nhwc", {act, {16}, {16}, {16}},
       [](const V& x) { return sru(x[0], x[1], x[2], x[3], SRUParams{}); }, 0, true},
      {"sru_fused_nhwc_64", {{128, 64, 8, 8}, {64}, {64}, {64}},
       [](const V& x) { return sru(x[0], x[1], x[2], x[3], SRUParams{}); }, 0, true},
      {"cru_fuse", {act, {128, 8, 32, 32}, {128, 8, 32, 32}},
       [](const V& x) { return cru_fuse(x[0], {x[1], x[2]}, math::CRUFuse::BranchSoftmax); }},
      {"cru_fuse_nhwc", {act, act},  // y2 in one part, as the CRU's fused path passes it
       [](const V& x) { return cru_fuse(x[0], {x[1]}, math::CRUFuse::BranchSoftmax); }, 0, true},
      {"cru_fuse_lower_nhwc", {act, {128, 4, 32, 32}, {16, 4, 1, 1}},  // Y2 from X_low' (the CRU's fused path)
       [](const V& x) { return cru_fuse_lower(x[0], x[1], x[2], math::CRUFuse::BranchSoftmax); }, 0, true},
      {"conv1x1_split_nhwc", {act, {4, 8, 1, 1}, {4, 8, 1, 1}},  // the CRU's two squeezes
       [](const V& x) {
         auto y = conv1x1_split(x[0], {x[1], x[2]});
         return cat({y[0], y[1]}, 1);
       }, 0, true},
      {"relu", {act}, [](const V& x) { return relu(x[0]); }},
      {"sigmoid", {act}, [](const V& x) { return sigmoid(x[0]); }},
      {"add", {act, act}, [](const V& x) { return add(x[0], x[1]); }},
      {"mul_per_channel", {act, {1, 16, 1, 1}}, [](const V& x) { return mul(x[0], x[1]); }},
      {"sum_0_2_3", {act}, [](const V& x) { return sum(x[0], {0, 2, 3}); }},
      {"global_avg_pool", {act}, [](const V& x) { return global_avg_pool2d(x[0]); }},
      {"max_pool_3s2p1", {act}, [](const V& x) { return max_pool2d(x[0], {3, 3}, {2, 2}, {1, 1}); }},
      {"avg_pool_2s2", {act}, [](const V& x) { return avg_pool2d(x[0], {2, 2}, {2, 2}); }},
      {"split_cat", {act},
       [](const V& x) {
         auto p = split(x[0], {8, 8}, 1);
         return cat({p[1], p[0]}, 1);
       }},
      {"pad_channels", {{128, 16, 16, 16}}, [](const V& x) { return pad_channels(x[0], 8, 8); }},
      {"softmax_channels", {{128, 32, 1, 1}}, [](const V& x) { return softmax(x[0], 1); }},
      {"linear_64x10", {{128, 64}, {10, 64}, {10}},
       [](const V& x) { return linear(x[0], x[1], x[2]); }, 2.0 * 128 * 64 * 10},
      {"cross_entropy", {{128, 10}}, [](const V& x) { return cross_entropy(x[0], labels128()); }},
  };

  if (!json)
    std::printf("threads %d, batch 128\n%-22s %12s %12s %10s\n", get_num_threads(), "op",
                "fwd ms", "fwd+bwd ms", "GFLOP/s");
  else
    std::printf("[\n");
  bool first = true;
  for (const Bench& b : benches) {
    if (!filter.empty() && b.name.find(filter) == std::string::npos) continue;
    Generator g(1);
    std::vector<Tensor> xs;
    for (const Shape& s : b.shapes) {
      Tensor x = g.normal(s, 0, 1);
      if (b.channels_last && s.size() == 4) x = x.contiguous(MemoryFormat::ChannelsLast);
      xs.push_back(x.set_requires_grad(true));
    }
    Tensor y0;
    {
      autograd::NoGradGuard ng;
      y0 = b.f(xs);
    }
    Tensor gy = Generator(2).normal(y0.shape());
    if (b.channels_last && gy.dim() == 4) gy = gy.contiguous(MemoryFormat::ChannelsLast);
    double fwd = time_it([&] {
      autograd::NoGradGuard ng;
      b.f(xs);
    });
    double both = time_it([&] {
      for (Tensor& x : xs) x.set_grad(Tensor());
      autograd::backward(b.f(xs), gy);
    });
    // conv: forward + backward-data + backward-weights = 3x the forward flops
    double gflops = b.flops > 0 ? 3 * b.flops / both / 1e9 : 0;
    if (json) {
      std::printf("%s  {\"name\": \"%s\", \"fwd_ms\": %.4f, \"fwd_bwd_ms\": %.4f}", first ? "" : ",\n",
                  b.name.c_str(), fwd * 1e3, both * 1e3);
    } else if (gflops > 0) {
      std::printf("%-22s %12.3f %12.3f %10.1f\n", b.name.c_str(), fwd * 1e3, both * 1e3, gflops);
    } else {
      std::printf("%-22s %12.3f %12.3f %10s\n", b.name.c_str(), fwd * 1e3, both * 1e3, "");
    }
    std::fflush(stdout);
    first = false;
  }
  if (json) std::printf("\n]\n");
  return 0;
}
