// apps/file_lock.cpp: see file_lock.h.
#include "apps/file_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "core/error.h"
#include "core/file_io.h"

namespace scconv::apps {

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "?";
  return buf;
}

bool FileLock::try_lock(const std::string& path, bool record) {
  SCCONV_CHECK(fd_ < 0, "FileLock: '" << path_ << "' is already locked by this object");
  path_ = path;
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  SCCONV_CHECK(fd >= 0, "cannot create the lock file '" << path << "': " << std::strerror(errno));
  previous_.clear();
  try {
    previous_ = read_file(path, 4096).substr(0, 200);
  } catch (const Error&) {  // an odd lock file: overwritten below
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK) return false;
    SCCONV_FAIL("cannot lock '" << path << "': " << std::strerror(err));
  }
  fd_ = fd;
  record_ = record;
  if (!record) return true;
  const std::string me = "host " + host_name() + ", pid " + std::to_string(::getpid()) + ", started " +
                         std::to_string(static_cast<long long>(std::time(nullptr)));
  if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, me.data(), me.size(), 0) != static_cast<ssize_t>(me.size()))
    std::fprintf(stderr, "scconv: note: cannot record the lock's holder in '%s': %s\n", path.c_str(), std::strerror(errno));
  return true;
}

FileLock::~FileLock() {
  if (fd_ < 0) return;
  if (record_ && ::ftruncate(fd_, 0) != 0) {  // an empty lock file: released cleanly
  }
  ::flock(fd_, LOCK_UN);
  ::close(fd_);
}

}  // namespace scconv::apps
