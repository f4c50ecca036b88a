// core/storage.h: a refcounted, 64-byte aligned block of memory on one device, with the version
// counter that autograd uses to detect in-place changes to tensors it saved for backward.
// Device memory comes from the device's DeviceRuntime (core/device.h), host memory from the
// caching allocator in storage.cpp.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/dtype.h"

namespace scconv {

class Storage {
 public:
  // pinned: page-locked host memory (CPU only; from the GPU runtime when there is one, plain
  // host memory otherwise), so that uploads from it run asynchronously.
  Storage(size_t bytes, Device device, bool pinned = false);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() { return data_; }
  const void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Device device() const { return device_; }
  bool pinned() const { return pinned_; }
  // Bumped by every in-place write (fill_, copy_, add_, optimizer updates ...).
  uint64_t version() const { return version_; }
  void bump_version() { ++version_; }

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
  size_t capacity_ = 0;  // bytes actually allocated (a cache size class)
  Device device_ = Device::CPU;
  bool pinned_ = false;
  uint64_t version_ = 0;
};

// Freed CPU blocks are cached for reuse (storage.cpp; off under AddressSanitizer); big ones
// only while storages + cache stay under the storages' high-water mark. empty_cpu_cache()
// returns them all to the system.
bool cpu_block_cache_enabled();
void empty_cpu_cache();
size_t cpu_bytes_cached();
// False when the kernel's transparent huge pages are off ("[never]" in
// /sys/kernel/mm/transparent_hugepage/enabled): big blocks are then faulted in 4 KiB pages each
// time the cache maps them again (ResNet-20 trains ~16% slower here). True otherwise, also when
// the file is missing.
bool transparent_huge_pages_on();
// Bytes currently held by all CPU storages, and the high-water mark since start (or reset).
// The reset also restarts the cache's high-water mark from the blocks in use.
size_t cpu_bytes_in_use();
size_t cpu_bytes_peak();
void reset_cpu_bytes_peak();

}  // namespace scconv
