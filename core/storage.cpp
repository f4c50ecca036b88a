// core/storage.cpp: aligned allocation for CPU storages, with byte accounting.
#include "core/storage.h"

#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>
#include <new>

#include "core/error.h"

namespace scconv {

namespace {
std::atomic<size_t> g_in_use{0}, g_peak{0};
constexpr size_t kAlign = 64;

// ---- the caching allocator -------------------------------------------------------------------
// Training allocates the same sizes every step; returning freed blocks to the OS and faulting
// fresh pages in again costs more than many ops. Freed blocks are kept by size and reused for
// a request of the same rounded size (up to 1/8 larger). The cache is bounded; empty_cache()
// releases it.
// Under AddressSanitizer (__SANITIZE_ADDRESS__) blocks go straight back to the system, so
// that use-after-free is still caught.
struct BlockCache {
  std::mutex mu;
  std::multimap<size_t, void*> free_blocks;  // rounded size -> block
  size_t cached = 0;
  static constexpr size_t kMaxCached = size_t(2) << 30;
} g_cache;

size_t round_size(size_t bytes) {
  size_t unit = bytes <= (1u << 20) ? kAlign : (size_t(64) << 10);
  size_t r = (bytes + unit - 1) / unit * unit;
  return r ? r : kAlign;
}

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kUseCache = false;
#else
constexpr bool kUseCache = true;
#endif

void* cache_alloc(size_t rounded, size_t& got) {
  if (kUseCache) {
    std::lock_guard<std::mutex> g(g_cache.mu);
    auto it = g_cache.free_blocks.lower_bound(rounded);
    if (it != g_cache.free_blocks.end() && it->first <= rounded + rounded / 8) {
      got = it->first;
      void* p = it->second;
      g_cache.cached -= it->first;
      g_cache.free_blocks.erase(it);
      return p;
    }
  }
  got = rounded;
  void* p = std::aligned_alloc(kAlign, rounded);
  if (!p) {  // out of memory: drop the cache and try once more
    empty_cpu_cache();
    p = std::aligned_alloc(kAlign, rounded);
  }
  if (!p) throw std::bad_alloc();
  return p;
}

void cache_free(void* p, size_t rounded) {
  std::lock_guard<std::mutex> g(g_cache.mu);
  if (!kUseCache || g_cache.cached + rounded > BlockCache::kMaxCached) {
    std::free(p);
    return;
  }
  g_cache.free_blocks.emplace(rounded, p);
  g_cache.cached += rounded;
}
}  // namespace

void empty_cpu_cache() {
  std::lock_guard<std::mutex> g(g_cache.mu);
  for (auto& [size, p] : g_cache.free_blocks) std::free(p);
  g_cache.free_blocks.clear();
  g_cache.cached = 0;
}
size_t cpu_bytes_cached() {
  std::lock_guard<std::mutex> g(g_cache.mu);
  return g_cache.cached;
}

Storage::Storage(size_t bytes, Device device) : bytes_(bytes), device_(device) {
  // An empty storage needs no memory, so it may carry any device tag (tests use that to
  // exercise device checks on machines without a GPU).
  if (device != Device::CPU) {
    SCCONV_CHECK(bytes == 0, "Storage: device " << device_name(device)
                                                << " is not available in this build");
    return;
  }
  data_ = cache_alloc(round_size(bytes), capacity_);
  size_t now = g_in_use.fetch_add(bytes_) + bytes_;
  size_t peak = g_peak.load();
  while (now > peak && !g_peak.compare_exchange_weak(peak, now)) {
  }
}

Storage::~Storage() {
  if (device_ != Device::CPU) return;
  cache_free(data_, capacity_);
  g_in_use.fetch_sub(bytes_);
}

size_t cpu_bytes_in_use() { return g_in_use.load(); }
size_t cpu_bytes_peak() { return g_peak.load(); }
void reset_cpu_bytes_peak() { g_peak.store(g_in_use.load()); }

}  // namespace scconv
