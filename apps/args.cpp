// apps/args.cpp: see args.h.
#include "apps/args.h"

#include <cmath>
#include <iostream>

#include "core/error.h"

namespace scconv::apps {

void ArgParser::option(const std::string& name, const std::string& help, bool value, bool repeat) {
  opts_.push_back({name, Opt{help, value, repeat}});
}

void ArgParser::positional(const std::string& name, const std::string& help) {
  positional_name_ = name;
  positional_help_ = help;
}

bool ArgParser::parse(const Args& args) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") {
      usage();
      return false;
    }
    if (!positional_name_.empty() && !a.empty() && a[0] != '-') {
      positionals_.push_back(a);
      continue;
    }
    const Opt* opt = nullptr;
    for (auto& [n, o] : opts_)
      if (n == a) opt = &o;
    SCCONV_USAGE_CHECK(opt, "unknown option '" << a << "' (see scconv " << command_ << " --help)");
    if (!opt->value) {
      values_[a].push_back("1");
      continue;
    }
    SCCONV_USAGE_CHECK(i + 1 < args.size(), "option " << a << " needs a value");
    SCCONV_USAGE_CHECK(opt->repeat || !values_.count(a), "option " << a << " given twice");
    values_[a].push_back(args[++i]);
  }
  return true;
}

std::string ArgParser::get(const std::string& name, const std::string& fallback) const {
  auto it = values_.find(name);
  return it == values_.end() ? fallback : it->second.back();
}

std::vector<std::string> ArgParser::all(const std::string& name) const {
  auto it = values_.find(name);
  return it == values_.end() ? std::vector<std::string>{} : it->second;
}

int64_t ArgParser::get_int(const std::string& name, int64_t fallback, int64_t lo, int64_t hi) const {
  if (!has(name)) return fallback;
  const std::string v = get(name);
  size_t used = 0;
  int64_t n = 0;
  bool ok = false;
  try {
    n = std::stoll(v, &used, 10);
    ok = used == v.size();
  } catch (const std::exception&) {  // not a number, or beyond int64
  }
  SCCONV_USAGE_CHECK(ok, "option " << name << ": '" << v << "' is not an integer");
  SCCONV_USAGE_CHECK(n >= lo && n <= hi, "option " << name << ": " << n << " is outside [" << lo << ", " << hi << "]");
  return n;
}

double ArgParser::get_number(const std::string& name, double fallback, double lo, double hi) const {
  if (!has(name)) return fallback;
  const std::string v = get(name);
  size_t used = 0;
  double x = 0;
  bool ok = false;
  try {
    x = std::stod(v, &used);
    ok = used == v.size() && std::isfinite(x);
  } catch (const std::exception&) {
  }
  SCCONV_USAGE_CHECK(ok, "option " << name << ": '" << v << "' is not a finite number");
  SCCONV_USAGE_CHECK(x >= lo && x <= hi, "option " << name << ": " << x << " is outside [" << lo << ", " << hi << "]");
  return x;
}

namespace {
std::string either(std::initializer_list<const char*> names) {
  std::string s;
  size_t i = 0;
  for (const char* n : names) s += (i++ ? (i == names.size() ? " or " : ", ") : "") + std::string(n);
  return s;
}
}  // namespace

void ArgParser::require(std::initializer_list<const char*> names) const {
  for (const char* n : names) SCCONV_USAGE_CHECK(has(n), "option " << n << " is required (see scconv " << command_ << " --help)");
}

void ArgParser::require_one_of(std::initializer_list<const char*> names) const {
  int given = 0;
  for (const char* n : names) given += has(n);
  SCCONV_USAGE_CHECK(given == 1, "give exactly one of " << either(names) << " (see scconv " << command_ << " --help)");
}

void ArgParser::usage() const {
  std::cout << "scconv " << command_ << ": " << summary_ << "\n\n";
  if (!positional_name_.empty())
    std::cout << "usage: scconv " << command_ << " " << positional_name_ << "... [options]\n  " << positional_name_ << "\n      "
              << positional_help_ << "\n\n";
  std::cout << "options:\n";
  for (auto& [n, o] : opts_)
    std::cout << "  " << n << (o.value ? " VALUE" : "") << (o.repeat ? " (repeatable)" : "")
              << "\n      " << o.help << "\n";
}

}  // namespace scconv::apps
