// data/image_folder.cpp: a folder per class of PNG/JPEG/BMP images. We read each file ourselves
// (regular files only, at most kMaxImageFileBytes) and stb_image decodes the bytes, after its
// header says the image is at most kMaxImageSide pixels on each side, and with a ceiling on what
// it may allocate for that size (data/stb_cap.h). (stb_image's implementation is compiled in
// data/stb_image.cpp.)
#include <stb_image.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <tuple>

#include "core/config.h"
#include "core/file_io.h"
#include "data/dataset.h"
#include "data/stb_cap.h"

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

// stb_image 2.27 (Debian 12) trusts a JPEG's Huffman tables in two ways (both found by
// tests/fuzz/fuzz_image.cpp): a DHT segment whose 16 code counts add up to more than 256 makes it
// write past its 257-entry tables, and a scan (SOS) may name a table no DHT defined, which it then
// decodes with from uninitialised memory (its decoder struct is malloc'ed, not zeroed), indexing
// its symbol table with garbage. Walks the JPEG's segments as a decoder does (entropy-coded data
// after each SOS up to the next marker), checks every DHT table's size and, at each SOS, that the
// tables it decodes with were defined before it. "" when fine.
struct JpegHuffmanState {
  bool defined[2][4] = {};  // [class: 0 DC, 1 AC][table id 0-3], by the DHTs read so far
  bool progressive = false;  // the frame (SOF2) codes in several scans
};

// DHT: tables of (class/id byte, 16 counts, the values); the decoder reads them even past the end
// of the file (as zeros), so the sizes are checked up to there too. `seg`: the segment's body.
std::string check_dht(const std::string& b, size_t seg, size_t len, JpegHuffmanState& st) {
  const auto at = [&](size_t i) { return static_cast<unsigned char>(b[i]); };
  for (size_t p = seg + 2; p < std::min(seg + len, b.size());) {
    size_t n = 0;
    for (size_t k = 1; k <= 16 && p + k < b.size(); ++k) n += at(p + k);
    if (n > 256) return "a Huffman table (DHT) of " + std::to_string(n) + " codes (at most 256)";
    const unsigned tc = at(p) >> 4, th = at(p) & 15;
    if (tc <= 1 && th <= 3) st.defined[tc][th] = true;  // (other ids: the decoder rejects the file)
    p += 17 + n;
  }
  return "";
}

// SOS: (count, count x (component, DC table << 4 | AC table), Ss, Se, Ah << 4 | Al). A baseline
// scan decodes with both tables of each component; a progressive one with the DC table in a first
// DC scan (Ss 0, Ah 0; a DC refinement reads raw bits) and the AC table in an AC scan (Ss > 0).
std::string check_sos(const std::string& b, size_t seg, size_t len, const JpegHuffmanState& st) {
  const auto at = [&](size_t i) { return static_cast<unsigned char>(b[i]); };
  const size_t count = len >= 3 ? at(seg + 2) : 0;
  if (count < 1 || len != 6 + 2 * count) return "";  // (the decoder rejects the file itself)
  const unsigned ss = at(seg + 3 + 2 * count), ah = at(seg + 5 + 2 * count) >> 4;
  const bool uses_dc = !st.progressive || (ss == 0 && ah == 0), uses_ac = !st.progressive || ss > 0;
  for (size_t k = 0; k < count; ++k) {
    const unsigned dc = at(seg + 4 + 2 * k) >> 4, ac = at(seg + 4 + 2 * k) & 15;
    for (const auto& [cls, id, used] : {std::tuple{0u, dc, uses_dc}, std::tuple{1u, ac, uses_ac}})
      if (used && id <= 3 && !st.defined[cls][id])
        return std::string("a scan (SOS) that decodes component ") + std::to_string(at(seg + 3 + 2 * k)) +
               " with Huffman table " + (cls ? "AC " : "DC ") + std::to_string(id) + ", which no DHT before it defines";
  }
  return "";
}

std::string check_jpeg_huffman_tables(const std::string& b) {
  const auto at = [&](size_t i) { return static_cast<unsigned char>(b[i]); };
  JpegHuffmanState st;
  size_t i = 0;
  while (i + 1 < b.size()) {
    if (at(i) != 0xFF) {  // padding between segments: the decoder scans on for a marker too
      ++i;
      continue;
    }
    while (i + 1 < b.size() && at(i + 1) == 0xFF) ++i;  // fill bytes
    if (i + 1 >= b.size()) return "";
    const unsigned m = at(i + 1);
    i += 2;
    if (m == 0xD9) return "";                               // EOI
    if ((m >= 0xD0 && m <= 0xD7) || m == 0xD8 || m == 0x01 || m == 0x00) continue;  // no length (00: not a marker)
    if (i + 2 > b.size()) return "";
    const size_t len = (size_t(at(i)) << 8) | at(i + 1);
    if (m == 0xC4)
      if (std::string bad = check_dht(b, i, len, st); !bad.empty()) return bad;
    if (len < 2 || i + len > b.size()) return "";
    if (m == 0xC0 || m == 0xC1 || m == 0xC2) st.progressive = m == 0xC2;  // the frames stb_image decodes
    if (m == 0xDA)
      if (std::string bad = check_sos(b, i, len, st); !bad.empty()) return bad;
    i += len;
    if (m == 0xDA)  // SOS: entropy-coded data up to the next marker; in it FF (FF...) 00 is a data
      while (i < b.size()) {  // byte and RSTn markers sit between intervals
        if (at(i) != 0xFF) {
          ++i;
          continue;
        }
        size_t k = i + 1;
        while (k < b.size() && at(k) == 0xFF) ++k;
        if (k >= b.size() || !(at(k) == 0x00 || (at(k) >= 0xD0 && at(k) <= 0xD7))) break;  // a marker at i
        i = k + 1;
      }
  }
  return "";
}

// stb_image 2.27 grows its buffer for a PNG's compressed data (IDAT) to fit the length a chunk
// claims before it reads the chunk, doubling up to 2 GiB for a 58-byte file (found by
// tests/fuzz/fuzz_image.cpp). Walks the chunks (length, type, data, CRC) up to IEND and checks
// that each chunk's data lies inside the file. "" when fine (and for anything not a PNG).
std::string check_png_chunks(const std::string& b) {
  static const char kSignature[] = "\x89PNG\r\n\x1a\n";
  if (b.compare(0, 8, kSignature, 8) != 0) return "";
  const auto be32 = [&](size_t i) {
    uint32_t v = 0;
    for (size_t k = 0; k < 4; ++k) v = (v << 8) | static_cast<unsigned char>(b[i + k]);
    return v;
  };
  for (size_t i = 8; i + 8 <= b.size();) {
    const uint64_t len = be32(i);
    std::string type;  // four letters in a real file; anything in a broken one, shown as \xNN
    for (size_t k = i + 4; k < i + 8; ++k) {
      const unsigned char c = static_cast<unsigned char>(b[k]);
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02X", c);
      type += (c >= 0x20 && c < 0x7F) ? std::string(1, char(c)) : std::string(hex);
    }
    if (len > b.size() - (i + 8))
      return "a chunk '" + type + "' of " + std::to_string(len) + " bytes at byte " +
             std::to_string(i) + " that runs past the end of the file (" + std::to_string(b.size()) + " bytes)";
    if (type == "IEND") return "";
    i += 12 + len;  // (the CRC of the last chunk may be missing: the decoder does not check it)
  }
  return "";
}

// The most stb_image may allocate at once for an image of w x h pixels from a file of `bytes`:
// twice the largest buffer a well-formed file needs (16-bit RGBA, 8 bytes a pixel; JPEG blocks
// padded up to 32 pixels), the compressed data twice over, and 1 MiB for its fixed tables.
size_t stb_allocation_ceiling(int w, int h, size_t bytes) {
  return 16 * (size_t(w) + 64) * (size_t(h) + 64) + 4 * bytes + (size_t(1) << 20);
}
}  // namespace

std::string decode_image(const std::string& bytes, const ImageFolderOptions& o, uint8_t* planar) {
  SCCONV_CHECK(bytes.size() <= static_cast<size_t>(INT32_MAX), "image file too large");
  const auto* data = reinterpret_cast<const unsigned char*>(bytes.data());
  const int len = static_cast<int>(bytes.size());
  int w = 0, h = 0, ch = 0;
  if (!bytes.empty() && data[0] == 0xFF)  // (stb_image takes any input that starts so for a JPEG)
    if (std::string bad = check_jpeg_huffman_tables(bytes); !bad.empty()) return "unreadable image (JPEG with " + bad + ")";
  if (std::string bad = check_png_chunks(bytes); !bad.empty()) return "unreadable image (PNG with " + bad + ")";
  if (!stbi_info_from_memory(data, len, &w, &h, &ch)) return std::string("unreadable image (") + stbi_failure_reason() + ")";
  if (w < 1 || h < 1 || w > kMaxImageSide || h > kMaxImageSide)  // (stb_image 2.27 accepts a BMP 0 pixels high)
    return "image of " + std::to_string(w) + "x" + std::to_string(h) + " pixels (each side must be 1 to " +
           std::to_string(kMaxImageSide) + ")";
  if (!o.resize && (h != o.height || w != o.width))
    return "size " + std::to_string(w) + "x" + std::to_string(h) + ", expected " + std::to_string(o.width) + "x" +
           std::to_string(o.height) + " (or enable resizing)";
  const int info_w = w, info_h = h;
  unsigned char* img = nullptr;
  size_t refused = 0;
  {
    StbAllocationCap cap(stb_allocation_ceiling(w, h, bytes.size()));
    img = stbi_load_from_memory(data, len, &w, &h, &ch, 3);
    refused = cap.largest_refused();
  }
  if (!img && refused)
    return "unreadable image (decoding it asked for " + std::to_string(refused) + " bytes at once, more than an image of " +
           std::to_string(info_w) + "x" + std::to_string(info_h) + " pixels can need: a corrupt file)";
  if (!img) return std::string("unreadable image (") + stbi_failure_reason() + ")";
  if (w != info_w || h != info_h) {  // (the header read twice disagreeing: a malformed file)
    stbi_image_free(img);
    return "unreadable image (its size changed between reading the header and decoding)";
  }
  resize_planar(img, h, w, planar, o.height, o.width);
  stbi_image_free(img);
  return "";
}

namespace {
namespace fs = std::filesystem;
// The sub-folder names of dir, sorted; errors name the folder.
std::vector<std::string> class_folders(const std::string& dir) {
  std::error_code ec;
  SCCONV_CHECK(fs::is_directory(dir, ec), "image folder '" << dir << "' does not exist or is not a directory"
                                                           << (ec ? " (" + ec.message() + ")" : std::string()));
  std::vector<std::string> names;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code ec2;
    if (!it->is_directory(ec2)) continue;  // files, and entries that cannot be followed (a symlink loop)
    names.push_back(it->path().filename().string());
    config::check_utf8(names.back(), "image folder '" + dir + "': a class folder's name");
  }
  SCCONV_CHECK(!ec, "image folder '" << dir << "': cannot list it: " << ec.message());
  std::sort(names.begin(), names.end());
  SCCONV_CHECK(!names.empty(), "image folder '" << dir << "' has no class sub-folders");
  return names;
}
// The image files of one class folder (by extension), sorted; errors name the folder.
std::vector<std::string> image_files(const fs::path& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::string ext = it->path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
    if (ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".bmp") names.push_back(it->path().string());
  }
  SCCONV_CHECK(!ec, "image folder '" << dir.string() << "': cannot list it: " << ec.message());
  std::sort(names.begin(), names.end());
  return names;
}
}  // namespace

Dataset load_image_folder(const std::string& dir, const ImageFolderOptions& o, std::vector<std::string>* skipped,
                          const std::vector<std::string>* classes) {
  Dataset d;
  std::vector<std::string> found = class_folders(dir);
  d.classes = classes ? *classes : found;
  std::vector<std::pair<std::string, int64_t>> files;
  for (const std::string& name : found) {
    auto at = std::find(d.classes.begin(), d.classes.end(), name);
    SCCONV_CHECK(at != d.classes.end(), "image folder '" << dir << "': class '" << name << "' is not one of the "
                                                         << d.classes.size() << " classes of the training set");
    for (auto& f : image_files(fs::path(dir) / name)) files.emplace_back(f, at - d.classes.begin());
  }
  const int64_t per = 3 * o.height * o.width;
  std::vector<uint8_t> pixels;
  std::vector<int64_t> labels;
  for (auto& [path, label] : files) {
    std::string problem;
    size_t at = pixels.size();
    pixels.resize(at + per);
    try {
      problem = decode_image(read_file(path, kMaxImageFileBytes), o, pixels.data() + at);
    } catch (const Error& e) {  // unreadable file: not regular, too large, permissions
      problem = e.what();
    }
    if (!problem.empty()) {
      pixels.resize(at);
      SCCONV_CHECK(o.skip_bad, "'" << path << "': " << problem);
      if (skipped) skipped->push_back(path + ": " + problem);
      continue;
    }
    labels.push_back(label);
  }
  const int64_t n = static_cast<int64_t>(labels.size());
  SCCONV_CHECK(n > 0, "image folder '" << dir << "': no usable images");
  d.images = Tensor::from_vector(pixels, {n, 3, o.height, o.width});
  d.labels = Tensor::from_vector(labels, {n});
  return d;
}

}  // namespace scconv
