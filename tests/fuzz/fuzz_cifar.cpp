// tests/fuzz/fuzz_cifar.cpp: libFuzzer target for the CIFAR-10/100 record reader
// (data/dataset.h, parse_cifar). The first byte picks CIFAR-10 or CIFAR-100; the rest is the file.
// What parses must write back to the same records (CIFAR-10: byte for byte; CIFAR-100: the fine
// labels and pixels).
#include "data/dataset.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const bool cifar100 = data[0] & 1;
  const std::string bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  scconv::Dataset d;
  try {
    d = scconv::parse_cifar({{"input", bytes}}, cifar100);
  } catch (const scconv::Error&) {
    return 0;
  }
  const size_t label_bytes = cifar100 ? 2 : 1, pixels = 3 * 32 * 32, record = label_bytes + pixels;
  FUZZ_REQUIRE(static_cast<size_t>(d.size()) * record == bytes.size());
  FUZZ_REQUIRE(d.classes.size() == (cifar100 ? 100u : 10u));
  for (int64_t i = 0; i < d.size(); ++i) {
    const char* r = bytes.data() + i * record;
    const int64_t label = d.labels.data<int64_t>()[i];
    FUZZ_REQUIRE(label >= 0 && label < static_cast<int64_t>(d.classes.size()));
    FUZZ_REQUIRE(label == static_cast<unsigned char>(r[label_bytes - 1]));
    FUZZ_REQUIRE(std::string(r + label_bytes, pixels) ==
                 std::string(reinterpret_cast<const char*>(d.images.data<uint8_t>() + i * pixels), pixels));
  }
  return 0;
}
