// apps/cmd_ablate.cpp: `scconv ablate PLAN --out DIR`: runs an ablation plan (apps/ablate.h,
// docs/ablations.md) as ordinary `scconv train` runs, resumable, sharded over processes or a
// Slurm job array.
//   scconv ablate configs/ablations/alpha-resnet20.json --out runs/alpha --set epochs=5
//   scconv ablate PLAN --out DIR --list          each run's state: pending / running / done / failed
//   scconv ablate PLAN --out DIR --dry-run       the expanded training configs, nothing run
//   scconv ablate PLAN --out DIR --shard 1/4     every 4th pending run, starting at the second
//   scconv ablate PLAN --out DIR --collect       results.md, results.csv, results.html
// Inside a Slurm job array (scripts/slurm/ablate.sbatch) the shard comes from the array's task id.
#include <unistd.h>

#include <climits>
#include <filesystem>
#include <iostream>

#include "apps/ablate.h"
#include "apps/args.h"
#include "core/error.h"

namespace scconv::apps {

namespace {
std::string self_exe() {
  char buf[PATH_MAX + 1] = {};
  const ssize_t n = ::readlink("/proc/self/exe", buf, PATH_MAX);
  SCCONV_CHECK(n > 0, "scconv ablate: cannot find its own binary (/proc/self/exe)");
  return std::string(buf, size_t(n));
}

int list_runs(const AblationPlan& plan, const std::string& out) {
  int counts[4] = {};
  for (const AblationRun& r : plan.runs) {
    const RunStatus s = run_status(out, r);
    ++counts[int(s.state)];
    std::cout << name_of(s.state) << "\t" << r.id << (s.detail.empty() ? "" : "\t" + s.detail) << "\n";
  }
  std::cout << plan.runs.size() << " runs: " << counts[int(RunState::Done)] << " done, " << counts[int(RunState::Running)]
            << " running, " << counts[int(RunState::Pending)] << " pending, " << counts[int(RunState::Failed)] << " failed\n";
  return 0;
}
}  // namespace

int cmd_ablate(const Args& args) {
  ArgParser p("ablate", "an ablation plan as resumable scconv train runs; --collect writes the tables");
  p.positional("PLAN", "the plan: a JSON file (configs/ablations/*.json; docs/ablations.md)");
  p.option("--out", "the results directory (runs/<id>/ per run, results.* from --collect)");
  p.option("--set", "override a training-config key of every run, e.g. --set epochs=5 (part of the plan's identity)", true, true);
  p.option("--device", "cpu, cuda or cuda:N for every run (as --set device=...; not part of the plan's identity)");
  p.option("--threads", "threads per run (as --set threads=...; 0, the default: the cores this process may use)");
  p.option("--shard", "K/N: run every N-th pending run starting at K (default: the Slurm array task, else all)");
  p.option("--list", "print every run's state and stop", false);
  p.option("--dry-run", "print the expanded training configs and stop", false);
  p.option("--collect", "write results.md, results.csv and results.html from the finished runs", false);
  p.option("--retry-failed", "train failed runs again", false);
  if (!p.parse(args)) return 0;
  p.require({"--out"});
  SCCONV_USAGE_CHECK(p.positionals().size() == 1, "give one plan file (see scconv ablate --help)");
  const std::string out = p.get("--out");
  ShardOptions o;  // (a bad --shard is an error before anything is written)
  o.shard = p.has("--shard") ? parse_shard(p.get("--shard")) : shard_from_environment();
  o.retry_failed = p.has("--retry-failed");
  std::vector<std::string> sets = p.all("--set");
  if (p.has("--device")) sets.push_back("device=" + p.get("--device"));
  if (p.has("--threads")) sets.push_back("threads=" + std::to_string(p.get_int("--threads", 0, 0, 4096)));
  const AblationPlan plan = load_plan(p.positionals()[0], out, sets);
  if (p.has("--dry-run")) {
    for (const AblationRun& r : plan.runs) std::cout << "# " << r.id << "\n" << r.config.dump(2) << "\n";
    return 0;
  }
  prepare_results_dir(plan, out);
  if (p.has("--list")) return list_runs(plan, out);
  if (p.has("--collect")) {
    std::cout << collect_results(plan, out);
    std::cout << "\nwrote " << out << "/results.md, results.csv, results.html\n";
    return 0;
  }
  o.exe = self_exe();
  return run_shard(plan, out, o);
}

}  // namespace scconv::apps
