// data/image_folder.cpp: a folder per class of PNG/JPEG/BMP images, read with stb_image.
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_ONLY_BMP
#include <stb_image.h>

#include <algorithm>
#include <filesystem>

#include "data/dataset.h"

namespace scconv {

namespace {
// Bilinear resize of an interleaved RGB image (h, w, 3) into planar (3, oh, ow).
void resize_planar(const unsigned char* src, int h, int w, uint8_t* dst, int64_t oh, int64_t ow) {
  for (int64_t y = 0; y < oh; ++y)
    for (int64_t x = 0; x < ow; ++x) {
      double sy = (y + 0.5) * h / double(oh) - 0.5, sx = (x + 0.5) * w / double(ow) - 0.5;
      int y0 = std::clamp(int(std::floor(sy)), 0, h - 1), x0 = std::clamp(int(std::floor(sx)), 0, w - 1);
      int y1 = std::min(y0 + 1, h - 1), x1 = std::min(x0 + 1, w - 1);
      double fy = std::clamp(sy - y0, 0.0, 1.0), fx = std::clamp(sx - x0, 0.0, 1.0);
      for (int c = 0; c < 3; ++c) {
        auto at = [&](int yy, int xx) { return double(src[(yy * w + xx) * 3 + c]); };
        double v = (1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x1)) + fy * ((1 - fx) * at(y1, x0) + fx * at(y1, x1));
        dst[(c * oh + y) * ow + x] = static_cast<uint8_t>(std::clamp(std::lround(v), 0L, 255L));
      }
    }
}
}  // namespace

Dataset load_image_folder(const std::string& dir, const ImageFolderOptions& o, std::vector<std::string>* skipped) {
  namespace fs = std::filesystem;
  SCCONV_CHECK(fs::is_directory(dir), "image folder '" << dir << "' does not exist or is not a directory");
  Dataset d;
  for (auto& e : fs::directory_iterator(dir))
    if (e.is_directory()) d.classes.push_back(e.path().filename().string());
  std::sort(d.classes.begin(), d.classes.end());
  SCCONV_CHECK(!d.classes.empty(), "image folder '" << dir << "' has no class sub-folders");
  std::vector<std::pair<std::string, int64_t>> files;
  for (size_t c = 0; c < d.classes.size(); ++c) {
    std::vector<std::string> names;
    for (auto& e : fs::directory_iterator(fs::path(dir) / d.classes[c])) {
      std::string ext = e.path().extension().string();
      std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
      if (e.is_regular_file() && (ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".bmp"))
        names.push_back(e.path().string());
    }
    std::sort(names.begin(), names.end());
    for (auto& n : names) files.emplace_back(n, static_cast<int64_t>(c));
  }
  const int64_t per = 3 * o.height * o.width;
  std::vector<uint8_t> pixels;
  std::vector<int64_t> labels;
  for (auto& [path, label] : files) {
    int w = 0, h = 0, ch = 0;
    unsigned char* img = stbi_load(path.c_str(), &w, &h, &ch, 3);
    std::string problem;
    if (!img) problem = std::string("unreadable image (") + stbi_failure_reason() + ")";
    else if (!o.resize && (h != o.height || w != o.width))
      problem = "size " + std::to_string(w) + "x" + std::to_string(h) + ", expected " + std::to_string(o.width) + "x" +
                std::to_string(o.height) + " (or enable resizing)";
    if (!problem.empty()) {
      if (img) stbi_image_free(img);
      SCCONV_CHECK(o.skip_bad, "'" << path << "': " << problem);
      if (skipped) skipped->push_back(path + ": " + problem);
      continue;
    }
    size_t at = pixels.size();
    pixels.resize(at + per);
    resize_planar(img, h, w, pixels.data() + at, o.height, o.width);
    stbi_image_free(img);
    labels.push_back(label);
  }
  const int64_t n = static_cast<int64_t>(labels.size());
  SCCONV_CHECK(n > 0, "image folder '" << dir << "': no usable images");
  d.images = Tensor::from_vector(pixels, {n, 3, o.height, o.width});
  d.labels = Tensor::from_vector(labels, {n});
  return d;
}

}  // namespace scconv
