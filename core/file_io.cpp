// core/file_io.cpp: see file_io.h.
#include "core/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/error.h"

namespace scconv {

namespace {
const char* file_kind(mode_t m) {
  if (S_ISDIR(m)) return "a directory";
  if (S_ISFIFO(m)) return "a FIFO (named pipe)";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  if (S_ISSOCK(m)) return "a socket";
  return "not a regular file";
}
struct Fd {
  int fd;
  ~Fd() { if (fd >= 0) ::close(fd); }
};
}  // namespace

std::string read_file(const std::string& path, uint64_t max_bytes, const std::function<void(uint64_t)>& check_size) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer (it has no effect on regular files)
  Fd f{::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC)};
  SCCONV_CHECK(f.fd >= 0, "cannot open '" << path << "': " << std::strerror(errno));
  struct stat st {};
  SCCONV_CHECK(::fstat(f.fd, &st) == 0, "cannot stat '" << path << "': " << std::strerror(errno));
  SCCONV_CHECK(S_ISREG(st.st_mode), "'" << path << "' is " << file_kind(st.st_mode) << ", not a regular file");
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  SCCONV_CHECK(size <= max_bytes, "'" << path << "': " << size << " bytes, more than the " << max_bytes
                                      << " this kind of file may have");
  if (check_size) check_size(size);
  std::string bytes(size, '\0');
  uint64_t done = 0;
  while (done < size) {
    ssize_t n = ::read(f.fd, bytes.data() + done, std::min<uint64_t>(size - done, 1ull << 30));
    if (n < 0 && errno == EINTR) continue;
    SCCONV_CHECK(n >= 0, "error reading '" << path << "' at byte " << done << ": " << std::strerror(errno));
    SCCONV_CHECK(n > 0, "'" << path << "' ended at byte " << done << " of " << size << " (changed while reading?)");
    done += static_cast<uint64_t>(n);
  }
  char extra;
  ssize_t more;
  while ((more = ::read(f.fd, &extra, 1)) < 0 && errno == EINTR) {
  }
  SCCONV_CHECK(more == 0, "'" << path << "' grew while being read (more than " << size << " bytes)");
  return bytes;
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
  namespace fs = std::filesystem;
  fs::path target(path);
  fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::string tmp = (dir / ("." + target.filename().string() + ".tmp-XXXXXX")).string();
  int fd = ::mkstemp(tmp.data());
  SCCONV_CHECK(fd >= 0, "cannot create a temporary file in '" << dir.string()
                                                              << "': " << std::strerror(errno));
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      SCCONV_FAIL("cannot write '" << path << "': " << std::strerror(err));
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    SCCONV_FAIL("cannot write '" << path << "': " << std::strerror(err));
  }
  ::chmod(tmp.c_str(), 0644);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    SCCONV_FAIL("cannot replace '" << path << "': " << std::strerror(err));
  }
  fsync_dir(dir.string());
}

void fsync_dir(const std::string& dir) {
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace scconv
