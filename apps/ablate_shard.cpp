// apps/ablate_shard.cpp: the state of an ablation's runs and a shard's loop (apps/ablate.h).
// Beside <out>/runs/<id>/ (the run's own folder, which only `scconv train` writes), the
// ablation keeps per run in <out>/.ablate/:
//   <id>.lock         the claim: locked (apps/file_lock.h) by the shard that trains the run
//   <id>.config.json  the expanded training config the run started from
//   <id>.log          the output of its `scconv train` processes, appended
//   <id>.failed       why its last attempt failed (exit code, error line); gone once it succeeds
// A run is done when its folder has summary.json (written by the trainer after the last epoch).
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <set>

#include "apps/ablate.h"
#include "apps/checkpoint.h"
#include "apps/file_lock.h"
#include "core/config.h"
#include "core/error.h"
#include "core/file_io.h"

namespace scconv::apps {

namespace fs = std::filesystem;
using json = nlohmann::json;

const char* name_of(RunState s) {
  switch (s) {
    case RunState::Pending: return "pending";
    case RunState::Running: return "running";
    case RunState::Done: return "done";
    case RunState::Failed: return "failed";
  }
  return "?";
}

namespace {
fs::path state_file(const std::string& out, const AblationRun& r, const char* suffix) {
  return fs::path(out) / ".ablate" / (r.id + suffix);
}
bool present(const fs::path& p) {
  std::error_code ec;
  return fs::exists(p, ec);
}

// The last line of the log that holds "error:" (what `scconv train` printed), or its last line.
std::string error_line(const fs::path& log) {
  std::string text;
  try {
    text = read_file(log.string(), 64ull << 20);
  } catch (const Error&) {
    return "";
  }
  std::string last, error;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    if (auto cr = line.rfind('\r'); cr != std::string::npos) line = line.substr(cr + 1);  // progress lines
    if (!line.empty()) last = line;
    if (line.find("error:") != std::string::npos) error = line;
    start = end + 1;
  }
  return (error.empty() ? last : error).substr(0, 400);
}

std::atomic<pid_t> g_child{0};
std::atomic<bool> g_stop{false};
void on_signal(int sig) {
  g_stop.store(true);
  if (pid_t c = g_child.load(); c > 0) ::kill(c, sig == SIGINT ? SIGINT : SIGTERM);
}

// Runs `exe argv...` with its output appended to `log`; returns its exit code (128 + the signal
// when a signal ended it). The child gets SIGTERM if this process dies first.
int run_process(const std::string& exe, const std::vector<std::string>& args, const fs::path& log) {
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(exe.c_str()));
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  SCCONV_CHECK(pid >= 0, "cannot start '" << exe << "': fork failed");
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(130);  // the parent died before prctl
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    ::execv(exe.c_str(), argv.data());
    ::_exit(127);
  }
  g_child.store(pid);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  g_child.store(0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// Another shard's status probe holds a lock for microseconds, a claim for a whole run: a lock
// still held after a second of retries is a claim.
bool claim_run(FileLock& claim, const fs::path& lock) {
  for (int attempt = 0; attempt < 20; ++attempt) {
    if (claim.try_lock(lock.string())) return true;
    ::usleep(50000);
  }
  return false;
}

// Trains one claimed run to its end (or until stopped); returns the trainer's exit code.
int train_run(const AblationRun& r, const std::string& out, const std::string& exe) {
  const std::string dir = r.config["out"].get<std::string>();
  const fs::path cfg = state_file(out, r, ".config.json"), log = state_file(out, r, ".log");
  std::vector<std::string> args;
  if (!find_checkpoint(dir).empty()) {
    args = {"train", "--resume", dir};  // exactly where it stopped (its own state.json holds the config)
  } else {
    write_file_atomic(cfg.string(), r.config.dump(2) + "\n");
    args = {"train", "--config", cfg.string()};
  }
  return run_process(exe, args, log);
}
}  // namespace

namespace {
RunStatus status_apart_from_claim(const std::string& out, const AblationRun& r);
}

RunStatus run_status(const std::string& out, const AblationRun& r) {
  if (present(fs::path(r.config["out"].get<std::string>()) / "summary.json")) return {RunState::Done, ""};
  const fs::path lock = state_file(out, r, ".lock");
  if (present(lock)) {
    FileLock probe;
    if (!probe.try_lock(lock.string(), /*record=*/false)) return {RunState::Running, probe.holder()};
  }
  return status_apart_from_claim(out, r);
}

namespace {
// What run_status says of a run, leaving out its claim (the caller holds it).
RunStatus status_apart_from_claim(const std::string& out, const AblationRun& r) {
  const std::string dir = r.config["out"].get<std::string>();
  if (present(fs::path(dir) / "summary.json")) return {RunState::Done, ""};
  if (present(state_file(out, r, ".failed"))) {
    const json f = config::read_json_file(state_file(out, r, ".failed").string());
    return {RunState::Failed, f.value("error", std::string("?"))};
  }
  const std::string ckpt = find_checkpoint(dir);
  if (!ckpt.empty()) {
    const std::string state = (fs::path(ckpt) / "state.json").string();
    try {
      const TrainState st = TrainState::from_json(config::read_json_file(state), state);
      return {RunState::Pending, "resumes after epoch " + std::to_string(st.epoch) + ", step " +
                                     std::to_string(st.step_in_epoch)};
    } catch (const Error& e) {
      return {RunState::Pending, std::string("resumes from a checkpoint that does not read: ") + e.what()};
    }
  }
  return {RunState::Pending, ""};
}
}  // namespace

ShardSpec parse_shard(const std::string& spec) {
  const size_t slash = spec.find('/');
  auto number = [&](const std::string& t) {
    SCCONV_CHECK(!t.empty() && t.size() < 10 && t.find_first_not_of("0123456789") == std::string::npos,
                 "--shard: expected K/N with whole numbers, 0 <= K < N, got '" << spec << "'");
    return std::stoll(t);
  };
  SCCONV_CHECK(slash != std::string::npos, "--shard: expected K/N (e.g. 0/4), got '" << spec << "'");
  ShardSpec s{number(spec.substr(0, slash)), number(spec.substr(slash + 1))};
  SCCONV_CHECK(s.count >= 1 && s.index < s.count,
               "--shard " << spec << ": K must be in [0, N) and N >= 1 (shards are numbered from 0)");
  return s;
}

ShardSpec shard_from_environment() {
  const char* id = std::getenv("SLURM_ARRAY_TASK_ID");
  const char* count = std::getenv("SLURM_ARRAY_TASK_COUNT");
  if (!id || !count) return {};
  const char* min = std::getenv("SLURM_ARRAY_TASK_MIN");
  const char* step = std::getenv("SLURM_ARRAY_TASK_STEP");
  const int64_t step_v = step ? std::max<int64_t>(1, std::atoll(step)) : 1;
  const int64_t k = (std::atoll(id) - (min ? std::atoll(min) : 0)) / step_v;
  const std::string spec = std::to_string(k) + "/" + count;
  try {
    return parse_shard(spec);
  } catch (const Error& e) {
    throw Error(std::string("SLURM_ARRAY_TASK_ID=") + id + ", SLURM_ARRAY_TASK_COUNT=" + count + ": " + e.what());
  }
}

namespace {
struct ShardLoop {
  const AblationPlan& plan;
  const std::string& out;
  const ShardOptions& o;
  int done = 0, failed = 0;
  std::set<std::string> tried;  // (each run at most once per call)

  bool wanted(RunState s) const { return s == RunState::Pending || (s == RunState::Failed && o.retry_failed); }
  // Claims and trains one run, unless another shard has it or it is no longer wanted.
  void attempt(const AblationRun& r, const std::string& tag) {
    if (!tried.insert(r.id).second) return;
    FileLock claim;
    if (!claim_run(claim, state_file(out, r, ".lock"))) {
      std::fprintf(stderr, "%s %s: taken by another shard (%s)\n", tag.c_str(), r.id.c_str(), claim.holder().c_str());
      return;
    }
    if (!wanted(status_apart_from_claim(out, r).state)) return;  // (another shard finished it meanwhile)
    if (!claim.holder().empty())
      std::fprintf(stderr, "%s %s: taking over the claim of a shard that ended (%s)\n", tag.c_str(), r.id.c_str(),
                   claim.holder().c_str());
    std::fprintf(stderr, "%s %s: training (log: %s)\n", tag.c_str(), r.id.c_str(), state_file(out, r, ".log").c_str());
    const int rc = train_run(r, out, o.exe);
    std::error_code ec;
    if (rc == 0) {
      fs::remove(state_file(out, r, ".failed"), ec);
      ++done;
      const json s = config::read_json_file((fs::path(r.config["out"].get<std::string>()) / "summary.json").string());
      std::fprintf(stderr, "%s %s: done, test accuracy %.2f%%\n", tag.c_str(), r.id.c_str(), 100 * s.value("final_test_acc", 0.0));
    } else if (rc == 130 || rc == 128 + SIGTERM || rc == 128 + SIGINT || g_stop.load()) {
      std::fprintf(stderr, "%s %s: stopped; it resumes on the next call\n", tag.c_str(), r.id.c_str());
      g_stop.store(true);
    } else {
      ++failed;
      const std::string err = error_line(state_file(out, r, ".log"));
      write_file_atomic(state_file(out, r, ".failed").string(),
                        json{{"exit_code", rc}, {"error", err}, {"host", host_name()}}.dump(2) + "\n");
      std::fprintf(stderr, "%s %s: FAILED (exit code %d): %s\n", tag.c_str(), r.id.c_str(), rc, err.c_str());
    }
  }
};
}  // namespace

int run_shard(const AblationPlan& plan, const std::string& out, const ShardOptions& o) {
  ShardLoop loop{plan, out, o, 0, 0, {}};
  // The share is taken of the runs not yet finished, claimed ones included, so that shards
  // starting a moment apart (one of them already training) still agree on it.
  std::vector<const AblationRun*> open, mine;
  for (const AblationRun& r : plan.runs) {
    const RunState s = run_status(out, r).state;
    if (loop.wanted(s) || s == RunState::Running) open.push_back(&r);
  }
  for (size_t i = size_t(o.shard.index); i < open.size(); i += size_t(o.shard.count)) mine.push_back(open[i]);
  std::fprintf(stderr, "ablate %s: shard %lld/%lld takes %zu of %zu pending runs (%zu in the plan)\n", plan.name.c_str(),
               (long long)o.shard.index, (long long)o.shard.count, mine.size(), open.size(), plan.runs.size());
  g_stop.store(false);
  struct sigaction sa = {}, old_int = {}, old_term = {};
  sa.sa_handler = on_signal;
  ::sigaction(SIGINT, &sa, &old_int);
  ::sigaction(SIGTERM, &sa, &old_term);
  for (size_t i = 0; i < mine.size() && !g_stop.load(); ++i) {
    char tag[48];
    std::snprintf(tag, sizeof tag, "[%zu/%zu]", i + 1, mine.size());
    loop.attempt(*mine[i], tag);
  }
  // then whatever no shard has claimed (a shard that finished its share early, or one whose
  // list was taken after a run had finished, leaves nothing behind)
  for (const AblationRun& r : plan.runs) {
    if (g_stop.load()) break;
    const RunState s = run_status(out, r).state;
    if (loop.wanted(s)) loop.attempt(r, "[left over]");
  }
  ::sigaction(SIGINT, &old_int, nullptr);
  ::sigaction(SIGTERM, &old_term, nullptr);
  std::fprintf(stderr, "ablate %s: shard %lld/%lld: %d done, %d failed%s\n", plan.name.c_str(), (long long)o.shard.index,
               (long long)o.shard.count, loop.done, loop.failed, g_stop.load() ? ", stopped" : "");
  if (g_stop.load()) return 130;
  return loop.failed ? 1 : 0;
}

}  // namespace scconv::apps
