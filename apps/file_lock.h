// apps/file_lock.h: an exclusive lock on a file, held with flock() for the life of the object.
// The file records its holder ("host H, pid P, started T"), so a second process can say who
// holds it. A holder that dies (SIGKILL, power loss) loses the lock with its process; the next
// taker sees the record it left and takes the lock over. Used for a run's folder
// (apps/run_dir.h) and for claiming the runs of an ablation (apps/ablate.h).
#pragma once
#include <string>

namespace scconv::apps {

class FileLock {
 public:
  FileLock() = default;
  ~FileLock();  // empties the record and releases the lock
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

  // Creates `path` if needed (never through a symbolic link) and tries to lock it without
  // waiting. Returns false when another process holds it (holder() then names it); other
  // failures are Errors naming the file.
  // With record false (a probe: is it held?), the file's record is left as it was.
  bool try_lock(const std::string& path, bool record = true);
  bool locked() const { return fd_ >= 0; }
  // The record the file held before this lock was taken: the current holder after a failed
  // try_lock(), or, after a successful one, a holder that ended without releasing ("" if none).
  const std::string& holder() const { return previous_; }

 private:
  std::string path_, previous_;
  int fd_ = -1;
  bool record_ = true;
};

// This machine's host name ("?" if unknown).
std::string host_name();

}  // namespace scconv::apps
