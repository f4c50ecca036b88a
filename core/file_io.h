// core/file_io.h: whole-file reads and atomic writes. write_file_atomic writes to a temporary
// file beside the target, fsyncs it, renames it over the target and fsyncs the directory, so a
// reader sees either the old file or the new one, never a torn one.
#pragma once
#include <string>

namespace scconv {

std::string read_file(const std::string& path);  // errors name the path
void write_file_atomic(const std::string& path, const std::string& bytes);
// Makes renames inside `dir` durable.
void fsync_dir(const std::string& dir);

}  // namespace scconv
