// tests/test_data.cpp: CIFAR-10/100 and image-folder loaders on small files the test writes
// (including truncated, oversized and corrupt files and bad labels, each with its message),
// augmentation (determinism, crop/flip/cutout on known images) and the loader.
// Run: ./build/tests/test_data
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>

#include "data/loader.h"
#include "test_util.h"

using namespace scconv;
using doctest::Contains;
namespace fs = std::filesystem;

namespace {
fs::path scratch(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("scconv_test_" + name);
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}
// n records of CIFAR-10: label (i + offset) % 10, pixel bytes (i * 7 + k) % 256.
std::string cifar_records(int n, int label_bytes, int offset) {
  std::string s;
  for (int i = 0; i < n; ++i) {
    if (label_bytes == 2) s.push_back(char(i % 20));  // coarse
    s.push_back(char((i + offset) % (label_bytes == 2 ? 100 : 10)));
    for (int k = 0; k < 3072; ++k) s.push_back(char((i * 7 + k) % 256));
  }
  return s;
}
void write(const fs::path& p, const std::string& s) { std::ofstream(p, std::ios::binary) << s; }
fs::path cifar10_dir(const std::string& name, int per_file = 4) {
  fs::path d = scratch(name);
  for (int b = 1; b <= 5; ++b) write(d / ("data_batch_" + std::to_string(b) + ".bin"), cifar_records(per_file, 1, b));
  write(d / "test_batch.bin", cifar_records(per_file, 1, 0));
  return d;
}
// ---- PNG files written byte by byte, for what stb_image_write cannot make (16 bits a channel,
// a compressed stream that inflates past the pixels)
std::string be32(uint32_t v) { return {char(v >> 24), char(v >> 16), char(v >> 8), char(v)}; }
std::string png_chunk(const std::string& type, const std::string& data) {
  return be32(uint32_t(data.size())) + type + data + be32(0);  // (stb_image does not check the CRC)
}
// A PNG of w x h pixels (bit depth, colour type as in its IHDR) whose IDAT holds `zlib`.
std::string png_file(uint32_t w, uint32_t h, int depth, int color, const std::string& zlib) {
  const std::string ihdr = be32(w) + be32(h) + std::string{char(depth), char(color), 0, 0, 0};
  return std::string("\x89PNG\r\n\x1a\n", 8) + png_chunk("IHDR", ihdr) + png_chunk("IDAT", zlib) + png_chunk("IEND", "");
}
// raw in a zlib stream of stored (uncompressed) deflate blocks.
std::string zlib_stored(const std::string& raw) {
  std::string z = "\x78\x01";
  for (size_t at = 0;;) {
    const size_t n = std::min<size_t>(65535, raw.size() - at);
    const bool last = at + n == raw.size();
    z += std::string{char(last), char(n & 255), char(n >> 8), char(~n & 255), char((~n >> 8) & 255)} + raw.substr(at, n);
    at += n;
    if (last) break;
  }
  uint32_t a = 1, b = 0;  // Adler-32
  for (unsigned char c : raw) a = (a + c) % 65521, b = (b + a) % 65521;
  return z + be32((b << 16) | a);
}
// A zlib stream that inflates to 1 + 258 * copies zero bytes (one fixed-Huffman block: a literal
// 0, then copies of "length 258, distance 1"), about 13 bits a copy: a "zip bomb".
std::string zlib_bomb(size_t copies) {
  std::string z = "\x78\x01";
  uint32_t acc = 0;
  int bits = 0;
  auto put = [&](uint32_t v, int n) {  // n bits of v, least significant first
    for (int i = 0; i < n; ++i, v >>= 1) {
      acc |= (v & 1) << bits;
      if (++bits == 8) z.push_back(char(acc)), acc = 0, bits = 0;
    }
  };
  auto code = [&](uint32_t c, int n) {  // a Huffman code: most significant bit first
    for (int i = n - 1; i >= 0; --i) put((c >> i) & 1, 1);
  };
  put(1, 1), put(1, 2);  // last block, fixed Huffman codes
  code(0x30, 8);         // literal 0
  for (size_t i = 0; i < copies; ++i) code(0xC5, 8), code(0, 5);  // length code 285 (258), distance 1
  code(0, 7);                                                      // end of block
  put(0, 7);
  return z;
}
}  // namespace

TEST_CASE("CIFAR-10 and CIFAR-100 binary files load") {
  fs::path d = cifar10_dir("c10");
  Dataset tr = load_cifar(d.string(), false, true), te = load_cifar(d.string(), false, false);
  CHECK(tr.size() == 20);
  CHECK(te.size() == 4);
  CHECK(tr.images.shape() == Shape{20, 3, 32, 32});
  CHECK(tr.labels.to_vector<int64_t>()[0] == 1);  // file 1, record 0
  CHECK(tr.labels.to_vector<int64_t>()[4] == 2);  // file 2, record 0
  CHECK(tr.images.data<uint8_t>()[3072 + 5] == (1 * 7 + 5) % 256);
  CHECK(tr.classes[9] == "truck");
  fs::path c = scratch("c100");
  write(c / "train.bin", cifar_records(3, 2, 95));
  write(c / "test.bin", cifar_records(2, 2, 0));
  Dataset t100 = load_cifar(c.string(), true, true);
  CHECK(t100.labels.to_vector<int64_t>() == std::vector<int64_t>{95, 96, 97});
  CHECK(t100.classes[95] == "class95");  // no meta file: numbered
  // with the dataset's meta file: its class names, in label order (CRLF and blank lines allowed)
  std::string names;
  for (int i = 0; i < 100; ++i) names += "name" + std::to_string(i) + (i % 7 ? "\n" : "\r\n\n");
  write(c / "fine_label_names.txt", names);
  t100 = load_cifar(c.string(), true, false);
  CHECK(t100.classes.size() == 100);
  CHECK(t100.classes[0] == "name0");
  CHECK(t100.classes[99] == "name99");
  write(d / "batches.meta.txt", "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n");
  CHECK(load_cifar(d.string(), false, false).classes[9] == "j");
  // a meta file that does not match is an error naming it
  write(d / "batches.meta.txt", "a\nb\n");
  CHECK_THROWS_WITH_AS(load_cifar(d.string(), false, false), Contains("batches.meta.txt': 2 class names, expected 10"), Error);
  write(c / "fine_label_names.txt", std::string("bad\x01name\n"));
  CHECK_THROWS_WITH_AS(load_cifar(c.string(), true, false), Contains("fine_label_names.txt': line 1 is not a plain class name"), Error);
  fs::remove(d / "batches.meta.txt");
}

TEST_CASE("bad CIFAR files: each problem names the file and byte offset") {
  fs::path d = cifar10_dir("bad");
  write(d / "data_batch_3.bin", cifar_records(4, 1, 0).substr(0, 3 * 3073 + 100));  // truncated
  CHECK_THROWS_WITH_AS(load_cifar(d.string(), false, true),
                       Contains("data_batch_3.bin': size 9319 bytes is not a whole number of 3073-byte records"), Error);
  write(d / "data_batch_3.bin", cifar_records(4, 1, 0) + "xyz");  // oversized
  CHECK_THROWS_WITH_AS(load_cifar(d.string(), false, true), Contains("the last record starts at byte 12292"), Error);
  std::string bad = cifar_records(4, 1, 0);
  bad[2 * 3073] = char(12);  // label 12 in record 2
  write(d / "data_batch_3.bin", bad);
  CHECK_THROWS_WITH_AS(load_cifar(d.string(), false, true),
                       Contains("data_batch_3.bin': label 12 at byte offset 6146 is outside [0, 10)"), Error);
  fs::remove(d / "data_batch_5.bin");
  CHECK_THROWS_WITH_AS(load_cifar(d.string(), false, true), Contains("missing file"), Error);
  write(d / "data_batch_5.bin", "");
  CHECK_THROWS_WITH_AS(load_cifar(d.string(), false, true), Contains("data_batch_5.bin': size 0 bytes"), Error);
}

TEST_CASE("image folder: classes from sub-folders, bad files skipped with a count or fatal, resizing") {
  fs::path d = scratch("folder");
  std::vector<unsigned char> rgb(8 * 8 * 3);
  for (const char* cls : {"cats", "dogs"}) {
    fs::create_directories(d / cls);
    for (int i = 0; i < 2; ++i) {
      for (size_t k = 0; k < rgb.size(); ++k) rgb[k] = static_cast<unsigned char>((k + i * 40 + (cls[0] == 'd') * 100) % 256);
      std::string f = (d / cls / ("img" + std::to_string(i) + ".png")).string();
      REQUIRE(stbi_write_png(f.c_str(), 8, 8, 3, rgb.data(), 8 * 3));
    }
  }
  REQUIRE(stbi_write_bmp((d / "dogs" / "big.bmp").string().c_str(), 8, 8, 3, rgb.data()));
  write(d / "dogs" / "broken.png", "this is not an image");
  std::vector<std::string> skipped;
  Dataset ds = load_image_folder(d.string(), {8, 8, false, true}, &skipped);
  CHECK(ds.classes == std::vector<std::string>{"cats", "dogs"});
  CHECK(ds.size() == 5);
  CHECK(skipped.size() == 1);
  CHECK(skipped[0].find("broken.png: unreadable image") != std::string::npos);
  CHECK(ds.labels.to_vector<int64_t>() == std::vector<int64_t>{0, 0, 1, 1, 1});
  // pixel (c=1, y=0, x=2) of the first cat: interleaved index (0*8+2)*3+1 = 7
  CHECK(ds.images.data<uint8_t>()[1 * 64 + 2] == 7);
  CHECK_THROWS_WITH_AS(load_image_folder(d.string(), {8, 8, false, false}), Contains("broken.png': unreadable image"), Error);
  CHECK_THROWS_WITH_AS(load_image_folder(d.string(), {4, 4, false, true}, &skipped), Contains("no usable images"), Error);
  Dataset small = load_image_folder(d.string(), {4, 4, true, true});
  CHECK(small.images.shape() == Shape{5, 3, 4, 4});
  CHECK_THROWS_WITH_AS(load_image_folder((d / "nope").string(), {}), Contains("does not exist"), Error);
}

TEST_CASE("image folder: test labels follow the training set's classes by name; bad entries are named") {
  fs::path d = scratch("folder_splits");
  std::vector<unsigned char> rgb(4 * 4 * 3, 100);
  auto image = [&](const fs::path& dir) {
    fs::create_directories(dir);
    REQUIRE(stbi_write_png((dir / "a.png").string().c_str(), 4, 4, 3, rgb.data(), 4 * 3));
  };
  for (const char* c : {"ant", "bee", "cat"}) image(d / "train" / c);
  for (const char* c : {"bee", "cat"}) image(d / "test" / c);  // no "ant" in the test split
  const ImageFolderOptions o{4, 4, false, false};
  Dataset tr = load_image_folder((d / "train").string(), o);
  Dataset te = load_image_folder((d / "test").string(), o, nullptr, &tr.classes);
  CHECK(te.classes == tr.classes);
  CHECK(te.labels.to_vector<int64_t>() == std::vector<int64_t>{1, 2});  // bee, cat: the training set's indices
  // on its own the test folder would number them 0, 1: the bug this guards against
  CHECK(load_image_folder((d / "test").string(), o).labels.to_vector<int64_t>() == std::vector<int64_t>{0, 1});
  image(d / "test" / "dog");
  CHECK_THROWS_WITH_AS(load_image_folder((d / "test").string(), o, nullptr, &tr.classes),
                       Contains("class 'dog' is not one of the 3 classes of the training set"), Error);
  fs::remove_all(d / "test" / "dog");
  // special files and loops: named, skipped or fatal as any bad image, never a hang
  REQUIRE(::mkfifo((d / "train" / "ant" / "pipe.png").c_str(), 0600) == 0);
  fs::create_directory_symlink(d / "train" / "loop", d / "train" / "loop");  // a symlink loop as a class folder
  std::vector<std::string> skipped;
  Dataset with = load_image_folder((d / "train").string(), {4, 4, false, true}, &skipped);
  CHECK(with.classes.size() == 3);
  REQUIRE(skipped.size() == 1);
  CHECK(skipped[0].find("pipe.png: '") != std::string::npos);
  CHECK(skipped[0].find("is a FIFO (named pipe), not a regular file") != std::string::npos);
  CHECK_THROWS_WITH_AS(load_image_folder((d / "train").string(), o), Contains("pipe.png': '"), Error);
  CHECK_THROWS_WITH_AS(load_image_folder((d / "nope").string(), o), Contains("does not exist or is not a directory"), Error);
}

TEST_CASE("image decoding: what stb_image 2.27 does not check is checked first (found by fuzzing)") {
  // the fuzz findings, kept in the corpus: an options byte, then the file
  auto finding = [](const char* name) {
    std::ifstream f(fs::path(SCCONV_TEST_DATA) / ".." / "fuzz" / "corpus" / "image" / name, std::ios::binary);
    std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    REQUIRE(s.size() > 1);
    return s.substr(1);
  };
  ImageFolderOptions o{32, 32, true, true};
  std::vector<uint8_t> planar(3 * 32 * 32);
  for (const char* name : {"regression_dht_over_256", "regression_dht_after_padding", "regression_dht_after_fill_bytes",
                           "regression_dht_after_stuffed_fill"}) {
    CAPTURE(name);  // stb_image would write past its 257-entry Huffman tables
    CHECK(decode_image(finding(name), o, planar.data()).find("JPEG with a Huffman table (DHT) of") != std::string::npos);
  }
  // a scan decoding with AC table 0 where the DHTs define AC tables 1 and 3: stb_image would decode
  // with a table read from uninitialised memory, and index its symbols out of bounds
  CHECK(decode_image(finding("regression_sos_undefined_huffman_table"), o, planar.data()) ==
        "unreadable image (JPEG with a scan (SOS) that decodes component 1 with Huffman table AC 0, which no DHT "
        "before it defines)");
  {  // the same file with the second AC table renumbered 0: the check passes it on to stb_image
    std::string fixed = finding("regression_sos_undefined_huffman_table");
    REQUIRE(static_cast<unsigned char>(fixed[175 + 2 + 17 + 12]) == 0x13);
    fixed[175 + 2 + 17 + 12] = 0x10;
    CHECK(decode_image(fixed, o, planar.data()).find("Huffman table AC") == std::string::npos);
  }
  // progressive JPEGs (libjpeg-turbo's `cjpeg -progressive [-restart 1 -sample 1x1]` of a 20x12
  // image): the first DC scan names AC table 0 before any DHT defines it, and decodes without it
  for (const char* name : {"jpg_progressive", "jpg_progressive_restarts"}) {
    CAPTURE(name);
    CHECK(decode_image(finding(name), o, planar.data()) == "");
  }
  CHECK(decode_image(finding("regression_bmp_zero_height"), o, planar.data()) ==
        "image of 1797x0 pixels (each side must be 1 to 8192)");
  // a second IDAT chunk claiming 1 GiB in a 58-byte file: stb_image would grow its buffer to 2 GiB
  CHECK(decode_image(finding("regression_png_idat_past_end"), o, planar.data()) ==
        "unreadable image (PNG with a chunk 'IDAT' of 1073741824 bytes at byte 46 that runs past the end of the file "
        "(58 bytes))");
  {  // a chunk type that is not letters is shown escaped
    std::string png = png_file(8, 8, 8, 2, zlib_stored(std::string(8 * 25, 0)));
    png.replace(33, 8, be32(1000) + std::string("\x01\xFF" "AT", 4));
    CHECK(decode_image(png, o, planar.data()).find("a chunk '\\x01\\xFFAT' of 1000 bytes at byte 33") != std::string::npos);
  }
  // an 8x8 PNG whose compressed data inflates to 16 MiB: stb_image would keep doubling its output
  // buffer; the ceiling for 8x8 pixels stops it
  const std::string bomb = png_file(8, 8, 8, 2, zlib_bomb(65536));
  CHECK(decode_image(bomb, o, planar.data()).find("more than an image of 8x8 pixels can need: a corrupt file") !=
        std::string::npos);
  {  // and the largest pixels a well-formed file has, 16-bit RGBA, are within that ceiling
    const uint32_t w = 300, h = 200;
    std::string raw;
    for (uint32_t y = 0; y < h; ++y) {
      raw.push_back(0);  // filter: none
      for (uint32_t x = 0; x < w; ++x)
        for (int c = 0; c < 4; ++c) raw += std::string{char(c == 0 ? 200 : 10), char(c == 3 ? 255 : 0)};
    }
    std::vector<uint8_t> px(3 * h * w);
    REQUIRE(decode_image(png_file(w, h, 16, 6, zlib_stored(raw)), {int64_t(h), int64_t(w), false, true}, px.data()) == "");
    CHECK(int(px[0]) == 200);
    CHECK(int(px[h * w]) == 10);
  }
  // and a good JPEG still decodes
  std::vector<unsigned char> rgb(20 * 12 * 3, 90);
  std::string jpg;
  stbi_write_jpg_to_func([](void* c, void* d, int n) { static_cast<std::string*>(c)->append(static_cast<char*>(d), n); },
                         &jpg, 20, 12, 3, rgb.data(), 90);
  CHECK(decode_image(jpg, o, planar.data()).empty());
  CHECK(std::abs(int(planar[0]) - 90) <= 2);
}

TEST_CASE("CIFAR files: special files and wrong sizes are refused before reading") {
  fs::path d = cifar10_dir("cifar_special");
  fs::remove(d / "test_batch.bin");
  fs::create_symlink("/dev/zero", d / "test_batch.bin");
  CHECK_THROWS_WITH_AS(load_cifar(d.string(), false, false), Contains("test_batch.bin' is a character device"), Error);
  fs::remove(d / "test_batch.bin");
  REQUIRE(::mkfifo((d / "test_batch.bin").c_str(), 0600) == 0);
  CHECK_THROWS_WITH_AS(load_cifar(d.string(), false, false), Contains("test_batch.bin' is a FIFO"), Error);
  fs::remove(d / "test_batch.bin");
  fs::create_symlink(d / "test_batch.bin", d / "test_batch.bin");  // a loop: named, not an internal error
  CHECK_THROWS_WITH_AS(load_cifar(d.string(), false, false), Contains("Too many levels of symbolic links"), Error);
  fs::remove(d / "test_batch.bin");
  {  // a sparse file of 5 GB: refused from its size alone (nothing read)
    std::ofstream(d / "test_batch.bin").close();
    fs::resize_file(d / "test_batch.bin", 5ull << 30);
    CHECK_THROWS_WITH_AS(load_cifar(d.string(), false, false), Contains("more than the 4294967296 this kind of file may have"), Error);
    fs::resize_file(d / "test_batch.bin", (1ull << 30) + 1);  // over 1 GiB, not whole records: checked before reading
    CHECK_THROWS_WITH_AS(load_cifar(d.string(), false, false), Contains("size 1073741825 bytes is not a whole number"), Error);
  }
}

TEST_CASE("the loader feeds (pixel / 255 - mean) / std: per-channel mean ~0 and std ~1 on images with the stated statistics") {
  // 256 images whose pixels are drawn (and rounded, clipped to 0..255) from CIFAR-10's stated
  // per-channel statistics for pixels in [0, 1]
  const std::vector<double> mean{0.4914, 0.4822, 0.4465}, std{0.2470, 0.2435, 0.2616};
  const int64_t n = 256;
  Dataset d;
  d.images = Tensor::empty({n, 3, 32, 32}, DType::U8);
  d.labels = Tensor::zeros({n}, DType::I64);
  d.classes = {"a", "b"};
  Generator g(1);
  Tensor z = g.normal({n, 3, 32, 32}, 0, 1, DType::F64);
  for (int64_t i = 0; i < z.numel(); ++i) {
    const int64_t c = i / 1024 % 3;
    const double v = std::round(255 * (mean[c] + std[c] * z.data<double>()[i]));
    d.images.data<uint8_t>()[i] = static_cast<uint8_t>(std::clamp(v, 0.0, 255.0));
  }
  for (bool train : {false, true}) {  // eval batches, and training batches (flipped; no crop: its
    CAPTURE(train);                   // zero padding adds black borders that move the statistics)
    AugmentOptions o;
    o.crop_padding = 0;
    Loader loader(d, 64, train, o, 3);
    loader.start_epoch(0);
    std::vector<double> s(3, 0), s2(3, 0);
    double count = 0;
    Tensor x, y;
    while (loader.next(x, y)) {
      const float* p = x.data<float>();
      for (int64_t i = 0; i < x.numel(); ++i) {
        const int64_t c = i / 1024 % 3;
        s[c] += p[i];
        s2[c] += double(p[i]) * p[i];
      }
      count += double(x.numel()) / 3;
    }
    for (int c = 0; c < 3; ++c) {
      const double m = s[c] / count, sd = std::sqrt(s2[c] / count - m * m);
      CAPTURE(c);
      // (clipping at 0 and 255 trims ~2% of each tail)
      CHECK(std::fabs(m) < 0.03);
      CHECK(sd > 0.93);
      CHECK(sd < 1.02);
    }
  }
}

TEST_CASE("augmentation: normalisation, crop, flip and cutout on a known image; determinism") {
  const int64_t H = 6, W = 5;
  std::vector<uint8_t> img(3 * H * W);
  for (size_t i = 0; i < img.size(); ++i) img[i] = static_cast<uint8_t>(i * 3 % 256);
  AugmentOptions o;
  o.mean = {0.5, 0.5, 0.5};
  o.std = {0.25, 0.25, 0.25};
  std::vector<float> out(img.size());
  // torchvision's ToTensor + Normalize: pixels scaled to [0, 1] first
  auto norm = [&](int64_t c, int64_t y, int64_t x) { return (img[(c * H + y) * W + x] / 255.f - 0.5f) / 0.25f; };
  prepare_image(img.data(), 3, H, W, out.data(), o, false, 1, 0, 0);  // no augmentation
  CHECK(out[(1 * H + 2) * W + 3] == doctest::Approx(norm(1, 2, 3)));
  // crop + flip: every output is the image shifted by (dy, dx) in [-p, p], maybe mirrored,
  // with the padded border at the normalised value of a black pixel
  o.crop_padding = 2;
  int flips = 0, shifted = 0;
  for (int64_t idx = 0; idx < 64; ++idx) {
    prepare_image(img.data(), 3, H, W, out.data(), o, true, 7, 3, idx);
    bool found = false;
    for (int f = 0; f < 2 && !found; ++f)
      for (int64_t dy = -2; dy <= 2 && !found; ++dy)
        for (int64_t dx = -2; dx <= 2 && !found; ++dx) {
          bool ok = true;
          for (int64_t c = 0; c < 3 && ok; ++c)
            for (int64_t y = 0; y < H && ok; ++y)
              for (int64_t x = 0; x < W && ok; ++x) {
                int64_t sy = y + dy, sx = f ? W - 1 - (x + dx) : x + dx;
                float want = (sy < 0 || sy >= H || sx < 0 || sx >= W) ? (0 - 0.5f) / 0.25f : norm(c, sy, sx);
                ok = std::fabs(out[(c * H + y) * W + x] - want) < 1e-6;
              }
          if (ok) {
            found = true;
            flips += f;
            shifted += dy != 0 || dx != 0;
          }
        }
    CHECK_MESSAGE(found, "image " << idx << " is not a shifted/mirrored copy");
  }
  CHECK(flips > 16);
  CHECK(flips < 48);
  CHECK(shifted > 40);
  // same (seed, epoch, index) -> same image; another epoch -> (almost surely) different
  std::vector<float> a(img.size()), b(img.size()), e(img.size());
  prepare_image(img.data(), 3, H, W, a.data(), o, true, 7, 3, 5);
  prepare_image(img.data(), 3, H, W, b.data(), o, true, 7, 3, 5);
  CHECK(a == b);
  int differ = 0;
  for (int64_t ep = 4; ep < 8; ++ep) {
    prepare_image(img.data(), 3, H, W, e.data(), o, true, 7, ep, 5);
    differ += e != a;
  }
  CHECK(differ >= 2);
  // cutout zeroes a square (after normalisation)
  AugmentOptions co = o;
  co.crop_padding = 0;
  co.flip = false;
  co.cutout = 3;
  prepare_image(img.data(), 3, H, W, out.data(), co, true, 1, 0, 0);
  int zeros = 0;
  for (float v : out) zeros += v == 0.f;
  CHECK(zeros >= 3);  // at least part of a 3x3 square per channel (clipped at the border)
  CHECK(zeros <= 27);
}

TEST_CASE("loader: each epoch is a permutation, batches are deterministic and resumable") {
  fs::path d = cifar10_dir("loader", 9);  // 45 training images
  Dataset tr = load_cifar(d.string(), false, true);
  AugmentOptions o;
  Loader a(tr, 8, true, o, 42), b(tr, 8, true, o, 42);
  CHECK(a.batches_per_epoch() == 6);
  std::multiset<int64_t> labels;
  std::vector<Tensor> first;
  a.start_epoch(2);
  Tensor x, y;
  double wait = -1;
  int n = 0;
  while (a.next(x, y, &wait)) {
    first.push_back(x);
    for (int64_t v : y.to_vector<int64_t>()) labels.insert(v);
    n += x.size(0);
    CHECK(wait >= 0);
  }
  CHECK(n == 45);
  std::multiset<int64_t> want;
  for (int64_t v : tr.labels.to_vector<int64_t>()) want.insert(v);
  CHECK(labels == want);
  b.start_epoch(2, 3);  // resume at batch 3
  for (int k = 3; k < 6; ++k) {
    REQUIRE(b.next(x, y));
    CHECK(testing::mismatch(x, first[k], 0, 0).empty());
  }
  CHECK_FALSE(b.next(x, y));
  a.start_epoch(3);
  REQUIRE(a.next(x, y));
  CHECK_FALSE(testing::mismatch(x, first[0], 0, 0).empty());  // a new epoch, a new order
  Loader ev(tr, 10, false, o, 0);
  ev.start_epoch(0);
  REQUIRE(ev.next(x, y));
  CHECK(y.to_vector<int64_t>()[1] == tr.labels.to_vector<int64_t>()[1]);  // eval keeps the order
  CHECK_THROWS_WITH_AS(Loader(tr, 0, true, o, 0), Contains("batch_size must be positive"), Error);
  // a background thread or batches built in next() over the thread pool: the same batches
  AugmentOptions full = o;
  full.crop_padding = 4;
  full.cutout = 8;
  Loader bg(tr, 8, true, full, 5), fg(tr, 8, true, full, 5);
  bg.set_background(true);
  fg.set_background(false);
  for (int64_t first : {0, 4}) {
    bg.start_epoch(1, first);
    fg.start_epoch(1, first);
    Tensor xb, yb;
    int batches = 0;
    while (bg.next(xb, yb)) {
      REQUIRE(fg.next(x, y));
      CHECK(testing::mismatch(x, xb, 0, 0).empty());
      CHECK(y.to_vector<int64_t>() == yb.to_vector<int64_t>());
      ++batches;
    }
    CHECK_FALSE(fg.next(x, y));
    CHECK(batches == 6 - first);
  }
}

TEST_CASE("mirrored: each row reversed, for flip test-time augmentation") {
  Tensor x = Tensor::from_vector<float>({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, {2, 1, 2, 3});  // (N, C, H, W)
  CHECK(mirrored(x).to_vector<float>() == std::vector<float>{3, 2, 1, 6, 5, 4, 9, 8, 7, 12, 11, 10});
  CHECK(mirrored(mirrored(x)).to_vector<float>() == x.to_vector<float>());
  CHECK_THROWS_WITH_AS(mirrored(Tensor::zeros({2, 3})), Contains("mirrored: expected float images (N, C, H, W)"), Error);
}
