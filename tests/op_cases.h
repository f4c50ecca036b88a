// tests/op_cases.h: one table of op test cases, shared by three suites:
//   test_gradcheck.cpp   float64 finite differences, on the fast and the reference backend
//   test_reference.cpp   fast kernels against reference kernels (float32, forward + backward)
//   test_torch.cpp       against PyTorch data written by tools/gen_torch_reference.py, which
//                        defines the same cases by the same names.
// A case names its float input shapes and the function of them to test. Shapes cover odd
// sizes, batch 1, groups > 1, stride 2 and random (not 1/0) norm affine parameters.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "autograd/ops.h"

namespace scconv::testing {

struct OpCase {
  std::string name;
  std::vector<Shape> shapes;
  std::function<Tensor(const std::vector<Tensor>&)> f;
  bool positive = false;  // inputs drawn from [0.5, 1.5] (log, sqrt, division)
};

// Deterministic labels for the loss cases (the PyTorch script uses the same formula).
inline Tensor case_labels(int64_t n, int64_t classes, Device device = Device::CPU) {
  std::vector<int64_t> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = (i * 7 + 3) % classes;
  return Tensor::from_vector(v, {n}).to(device);
}
// Fixed running statistics for batch norm cases: mean 0.1 c - 0.2, var 0.5 + 0.25 c.
inline Tensor case_running(int64_t c, bool var, DType dt, Device device = Device::CPU) {
  std::vector<double> v(c);
  for (int64_t i = 0; i < c; ++i) v[i] = var ? 0.5 + 0.25 * i : 0.1 * i - 0.2;
  return Tensor::from_vector(v, {c}).to(dt).to(device);
}

// The fused SRU's parameters for a case.
inline SRUParams sru_case(int64_t groups, math::SRUGate gate, bool seed_gn, double threshold = 0.5) {
  SRUParams p;
  p.groups = groups;
  p.gate = gate;
  p.threshold = threshold;
  if (seed_gn) {
    p.gn = GroupNormKind::Seed;
    p.eps = 1e-10;
  }
  return p;
}

inline const std::vector<OpCase>& op_cases() {
  using V = std::vector<Tensor>;
  static const std::vector<OpCase> cases = {
      // element-wise, broadcasting
      {"add_full", {{2, 3, 4, 5}, {2, 3, 4, 5}}, [](const V& x) { return add(x[0], x[1]); }},
      {"add_channel", {{2, 3, 4, 5}, {1, 3, 1, 1}}, [](const V& x) { return add(x[0], x[1]); }},
      {"add_scalar_tensor", {{2, 3, 4, 5}, {}}, [](const V& x) { return add(x[0], x[1]); }},
      {"sub_bcast", {{2, 3, 4, 5}, {3, 1, 5}}, [](const V& x) { return sub(x[0], x[1]); }},
      {"mul_full", {{3, 7}, {3, 7}}, [](const V& x) { return mul(x[0], x[1]); }},
      {"mul_channel", {{2, 3, 4, 5}, {1, 3, 1, 1}}, [](const V& x) { return mul(x[0], x[1]); }},
      {"div_bcast", {{2, 3, 4, 5}, {1, 3, 1, 1}}, [](const V& x) { return div(x[0], x[1]); }, true},
      {"neg", {{2, 3, 5}}, [](const V& x) { return neg(x[0]); }},
      {"relu", {{2, 3, 5, 5}}, [](const V& x) { return relu(x[0]); }},
      {"sigmoid", {{2, 3, 5}}, [](const V& x) { return sigmoid(x[0]); }},
      {"exp", {{2, 3, 5}}, [](const V& x) { return exp(x[0]); }},
      {"log", {{2, 3, 5}}, [](const V& x) { return log(x[0]); }, true},
      {"sqrt", {{2, 3, 5}}, [](const V& x) { return sqrt(x[0]); }, true},
      {"pow2", {{2, 3, 5}}, [](const V& x) { return pow(x[0], 2.0); }},
      {"pow3", {{2, 3, 5}}, [](const V& x) { return pow(x[0], 3.0); }},
      {"pow_frac", {{2, 3, 5}}, [](const V& x) { return pow(x[0], 1.5); }, true},
      {"clamp", {{2, 3, 5}}, [](const V& x) { return clamp(x[0], -0.5, 0.5); }},
      {"where_gt", {{2, 3, 4}, {2, 3, 4}}, [](const V& x) { return where(gt(x[0], 0.0), x[0], x[1]); }},
      {"where_bcast", {{2, 3, 4}, {1, 3, 1}}, [](const V& x) { return where(gt(x[0], 0.0), x[1], x[0]); }},
      // reductions and pooling
      {"sum_023", {{2, 3, 4, 5}}, [](const V& x) { return sum(x[0], {0, 2, 3}, true); }},
      {"sum_1", {{2, 3, 4, 5}}, [](const V& x) { return sum(x[0], {1}); }},
      {"sum_all", {{2, 3, 4, 5}}, [](const V& x) { return sum(x[0]); }},
      {"mean_23", {{2, 3, 4, 5}}, [](const V& x) { return mean(x[0], {2, 3}); }},
      {"mean_all", {{3, 7}}, [](const V& x) { return mean(x[0]); }},
      {"global_avg_pool", {{2, 3, 5, 7}}, [](const V& x) { return global_avg_pool2d(x[0]); }},
      {"max_pool_3s2p1", {{2, 3, 7, 7}}, [](const V& x) { return max_pool2d(x[0], {3, 3}, {2, 2}, {1, 1}); }},
      {"max_pool_2s2", {{1, 2, 6, 5}}, [](const V& x) { return max_pool2d(x[0], {2, 2}, {2, 2}); }},
      {"avg_pool_3s1p1", {{2, 3, 5, 5}}, [](const V& x) { return avg_pool2d(x[0], {3, 3}, {1, 1}, {1, 1}); }},
      {"avg_pool_2s2", {{1, 2, 6, 6}}, [](const V& x) { return avg_pool2d(x[0], {2, 2}, {2, 2}); }},
      // linear algebra and convolution
      {"matmul", {{3, 5}, {5, 4}}, [](const V& x) { return matmul(x[0], x[1]); }},
      {"linear", {{4, 6}, {3, 6}, {3}}, [](const V& x) { return linear(x[0], x[1], x[2]); }},
      {"conv_3x3_p1_bias", {{2, 3, 6, 6}, {4, 3, 3, 3}, {4}},
       [](const V& x) { return conv2d(x[0], x[1], x[2], {1, 1}, {1, 1}); }},
      {"conv_3x3_s2", {{2, 4, 7, 7}, {6, 4, 3, 3}},
       [](const V& x) { return conv2d(x[0], x[1], Tensor(), {2, 2}, {1, 1}); }},
      {"conv_groups2", {{1, 4, 5, 5}, {6, 2, 3, 3}, {6}},
       [](const V& x) { return conv2d(x[0], x[1], x[2], {1, 1}, {1, 1}, {1, 1}, 2); }},
      {"conv_dilation2", {{2, 2, 7, 7}, {3, 2, 3, 3}},
       [](const V& x) { return conv2d(x[0], x[1], Tensor(), {1, 1}, {2, 2}, {2, 2}); }},
      // 4 or 8 input channels: channels-last backward-data runs core/cpu/conv_narrow.cpp
      {"conv_narrow_4to16_3x3", {{1, 4, 5, 6}, {16, 4, 3, 3}},
       [](const V& x) { return conv2d(x[0], x[1], Tensor(), {1, 1}, {1, 1}); }},
      {"conv_narrow_8to32_3x3", {{1, 8, 6, 7}, {32, 8, 3, 3}},
       [](const V& x) { return conv2d(x[0], x[1], Tensor(), {1, 1}, {1, 1}); }},
      {"conv_narrow_4to64_3x3_p0", {{1, 4, 5, 6}, {64, 4, 3, 3}},
       [](const V& x) { return conv2d(x[0], x[1], Tensor(), {1, 1}, {0, 0}); }},
      {"conv_narrow_4to32_3x3_s2", {{1, 4, 7, 8}, {32, 4, 3, 3}},
       [](const V& x) { return conv2d(x[0], x[1], Tensor(), {2, 2}, {1, 1}); }},
      {"conv_narrow_8to16_5x5_s2_p2", {{1, 8, 9, 6}, {16, 8, 5, 5}},
       [](const V& x) { return conv2d(x[0], x[1], Tensor(), {2, 2}, {2, 2}); }},
      {"conv_narrow_8to64_2x3_p1", {{1, 8, 5, 4}, {64, 8, 2, 3}},
       [](const V& x) { return conv2d(x[0], x[1], Tensor(), {1, 1}, {1, 1}); }},
      {"conv_1x1_s2", {{3, 5, 5, 5}, {7, 5, 1, 1}},
       [](const V& x) { return conv2d(x[0], x[1], Tensor(), {2, 2}); }},
      {"conv_batch1_odd", {{1, 3, 5, 7}, {2, 3, 3, 3}, {2}},
       [](const V& x) { return conv2d(x[0], x[1], x[2], {2, 1}, {1, 0}); }},
      // normalisation (gamma, beta random)
      {"batch_norm_train", {{2, 3, 4, 5}, {3}, {3}},
       [](const V& x) {
         Tensor rm = case_running(3, false, x[0].dtype(), x[0].device());
         Tensor rv = case_running(3, true, x[0].dtype(), x[0].device());
         return batch_norm(x[0], x[1], x[2], rm, rv, true, 0.1, 1e-5);
       }},
      {"batch_norm_eval", {{2, 3, 4, 5}, {3}, {3}},
       [](const V& x) {
         return batch_norm(x[0], x[1], x[2], case_running(3, false, x[0].dtype(), x[0].device()),
                           case_running(3, true, x[0].dtype(), x[0].device()), false, 0.1, 1e-5);
       }},
      {"batch_norm_2d_input", {{5, 3}, {3}, {3}},
       [](const V& x) { return batch_norm(x[0], x[1], x[2], Tensor(), Tensor(), true); }},
      {"batch_norm_relu_train", {{2, 3, 4, 5}, {3}, {3}},
       [](const V& x) {
         Tensor rm = case_running(3, false, x[0].dtype(), x[0].device());
         Tensor rv = case_running(3, true, x[0].dtype(), x[0].device());
         return batch_norm_relu(x[0], x[1], x[2], rm, rv, true);
       }},
      {"batch_norm_add_relu_train", {{2, 3, 4, 5}, {3}, {3}, {2, 3, 4, 5}},
       [](const V& x) { return batch_norm_relu(x[0], x[1], x[2], Tensor(), Tensor(), true, x[3]); }},
      {"batch_norm_add_relu_eval", {{2, 3, 4, 5}, {3}, {3}, {2, 3, 4, 5}},
       [](const V& x) {
         return batch_norm_relu(x[0], x[1], x[2], case_running(3, false, x[0].dtype(), x[0].device()),
                                case_running(3, true, x[0].dtype(), x[0].device()), false, x[3]);
       }},
      {"group_norm_g2", {{2, 4, 3, 3}, {4}, {4}},
       [](const V& x) { return group_norm(x[0], 2, x[1], x[2]); }},
      {"group_norm_g1_batch1", {{1, 3, 4, 5}, {3}, {3}},
       [](const V& x) { return group_norm(x[0], 1, x[1], x[2]); }},
      {"group_norm_seed_g2", {{2, 4, 3, 3}, {4, 1, 1}, {4, 1, 1}},
       [](const V& x) { return group_norm_seed(x[0], 2, x[1], x[2]); }},
      // the fused SRU: x, gamma, beta, channel weights w
      {"sru_soft", {{2, 4, 3, 3}, {4}, {4}, {4}},
       [](const V& x) { return sru(x[0], x[1], x[2], x[3], sru_case(2, math::SRUGate::Soft, false)); }},
      {"sru_hard_seed_gn", {{2, 4, 3, 3}, {4}, {4}, {4}},
       [](const V& x) { return sru(x[0], x[1], x[2], x[3], sru_case(2, math::SRUGate::Hard, true)); }},
      {"sru_reweighted_g4", {{1, 4, 3, 5}, {4}, {4}, {4}},
       [](const V& x) { return sru(x[0], x[1], x[2], x[3], sru_case(4, math::SRUGate::HardReweighted, false, 0.4)); }},
      // 16 channels: channels-last inputs take the fixed-width kernels (core/cpu/sru.cpp)
      {"sru_soft_c16", {{1, 16, 3, 3}, {16}, {16}, {16}},
       [](const V& x) { return sru(x[0], x[1], x[2], x[3], sru_case(4, math::SRUGate::Soft, false)); }},
      // the fused CRU fuse: y1 and the two parts of y2
      {"cru_fuse_branch", {{2, 5, 3, 4}, {2, 3, 3, 4}, {2, 2, 3, 4}},
       [](const V& x) { return cru_fuse(x[0], {x[1], x[2]}, math::CRUFuse::BranchSoftmax); }},
      {"cru_fuse_channel", {{2, 5, 3, 4}, {2, 1, 3, 4}, {2, 4, 3, 4}},
       [](const V& x) { return cru_fuse(x[0], {x[1], x[2]}, math::CRUFuse::ChannelSoftmax); }},
      // the same with y2 = conv1x1(low, w): y1, low, w; 16 <- 4 take the kernels of
      // core/cpu/cru_lower.cpp, other widths oneDNN's convolution and the fuse of cru.cpp
      {"cru_fuse_lower_branch", {{2, 5, 3, 4}, {2, 3, 3, 4}, {5, 3, 1, 1}},
       [](const V& x) { return cru_fuse_lower(x[0], x[1], x[2], math::CRUFuse::BranchSoftmax); }},
      {"cru_fuse_lower_channel", {{2, 6, 3, 3}, {2, 2, 3, 3}, {6, 2, 1, 1}},
       [](const V& x) { return cru_fuse_lower(x[0], x[1], x[2], math::CRUFuse::ChannelSoftmax); }},
      {"cru_fuse_lower_16from4", {{1, 16, 3, 3}, {1, 4, 3, 3}, {16, 4, 1, 1}},
       [](const V& x) { return cru_fuse_lower(x[0], x[1], x[2], math::CRUFuse::BranchSoftmax); }},
      // shape
      {"slice_channels", {{2, 5, 3, 3}}, [](const V& x) { return slice(x[0], 1, 1, 4); }},
      {"split_cat_swap", {{2, 5, 3, 3}},
       [](const V& x) {
         auto parts = split(x[0], {2, 3}, 1);
         return cat({parts[1], parts[0]}, 1);
       }},
      // a block-diagonal 1x1 convolution with an output per block: x, then each block's weight;
      // both outputs used, or only the second (the first block's input then gets zeros);
      // 2 x 8 -> 2 x 4 take the kernels of core/cpu/conv1x1_split.cpp, other widths oneDNN
      {"conv1x1_split_two", {{2, 5, 3, 4}, {2, 3, 1, 1}, {3, 2, 1, 1}},
       [](const V& x) {
         auto y = conv1x1_split(x[0], {x[1], x[2]});
         return cat({y[1], mul(y[0], 2.0)}, 1);
       }},
      {"conv1x1_split_second_only", {{1, 6, 3, 3}, {2, 4, 1, 1}, {3, 2, 1, 1}},
       [](const V& x) { return conv1x1_split(x[0], {x[1], x[2]})[1]; }},
      {"conv1x1_split_16_to_8", {{1, 16, 3, 3}, {4, 8, 1, 1}, {4, 8, 1, 1}},
       [](const V& x) {
         auto y = conv1x1_split(x[0], {x[1], x[2]});
         return cat({y[0], y[1]}, 1);
       }},
      {"conv1x1_split_16_to_8_second_only", {{1, 16, 3, 3}, {4, 8, 1, 1}, {4, 8, 1, 1}},
       [](const V& x) { return conv1x1_split(x[0], {x[1], x[2]})[1]; }},
      {"cat_two", {{2, 3, 4, 4}, {2, 2, 4, 4}}, [](const V& x) { return cat({x[0], x[1]}, 1); }},
      {"subsample2", {{2, 3, 5, 5}}, [](const V& x) { return subsample2d(x[0], 2); }},
      {"pad_channels", {{2, 3, 4, 4}}, [](const V& x) { return pad_channels(x[0], 2, 1); }},
      {"flatten", {{2, 3, 4, 5}}, [](const V& x) { return flatten(x[0]); }},
      // softmax and loss
      {"softmax_rows", {{3, 5}}, [](const V& x) { return softmax(x[0], 1); }},
      {"softmax_mid", {{2, 4, 3}}, [](const V& x) { return softmax(x[0], 1); }},
      {"log_softmax", {{3, 5}}, [](const V& x) { return log_softmax(x[0], -1); }},
      {"cross_entropy", {{5, 4}}, [](const V& x) { return cross_entropy(x[0], case_labels(5, 4, x[0].device())); }},
      {"cross_entropy_smooth", {{6, 3}},
       [](const V& x) { return cross_entropy(x[0], case_labels(6, 3, x[0].device()), 0.1); }},
      // dropout with a fixed generator: the same mask on every call
      {"dropout", {{4, 6}},
       [](const V& x) {
         Generator g(7);
         return dropout(x[0], 0.3, true, g);
       }},
  };
  return cases;
}

// Random inputs for a case: normal(0, 1), or uniform [0.5, 1.5] for `positive` cases. With
// `channels_last`, every 4-D input with more than one channel and pixel is laid out NHWC (the
// same values), as the ResNets run: the fast kernels must give the same results in both layouts.
inline std::vector<Tensor> case_inputs(const OpCase& c, DType dt, uint64_t seed, bool channels_last = false) {
  Generator g(seed);
  std::vector<Tensor> xs;
  for (const Shape& s : c.shapes) {
    Tensor t = c.positive ? g.uniform(s, 0.5, 1.5, dt) : g.normal(s, 0, 1, dt);
    if (channels_last && s.size() == 4) t = t.contiguous(MemoryFormat::ChannelsLast);
    xs.push_back(t);
  }
  return xs;
}

}  // namespace scconv::testing
