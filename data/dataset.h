// data/dataset.h: an in-memory image classification dataset (whole set as uint8), and the
// loaders that fill it: CIFAR-10/100 binary files (cifar.cpp) and image folders
// (image_folder.cpp). Every file problem is an Error naming the file (and byte offset).
#pragma once
#include <string>
#include <vector>

#include "core/tensor.h"

namespace scconv {

struct Dataset {
  Tensor images;  // uint8 (N, C, H, W)
  Tensor labels;  // int64 (N)
  std::vector<std::string> classes;
  int64_t size() const { return images.defined() ? images.size(0) : 0; }
  // The subset at `indices` (copies).
  Dataset subset(const std::vector<int64_t>& indices) const;
};

// dir holds data_batch_1..5.bin and test_batch.bin (CIFAR-10) or train.bin and test.bin
// (CIFAR-100, fine labels). Records: label byte(s) then 3072 bytes (R, G, B planes of 32x32).
Dataset load_cifar(const std::string& dir, bool cifar100, bool train);

struct ImageFolderOptions {
  int64_t height = 32, width = 32;
  bool resize = false;       // resize to height x width (bilinear) instead of requiring it
  bool skip_bad = true;      // skip unreadable files (counted) instead of failing
};
// dir/<class>/<image>.{png,jpg,jpeg,bmp}; classes are the sorted sub-folder names.
// `skipped` receives the paths of files that could not be used (with skip_bad).
Dataset load_image_folder(const std::string& dir, const ImageFolderOptions& o,
                          std::vector<std::string>* skipped = nullptr);

}  // namespace scconv
