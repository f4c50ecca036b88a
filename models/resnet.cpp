// models/resnet.cpp: basic and bottleneck blocks and the two ResNet families.
#include "models/resnet.h"

namespace scconv {

namespace {

// A 3x3 convolution (padding 1, no bias), or an SCConv in its place.
std::shared_ptr<Module> conv3x3(int64_t in, int64_t out, int64_t stride, bool use_scconv,
                                const ModelConfig& cfg, Generator& g) {
  if (use_scconv) return std::make_shared<SCConv>(in, out, stride, cfg.scconv, g);
  return std::make_shared<Conv2d>(Conv2dOptions{in, out, 3, stride, 1}, g);
}

// 1x1 conv (stride) + BN: the projection shortcut (option B) and the bottleneck downsample.
std::shared_ptr<Sequential> projection(int64_t in, int64_t out, int64_t stride, Generator& g) {
  auto s = std::make_shared<Sequential>();
  s->add(std::make_shared<Conv2d>(Conv2dOptions{in, out, 1, stride}, g));
  s->add(std::make_shared<BatchNorm2d>(out));
  return s;
}

bool place(const ModelConfig& c, bool is_conv1, int64_t stride) {
  if (!c.use_scconv) return false;
  switch (c.placement) {
    case Placement::Conv1: return is_conv1;
    case Placement::Conv2: return !is_conv1;
    case Placement::Both: return true;
    case Placement::Stride1Only: return stride == 1;
  }
  return false;
}

}  // namespace

// ---- basic block (CIFAR ResNets) -------------------------------------------------------------

BasicBlock::BasicBlock(int64_t in, int64_t planes, int64_t stride, const ModelConfig& cfg,
                       Generator& g)
    : stride_(stride) {
  conv1_ = register_module("conv1", conv3x3(in, planes, stride, place(cfg, true, stride), cfg, g));
  bn1_ = register_module("bn1", std::make_shared<BatchNorm2d>(planes));
  conv2_ = register_module("conv2", conv3x3(planes, planes, 1, place(cfg, false, 1), cfg, g));
  bn2_ = register_module("bn2", std::make_shared<BatchNorm2d>(planes));
  if (stride != 1 || in != planes) {
    if (cfg.shortcut_b) {
      shortcut_ = register_module("shortcut", projection(in, planes, stride, g));
    } else {  // option A: subsample, then zero channels on both sides
      option_a_ = true;
      pad_before_ = (planes - in) / 2;
      pad_after_ = planes - in - pad_before_;
    }
  }
}

// relu(bn(x)) and relu(bn(x) + identity) are one fused op each (BatchNorm2d::forward_relu).
Tensor BasicBlock::forward(const Tensor& x) {
  Tensor out = bn1_->forward_relu((*conv1_)(x));
  Tensor identity = x;
  if (shortcut_) identity = (*shortcut_)(x);
  else if (option_a_) identity = pad_channels(subsample2d(x, stride_), pad_before_, pad_after_);
  return bn2_->forward_relu((*conv2_)(out), identity);
}

// ---- bottleneck block (ResNet-50/101) ------------------------------------------------------

Bottleneck::Bottleneck(int64_t in, int64_t planes, int64_t stride, const ModelConfig& cfg,
                       Generator& g) {
  const int64_t out = planes * kExpansion;
  conv1_ = register_module("conv1", std::make_shared<Conv2d>(Conv2dOptions{in, planes, 1}, g));
  bn1_ = register_module("bn1", std::make_shared<BatchNorm2d>(planes));
  conv2_ = register_module("conv2", conv3x3(planes, planes, stride, place(cfg, false, stride), cfg, g));
  bn2_ = register_module("bn2", std::make_shared<BatchNorm2d>(planes));
  conv3_ = register_module("conv3", std::make_shared<Conv2d>(Conv2dOptions{planes, out, 1}, g));
  bn3_ = register_module("bn3", std::make_shared<BatchNorm2d>(out));
  if (stride != 1 || in != out) downsample_ = register_module("downsample", projection(in, out, stride, g));
}

Tensor Bottleneck::forward(const Tensor& x) {
  Tensor out = bn1_->forward_relu((*conv1_)(x));
  out = bn2_->forward_relu((*conv2_)(out));
  return bn3_->forward_relu((*conv3_)(out), downsample_ ? (*downsample_)(x) : x);
}

// ---- the networks --------------------------------------------------------------------------

ResNet::ResNet(const ModelConfig& cfg, Generator& g) {
  const bool bottleneck = cfg.bottleneck();
  const int64_t stem_out = bottleneck ? 64 : 16;
  if (bottleneck && cfg.imagenet_stem)
    conv1_ = register_module("conv1", std::make_shared<Conv2d>(Conv2dOptions{3, stem_out, 7, 2, 3}, g));
  else
    conv1_ = register_module("conv1", std::make_shared<Conv2d>(Conv2dOptions{3, stem_out, 3, 1, 1}, g));
  bn1_ = register_module("bn1", std::make_shared<BatchNorm2d>(stem_out));
  if (bottleneck && cfg.imagenet_stem) maxpool_ = register_module("maxpool", std::make_shared<MaxPool2d>(3, 2, 1));

  std::vector<int64_t> blocks, planes;
  if (bottleneck) {
    blocks = cfg.depth() == 50 ? std::vector<int64_t>{3, 4, 6, 3} : std::vector<int64_t>{3, 4, 23, 3};
    planes = {64, 128, 256, 512};
  } else {
    SCCONV_CHECK((cfg.depth() - 2) % 6 == 0, "arch " << cfg.arch << ": CIFAR ResNets have 6n+2 layers");
    int64_t n = (cfg.depth() - 2) / 6;
    blocks = {n, n, n};
    planes = {16, 32, 64};
  }
  int64_t in = stem_out;
  for (size_t s = 0; s < blocks.size(); ++s) {
    auto layer = std::make_shared<Sequential>();
    for (int64_t i = 0; i < blocks[s]; ++i) {
      int64_t stride = (i == 0 && s > 0) ? 2 : 1;
      std::string where = "layer" + std::to_string(s + 1) + "." + std::to_string(i);
      try {
        if (bottleneck) {
          layer->add(std::make_shared<Bottleneck>(in, planes[s], stride, cfg, g));
          in = planes[s] * Bottleneck::kExpansion;
        } else {
          layer->add(std::make_shared<BasicBlock>(in, planes[s], stride, cfg, g));
          in = planes[s];
        }
      } catch (const Error& e) {
        throw Error("model " + cfg.arch + ", block " + where + ": " + e.what());
      }
    }
    layers_.push_back(register_module("layer" + std::to_string(s + 1), layer));
  }
  avgpool_ = register_module("avgpool", std::make_shared<GlobalAvgPool2d>());
  head_ = register_module(bottleneck ? "fc" : "linear", std::make_shared<Linear>(in, cfg.num_classes, true, g));
}

Tensor ResNet::forward(const Tensor& x) {
  SCCONV_CHECK(x.dim() == 4 && x.size(1) == 3, "ResNet: expected images (N, 3, H, W), got " << x.str());
  // Channels-last from here on: each conv runs on oneDNN's NHWC kernels without reorders, and
  // every other op keeps the layout of its input (docs/performance.md).
  Tensor h = contiguous(x, MemoryFormat::ChannelsLast);
  h = bn1_->forward_relu((*conv1_)(h));
  if (maxpool_) h = (*maxpool_)(h);
  for (auto& layer : layers_) h = (*layer)(h);
  return (*head_)(flatten((*avgpool_)(h), 1));
}

std::shared_ptr<Module> build_model(const ModelConfig& config, Generator& g) {
  auto m = std::make_shared<ResNet>(config, g);
  m->assign_names();
  return m;
}

}  // namespace scconv
