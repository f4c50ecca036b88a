// data/stb_cap.h: a per-thread ceiling on any one allocation stb_image makes. stb_image sizes some
// buffers from what a file claims rather than from what it holds (a PNG's compressed stream may
// inflate far past the pixels its header names), so data/image_folder.cpp sets a ceiling from the
// header's width and height before decoding; an allocation above it fails inside stb_image (which
// then gives up cleanly) and is recorded here, so the error can say why. Implemented next to
// stb_image itself, in data/stb_image.cpp.
#pragma once

#include <cstddef>

namespace scconv {

// While alive, this thread's stb_image allocations of more than `bytes` fail.
class StbAllocationCap {
 public:
  explicit StbAllocationCap(size_t bytes);
  ~StbAllocationCap();
  StbAllocationCap(const StbAllocationCap&) = delete;
  StbAllocationCap& operator=(const StbAllocationCap&) = delete;
  size_t largest_refused() const;  // 0 when nothing was refused
};

}  // namespace scconv
