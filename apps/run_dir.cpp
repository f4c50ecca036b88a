// apps/run_dir.cpp: see run_dir.h.
#include "apps/run_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>

#include "apps/checkpoint.h"
#include "core/error.h"
#include "core/file_io.h"

namespace scconv::apps {

namespace fs = std::filesystem;

namespace {
bool is_run_file(const std::string& name) {
  for (const char* f : kRunFiles)
    if (name == f) return true;
  // an interrupted atomic write of one of them: .<name>.tmp-XXXXXX
  return name.size() > 1 && name[0] == '.' && name.find(".tmp-") != std::string::npos;
}

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "?";
  return buf;
}

// Checks what `out` holds before a run writes there (see run_dir.h).
void check_contents(const fs::path& out, bool resume, bool allow_foreign) {
  std::vector<std::string> foreign;
  std::error_code ec;
  for (fs::directory_iterator it(out, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!is_run_file(name)) {
      foreign.push_back(name);
      continue;
    }
    std::error_code ec2;
    SCCONV_CHECK(!it->is_symlink(ec2), "'" << it->path().string() << "' is a symbolic link; a run writes only "
                                           << "inside its own folder: remove the link or train into another folder");
  }
  SCCONV_CHECK(!ec, "cannot list '" << out.string() << "': " << ec.message());
  const std::string ckpt = find_checkpoint(out.string());
  if (!resume) {
    SCCONV_CHECK(ckpt.empty(), "'" << out.string() << "' already holds a run (" << ckpt << "); continue it with --resume "
                                   << out.string() << ", or train into another folder (--set out=DIR)");
    // our names, but not our files: they would be renamed and deleted by the checkpoint swap
    for (const char* d : {"checkpoint", "checkpoint.old"})
      SCCONV_CHECK(!fs::exists(out / d, ec), "'" << (out / d).string() << "' exists but is not an scconv checkpoint "
                                                 << "(no state.json and model.safetensors); move it away first");
  }
  if (!foreign.empty() && !allow_foreign) {
    std::string list;
    for (size_t i = 0; i < foreign.size() && i < 5; ++i) list += (i ? ", " : "") + foreign[i];
    if (foreign.size() > 5) list += ", ... (" + std::to_string(foreign.size()) + " in all)";
    SCCONV_FAIL("'" << out.string() << "' holds files that are not from an scconv run (" << list
                    << "); train into a new or empty folder (--set out=DIR), or pass --allow-foreign-files to "
                    << "write the run's files beside them (nothing but the run's own files is ever replaced)");
  }
}
}  // namespace

RunDir::RunDir(const std::string& out, bool resume, bool allow_foreign) : out_(out) {
  fs::path p(out);
  std::error_code ec;
  SCCONV_CHECK(fs::weakly_canonical(p, ec) != fs::path("/"), "out: '" << out << "' is the root folder; a run needs a folder of its own");
  fs::create_directories(p, ec);
  SCCONV_CHECK(!ec, "cannot create the output folder '" << out << "': " << ec.message());
  SCCONV_CHECK(fs::is_directory(p, ec), "out: '" << out << "' is not a folder");
  check_contents(p, resume, allow_foreign);
  lock_path_ = (p / ".scconv.lock").string();
  fd_ = ::open(lock_path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  // (check_contents above: the lock file is not a symbolic link)
  SCCONV_CHECK(fd_ >= 0, "cannot create the lock file '" << lock_path_ << "': " << std::strerror(errno));
  std::string previous;
  try {
    previous = read_file(lock_path_, 4096);
  } catch (const Error&) {  // an odd lock file: overwritten below
  }
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    ::close(fd_);
    fd_ = -1;
    SCCONV_CHECK(err != EWOULDBLOCK, "'" << out << "' is in use by another scconv run (" << previous.substr(0, 200)
                                         << "); wait for it to finish, stop it, or train into another folder");
    SCCONV_FAIL("cannot lock '" << lock_path_ << "': " << std::strerror(err));
  }
  check_contents(p, resume, allow_foreign);  // again, now that no other run can write here
  if (!previous.empty())
    std::fprintf(stderr, "scconv: note: taking over the lock of a run that ended without releasing it (%s)\n",
                 previous.substr(0, 200).c_str());
  const std::string me = "host " + host_name() + ", pid " + std::to_string(::getpid()) + ", started " +
                         std::to_string(static_cast<long long>(std::time(nullptr)));
  if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, me.data(), me.size(), 0) != static_cast<ssize_t>(me.size()))
    std::fprintf(stderr, "scconv: note: cannot record this run in '%s': %s\n", lock_path_.c_str(), std::strerror(errno));
}

RunDir::~RunDir() {
  if (fd_ < 0) return;
  if (::ftruncate(fd_, 0) != 0) {  // an empty lock file: released cleanly
  }
  ::flock(fd_, LOCK_UN);
  ::close(fd_);
}

}  // namespace scconv::apps
