// core/config.h: JSON configuration helpers shared by model and training configs: reading a
// file, `--set a.b.c=value` overrides, and strict key/type checks whose errors name the dotted
// key at fault.
#pragma once
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <string>

namespace scconv::config {

using json = nlohmann::json;

json read_json_file(const std::string& path);  // errors name the file and the parse position
// Applies "a.b.c=value": value is parsed as JSON when it is valid JSON (numbers, true, [1,2],
// "quoted"), else taken as a string (so --set conv=scconv works). Creates missing objects.
void apply_set(json& j, const std::string& assignment);

// A view of one JSON object at a dotted path, for reading typed values with checks.
class Reader {
 public:
  Reader(const json& j, std::string path);
  // Every key of the object must be in `allowed`; the error names the first unknown key.
  void only(std::initializer_list<const char*> allowed) const;
  bool has(const char* key) const;
  std::string str(const char* key, const std::string& fallback) const;
  double num(const char* key, double fallback) const;
  int64_t integer(const char* key, int64_t fallback) const;
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
