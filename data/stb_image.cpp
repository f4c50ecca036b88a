// data/stb_image.cpp: the implementation of stb_image (Debian's libstb-dev, 2.27), alone in its
// translation unit: PNG, JPEG and BMP only, images of at most kMaxImageSide (data/dataset.h)
// pixels a side. data/image_folder.cpp calls it, after its own checks of what 2.27 does not
// check (a JPEG's Huffman table sizes, and that each scan's Huffman tables were defined; images 0
// pixels high). Sanitizer builds compile this file without two of UBSan's checks (CMakeLists.txt),
// for what tests/fuzz/fuzz_image.cpp found in 2.27 that we cannot fix from outside and that
// touches no memory out of bounds (ASan and the bounds checks stay on): nonnull-attribute (a
// zero-length PNG IDAT chunk is copied with memcpy(NULL, p, 0)) and shift (a corrupt JPEG's
// entropy data drives its bit counter negative, so `b << (24 - code_bits)` shifts by 32 or more:
// wrong pixels of a broken file, nothing else). stb's internal asserts are off in every build, as
// NDEBUG has them in Release. 2.27 does not range-check the symbol index of a Huffman code longer
// than 9 bits (`h->values[c]`, stb_image.h:2120): it is in range only because the table is a
// canonical code stb built itself, which holds once image_folder.cpp has rejected scans that name
// a table no DHT defined (with one, stb reads a table from uninitialised memory: a fuzz finding,
// kept as tests/fuzz/corpus/image/regression_sos_undefined_huffman_table; it reproduces only
// with the heap contents of a long fuzz run). So that nothing else 2.27 leaves unset (a
// quantisation table a broken file never defines, say) can make a decode depend on the heap,
// every block stb allocates starts zeroed (calloc; realloc's new part is what stb writes next).
// Every allocation goes through StbAllocationCap's per-thread ceiling (data/stb_cap.h).
#include <algorithm>
#include <cstdint>
#include <cstdlib>

#include "data/dataset.h"
#include "data/stb_cap.h"

namespace {
thread_local size_t stb_cap_bytes = SIZE_MAX;
thread_local size_t stb_cap_refused = 0;
bool stb_cap_allows(size_t n) {
  if (n <= stb_cap_bytes) return true;
  stb_cap_refused = std::max(stb_cap_refused, n);
  return false;
}
void* stb_malloc(size_t n) { return stb_cap_allows(n) ? std::calloc(1, n) : nullptr; }
void* stb_realloc(void* p, size_t n) { return stb_cap_allows(n) ? std::realloc(p, n) : nullptr; }
}  // namespace

namespace scconv {
StbAllocationCap::StbAllocationCap(size_t bytes) {
  stb_cap_bytes = bytes;
  stb_cap_refused = 0;
}
StbAllocationCap::~StbAllocationCap() { stb_cap_bytes = SIZE_MAX; }
size_t StbAllocationCap::largest_refused() const { return stb_cap_refused; }
}  // namespace scconv

#define STBI_ASSERT(x) ((void)0)
#define STBI_MALLOC(n) stb_malloc(n)
#define STBI_REALLOC(p, n) stb_realloc(p, n)
#define STBI_FREE(p) std::free(p)

#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_ONLY_BMP
#define STBI_MAX_DIMENSIONS 8192
#include <stb_image.h>

static_assert(scconv::kMaxImageSide == STBI_MAX_DIMENSIONS, "one limit for our check and stb_image's");
