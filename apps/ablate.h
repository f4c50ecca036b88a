// apps/ablate.h: `scconv ablate` (apps/cmd_ablate.cpp), the paper's ablation grids as one
// resumable plan. A plan (configs/ablations/*.json, docs/ablations.md) is
//   {"name": "alpha-sweep", "base": "resnet20-scconv" | {...training config...},
//    "set": {"epochs": 200},                                   (optional, overrides of the base)
//    "axes": {"variant": {"plain": {"model": "resnet20"}, "SCConv": {"model": "resnet20-scconv"}},
//             "model.scconv.alpha": [0.25, 0.5, 0.75]},
//    "seeds": [0, 1],
//    "paper": {"variant=SCConv,alpha=0.5": 94.12}}             (optional, percent, per cell)
// An axis is either a name with labelled sets of dotted-key overrides, or a dotted key with a
// list of values (labelled by the key's last segment). Every combination of axis values is a
// cell; every cell runs once per seed, as run "variant=SCConv,alpha=0.5,seed=1": an ordinary
// `scconv train` run directory, <out>/runs/<id>/. The overrides apply in order: base, "set",
// the axes, `--set` of the command line, then the seed.
//   apps/ablate_plan.cpp     the plan: parsing, expansion, the results directory's identity
//   apps/ablate_shard.cpp    run states, claims (a lock file per run), a shard's loop
//   apps/ablate_collect.cpp  results.md, results.csv, results.html
#pragma once
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace scconv::apps {

// ---- plans ----
struct AblationRun {
  std::string id;        // "variant=S+C,alpha=0.5,seed=1"
  size_t cell = 0;       // index into AblationPlan::cells
  int64_t seed = 0;
  nlohmann::json config; // the training config, validated, "out" = <out>/runs/<id>
};

struct AblationCell {
  std::string id;                                           // "variant=S+C,alpha=0.5" ("" without axes)
  std::vector<std::pair<std::string, std::string>> labels;  // (axis, label) in axis order
  std::optional<double> paper;                              // the paper's number, percent
  std::vector<size_t> runs;                                 // one per seed, in seed order
};

struct AblationPlan {
  std::string file, name;
  std::vector<std::string> axes;  // axis names, in the plan's order
  std::vector<AblationCell> cells;
  std::vector<AblationRun> runs;
  nlohmann::json identity;        // the plan and the command line's --set: what <out>/ablate.json holds
};

// Reads and expands a plan; every run's config is parsed as `scconv train` would, so a bad key,
// an empty axis, duplicate ids or a base that fails to load are Errors naming the plan file
// (and the run or axis) before anything runs.
AblationPlan load_plan(const std::string& file, const std::string& out, const std::vector<std::string>& sets);

// Creates <out> and records the plan's identity in <out>/ablate.json; a directory that records
// another plan (or other --set values) is refused, never mixed. `threads` and `device` are not
// part of the identity: they change where and how fast the runs compute, not what they are.
void prepare_results_dir(const AblationPlan& plan, const std::string& out);

// ---- runs and shards ----
enum class RunState { Pending, Running, Done, Failed };
const char* name_of(RunState s);

struct RunStatus {
  RunState state = RunState::Pending;
  std::string detail;  // the lock's holder, the failure's error, or where a pending run resumes
};
RunStatus run_status(const std::string& out, const AblationRun& r);

// Shard K of N: this process takes the pending runs K, K + N, K + 2N, ...
struct ShardSpec {
  int64_t index = 0, count = 1;
};
ShardSpec parse_shard(const std::string& spec);  // "K/N" with 0 <= K < N; an Error otherwise
// Inside a Slurm job array: (SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN) / step of
// SLURM_ARRAY_TASK_COUNT; elsewhere 0/1.
ShardSpec shard_from_environment();

struct ShardOptions {
  ShardSpec shard;
  bool retry_failed = false;  // failed runs count as pending (and are tried again)
  std::string exe;            // the scconv binary that trains each run
};
// Runs this shard's share, one `scconv train` process at a time, each claimed through its lock
// file. Returns 0 when every run it took finished, 1 when some failed, 130 when stopped by
// SIGINT/SIGTERM (the run in progress wrote its checkpoint and resumes on the next call).
int run_shard(const AblationPlan& plan, const std::string& out, const ShardOptions& o);

// ---- results ----
// Writes <out>/results.md, results.csv and results.html; returns the Markdown table.
std::string collect_results(const AblationPlan& plan, const std::string& out);

}  // namespace scconv::apps
