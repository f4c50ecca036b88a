// tests/test_reference.cpp: every fast CPU kernel against its reference implementation, on the
// same random float32 inputs, forward and backward (through the op table of op_cases.h), plus
// larger shapes that exercise the fast paths' threading and vector loops.
// Run: ./build/tests/test_reference
#include <cmath>

#include "core/backend.h"
#include "core/cpu/vec.h"
#include "core/parallel.h"
#include "op_cases.h"
#include "test_util.h"

using namespace scconv;
using namespace scconv::testing;

namespace {
template <class F>
void compare_paths(const std::string& name, F f, const std::vector<Tensor>& inputs,
                   double rtol = 1e-4, double atol = 1e-5) {
  Tensor y;
  {
    autograd::NoGradGuard ng;
    y = f(inputs);
  }
  Tensor proj = Generator(99).normal(y.shape(), 0, 1, y.dtype());
  std::vector<Tensor> fast = forward_backward(f, inputs, proj);
  std::vector<Tensor> ref;
  {
    ReferenceModeGuard guard;
    ref = forward_backward(f, inputs, proj);
  }
  // float32 sums of many terms cancel: absolute tolerance scales with the tensor's magnitude.
  for (size_t k = 0; k < fast.size(); ++k)
    CHECK_CLOSE(fast[k], ref[k], rtol, atol * std::max(1.0, max_abs(ref[k])),
                name << (k == 0 ? ": output" : ": gradient of input " + std::to_string(k - 1)));
}
// f(inputs) forward and backward at 1 and at 2 threads: the same bits.
template <class F>
void check_same_bits_any_threads(F f, const std::vector<Tensor>& in, const Tensor& proj, const std::string& what) {
  int saved = get_num_threads();
  set_num_threads(1);
  std::vector<Tensor> one = forward_backward(f, in, proj);
  set_num_threads(2);
  std::vector<Tensor> two = forward_backward(f, in, proj);
  set_num_threads(saved);
  for (size_t k = 0; k < one.size(); ++k) CHECK_CLOSE(one[k], two[k], 0, 0, what << ", tensor " << k << ", 1 vs 2 threads");
}
}  // namespace

TEST_CASE("fast vs reference: every op in the table (float32)") {
  for (const OpCase& c : op_cases()) {
    CAPTURE(c.name);
    compare_paths(c.name, c.f, case_inputs(c, DType::F32, 5));
  }
}

TEST_CASE("fast vs reference: every op in the table, channels-last inputs (float32)") {
  // the fast kernels see NHWC inputs; the reference loops the same values in NCHW
  for (const OpCase& c : op_cases()) {
    CAPTURE(c.name);
    std::vector<Tensor> cl = case_inputs(c, DType::F32, 5, /*channels_last=*/true);
    std::vector<Tensor> plain = case_inputs(c, DType::F32, 5);
    Tensor y;
    {
      autograd::NoGradGuard ng;
      y = c.f(plain);
    }
    Tensor proj = Generator(99).normal(y.shape(), 0, 1, y.dtype());
    std::vector<Tensor> fast = forward_backward(c.f, cl, proj), ref;
    {
      ReferenceModeGuard guard;
      ref = forward_backward(c.f, plain, proj);
    }
    for (size_t k = 0; k < fast.size(); ++k)
      CHECK_CLOSE(fast[k], ref[k], 1e-4, 1e-5 * std::max(1.0, max_abs(ref[k])),
                  c.name << (k == 0 ? ": output" : ": gradient of input " + std::to_string(k - 1)));
  }
}

TEST_CASE("fast vs reference: ResNet-sized shapes") {
  using V = std::vector<Tensor>;
  Generator g(11);
  compare_paths("conv 16->16 3x3 on (8,16,32,32)",
                [](const V& x) { return conv2d(x[0], x[1], Tensor(), {1, 1}, {1, 1}); },
                {g.normal({8, 16, 32, 32}), g.normal({16, 16, 3, 3}, 0, 0.1)}, 1e-3, 1e-4);
  // 4 or 8 input channels, channels-last: backward-data runs our narrow kernel (conv_narrow.cpp)
  struct Narrow {
    Shape x, w;
    int64_t stride, pad;
  };
  for (const Narrow& n : {Narrow{{8, 4, 32, 32}, {16, 4, 3, 3}, 1, 1}, Narrow{{4, 8, 17, 13}, {32, 8, 3, 3}, 1, 2},
                          Narrow{{8, 4, 32, 32}, {32, 4, 3, 3}, 2, 1}, Narrow{{4, 8, 15, 16}, {64, 8, 3, 3}, 2, 1}}) {
    compare_paths("narrow conv " + shape_str(n.w) + " stride " + std::to_string(n.stride) + " pad " +
                      std::to_string(n.pad) + " on channels-last " + shape_str(n.x),
                  [s = n.stride, pad = n.pad](const V& x) { return conv2d(x[0], x[1], Tensor(), {s, s}, {pad, pad}); },
                  {g.normal(n.x).contiguous(MemoryFormat::ChannelsLast), g.normal(n.w, 0, 0.1)}, 1e-3, 1e-4);
  }
  compare_paths("conv 16->32 3x3 s2 groups 2 bias",
                [](const V& x) { return conv2d(x[0], x[1], x[2], {2, 2}, {1, 1}, {1, 1}, 2); },
                {g.normal({4, 16, 16, 16}), g.normal({32, 8, 3, 3}, 0, 0.1), g.normal({32})},
                1e-3, 1e-4);
  compare_paths("batch_norm (16,32,16,16)",
                [](const V& x) { return relu(batch_norm(x[0], x[1], x[2], Tensor(), Tensor(), true)); },
                {g.normal({16, 32, 16, 16}, 0.5, 2), g.normal({32}), g.normal({32})}, 1e-3, 1e-4);
  compare_paths("group_norm (8,32,16,16) g=16",
                [](const V& x) { return group_norm(x[0], 16, x[1], x[2]); },
                {g.normal({8, 32, 16, 16}, 0.5, 2), g.normal({32}), g.normal({32})}, 1e-3, 1e-4);
  compare_paths("fused SRU (4,32,16,16), 16 groups, soft gate",
                [](const V& x) { return sru(x[0], x[1], x[2], x[3], sru_case(16, math::SRUGate::Soft, false)); },
                {g.normal({4, 32, 16, 16}, 0.5, 2), g.normal({32}), g.normal({32}), g.normal({32})},
                1e-3, 1e-4);
  // channels-last SRU: blocks of 1024 / C rows, here 64 + a tail of 17 and 32 x 8 exactly;
  // C = 16, 32 and 64 take the fixed-width kernels, other C the general ones
  compare_paths("fused SRU channels-last (3,16,9,9), 4 groups, hard reweighted gate",
                [](const V& x) { return sru(x[0], x[1], x[2], x[3], sru_case(4, math::SRUGate::HardReweighted, false)); },
                {g.normal({3, 16, 9, 9}, 0.5, 2).contiguous(MemoryFormat::ChannelsLast),
                 g.normal({16}), g.normal({16}), g.normal({16})}, 1e-3, 1e-4);
  compare_paths("fused SRU channels-last (2,24,5,7), 6 groups, hard gate (any C)",
                [](const V& x) { return sru(x[0], x[1], x[2], x[3], sru_case(6, math::SRUGate::Hard, false)); },
                {g.normal({2, 24, 5, 7}, 0.5, 2).contiguous(MemoryFormat::ChannelsLast),
                 g.normal({24}), g.normal({24}), g.normal({24})}, 1e-3, 1e-4);
  compare_paths("fused SRU channels-last (2,64,9,9), 32 groups, soft gate",
                [](const V& x) { return sru(x[0], x[1], x[2], x[3], sru_case(32, math::SRUGate::Soft, false)); },
                {g.normal({2, 64, 9, 9}, 0.5, 2).contiguous(MemoryFormat::ChannelsLast),
                 g.normal({64}), g.normal({64}), g.normal({64})}, 1e-3, 1e-4);
  compare_paths("fused SRU channels-last (4,32,16,16), 16 groups, soft gate",
                [](const V& x) { return sru(x[0], x[1], x[2], x[3], sru_case(16, math::SRUGate::Soft, false)); },
                {g.normal({4, 32, 16, 16}, 0.5, 2).contiguous(MemoryFormat::ChannelsLast),
                 g.normal({32}), g.normal({32}), g.normal({32})}, 1e-3, 1e-4);
  compare_paths("fused CRU fuse (4,32,16,16), branch softmax",
                [](const V& x) { return cru_fuse(x[0], {x[1], x[2]}, math::CRUFuse::BranchSoftmax); },
                {g.normal({4, 32, 16, 16}), g.normal({4, 24, 16, 16}), g.normal({4, 8, 16, 16})});
  // the fuse with the lower 1x1 folded in, at the widths of ResNet-20's SCConv units (its kernels:
  // (C, Q) = (16, 4), (32, 8), (64, 16), and (32, 4), (64, 8) after a stride 2) and at others
  // (oneDNN and the fuse of cru.cpp), channels-last and NCHW, both kinds, float32 and float64
  for (auto [c, q, hw, fmt, dt] : std::vector<std::tuple<int64_t, int64_t, int64_t, MemoryFormat, DType>>{
           {16, 4, 32, MemoryFormat::ChannelsLast, DType::F32}, {32, 8, 16, MemoryFormat::ChannelsLast, DType::F32},
           {64, 16, 8, MemoryFormat::ChannelsLast, DType::F32}, {32, 4, 16, MemoryFormat::ChannelsLast, DType::F32},
           {64, 8, 8, MemoryFormat::ChannelsLast, DType::F64}, {16, 4, 9, MemoryFormat::Contiguous, DType::F32},
           {24, 6, 7, MemoryFormat::ChannelsLast, DType::F32}, {80, 20, 5, MemoryFormat::ChannelsLast, DType::F32},
           {10, 3, 6, MemoryFormat::Contiguous, DType::F64}}) {
    for (math::CRUFuse kind : {math::CRUFuse::BranchSoftmax, math::CRUFuse::ChannelSoftmax}) {
      const std::string name = "cru_fuse_lower (" + std::to_string(c) + " <- " + std::to_string(q) + ", " +
                               std::to_string(hw) + "x" + std::to_string(hw) + ") " + dtype_name(dt) +
                               (fmt == MemoryFormat::ChannelsLast ? " channels-last" : " NCHW") + " kind " +
                               std::to_string(static_cast<int>(kind));
      compare_paths(name, [kind = kind](const V& x) { return cru_fuse_lower(x[0], x[1], x[2], kind); },
                    {g.normal({4, c, hw, hw}, 0, 1, dt).contiguous(fmt), g.normal({4, q, hw, hw}, 0, 1, dt).contiguous(fmt),
                     g.normal({c, q, 1, 1}, 0, 0.5, dt)});
    }
  }
  // the block-diagonal 1x1 convolution with an output per block, at the CRU squeezes of the
  // CIFAR ResNets (its kernels: 8 -> 4, 16 -> 8, 32 -> 16 per block) and at others (alpha 0.75:
  // blocks of 12 and 4 channels; oneDNN), channels-last and NCHW, float32 and float64
  for (auto [ci, co, ci2, co2, hw, fmt, dt] :
       std::vector<std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, MemoryFormat, DType>>{
           {8, 4, 8, 4, 32, MemoryFormat::ChannelsLast, DType::F32}, {16, 8, 16, 8, 16, MemoryFormat::ChannelsLast, DType::F32},
           {32, 16, 32, 16, 8, MemoryFormat::ChannelsLast, DType::F32}, {16, 8, 16, 8, 9, MemoryFormat::ChannelsLast, DType::F64},
           {8, 4, 8, 4, 7, MemoryFormat::Contiguous, DType::F32}, {12, 6, 4, 2, 9, MemoryFormat::ChannelsLast, DType::F32},
           {5, 3, 7, 2, 6, MemoryFormat::Contiguous, DType::F64}}) {
    const std::string name = "conv1x1_split (" + std::to_string(ci) + " -> " + std::to_string(co) + ", " +
                             std::to_string(ci2) + " -> " + std::to_string(co2) + ") at " + std::to_string(hw) +
                             "x" + std::to_string(hw) + " " + dtype_name(dt) +
                             (fmt == MemoryFormat::ChannelsLast ? " channels-last" : " NCHW");
    compare_paths(name, [](const V& x) {
                    auto y = conv1x1_split(x[0], {x[1], x[2]});
                    return cat({y[0], mul(y[1], 0.5)}, 1);
                  },
                  {g.normal({4, ci + ci2, hw, hw}, 0, 1, dt).contiguous(fmt), g.normal({co, ci, 1, 1}, 0, 0.5, dt),
                   g.normal({co2, ci2, 1, 1}, 0, 0.5, dt)});
  }
  // channel windows of channels-last tensors (the CRU's squeezed halves): rows of 3, 4, 8 and 16
  // floats and of 4 doubles, copied out forward and into a zero tensor backward
  for (auto [c, lo, hi, dt] : std::vector<std::tuple<int64_t, int64_t, int64_t, DType>>{
           {8, 0, 4, DType::F32}, {8, 4, 8, DType::F32}, {24, 5, 8, DType::F32},
           {32, 8, 16, DType::F32}, {48, 16, 32, DType::F32}, {12, 4, 8, DType::F64}}) {
    compare_paths("channels " + std::to_string(lo) + ".." + std::to_string(hi) + " of channels-last (3," +
                      std::to_string(c) + ",17,9) " + dtype_name(dt),
                  [lo = lo, hi = hi](const V& x) {
                    return contiguous(slice(x[0], 1, lo, hi), MemoryFormat::ChannelsLast);
                  },
                  {g.normal({3, c, 17, 9}, 0, 1, dt).contiguous(MemoryFormat::ChannelsLast)}, 0, 0);
  }
  compare_paths("broadcast mul + sigmoid (8,32,16,16)",
                [](const V& x) { return sigmoid(mul(x[0], x[1])); },
                {g.normal({8, 32, 16, 16}), g.normal({1, 32, 1, 1})});
  compare_paths("linear 64->10 + cross_entropy",
                [](const V& x) { return cross_entropy(linear(x[0], x[1], x[2]), case_labels(128, 10)); },
                {g.normal({128, 64}), g.normal({10, 64}, 0, 0.1), g.normal({10})});
  compare_paths("sum over (0,2,3) of (32,16,32,32)",
                [](const V& x) { return sum(x[0], {0, 2, 3}); }, {g.normal({32, 16, 32, 32})},
                1e-4, 1e-3);
}

namespace {
struct ConvAlgorithmGuard {  // sets the process-wide choice for one test, restores it after
  ConvAlgorithm saved = conv_algorithm();
  explicit ConvAlgorithmGuard(ConvAlgorithm a) { set_conv_algorithm(a); }
  ~ConvAlgorithmGuard() { set_conv_algorithm(saved); }
};
}  // namespace

TEST_CASE("the SRU's sigmoid without exp: accurate within its range; samples on both paths") {
  // cpu::sigmoid_small (a polynomial for |z| <= 2) against sigmoid in double, on a fine grid
  double worst = 0;
  for (int i = -200000; i <= 200000; ++i) {
    const float z = float(i * 1e-5);
    worst = std::max(worst, std::fabs(double(cpu::sigmoid_small(z)) - 1 / (1 + std::exp(-double(z)))));
  }
  CHECK(worst < 1.2e-7);
  // The channels-last SRU takes it for a sample whose z = GN(x) w all lie in that range, the
  // exp form otherwise: sample 0 is in range, sample 1 has an outlier pixel (GN ~ 17, z ~ 5).
  Generator g(12);
  using V = std::vector<Tensor>;
  for (int64_t C : {16, 32, 64})
    for (math::SRUGate gate : {math::SRUGate::Soft, math::SRUGate::Hard, math::SRUGate::HardReweighted}) {
      Tensor x = g.normal({2, C, 9, 9});
      x.data<float>()[C * 81 + 5] = 60.0f;  // sample 1, channel 0, pixel 5
      const std::string name = "SRU channels-last (2," + std::to_string(C) + ",9,9), gate " +
                               std::to_string(static_cast<int>(gate)) + ", one sample within the polynomial's range";
      compare_paths(name, [gate](const V& v) { return sru(v[0], v[1], v[2], v[3], sru_case(4, gate, false)); },
                    {x.contiguous(MemoryFormat::ChannelsLast), g.uniform({C}, 0.5, 1.5), g.normal({C}, 0, 0.2),
                     Tensor::full({C}, 0.2)}, 1e-4, 1e-5);
    }
}

TEST_CASE("Winograd convolutions match the reference (forward and both backward passes)") {
  using V = std::vector<Tensor>;
  auto conv = [](const V& x) { return conv2d(x[0], x[1], x[2], {1, 1}, {1, 1}); };
  Generator g(31);
  const V in = {g.normal({4, 32, 16, 16}), g.normal({48, 32, 3, 3}, 0, 0.1), g.normal({48})};
  V in_cl = {in[0].contiguous(MemoryFormat::ChannelsLast), in[1], in[2]};
  const Tensor proj = Generator(5).normal({4, 48, 16, 16});
  SUBCASE("auto picks Winograd at >= 32 channels: NCHW and channels-last inputs") {
    ConvAlgorithmGuard a(ConvAlgorithm::Auto);
    compare_paths("winograd conv 32->48 3x3 bias", conv, in, 1e-3, 1e-4);
    compare_paths("winograd conv 32->48 3x3 bias, channels-last", conv, in_cl, 1e-3, 1e-4);
  }
  SUBCASE("the algorithm changes the rounding, not the result") {
    std::vector<Tensor> direct, wino;
    {
      ConvAlgorithmGuard a(ConvAlgorithm::Direct);
      direct = forward_backward(conv, in_cl, proj);
    }
    {
      ConvAlgorithmGuard a(ConvAlgorithm::Auto);
      wino = forward_backward(conv, in_cl, proj);
    }
    // Not the same bits (so the Winograd kernels did run), but the same values. Without
    // AVX-512 oneDNN has no Winograd kernels and both are direct.
    if (cpu_winograd_available())
      CHECK(max_abs(sub(wino[0], direct[0])) > 0);
    else
      MESSAGE("skipped the 'Winograd ran' check: this CPU has no AVX-512, so oneDNN runs every convolution direct");
    for (size_t k = 0; k < direct.size(); ++k)
      CHECK_CLOSE(wino[k], direct[k], 1e-3, 1e-4 * std::max(1.0, max_abs(direct[k])),
                  "winograd vs direct, tensor " << k);
  }
  SUBCASE("forced Winograd on the op table's convolutions (small shapes fall back to direct)") {
    ConvAlgorithmGuard a(ConvAlgorithm::Winograd);
    for (const OpCase& c : op_cases()) {
      if (c.name.rfind("conv_", 0) != 0) continue;
      CAPTURE(c.name);
      compare_paths(c.name, c.f, case_inputs(c, DType::F32, 5), 1e-3, 1e-4);
      compare_paths(c.name + " channels-last", c.f, case_inputs(c, DType::F32, 5, true), 1e-3, 1e-4);
    }
  }
  SUBCASE("the names of the algorithms") {
    CHECK(parse_conv_algorithm("winograd") == ConvAlgorithm::Winograd);
    CHECK(std::string(conv_algorithm_name(ConvAlgorithm::Direct)) == "direct");
    CHECK_THROWS_WITH_AS(parse_conv_algorithm("fft"),
                         doctest::Contains("unknown algorithm 'fft' (known: auto, direct, winograd)"),
                         Error);
  }
}

TEST_CASE("results do not depend on the thread count beyond rounding") {
  Generator g(21);
  Tensor x = g.normal({8, 16, 16, 16}), w = g.normal({16, 16, 3, 3}, 0, 0.1);
  Tensor gamma = g.normal({16}), beta = g.normal({16});
  auto run = [&] {
    return sum(relu(batch_norm(conv2d(x, w, Tensor(), {1, 1}, {1, 1}), gamma, beta, Tensor(),
                               Tensor(), true)),
               {1});
  };
  int saved = get_num_threads();
  set_num_threads(1);
  Tensor one = run();
  set_num_threads(2);
  Tensor two = run();
  set_num_threads(saved);
  CHECK_CLOSE(one, two, 1e-5, 1e-5, "1 vs 2 threads");
}

TEST_CASE("the fused CRU fuse gives the same bits at any thread count") {
  Generator g(23);
  for (math::CRUFuse kind : {math::CRUFuse::BranchSoftmax, math::CRUFuse::ChannelSoftmax})
    for (MemoryFormat fmt : {MemoryFormat::Contiguous, MemoryFormat::ChannelsLast}) {
      std::vector<Tensor> in{g.normal({8, 16, 12, 12}).contiguous(fmt), g.normal({8, 12, 12, 12}).contiguous(fmt),
                             g.normal({8, 4, 12, 12}).contiguous(fmt)};
      check_same_bits_any_threads([kind](const std::vector<Tensor>& x) { return cru_fuse(x[0], {x[1], x[2]}, kind); },
                                  in, g.normal({8, 16, 12, 12}), "cru_fuse kind " + std::to_string(static_cast<int>(kind)));
    }
}

TEST_CASE("the CRU fuse with the lower 1x1 folded in gives the same bits at any thread count") {
  Generator g(24);
  for (math::CRUFuse kind : {math::CRUFuse::BranchSoftmax, math::CRUFuse::ChannelSoftmax})
    for (auto [c, q] : {std::pair<int64_t, int64_t>{16, 4}, {12, 3}}) {
      const MemoryFormat cl = MemoryFormat::ChannelsLast;
      std::vector<Tensor> in{g.normal({8, c, 12, 12}).contiguous(cl), g.normal({8, q, 12, 12}).contiguous(cl),
                             g.normal({c, q, 1, 1})};
      check_same_bits_any_threads([kind](const std::vector<Tensor>& x) { return cru_fuse_lower(x[0], x[1], x[2], kind); },
                                  in, g.normal({8, c, 12, 12}),
                                  "cru_fuse_lower kind " + std::to_string(static_cast<int>(kind)) + ", C " + std::to_string(c));
    }
}

TEST_CASE("the block-diagonal 1x1 convolution gives the same bits at any thread count") {
  Generator g(25);
  for (auto [ci, co] : {std::pair<int64_t, int64_t>{8, 4}, {6, 3}}) {
    std::vector<Tensor> in{g.normal({8, 2 * ci, 12, 12}).contiguous(MemoryFormat::ChannelsLast),
                           g.normal({co, ci, 1, 1}), g.normal({co, ci, 1, 1})};
    check_same_bits_any_threads([](const std::vector<Tensor>& x) {
                                  auto y = conv1x1_split(x[0], {x[1], x[2]});
                                  return cat({y[0], y[1]}, 1);
                                },
                                in, g.normal({8, 2 * co, 12, 12}), "conv1x1_split " + std::to_string(ci));
  }
}

TEST_CASE("the fused SRU gives the same bits at any thread count") {
  Generator g(22);
  for (MemoryFormat fmt : {MemoryFormat::Contiguous, MemoryFormat::ChannelsLast}) {
    std::vector<Tensor> in{g.normal({8, 16, 12, 12}).contiguous(fmt), g.normal({16}), g.normal({16}), g.normal({16})};
    check_same_bits_any_threads([](const std::vector<Tensor>& x) { return sru(x[0], x[1], x[2], x[3], sru_case(4, math::SRUGate::HardReweighted, false)); },
                                in, g.normal({8, 16, 12, 12}), "sru");
  }
}

TEST_CASE("channels-last batch norm (+ ReLU, + residual) gives the same bits at any thread count") {
  Generator g(24);
  const MemoryFormat cl = MemoryFormat::ChannelsLast;
  std::vector<Tensor> in{g.normal({8, 16, 12, 12}).contiguous(cl), g.normal({16}), g.normal({16}), g.normal({8, 16, 12, 12}).contiguous(cl)};
  check_same_bits_any_threads([](const std::vector<Tensor>& x) { return batch_norm_relu(x[0], x[1], x[2], Tensor(), Tensor(), true, x[3]); },
                              in, g.normal({8, 16, 12, 12}), "batch_norm_relu");
}
