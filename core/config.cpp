// core/config.cpp: see config.h.
#include "core/config.h"

#include <cmath>
#include <set>
#include <vector>

#include "core/error.h"
#include "core/file_io.h"

namespace scconv::config {

json parse_json(const std::string& text, const std::string& source) {
  const size_t nul = text.find('\0');
  SCCONV_CHECK(nul == std::string::npos, source << ": invalid JSON: a NUL byte at offset " << nul);
  std::vector<std::set<std::string>> keys;  // the keys seen so far in each open object
  auto check = [&](int depth, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        SCCONV_CHECK(depth < kMaxDepth, source << ": invalid JSON: nested deeper than " << kMaxDepth << " levels");
        if (event == json::parse_event_t::object_start) keys.emplace_back();
        break;
      case json::parse_event_t::object_end: keys.pop_back(); break;
      case json::parse_event_t::key:
        SCCONV_CHECK(keys.back().insert(parsed.get<std::string>()).second,
                     source << ": invalid JSON: duplicate key \"" << parsed.get<std::string>() << "\"");
        break;
      default: break;
    }
    return true;
  };
  try {
    return json::parse(text, check);
  } catch (const json::exception& e) {  // syntax errors, trailing bytes, number overflow
    SCCONV_FAIL(source << ": invalid JSON: " << e.what());
  }
}

json read_json_file(const std::string& path) { return parse_json(read_file(path, kMaxFileBytes), path); }

void check_utf8(const std::string& text, const std::string& what) {
  try {
    (void)json(text).dump();
  } catch (const json::exception&) {
    SCCONV_FAIL(what << ": not valid UTF-8 text");
  }
}

std::string brief(const json& v, size_t max) {
  std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
  if (s.size() > max) s = s.substr(0, max) + "... (" + std::to_string(s.size()) + " characters)";
  return s;
}

void apply_set(json& j, const std::string& assignment) {
  auto eq = assignment.find('=');
  SCCONV_CHECK(eq != std::string::npos && eq > 0,
               "--set expects key=value with a dotted key, got '" << assignment << "'");
  std::string key = assignment.substr(0, eq), text = assignment.substr(eq + 1);
  check_utf8(key, "--set: the key");
  json value;
  try {
    value = parse_json(text, "--set " + key);
  } catch (const Error&) {
    // not JSON: a plain string (--set conv=scconv), unless it looks like a broken number or
    // document, which is far more likely a typo than a string value
    const bool numberish = !text.empty() && text.find_first_not_of("0123456789eE.+-") == std::string::npos;
    const bool document = !text.empty() && (text[0] == '[' || text[0] == '{' || text[0] == '"');
    SCCONV_CHECK(!numberish && !document, "--set " << key << ": '" << text << "' is not valid JSON ("
                                                   << (numberish ? "a number out of range or mistyped" : "a broken list, object or string")
                                                   << ")");
    check_utf8(text, "--set " + key);
    value = text;
  }
  set_path(j, key, std::move(value), "--set " + key);
}

void set_path(json& j, const std::string& key, json value, const std::string& what) {
  json* node = &j;
  size_t start = 0, depth = 0;
  while (true) {
    size_t dot = key.find('.', start);
    std::string part = key.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    SCCONV_CHECK(!part.empty(), what << ": empty key segment");
    SCCONV_CHECK(++depth < kMaxDepth, what << ": more than " << kMaxDepth << " key segments");
    SCCONV_CHECK(node->is_object() || node->is_null(),
                 what << ": '" << (start ? key.substr(0, start - 1) : std::string("the config")) << "' is not an object");
    if (dot == std::string::npos) {
      (*node)[part] = std::move(value);
      return;
    }
    node = &(*node)[part];
    start = dot + 1;
  }
}

Reader::Reader(const json& j, std::string path)
    : j_(j.is_null() ? json::object() : j), path_(std::move(path)) {
  SCCONV_CHECK(j_.is_object(), (path_.empty() ? std::string("config") : path_)
                                   << " must be a JSON object, got " << brief(j_));
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
  SCCONV_CHECK(at(key).is_string(), key_path(key) << ": expected a string, got " << brief(at(key)));
  return at(key).get<std::string>();
}

double Reader::num(const char* key, double fallback) const {
  if (!has(key)) return fallback;
  SCCONV_CHECK(at(key).is_number() && std::isfinite(at(key).get<double>()),
               key_path(key) << ": expected a number, got " << brief(at(key)));
  return at(key).get<double>();
}

int64_t Reader::integer(const char* key, int64_t fallback, int64_t lo, int64_t hi) const {
  if (!has(key)) return fallback;
  const json& v = at(key);
  int64_t n = 0;
  if (v.is_number_unsigned()) {
    SCCONV_CHECK(v.get<uint64_t>() <= static_cast<uint64_t>(hi),
                 key_path(key) << ": " << brief(v) << " is outside [" << lo << ", " << hi << "]");
    n = static_cast<int64_t>(v.get<uint64_t>());
  } else if (v.is_number_integer()) {
    n = v.get<int64_t>();
  } else {
    const double d = v.is_number_float() ? v.get<double>() : 0.5;
    SCCONV_CHECK(std::floor(d) == d, key_path(key) << ": expected an integer, got " << brief(v));
    SCCONV_CHECK(std::fabs(d) <= 9007199254740992.0 && d >= double(lo) && d <= double(hi),
                 key_path(key) << ": " << brief(v) << " is outside [" << lo << ", " << hi << "]");
    n = static_cast<int64_t>(d);
  }
  SCCONV_CHECK(n >= lo && n <= hi, key_path(key) << ": " << n << " is outside [" << lo << ", " << hi << "]");
  return n;
}

bool Reader::boolean(const char* key, bool fallback) const {
  if (!has(key)) return fallback;
  SCCONV_CHECK(at(key).is_boolean(), key_path(key) << ": expected true or false, got " << brief(at(key)));
  return at(key).get<bool>();
}

Reader Reader::child(const char* key) const {
  if (!has(key)) return Reader(json(), key_path(key));
  return Reader(at(key), key_path(key));
}

}  // namespace scconv::config
