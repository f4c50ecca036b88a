// apps/args.cpp: see args.h.
#include "apps/args.h"

#include <iostream>

#include "core/error.h"

namespace scconv::apps {

void ArgParser::option(const std::string& name, const std::string& help, bool value, bool repeat) {
  opts_.push_back({name, Opt{help, value, repeat}});
}

bool ArgParser::parse(const Args& args) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") {
      usage();
      return false;
    }
    const Opt* opt = nullptr;
    for (auto& [n, o] : opts_)
      if (n == a) opt = &o;
    SCCONV_CHECK(opt, "unknown option '" << a << "' (see scconv " << command_ << " --help)");
    if (!opt->value) {
      values_[a].push_back("1");
      continue;
    }
    SCCONV_CHECK(i + 1 < args.size(), "option " << a << " needs a value");
    SCCONV_CHECK(opt->repeat || !values_.count(a), "option " << a << " given twice");
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

int64_t ArgParser::get_int(const std::string& name, int64_t fallback) const {
  if (!has(name)) return fallback;
  std::string v = get(name);
  try {
    size_t used = 0;
    int64_t n = std::stoll(v, &used);
    if (used == v.size()) return n;
  } catch (...) {
  }
  SCCONV_FAIL("option " << name << ": '" << v << "' is not an integer");
}

void ArgParser::usage() const {
  std::cout << "scconv " << command_ << ": " << summary_ << "\n\noptions:\n";
  for (auto& [n, o] : opts_)
    std::cout << "  " << n << (o.value ? " VALUE" : "") << (o.repeat ? " (repeatable)" : "")
              << "\n      " << o.help << "\n";
}

}  // namespace scconv::apps
