// apps/run_dir.h: the output folder of `scconv train`, owned by the run that writes it.
//   - A run writes only its own names inside the folder (kRunFiles); none of them may be a
//     symbolic link (which would carry writes elsewhere).
//   - A new run refuses a folder that holds a run (continue it with --resume) and a folder that
//     holds other files (someone's data: refused unless allow_foreign), and never "/".
//   - An exclusive lock, <out>/.scconv.lock (apps/file_lock.h), held for the life of the run,
//     records the host, pid and start time of its holder; a second process gets an error naming
//     them. A lock left by a process that died (SIGKILL, power loss) is taken over with a note.
// Run: `scconv train --config quick` claims runs/quick.
#pragma once
#include <string>

#include "apps/file_lock.h"

namespace scconv::apps {

// Every name a run writes in its folder (its temporary files start with "." and end in
// ".tmp-XXXXXX"; see core/file_io.h).
inline constexpr const char* kRunFiles[] = {"checkpoint", "checkpoint.old", "checkpoint.tmp", "checkpoint.damaged",
                                            "metrics.jsonl", "summary.json", "best.safetensors", ".scconv.lock"};

class RunDir {
 public:
  // Creates `out` if needed, checks what it holds, takes the lock. Errors name the folder, the
  // file at fault or the lock's holder.
  RunDir(const std::string& out, bool resume, bool allow_foreign);
  RunDir(const RunDir&) = delete;
  RunDir& operator=(const RunDir&) = delete;

 private:
  std::string out_;
  FileLock lock_;
};

}  // namespace scconv::apps
