// models/resnet.h: the ResNets, built from a model config (models/model_config.h).
//   CIFAR ResNet-20/32/44/56/110 (He et al. 2016, basic blocks, 16/32/64 channels): names
//     conv1, bn1, layer{1,2,3}.{i}.conv1/bn1/conv2/bn2/shortcut.{0,1}, linear.
//   ResNet-50/101 (bottleneck, torchvision names): conv1, bn1, layer{1..4}.{i}.conv1..3/bn1..3/
//     downsample.{0,1}, fc; stem "cifar" (3x3 stride 1, no max-pool) or "imagenet" (7x7 stride 2
//     and a 3x3 max-pool).
// SCConv replaces the 3x3 convolutions that the config's scconv.placement names.
#pragma once
#include "layers/basic.h"
#include "layers/scconv.h"
#include "models/model_config.h"

namespace scconv {

// (N, 3, H, W) -> logits (N, num_classes)
std::shared_ptr<Module> build_model(const ModelConfig& config, Generator& g);

class BasicBlock : public Module {
 public:
  BasicBlock(int64_t in, int64_t planes, int64_t stride, const ModelConfig& cfg, Generator& g);
  Tensor forward(const Tensor& x) override;
  std::string type() const override { return "BasicBlock"; }

 private:
  std::shared_ptr<Module> conv1_, conv2_, shortcut_;
  std::shared_ptr<BatchNorm2d> bn1_, bn2_;
  int64_t pad_before_ = 0, pad_after_ = 0, stride_ = 1;
  bool option_a_ = false;  // zero-padding shortcut
};

class Bottleneck : public Module {
 public:
  static constexpr int64_t kExpansion = 4;
  Bottleneck(int64_t in, int64_t planes, int64_t stride, const ModelConfig& cfg, Generator& g);
  Tensor forward(const Tensor& x) override;
  std::string type() const override { return "Bottleneck"; }

 private:
  std::shared_ptr<Module> conv1_, conv2_, conv3_, downsample_;
  std::shared_ptr<BatchNorm2d> bn1_, bn2_, bn3_;
};

class ResNet : public Module {
 public:
  ResNet(const ModelConfig& cfg, Generator& g);
  Tensor forward(const Tensor& x) override;
  std::string type() const override { return "ResNet"; }

 private:
  std::shared_ptr<Module> conv1_, maxpool_, avgpool_, head_;
  std::shared_ptr<BatchNorm2d> bn1_;
  std::vector<std::shared_ptr<Module>> layers_;
};

}  // namespace scconv
