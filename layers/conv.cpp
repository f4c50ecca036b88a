// layers/conv.cpp: Conv2d and Linear.
#include "layers/conv.h"

#include "layers/init.h"

namespace scconv {

Conv2d::Conv2d(const Conv2dOptions& o, Generator& g) : o_(o) {
  SCCONV_CHECK(o.in > 0 && o.out > 0 && o.kernel > 0 && o.stride > 0 && o.groups > 0,
               "Conv2d: channels, kernel, stride and groups must be positive (in=" << o.in
                   << ", out=" << o.out << ", kernel=" << o.kernel << ", stride=" << o.stride
                   << ", groups=" << o.groups << ")");
  SCCONV_CHECK(o.in % o.groups == 0 && o.out % o.groups == 0,
               "Conv2d: groups=" << o.groups << " must divide in=" << o.in << " and out=" << o.out);
  Shape ws{o.out, o.in / o.groups, o.kernel, o.kernel};
  weight = register_parameter("weight", init::kaiming_normal_fan_out(ws, g));
  if (o.bias) bias = register_parameter("bias", init::default_bias(o.out, init::fan_in(ws), g));
}

Tensor Conv2d::forward(const Tensor& x) {
  Tensor y = conv2d(x, weight, bias, {o_.stride, o_.stride}, {o_.padding, o_.padding},
                    {o_.dilation, o_.dilation}, o_.groups);
  count_macs(y.numel() * (o_.in / o_.groups) * o_.kernel * o_.kernel);
  return y;
}

Linear::Linear(int64_t in, int64_t out, bool with_bias, Generator& g) {
  SCCONV_CHECK(in > 0 && out > 0, "Linear: sizes must be positive (in=" << in << ", out=" << out << ")");
  weight = register_parameter("weight", init::default_weight({out, in}, g));
  if (with_bias) bias = register_parameter("bias", init::default_bias(out, in, g));
}

Tensor Linear::forward(const Tensor& x) {
  Tensor y = linear(x, weight, bias);
  count_macs(y.numel() * weight.size(1));
  return y;
}

}  // namespace scconv
