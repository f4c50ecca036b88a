// apps/args.h: command-line option parsing shared by the subcommands. Options are declared
// with a help line; unknown options, missing values, numbers that are malformed or out of their
// range, and missing or conflicting required options are UsageErrors naming the option (exit
// code 2). `--help` prints the declared options.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <map>
#include <string>
#include <vector>

#include "apps/commands.h"

namespace scconv::apps {

class ArgParser {
 public:
  ArgParser(std::string command, std::string summary) : command_(std::move(command)), summary_(std::move(summary)) {}
  // `value` options take an argument; `repeat` ones may be given several times.
  void option(const std::string& name, const std::string& help, bool value = true, bool repeat = false);
  // Arguments that are not options (not starting with "-") are collected under `name` (shown in
  // the usage); without this declaration they are usage errors.
  void positional(const std::string& name, const std::string& help);
  const std::vector<std::string>& positionals() const { return positionals_; }
  // Returns false when --help was asked for (the usage is printed).
  bool parse(const Args& args);

  bool has(const std::string& name) const { return values_.count(name) > 0; }
  std::string get(const std::string& name, const std::string& fallback = "") const;
  std::vector<std::string> all(const std::string& name) const;
  // An integer in [lo, hi] (the fallback when absent).
  int64_t get_int(const std::string& name, int64_t fallback, int64_t lo, int64_t hi) const;
  // A finite number in [lo, hi].
  double get_number(const std::string& name, double fallback, double lo, double hi) const;
  void require(std::initializer_list<const char*> names) const;         // each must be given
  void require_one_of(std::initializer_list<const char*> names) const;  // exactly one
  void usage() const;

 private:
  struct Opt {
    std::string help;
    bool value, repeat;
  };
  std::string command_, summary_;
  std::vector<std::pair<std::string, Opt>> opts_;
  std::map<std::string, std::vector<std::string>> values_;
  std::string positional_name_, positional_help_;
  std::vector<std::string> positionals_;
};

}  // namespace scconv::apps
