// apps/run_dir.cpp: see run_dir.h.
#include "apps/run_dir.h"

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
  const std::string lock_path = (p / ".scconv.lock").string();  // (check_contents: not a symbolic link)
  SCCONV_CHECK(lock_.try_lock(lock_path), "'" << out << "' is in use by another scconv run (" << lock_.holder()
                                              << "); wait for it to finish, stop it, or train into another folder");
  check_contents(p, resume, allow_foreign);  // again, now that no other run can write here
  if (!lock_.holder().empty())
    std::fprintf(stderr, "scconv: note: taking over the lock of a run that ended without releasing it (%s)\n",
                 lock_.holder().c_str());
}

}  // namespace scconv::apps
