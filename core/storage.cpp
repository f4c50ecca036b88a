// core/storage.cpp: aligned allocation for CPU storages, with byte accounting.
#include "core/storage.h"

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <new>
#include <string>

#include <sys/mman.h>

#include "core/device.h"
#include "core/error.h"

namespace scconv {

namespace {
std::atomic<size_t> g_in_use{0}, g_peak{0};
constexpr size_t kAlign = 64;

// ---- the caching allocator -------------------------------------------------------------------
// Training allocates the same sizes every step; returning freed blocks to the OS and faulting
// fresh pages in again costs more than many ops. Freed blocks are kept by size and reused for
// a request of the same rounded size (up to 1/8 larger).
// Small blocks (< 1 MiB) come from malloc and the cache of them is bounded. Big blocks are
// mapped from the OS directly (with huge pages where the system allows, so faulting them in is
// cheap), and a big request the cache cannot serve first unmaps cached big blocks until big
// blocks in use + cached + the request fit under the high-water mark of big blocks in use plus
// 1/16. So the resident peak is about the peak of the tensors in use, not that plus idle blocks
// of sizes the rest of the step does not ask for (ResNet-50 at batch 128: 4157 -> 3554 MiB).
// The 1/16 of slack keeps a step from unmapping blocks that a later op of the same step maps
// again: without it, a ResNet-20 step re-faulted ~44 MB of fresh, kernel-zeroed pages every
// step (~6% of its time in the kernel's page clearing; 1% with it, for 5% more memory).
// empty_cpu_cache() releases everything cached.
// Under AddressSanitizer (__SANITIZE_ADDRESS__) blocks go straight back to the system, so
// that use-after-free is still caught.
constexpr size_t kBigBlock = size_t(1) << 20;

struct BlockCache {
  std::mutex mu;
  std::multimap<size_t, void*> free_blocks;  // rounded size -> block
  size_t cached = 0, cached_small = 0;
  size_t big_in_use = 0, big_peak = 0;  // bytes of big blocks held by storages, and its high-water mark
  static constexpr size_t kMaxCachedSmall = size_t(256) << 20;
} g_cache;

size_t round_size(size_t bytes) {
  size_t unit = bytes < kBigBlock ? kAlign : (size_t(64) << 10);
  size_t r = (bytes + unit - 1) / unit * unit;
  return r ? r : kAlign;
}

// Under AddressSanitizer every block goes back to the system (a cached block would hide
// use-after-free, and blocks still cached at exit read as leaks). GCC and clang say so differently.
#if defined(__SANITIZE_ADDRESS__)
#define SCCONV_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SCCONV_ASAN 1
#endif
#endif
#if defined(SCCONV_ASAN)
constexpr bool kUseCache = false;
#else
constexpr bool kUseCache = true;
#endif

void* system_alloc(size_t rounded) {
  if (rounded < kBigBlock || !kUseCache) return std::aligned_alloc(kAlign, rounded);
  void* p = mmap(nullptr, rounded, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  madvise(p, rounded, MADV_HUGEPAGE);  // a fault then maps 2 MiB, not 4 KiB (a hint; may be off)
  return p;
}
void system_free(void* p, size_t rounded) {
  if (rounded < kBigBlock || !kUseCache) return std::free(p);
  munmap(p, rounded);
}

// Unmaps cached big blocks, largest first, until at most `keep` bytes of them are cached.
// Called with the cache's mutex held.
void release_big_blocks(size_t keep) {
  while (g_cache.cached - g_cache.cached_small > keep && !g_cache.free_blocks.empty()) {
    auto it = std::prev(g_cache.free_blocks.end());
    if (it->first < kBigBlock) break;
    system_free(it->second, it->first);
    g_cache.cached -= it->first;
    g_cache.free_blocks.erase(it);
  }
}

void note_big_in_use(size_t got) {
  g_cache.big_in_use += got;
  if (g_cache.big_in_use > g_cache.big_peak) g_cache.big_peak = g_cache.big_in_use;
}

void* cache_alloc(size_t rounded, size_t& got) {
  got = rounded;
  if (kUseCache) {
    std::lock_guard<std::mutex> g(g_cache.mu);
    auto it = g_cache.free_blocks.lower_bound(rounded);
    if (it != g_cache.free_blocks.end() && it->first <= rounded + rounded / 8) {
      got = it->first;
      void* p = it->second;
      g_cache.cached -= it->first;
      if (it->first < kBigBlock) g_cache.cached_small -= it->first;
      else note_big_in_use(got);
      g_cache.free_blocks.erase(it);
      return p;
    }
    if (rounded >= kBigBlock) {
      const size_t bound = g_cache.big_peak + g_cache.big_peak / 16, held = g_cache.big_in_use + rounded;
      release_big_blocks(bound > held ? bound - held : 0);
    }
  }
  void* p = system_alloc(rounded);
  if (!p) {  // out of memory: drop the cache and try once more
    empty_cpu_cache();
    p = system_alloc(rounded);
  }
  if (!p) throw std::bad_alloc();
  if (kUseCache && rounded >= kBigBlock) {
    std::lock_guard<std::mutex> g(g_cache.mu);
    note_big_in_use(rounded);
  }
  return p;
}

void cache_free(void* p, size_t rounded) {
  std::lock_guard<std::mutex> g(g_cache.mu);
  bool small = rounded < kBigBlock;
  if (kUseCache && !small) g_cache.big_in_use -= rounded;
  if (!kUseCache || (small && g_cache.cached_small + rounded > BlockCache::kMaxCachedSmall)) {
    system_free(p, rounded);
    return;
  }
  g_cache.free_blocks.emplace(rounded, p);
  g_cache.cached += rounded;
  if (small) g_cache.cached_small += rounded;
}
}  // namespace

void empty_cpu_cache() {
  std::lock_guard<std::mutex> g(g_cache.mu);
  for (auto& [size, p] : g_cache.free_blocks) system_free(p, size);
  g_cache.free_blocks.clear();
  g_cache.cached = g_cache.cached_small = 0;
}
size_t cpu_bytes_cached() {
  std::lock_guard<std::mutex> g(g_cache.mu);
  return g_cache.cached;
}

Storage::Storage(size_t bytes, Device device, bool pinned) : bytes_(bytes), device_(device) {
  // An empty storage needs no memory, so it may carry any device tag (tests use that to
  // exercise device checks on machines without a GPU).
  if (device != Device::CPU) {
    if (bytes == 0) return;
    capacity_ = bytes;
    data_ = device_runtime(device).allocate(bytes);
    return;
  }
  pinned_ = pinned && bytes > 0 && device_available(Device::CUDA);
  if (pinned_) {
    capacity_ = bytes;
    data_ = device_runtime(Device::CUDA).allocate_pinned(bytes);
    return;
  }
  data_ = cache_alloc(round_size(bytes), capacity_);
  size_t now = g_in_use.fetch_add(bytes_) + bytes_;
  size_t peak = g_peak.load();
  while (now > peak && !g_peak.compare_exchange_weak(peak, now)) {
  }
}

Storage::~Storage() {
  if (device_ != Device::CPU) {
    if (data_) device_runtime(device_).deallocate(data_, capacity_);
    return;
  }
  if (pinned_) {
    device_runtime(Device::CUDA).deallocate_pinned(data_, capacity_);
    return;
  }
  cache_free(data_, capacity_);
  g_in_use.fetch_sub(bytes_);
}

bool transparent_huge_pages_on() {
  std::ifstream f("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string modes;
  std::getline(f, modes);
  return modes.find("[never]") == std::string::npos;
}

size_t cpu_bytes_in_use() { return g_in_use.load(); }
size_t cpu_bytes_peak() { return g_peak.load(); }
void reset_cpu_bytes_peak() {
  g_peak.store(g_in_use.load());
  std::lock_guard<std::mutex> g(g_cache.mu);
  g_cache.big_peak = g_cache.big_in_use;
}
bool cpu_block_cache_enabled() { return kUseCache; }

}  // namespace scconv
