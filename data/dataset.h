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
// Files over kMaxCifarFileBytes are refused before reading (the official ones are 30.7 MB, CIFAR-100's
// train.bin 153.7 MB).
inline constexpr uint64_t kMaxCifarFileBytes = 4ull << 30;
// The class names come from the folder's meta file when it has one (batches.meta.txt for
// CIFAR-10, fine_label_names.txt for CIFAR-100), else CIFAR-10's known names / "class0"...
Dataset load_cifar(const std::string& dir, bool cifar100, bool train);
// `classes` names, one a line (blank lines skipped); an Error names the file otherwise.
std::vector<std::string> read_class_names(const std::string& path, int64_t classes);
// The records of files already in memory: (name for messages, bytes) each, in order.
Dataset parse_cifar(const std::vector<std::pair<std::string, std::string>>& files, bool cifar100);

struct ImageFolderOptions {
  int64_t height = 32, width = 32;
  bool resize = false;       // resize to height x width (bilinear) instead of requiring it
  bool skip_bad = true;      // skip unreadable files (counted) instead of failing
};
// dir/<class>/<image>.{png,jpg,jpeg,bmp}. Labels index `classes` when given (the training
// set's, so that a test folder with fewer or other sub-folders gets the same index per class
// name; a sub-folder not in the list is an error), else the sorted sub-folder names.
// `skipped` receives the paths of files that could not be used (with skip_bad).
Dataset load_image_folder(const std::string& dir, const ImageFolderOptions& o,
                          std::vector<std::string>* skipped = nullptr,
                          const std::vector<std::string>* classes = nullptr);
// Limits checked before decoding: file size and each side of the image in pixels.
inline constexpr uint64_t kMaxImageFileBytes = 64ull << 20;
inline constexpr int kMaxImageSide = 8192;
// Decodes one PNG/JPEG/BMP file's bytes into planar RGB (3, o.height, o.width) at `planar`
// (resized when o.resize); returns what is wrong with it ("" when it decoded).
std::string decode_image(const std::string& bytes, const ImageFolderOptions& o, uint8_t* planar);

}  // namespace scconv
