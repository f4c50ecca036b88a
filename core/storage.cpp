// core/storage.cpp: aligned allocation for CPU storages, with byte accounting.
#include "core/storage.h"

#include <atomic>
#include <cstdlib>
#include <new>

#include "core/error.h"

namespace scconv {

namespace {
std::atomic<size_t> g_in_use{0}, g_peak{0};
constexpr size_t kAlign = 64;
}  // namespace

Storage::Storage(size_t bytes, Device device) : bytes_(bytes), device_(device) {
  // An empty storage needs no memory, so it may carry any device tag (tests use that to
  // exercise device checks on machines without a GPU).
  if (device != Device::CPU) {
    SCCONV_CHECK(bytes == 0, "Storage: device " << device_name(device)
                                                << " is not available in this build");
    return;
  }
  size_t rounded = (bytes + kAlign - 1) / kAlign * kAlign;
  if (rounded == 0) rounded = kAlign;
  data_ = std::aligned_alloc(kAlign, rounded);
  if (!data_) throw std::bad_alloc();
  size_t now = g_in_use.fetch_add(bytes_) + bytes_;
  size_t peak = g_peak.load();
  while (now > peak && !g_peak.compare_exchange_weak(peak, now)) {
  }
}

Storage::~Storage() {
  if (device_ != Device::CPU) return;
  std::free(data_);
  g_in_use.fetch_sub(bytes_);
}

size_t cpu_bytes_in_use() { return g_in_use.load(); }
size_t cpu_bytes_peak() { return g_peak.load(); }
void reset_cpu_bytes_peak() { g_peak.store(g_in_use.load()); }

}  // namespace scconv
