// tests/synthetic_cifar.h: what the training tests share: a per-process scratch folder, and
// CIFAR-10-format files they learn from (no real data needed): 4 classes, the class is the
// quadrant of a bright 10x10 square on noise. 64 images in each data_batch_*.bin, 128 in
// test_batch.bin.
#pragma once
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "core/rng.h"

namespace scconv::testing {

// <tmp>/<prefix><pid>, created on first use and removed at exit: two test runs at once (Release
// and sanitizer builds) must not share run folders. One per process (the first prefix asked).
inline std::filesystem::path scratch_dir(const std::string& prefix) {
  struct Scratch {
    std::filesystem::path dir;
    explicit Scratch(std::filesystem::path d) : dir(std::move(d)) { std::filesystem::create_directories(dir); }
    ~Scratch() {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  };
  static Scratch s(std::filesystem::temp_directory_path() / (prefix + std::to_string(getpid())));
  return s.dir;
}

inline void write_synthetic_cifar(const std::filesystem::path& d) {
  std::filesystem::create_directories(d);
  Generator g(5);
  auto file = [&](const std::string& name, int n) {
    std::string s;
    for (int i = 0; i < n; ++i) {
      int label = static_cast<int>(g.uniform() * 4) % 4;
      s.push_back(char(label));
      int y0 = (label / 2) * 16 + static_cast<int>(g.uniform() * 6), x0 = (label % 2) * 16 + static_cast<int>(g.uniform() * 6);
      for (int c = 0; c < 3; ++c)
        for (int y = 0; y < 32; ++y)
          for (int x = 0; x < 32; ++x) {
            double v = 60 + 40 * g.uniform() + ((y >= y0 && y < y0 + 10 && x >= x0 && x < x0 + 10) ? 120 : 0);
            s.push_back(char(static_cast<unsigned char>(v)));
          }
    }
    std::ofstream(d / name, std::ios::binary) << s;
  };
  for (int b = 1; b <= 5; ++b) file("data_batch_" + std::to_string(b) + ".bin", 64);
  file("test_batch.bin", 128);
}

// The synthetic files in <scratch>/data, written on the first call of the process.
inline std::filesystem::path synthetic_cifar_in(const std::filesystem::path& scratch) {
  static const std::filesystem::path d = [&] {
    std::filesystem::path p = scratch / "data";
    write_synthetic_cifar(p);
    return p;
  }();
  return d;
}

}  // namespace scconv::testing
