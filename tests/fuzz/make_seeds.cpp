// tests/fuzz/make_seeds.cpp: writes the seed corpora of the fuzz targets, tests/fuzz/corpus/<target>/,
// from our own writers (safetensors, CIFAR records, PNG/JPEG/BMP through stb_image_write, the
// presets in configs/, checkpoint states). The corpora are committed; run this again after a
// format change:
//   build/release/tests/make_fuzz_seeds tests/fuzz/corpus
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>

#include <filesystem>
#include <fstream>
#include <iostream>

#include "apps/checkpoint.h"
#include "core/file_io.h"
#include "core/safetensors.h"

using namespace scconv;
namespace fs = std::filesystem;

namespace {
fs::path root;
void seed(const std::string& target, const std::string& name, const std::string& bytes) {
  fs::create_directories(root / target);
  std::ofstream(root / target / name, std::ios::binary) << bytes;
}
std::string byte(int b) { return std::string(1, static_cast<char>(b)); }

void safetensors_seeds() {
  seed("safetensors", "empty", serialize_safetensors({}));
  seed("safetensors", "one_f32_meta", serialize_safetensors({{"w", Tensor::from_vector(std::vector<float>{1, -2, 3.5}, {3})}},
                                                             {{"config", "{\"epochs\": 1}"}, {"input", "x"}}));
  seed("safetensors", "all_dtypes",
       serialize_safetensors({{"a", Tensor::from_vector(std::vector<double>{0.25, 1e300}, {2, 1})},
                              {"b", Tensor::from_vector(std::vector<int64_t>{-1, 7, 9}, {3})},
                              {"c", Tensor::from_vector(std::vector<uint8_t>{0, 255}, {1, 2})},
                              {"d", Tensor::empty({0, 4})},
                              {"e", Tensor::scalar(3.0, DType::F32)}}));
  const fs::path official = fs::path(SCCONV_TEST_DATA) / "official.safetensors";
  seed("safetensors", "official", read_file(official.string(), 1 << 20));
}

std::string cifar_records(int n, bool cifar100) {
  std::string s;
  for (int i = 0; i < n; ++i) {
    if (cifar100) s += byte(i % 20);
    s += byte((i * 3) % (cifar100 ? 100 : 10));
    for (int k = 0; k < 3072; ++k) s += byte((i * 7 + k) % 256);
  }
  return s;
}

void cifar_seeds() {
  seed("cifar", "cifar10_two", byte(0) + cifar_records(2, false));
  seed("cifar", "cifar100_two", byte(1) + cifar_records(2, true));
  seed("cifar", "cifar10_truncated", byte(0) + cifar_records(1, false).substr(0, 1000));
}

void image_seeds() {
  auto image = [](int w, int h) {
    std::vector<unsigned char> rgb(w * h * 3);
    for (size_t i = 0; i < rgb.size(); ++i) rgb[i] = static_cast<unsigned char>(i * 37 % 256);
    return rgb;
  };
  auto sink = [](void* ctx, void* d, int n) { static_cast<std::string*>(ctx)->append(static_cast<char*>(d), n); };
  std::string png8, png32, jpg, bmp;
  std::vector<unsigned char> a = image(8, 8), b = image(32, 32), c = image(20, 12), d = image(5, 7);
  stbi_write_png_to_func(sink, &png8, 8, 8, 3, a.data(), 8 * 3);
  stbi_write_png_to_func(sink, &png32, 32, 32, 3, b.data(), 32 * 3);
  stbi_write_jpg_to_func(sink, &jpg, 20, 12, 3, c.data(), 90);
  stbi_write_bmp_to_func(sink, &bmp, 5, 7, 3, d.data());
  seed("image", "png_8x8", byte(0) + png8);      // options byte: 0 = 8x8, no resize
  seed("image", "png_32x32", byte(2) + png32);   // 2 = 32x32
  seed("image", "jpg_resized", byte(3) + jpg);   // 3 = 32x32, resize
  seed("image", "bmp_resized", byte(1) + bmp);   // 1 = 8x8, resize
  seed("image", "broken", byte(0) + png8.substr(0, png8.size() / 2));
}

void config_seeds() {
  for (const char* sub : {"train", "models"})
    for (auto& e : fs::directory_iterator(fs::path(SCCONV_SOURCE_DIR_TESTS) / "configs" / sub))
      seed("config", std::string(sub) + "_" + e.path().stem().string(),
           byte(std::string(sub) == "models") + read_file(e.path().string(), 1 << 20));
  seed("config", "inline_model", byte(0) + R"({"model": {"arch": "resnet20", "conv": "scconv", "scconv": {"alpha": 0.25}},
    "data": {"dataset": "folder", "image_size": [16, 24]}, "nonfinite": {"action": "skip"}, "epochs": 3})");
}

void set_seeds() {
  seed("set", "basic", "epochs=3\noptim.lr=0.1\nout=runs/x");
  seed("set", "scconv", "model=resnet20-scconv\nmodel.scconv.sru.gate=hard\nmodel.scconv.cru.fuse=split_conv");
  seed("set", "inline_model", "model={\"arch\": \"resnet56\", \"shortcut\": \"B\"}\ndata.augment.cutout=8");
  seed("set", "lists", "data.mean=[0.5,0.5,0.5]\nschedule.milestones=[2,4]\nnonfinite.action=skip");
}

void state_seeds() {
  apps::TrainState s;
  s.epoch = 2;
  s.global_step = 20;
  s.best_acc = 0.5;
  s.best_epoch = 2;
  for (int e = 1; e <= 2; ++e)
    s.history.push_back({{"epoch", e}, {"train_loss", 1.5 / e}, {"train_acc", 0.3 * e}, {"test_loss", 1.4}, {"test_acc", 0.25 * e},
                         {"lr", 0.1}, {"epoch_seconds", 3.5}, {"images_per_second", 100.0}, {"data_wait_seconds", 0.0},
                         {"skipped_steps", 0}});
  seed("state", "epoch_boundary", s.to_json().dump(1));
  s.step_in_epoch = 3;
  s.global_step = 23;
  s.partial = {2.5, 0.1, 1.2, 100, 192, 1};
  nlohmann::json j = s.to_json();
  j["config"] = {{"epochs", 5}};
  seed("state", "mid_epoch", j.dump());
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: make_fuzz_seeds DIR (e.g. tests/fuzz/corpus)\n";
    return 2;
  }
  root = argv[1];
  safetensors_seeds();
  cifar_seeds();
  image_seeds();
  config_seeds();
  set_seeds();
  state_seeds();
  std::cout << "make_fuzz_seeds: wrote the corpora under " << root.string() << "\n";
  return 0;
}
