// core/safetensors.h: the safetensors format, so tensors move between scconv and PyTorch by
// name. Layout: 8-byte little-endian header length H, H bytes of JSON
//   {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"key": "value"}}
// then the raw little-endian data, offsets relative to its start.
// Supported dtypes: F32, F64, BF16, I64, U8. Every malformed file is an Error naming the file and
// the entry at fault, never a crash. As strict as the reference implementation: tensors tile the
// data exactly (no overlap, gap or trailing bytes), names are unique, the header is one JSON
// object (padded with spaces only).
#pragma once
#include <map>
#include <string>

#include "core/tensor.h"

namespace scconv {

struct SafetensorsFile {
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> metadata;
};

// Files larger than this are refused before reading (ResNet-101 with its momentum is ~0.35 GB).
inline constexpr uint64_t kMaxSafetensorsBytes = 16ull << 30;
SafetensorsFile load_safetensors(const std::string& path);
// Parses bytes already in memory; `name` is used in error messages.
SafetensorsFile parse_safetensors(const std::string& bytes, const std::string& name);
// Writes atomically (core/file_io.h). Tensors are written contiguous, in name order.
void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});
std::string serialize_safetensors(const std::map<std::string, Tensor>& tensors,
                                  const std::map<std::string, std::string>& metadata = {});

}  // namespace scconv
