// tests/test_errors.cpp: bad input gives an Error whose message names the op and the shapes,
// dtypes or devices at fault, for each class of mismatch.
// Run: ./build/tests/test_errors
#include "test_util.h"

using namespace scconv;
using doctest::Contains;

TEST_CASE("shape mismatches name the op and both shapes") {
  Tensor a = Tensor::ones({2, 3}), b = Tensor::ones({4, 5});
  CHECK_THROWS_WITH_AS(add(a, b), Contains("add: shapes (2, 3) and (4, 5) cannot be broadcast"), Error);
  CHECK_THROWS_WITH_AS(matmul(a, b), Contains("matmul: shapes (2, 3) and (4, 5)"), Error);
  CHECK_THROWS_WITH_AS(linear(a, b, Tensor()), Contains("linear: input (2, 3) does not match weight (4, 5)"), Error);
  Tensor x = Tensor::ones({1, 3, 8, 8});
  CHECK_THROWS_WITH_AS(conv2d(x, Tensor::ones({4, 2, 3, 3}), Tensor()),
                       Contains("conv2d: weight (4, 2, 3, 3) with groups=1 expects 2 input channels, but input is (1, 3, 8, 8)"), Error);
  CHECK_THROWS_WITH_AS(conv2d(x, Tensor::ones({4, 1, 3, 3}), Tensor(), {1, 1}, {1, 1}, {1, 1}, 2),
                       Contains("groups=2 must divide input channels 3"), Error);
  CHECK_THROWS_WITH_AS(conv2d(x, Tensor::ones({4, 3, 9, 9}), Tensor()), Contains("too small"), Error);
  CHECK_THROWS_WITH_AS(conv2d(Tensor::ones({3, 8, 8}), Tensor::ones({4, 3, 3, 3}), Tensor()),
                       Contains("conv2d: input must be (N, C, H, W), got float32(3, 8, 8)"), Error);
  CHECK_THROWS_WITH_AS(batch_norm(x, Tensor::ones({4}), Tensor(), Tensor(), Tensor(), true),
                       Contains("batch_norm: weight float32(4,) must have 3 elements"), Error);
  CHECK_THROWS_WITH_AS(group_norm(Tensor::ones({2, 6, 4, 4}), 4, Tensor(), Tensor()),
                       Contains("group_norm: groups=4 must divide the 6 channels"), Error);
  CHECK_THROWS_WITH_AS(batch_norm_relu(x, Tensor(), Tensor(), Tensor(), Tensor(), true, Tensor::ones({1, 3, 4, 4})),
                       Contains("batch_norm_relu: residual float32(1, 3, 4, 4) must have the shape of input float32(1, 3, 8, 8)"), Error);
  SRUParams sp;
  sp.groups = 2;
  Tensor c4 = Tensor::ones({4});
  CHECK_THROWS_WITH_AS(sru(x, Tensor::ones({3}), Tensor::ones({3}), Tensor::ones({3}), sp),
                       Contains("sru: input must be (N, C, H, W) with an even C (the cross reconstruction swaps channel halves), got float32(1, 3, 8, 8)"), Error);
  sp.groups = 3;
  CHECK_THROWS_WITH_AS(sru(Tensor::ones({1, 4, 2, 2}), c4, c4, c4, sp),
                       Contains("sru: groups=3 must divide the 4 channels of input float32(1, 4, 2, 2)"), Error);
  sp.groups = 2;
  CHECK_THROWS_WITH_AS(sru(Tensor::ones({1, 4, 2, 2}), c4, c4, Tensor::ones({5}), sp),
                       Contains("sru: w float32(5,) must have 4 elements"), Error);
  Tensor y1 = Tensor::ones({2, 4, 3, 3});
  CHECK_THROWS_WITH_AS(cru_fuse(y1, {Tensor::ones({2, 3, 3, 3})}, math::CRUFuse::BranchSoftmax),
                       Contains("cru_fuse: the parts of y2 add up to 3 channels, y1 float32(2, 4, 3, 3) has 4"), Error);
  CHECK_THROWS_WITH_AS(cru_fuse(y1, {Tensor::ones({2, 2, 3, 3}), Tensor::ones({2, 2, 2, 3})}, math::CRUFuse::BranchSoftmax),
                       Contains("cru_fuse: part 1 of y2 float32(2, 2, 2, 3) does not match y1 float32(2, 4, 3, 3)"), Error);
  CHECK_THROWS_WITH_AS(cru_fuse(y1, {y1}, math::CRUFuse::SplitConv), Contains("cru_fuse: kind must be branch_softmax or channel_softmax"), Error);
  CHECK_THROWS_WITH_AS(cru_fuse_lower(y1, Tensor::ones({2, 2, 3, 4}), Tensor::ones({4, 2, 1, 1}), math::CRUFuse::BranchSoftmax),
                       Contains("cru_fuse_lower: low float32(2, 2, 3, 4) does not match y1 float32(2, 4, 3, 3) outside the channels"), Error);
  CHECK_THROWS_WITH_AS(cru_fuse_lower(y1, Tensor::ones({2, 2, 3, 3}), Tensor::ones({4, 2, 3, 3}), math::CRUFuse::BranchSoftmax),
                       Contains("cru_fuse_lower: w float32(4, 2, 3, 3) must be (4, 2, 1, 1): a 1x1 convolution from low's channels to y1's"), Error);
  CHECK_THROWS_WITH_AS(cru_fuse_lower(y1, Tensor::ones({2, 2, 3, 3}), Tensor::ones({4, 3, 1, 1}), math::CRUFuse::BranchSoftmax),
                       Contains("cru_fuse_lower: w float32(4, 3, 1, 1) must be (4, 2, 1, 1)"), Error);
  CHECK_THROWS_WITH_AS(cru_fuse_lower(y1, Tensor::ones({2, 2, 3, 3}), Tensor::ones({4, 2, 1, 1}), math::CRUFuse::SplitConv),
                       Contains("cru_fuse_lower: kind must be branch_softmax or channel_softmax"), Error);
  CHECK_THROWS_WITH_AS(conv1x1_split(y1, {Tensor::ones({2, 2, 1, 1}), Tensor::ones({2, 3, 1, 1})}),
                       Contains("conv1x1_split: the weights read 5 input channels in all, input float32(2, 4, 3, 3) has 4"), Error);
  CHECK_THROWS_WITH_AS(conv1x1_split(y1, {Tensor::ones({2, 2, 3, 3}), Tensor::ones({2, 2, 1, 1})}),
                       Contains("conv1x1_split: weight 0 float32(2, 2, 3, 3) must be (O, C, 1, 1)"), Error);
  CHECK_THROWS_WITH_AS(cat({Tensor::ones({1, 2, 3, 3}), Tensor::ones({1, 2, 4, 3})}, 1),
                       Contains("cat: tensor 1 float32(1, 2, 4, 3) does not match"), Error);
  CHECK_THROWS_WITH_AS(split(x, {1, 1}, 1), Contains("split: sizes add up to 2 but dim 1"), Error);
  CHECK_THROWS_WITH_AS(slice(x, 1, 2, 5), Contains("slice: range [2, 5) out of bounds"), Error);
  CHECK_THROWS_WITH_AS(reshape(x, {5, -1}), Contains("cannot view float32(1, 3, 8, 8) as (5, -1)"), Error);
  CHECK_THROWS_WITH_AS(sum(x, {4}), Contains("sum: dim 4 out of range"), Error);
  CHECK_THROWS_WITH_AS(max_pool2d(Tensor::ones({1, 1, 2, 2}), {3, 3}, {1, 1}),
                       Contains("max_pool2d: input float32(1, 1, 2, 2) is smaller than the kernel"), Error);
}

TEST_CASE("dtype mismatches name the op and both tensors") {
  Tensor f = Tensor::ones({2}), d = Tensor::ones({2}, DType::F64);
  CHECK_THROWS_WITH_AS(add(f, d), Contains("add: dtype mismatch: float32(2,) vs float64(2,)"), Error);
  CHECK_THROWS_WITH_AS(relu(Tensor::ones({2}, DType::I64)),
                       Contains("relu: argument 'x' must be float32 or float64, got int64(2,)"), Error);
  Tensor logits = Tensor::ones({4, 3});
  CHECK_THROWS_WITH_AS(cross_entropy(logits, Tensor::ones({4}, DType::F32)),
                       Contains("cross_entropy: labels must be int64 (N,) = (4,), got float32(4,)"), Error);
  CHECK_THROWS_WITH_AS(where(Tensor::ones({2}), f, f), Contains("where: mask must be uint8"), Error);
  CHECK_THROWS_WITH_AS(f.data<double>(), Contains("data<float64>() on a float32(2,) tensor"), Error);
}

TEST_CASE("device mismatches name the op and the devices") {
  // An empty tensor needs no memory, so a CUDA-tagged one exists even without a GPU.
  Tensor cpu = Tensor::empty({0});
  Tensor gpu(std::make_shared<TensorImpl>());
  gpu.impl_ptr()->storage = std::make_shared<Storage>(0, Device::CUDA);
  gpu.impl_ptr()->shape = {0};
  gpu.impl_ptr()->strides = {1};
  CHECK_THROWS_WITH_AS(add(cpu, gpu), Contains("add: device mismatch: float32(0,) on cpu vs float32(0,) on cuda"), Error);
  CHECK_THROWS_WITH_AS(conv2d(Tensor::empty({0, 1, 3, 3}), Tensor(gpu).view({0, 1, 1, 1}), Tensor()),
                       Contains("conv2d: device mismatch"), Error);
  CHECK_THROWS_WITH_AS(Tensor::empty({4}, DType::F32, Device::CUDA), Contains("device cuda: "), Error);
}

TEST_CASE("bad values name the op and the value") {
  CHECK_THROWS_WITH_AS(cross_entropy(Tensor::ones({2, 3}), Tensor::from_vector<int64_t>({0, 3}, {2})),
                       Contains("cross_entropy: label 3 at index 1 is outside [0, 3)"), Error);
  CHECK_THROWS_WITH_AS(dropout(Tensor::ones({2}), 1.0, true), Contains("dropout: p must be in [0, 1)"), Error);
  CHECK_THROWS_WITH_AS(clamp(Tensor::ones({2}), 1, 0), Contains("clamp: lower bound 1 is above upper bound 0"), Error);
  CHECK_THROWS_WITH_AS(batch_norm(Tensor::ones({1, 3}), Tensor(), Tensor(), Tensor(), Tensor(), true),
                       Contains("training needs more than one value per channel"), Error);
  CHECK_THROWS_WITH_AS(Tensor().shape(), Contains("undefined tensor"), Error);
  CHECK_THROWS_WITH_AS(Tensor::ones({2}).item(), Contains("item(): tensor float32(2,) has 2 elements"), Error);
  CHECK_THROWS_WITH_AS(Tensor::ones({4}).as_strided({4}, {1}, 1), Contains("runs past the storage"), Error);
}
