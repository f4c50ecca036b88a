// core/config.cpp: see config.h.
#include "core/config.h"

#include <cmath>

#include "core/error.h"
#include "core/file_io.h"

namespace scconv::config {

json read_json_file(const std::string& path) {
  std::string text = read_file(path);
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    SCCONV_FAIL(path << ": invalid JSON: " << e.what());
  }
}

void apply_set(json& j, const std::string& assignment) {
  auto eq = assignment.find('=');
  SCCONV_CHECK(eq != std::string::npos && eq > 0,
               "--set expects key=value with a dotted key, got '" << assignment << "'");
  std::string key = assignment.substr(0, eq), text = assignment.substr(eq + 1);
  json value;
  try {
    value = json::parse(text);
  } catch (const json::parse_error&) {
    value = text;
  }
  json* node = &j;
  size_t start = 0;
  while (true) {
    size_t dot = key.find('.', start);
    std::string part = key.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    SCCONV_CHECK(!part.empty(), "--set " << key << ": empty key segment");
    SCCONV_CHECK(node->is_object() || node->is_null(),
                 "--set " << key << ": '" << key.substr(0, start ? start - 1 : 0)
                          << "' is not an object");
    if (dot == std::string::npos) {
      (*node)[part] = value;
      return;
    }
    node = &(*node)[part];
    start = dot + 1;
  }
}

Reader::Reader(const json& j, std::string path)
    : j_(j.is_null() ? json::object() : j), path_(std::move(path)) {
  SCCONV_CHECK(j_.is_object(), (path_.empty() ? std::string("config") : path_)
                                   << " must be a JSON object, got " << j_.dump());
}

std::string Reader::key_path(const char* key) const {
  return path_.empty() ? std::string(key) : path_ + "." + key;
}

void Reader::only(std::initializer_list<const char*> allowed) const {
  for (auto& [k, v] : j_.items()) {
    bool ok = false;
    for (const char* a : allowed) ok = ok || k == a;
    if (!ok) {
      std::string list;
      for (const char* a : allowed) list += std::string(list.empty() ? "" : ", ") + a;
      SCCONV_FAIL("unknown key '" << key_path(k.c_str()) << "' (known here: " << list << ")");
    }
  }
}

bool Reader::has(const char* key) const { return j_.contains(key); }
const json& Reader::at(const char* key) const { return j_.at(key); }

std::string Reader::str(const char* key, const std::string& fallback) const {
  if (!has(key)) return fallback;
  SCCONV_CHECK(at(key).is_string(), key_path(key) << ": expected a string, got " << at(key).dump());
  return at(key).get<std::string>();
}

double Reader::num(const char* key, double fallback) const {
  if (!has(key)) return fallback;
  SCCONV_CHECK(at(key).is_number() && std::isfinite(at(key).get<double>()),
               key_path(key) << ": expected a number, got " << at(key).dump());
  return at(key).get<double>();
}

int64_t Reader::integer(const char* key, int64_t fallback) const {
  if (!has(key)) return fallback;
  const json& v = at(key);
  SCCONV_CHECK(v.is_number_integer() || (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>()),
               key_path(key) << ": expected an integer, got " << v.dump());
  return v.is_number_integer() ? v.get<int64_t>() : static_cast<int64_t>(v.get<double>());
}

bool Reader::boolean(const char* key, bool fallback) const {
  if (!has(key)) return fallback;
  SCCONV_CHECK(at(key).is_boolean(), key_path(key) << ": expected true or false, got " << at(key).dump());
  return at(key).get<bool>();
}

Reader Reader::child(const char* key) const {
  if (!has(key)) return Reader(json(), key_path(key));
  return Reader(at(key), key_path(key));
}

}  // namespace scconv::config
