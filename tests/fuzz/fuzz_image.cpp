// tests/fuzz/fuzz_image.cpp: libFuzzer target for the image-folder decoder path (data/dataset.h,
// decode_image: stb_image from memory behind our size checks). The first byte picks the options
// (resize or not; 8x8 or 32x32); the rest is the file. A decoded image must survive a PNG write
// (stb_image_write) and a re-decode unchanged.
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>

#include <vector>

#include "data/dataset.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  scconv::ImageFolderOptions o;
  o.resize = data[0] & 1;
  o.height = o.width = (data[0] & 2) ? 32 : 8;
  const std::string bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  std::vector<uint8_t> planar(3 * o.height * o.width);
  std::string problem;
  try {
    problem = scconv::decode_image(bytes, o, planar.data());
  } catch (const scconv::Error&) {
    return 0;
  }
  if (!problem.empty()) return 0;
  // planar (3, H, W) -> interleaved, PNG, decoded again without resizing: the same pixels
  std::vector<uint8_t> rgb(planar.size());
  const int64_t hw = o.height * o.width;
  for (int64_t i = 0; i < hw; ++i)
    for (int c = 0; c < 3; ++c) rgb[i * 3 + c] = planar[c * hw + i];
  std::string png;
  auto sink = [](void* ctx, void* d, int n) { static_cast<std::string*>(ctx)->append(static_cast<char*>(d), n); };
  FUZZ_REQUIRE(stbi_write_png_to_func(sink, &png, int(o.width), int(o.height), 3, rgb.data(), int(o.width) * 3));
  scconv::ImageFolderOptions same = o;
  same.resize = false;
  std::vector<uint8_t> again(planar.size());
  FUZZ_REQUIRE(scconv::decode_image(png, same, again.data()).empty());
  FUZZ_REQUIRE(again == planar);
  return 0;
}
