// core/file_io.h: bounded whole-file reads and atomic writes.
// read_file reads regular files only (a FIFO, device, socket or directory is an error, never a
// hang or an endless read), checks the size before reading anything (at most `max_bytes`, and
// `check_size` may refuse sizes its format does not allow), then reads exactly that many bytes;
// a file that shrinks or grows meanwhile is an error. write_file_atomic writes to a temporary
// file beside the target, fsyncs it, renames it over the target and fsyncs the directory, so a
// reader sees either the old file or the new one, never a torn one.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

namespace scconv {

// Errors name the path and what is wrong with it.
std::string read_file(const std::string& path, uint64_t max_bytes,
                      const std::function<void(uint64_t size)>& check_size = {});
void write_file_atomic(const std::string& path, const std::string& bytes);
// Makes renames inside `dir` durable.
void fsync_dir(const std::string& dir);

}  // namespace scconv
