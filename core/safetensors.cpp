// core/safetensors.cpp: safetensors reading and writing (see safetensors.h).
#include "core/safetensors.h"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/config.h"
#include "core/file_io.h"

namespace scconv {

namespace {

const char* st_dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::F64: return "F64";
    case DType::I64: return "I64";
    case DType::U8: return "U8";
    case DType::BF16: return "BF16";
  }
  return "?";
}

bool st_dtype_from(const std::string& s, DType& out) {
  if (s == "F32") out = DType::F32;
  else if (s == "F64") out = DType::F64;
  else if (s == "I64") out = DType::I64;
  else if (s == "U8") out = DType::U8;
  else if (s == "BF16") out = DType::BF16;
  else return false;
  return true;
}

constexpr uint64_t kMaxHeader = 100ull << 20;  // 100 MB of JSON is far beyond any real file (as the reference library)

}  // namespace

SafetensorsFile parse_safetensors(const std::string& bytes, const std::string& name) {
  SCCONV_CHECK(bytes.size() >= 8, name << ": not a safetensors file (" << bytes.size()
                                       << " bytes, shorter than the 8-byte header length)");
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; --i) hlen = (hlen << 8) | static_cast<unsigned char>(bytes[i]);
  SCCONV_CHECK(hlen <= kMaxHeader && hlen <= bytes.size() - 8,
               name << ": header length " << hlen << " exceeds the file size " << bytes.size()
                    << " (truncated or not a safetensors file)");
  SCCONV_CHECK(hlen >= 2 && bytes[8] == '{', name << ": header does not start with '{' (not a safetensors file)");
  // strict JSON: duplicate tensor names, trailing bytes (only spaces may pad it) and deep nesting are errors
  nlohmann::json header = config::parse_json(bytes.substr(8, hlen), name + ": header");
  SCCONV_CHECK(header.is_object(), name << ": header must be a JSON object");
  const uint64_t data_size = bytes.size() - 8 - hlen;
  const char* data = bytes.data() + 8 + hlen;
  SafetensorsFile out;
  std::vector<std::pair<std::pair<uint64_t, uint64_t>, std::string>> spans;  // (begin, end), name
  for (auto& [key, entry] : header.items()) {
    if (key == "__metadata__") {
      SCCONV_CHECK(entry.is_object(), name << ": __metadata__ must be an object of strings");
      for (auto& [mk, mv] : entry.items()) {
        SCCONV_CHECK(mv.is_string(), name << ": __metadata__." << mk << " must be a string");
        out.metadata[mk] = mv.get<std::string>();
      }
      continue;
    }
    const std::string where = name + ": tensor '" + key + "'";
    SCCONV_CHECK(entry.is_object() && entry.contains("dtype") && entry.contains("shape") &&
                     entry.contains("data_offsets"),
                 where << ": entry needs dtype, shape and data_offsets");
    DType dt;
    SCCONV_CHECK(entry["dtype"].is_string() && st_dtype_from(entry["dtype"].get<std::string>(), dt),
                 where << ": unsupported dtype " << entry["dtype"].dump()
                       << " (supported: F32, F64, BF16, I64, U8)");
    SCCONV_CHECK(entry["shape"].is_array(), where << ": shape must be an array");
    Shape shape;
    uint64_t numel = 1;
    for (auto& d : entry["shape"]) {
      SCCONV_CHECK(d.is_number_unsigned() || (d.is_number_integer() && d.get<int64_t>() >= 0),
                   where << ": shape " << entry["shape"].dump() << " has a bad dimension");
      uint64_t v = d.get<uint64_t>();
      SCCONV_CHECK(v < (1ull << 40) && (v == 0 || numel <= (1ull << 40) / v),
                   where << ": shape " << entry["shape"].dump() << " is too large");
      numel *= v;
      shape.push_back(static_cast<int64_t>(v));
    }
    auto& off = entry["data_offsets"];
    SCCONV_CHECK(off.is_array() && off.size() == 2 && off[0].is_number_unsigned() &&
                     off[1].is_number_unsigned(),
                 where << ": data_offsets must be [begin, end]");
    uint64_t b = off[0].get<uint64_t>(), e = off[1].get<uint64_t>();
    SCCONV_CHECK(b <= e && e <= data_size,
                 where << ": data_offsets [" << b << ", " << e << "] fall outside the "
                       << data_size << " data bytes (truncated file?)");
    SCCONV_CHECK(e - b == numel * dtype_size(dt),
                 where << ": data_offsets span " << (e - b) << " bytes but " << dtype_name(dt)
                       << shape_str(shape) << " needs " << numel * dtype_size(dt));
    Tensor t = Tensor::empty(shape, dt);
    if (e > b) std::memcpy(t.raw_data(), data + b, e - b);
    out.tensors.emplace(key, t);
    spans.push_back({{b, e}, key});
  }
  // As the reference implementation requires: the tensors tile the data exactly, in some
  // order, with no overlap, gap or trailing bytes.
  std::sort(spans.begin(), spans.end());
  uint64_t at = 0;
  for (auto& [span, key] : spans) {
    SCCONV_CHECK(span.first == at, name << ": tensor '" << key << "': data_offsets [" << span.first << ", "
                                        << span.second << "] " << (span.first < at ? "overlap" : "leave a gap after")
                                        << " the data of the tensor before it (which ends at " << at << ")");
    at = span.second;
  }
  SCCONV_CHECK(at == data_size, name << ": " << data_size - at << " bytes after the last tensor's data (the "
                                     << "tensors cover " << at << " of " << data_size << " data bytes)");
  return out;
}

SafetensorsFile load_safetensors(const std::string& path) {
  return parse_safetensors(read_file(path, kMaxSafetensorsBytes), path);
}

std::string serialize_safetensors(const std::map<std::string, Tensor>& tensors,
                                  const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t at = 0;
  for (auto& [k, t] : tensors) {
    check_defined(t, "save_safetensors", k.c_str());
    uint64_t n = t.numel() * dtype_size(t.dtype());
    header[k] = {{"dtype", st_dtype_name(t.dtype())}, {"shape", t.shape()},
                 {"data_offsets", {at, at + n}}};
    at += n;
  }
  std::string h = header.dump();
  while ((8 + h.size()) % 8) h.push_back(' ');  // align the data to 8 bytes
  std::string out;
  out.reserve(8 + h.size() + at);
  const uint64_t hl = h.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((hl >> (8 * i)) & 0xff));
  out.append(h);
  for (auto& [k, t] : tensors) {
    Tensor c = t.contiguous().to(Device::CPU);  // files do not depend on the device
    out.append(static_cast<const char*>(c.raw_data()), c.numel() * dtype_size(c.dtype()));
  }
  return out;
}

void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  write_file_atomic(path, serialize_safetensors(tensors, metadata));
}

}  // namespace scconv
