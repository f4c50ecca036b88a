// core/cpu/conv_narrow.h: backward-data for channels-last convolutions with 4 or 8 input
// channels (see conv_narrow.cpp). CpuBackend::conv2d_backward_data calls it when it applies.
#pragma once
#include "core/backend.h"
#include "core/tensor.h"

namespace scconv::cpu {

// Not grouped, stride 1 or 2 (the same along both axes), no dilation, a kernel larger than
// 1x1; 4 or 8 input channels and 16, 32 or 64 output channels. Any padding.
bool narrow_backward_data_applies(const Shape& x_shape, const Shape& w_shape, const Conv2dParams& p);

// grad_x (x_shape, channels-last) of conv2d(x, w) from grad_y (N, O, OH, OW), float32 or float64.
Tensor narrow_conv_backward_data(const Tensor& grad_y, const Tensor& w, const Shape& x_shape,
                                 const Conv2dParams& p);

}  // namespace scconv::cpu
