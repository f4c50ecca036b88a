// data/cifar.cpp: the CIFAR-10 / CIFAR-100 binary format. Each file is checked: present, a
// whole number of records, labels in range; problems name the file and byte offset.
#include <filesystem>

#include "core/file_io.h"
#include "data/dataset.h"

namespace scconv {

Dataset Dataset::subset(const std::vector<int64_t>& idx) const {
  Dataset d;
  d.classes = classes;
  Shape s = images.shape();
  s[0] = static_cast<int64_t>(idx.size());
  d.images = Tensor::empty(s, DType::U8);
  d.labels = Tensor::empty({s[0]}, DType::I64);
  const int64_t per = images.numel() / std::max<int64_t>(images.size(0), 1);
  for (size_t i = 0; i < idx.size(); ++i) {
    SCCONV_CHECK(idx[i] >= 0 && idx[i] < size(), "Dataset::subset: index " << idx[i] << " out of range");
    std::copy_n(images.data<uint8_t>() + idx[i] * per, per, d.images.data<uint8_t>() + i * per);
    d.labels.data<int64_t>()[i] = labels.data<int64_t>()[idx[i]];
  }
  return d;
}

namespace {
// A file of whole records, checked from its size alone.
void check_size(const std::string& name, uint64_t n, bool cifar100) {
  const uint64_t record = (cifar100 ? 2 : 1) + 3 * 32 * 32;
  SCCONV_CHECK(n > 0 && n % record == 0, "'" << name << "': size " << n << " bytes is not a whole number of " << record
                                             << "-byte records (truncated or not CIFAR-" << (cifar100 ? 100 : 10)
                                             << "; the last record starts at byte " << (n / record) * record << ")");
}
}  // namespace

Dataset parse_cifar(const std::vector<std::pair<std::string, std::string>>& files, bool cifar100) {
  const int64_t label_bytes = cifar100 ? 2 : 1, pixels = 3 * 32 * 32, record = label_bytes + pixels;
  const int64_t classes = cifar100 ? 100 : 10;
  int64_t total = 0;
  for (auto& [name, bytes] : files) {
    const int64_t n = static_cast<int64_t>(bytes.size());
    check_size(name, static_cast<uint64_t>(n), cifar100);
    total += n / record;
  }
  Dataset d;
  d.images = Tensor::empty({total, 3, 32, 32}, DType::U8);
  d.labels = Tensor::empty({total}, DType::I64);
  int64_t at = 0;
  for (auto& [name, bytes] : files) {
    const int64_t n = static_cast<int64_t>(bytes.size()) / record;
    for (int64_t i = 0; i < n; ++i, ++at) {
      const unsigned char* r = reinterpret_cast<const unsigned char*>(bytes.data()) + i * record;
      const int64_t label = r[label_bytes - 1];  // CIFAR-100: the fine label is the second byte
      SCCONV_CHECK(label < classes, "'" << name << "': label " << label << " at byte offset "
                                        << i * record + label_bytes - 1 << " is outside [0, " << classes << ")");
      d.labels.data<int64_t>()[at] = label;
      std::copy_n(r + label_bytes, pixels, d.images.data<uint8_t>() + at * pixels);
    }
  }
  if (!cifar100) {
    d.classes = {"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"};
  } else {
    for (int i = 0; i < 100; ++i) d.classes.push_back("class" + std::to_string(i));
  }
  return d;
}

Dataset load_cifar(const std::string& dir, bool cifar100, bool train) {
  namespace fs = std::filesystem;
  std::vector<std::string> names;
  if (cifar100) names = {train ? "train.bin" : "test.bin"};
  else if (train) names = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"};
  else names = {"test_batch.bin"};
  const int64_t classes = cifar100 ? 100 : 10;
  std::vector<std::pair<std::string, std::string>> files;
  for (const std::string& f : names) {
    const std::string p = (fs::path(dir) / f).string();
    std::error_code ec;  // (other problems than absence, e.g. a symlink loop: read_file names them)
    SCCONV_CHECK(fs::exists(p, ec) || ec, "CIFAR-" << classes << ": missing file '" << p << "' (expected "
                                          << (cifar100 ? "train.bin and test.bin" : "data_batch_1..5.bin and test_batch.bin")
                                          << " in '" << dir << "'; scripts/get-cifar10.sh downloads CIFAR-10)");
    // the size is checked before anything is read (a wrong file fails at once, whatever its size)
    files.emplace_back(p, read_file(p, kMaxCifarFileBytes, [&](uint64_t n) {
      check_size(p, n, cifar100);
    }));
  }
  Dataset d = parse_cifar(files, cifar100);
  // the class names of the dataset's own meta file, where it has one (CIFAR-100's are otherwise
  // only numbers): one name a line, in label order
  const fs::path meta = fs::path(dir) / (cifar100 ? "fine_label_names.txt" : "batches.meta.txt");
  if (std::error_code ec; fs::is_regular_file(meta, ec)) d.classes = read_class_names(meta.string(), classes);
  return d;
}

std::vector<std::string> read_class_names(const std::string& path, int64_t classes) {
  const std::string text = read_file(path, 1 << 20);
  std::vector<std::string> names;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.pop_back();
    if (!line.empty()) {
      for (unsigned char ch : line)
        SCCONV_CHECK(ch >= 0x20 && ch < 0x7f, "'" << path << "': line " << names.size() + 1
                                                   << " is not a plain class name (a byte 0x" << std::hex << int(ch) << ")");
      names.push_back(line);
    }
    start = end + 1;
  }
  SCCONV_CHECK(int64_t(names.size()) == classes, "'" << path << "': " << names.size() << " class names, expected "
                                                     << classes << " (one a line)");
  return names;
}

}  // namespace scconv
