// core/config.h: JSON configuration helpers shared by model and training configs: reading a
// file, `--set a.b.c=value` overrides, and strict key/type checks whose errors name the dotted
// key at fault.
#pragma once
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <string>

namespace scconv::config {

using json = nlohmann::json;

// Strict JSON: one document and nothing after it (a NUL byte included), no duplicate keys in an
// object, numbers within double range, at most kMaxDepth levels of nesting (deeper documents
// would overflow the stack of any recursive walk, printing included). `source` names the text in
// errors ("runs/a/checkpoint/state.json", "--set optim.lr"). Every JSON scconv reads goes through it.
inline constexpr int kMaxDepth = 64;
json parse_json(const std::string& text, const std::string& source);
// A regular file of at most kMaxFileBytes, parsed with parse_json; errors name the file.
inline constexpr uint64_t kMaxFileBytes = 64ull << 20;
json read_json_file(const std::string& path);
// Text that goes into a JSON document (paths, --set values) must be UTF-8; the error names `what`.
void check_utf8(const std::string& text, const std::string& what);
// A value for an error message: its JSON, cut to about `max` characters.
std::string brief(const json& v, size_t max = 80);
// Applies "a.b.c=value": value is parsed as JSON when it is valid JSON (numbers, true, [1,2],
// "quoted"), else taken as a string (so --set conv=scconv works). Creates missing objects.
void apply_set(json& j, const std::string& assignment);

// Sets the value at a dotted key path ("data.dir"), creating objects on the way; an error
// naming `what` when a segment is empty or an existing value on the way is not an object.
void set_path(json& j, const std::string& dotted_key, json value, const std::string& what);

// A view of one JSON object at a dotted path, for reading typed values with checks.
class Reader {
 public:
  Reader(const json& j, std::string path);
  // Every key of the object must be in `allowed`; the error names the first unknown key.
  void only(std::initializer_list<const char*> allowed) const;
  bool has(const char* key) const;
  std::string str(const char* key, const std::string& fallback) const;
  double num(const char* key, double fallback) const;
  // An integer in [lo, hi]: a JSON integer, or a float with an integral value of at most 2^53.
  int64_t integer(const char* key, int64_t fallback, int64_t lo, int64_t hi) const;
  bool boolean(const char* key, bool fallback) const;
  Reader child(const char* key) const;  // an empty object when absent
  std::string key_path(const char* key) const;  // "scconv.sru.groups"
  const json& value() const { return j_; }

 private:
  const json& at(const char* key) const;
  json j_;  // a copy: configs are small, and a Reader may outlive the document it came from
  std::string path_;
};

}  // namespace scconv::config
