// apps/main.cpp: the `scconv` command line. `scconv <command> [options]`; `scconv help` lists
// the commands. Every error reaches the user as one line naming what is wrong. Exit codes:
//   0   success
//   1   a user error: bad input, config or data, a file that cannot be read or written
//   2   a usage error: unknown command or option, a missing or malformed option value
//   3   an internal fault (a bug: please report it with the command line)
//   130 stopped by Ctrl-C / SIGTERM after writing a checkpoint (scconv train, scconv ablate)
#include <cstring>
#include <filesystem>
#include <iostream>
#include <new>

#include "apps/commands.h"
#include "core/error.h"

namespace {
struct Command {
  const char* name;
  int (*run)(const scconv::apps::Args&);
  const char* help;
};
const Command kCommands[] = {
    {"demo", scconv::apps::cmd_demo,
     "train a small CNN on synthetic images for a few hundred steps (no data needed)"},
    {"train", scconv::apps::cmd_train,
     "train a CIFAR classifier from a config (presets in configs/train/); --resume continues a run"},
    {"eval", scconv::apps::cmd_eval,
     "test accuracy, per-class accuracy and confusion matrix of a trained model"},
    {"summary", scconv::apps::cmd_summary,
     "per-layer table of a model: output shapes, parameters, MACs (the paper's \"FLOPs\")"},
    {"forward", scconv::apps::cmd_forward,
     "run a model on inputs from a safetensors file (and backward with --train); write outputs"},
    {"explain", scconv::apps::cmd_explain,
     "what the SRU and CRU of a trained model do with given images: tensors, statistics, figures"},
    {"report", scconv::apps::cmd_report,
     "one HTML page of training runs: curves overlaid, tables, per-class accuracy, SCConv figures"},
    {"bench", scconv::apps::cmd_bench,
     "training and inference throughput, memory and time per op family, on synthetic data"},
    {"ablate", scconv::apps::cmd_ablate,
     "an ablation grid (configs/ablations/) as resumable runs, sharded over processes or a Slurm array; --collect tables"},
};

int usage(std::ostream& os) {
  os << "usage: scconv <command> [options]\n\ncommands:\n";
  for (const Command& c : kCommands) os << "  " << c.name << "\t" << c.help << "\n";
  os << "\n`scconv <command> --help` describes a command's options.\n";
  return 2;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage(std::cerr);
  std::string name = argv[1];
  if (name == "help" || name == "--help" || name == "-h") {
    usage(std::cout);
    return 0;
  }
  for (const Command& c : kCommands) {
    if (name != c.name) continue;
    try {
      return c.run(scconv::apps::Args(argv + 2, argv + argc));
    } catch (const scconv::UsageError& e) {
      std::cerr << "scconv " << name << ": usage error: " << e.what() << "\n";
      return 2;
    } catch (const scconv::Error& e) {
      std::cerr << "scconv " << name << ": error: " << e.what() << "\n";
      return 1;
    } catch (const std::filesystem::filesystem_error& e) {  // names the path(s): permissions, loops, ...
      std::cerr << "scconv " << name << ": error: " << e.what() << "\n";
      return 1;
    } catch (const std::bad_alloc&) {
      std::cerr << "scconv " << name << ": error: out of memory\n";
      return 1;
    } catch (const std::exception& e) {
      std::cerr << "scconv " << name << ": internal error: " << e.what() << "\n";
      return 3;
    }
  }
  std::cerr << "scconv: usage error: unknown command '" << name << "'\n";
  return usage(std::cerr);
}
