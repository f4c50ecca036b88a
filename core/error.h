// core/error.h: the exception types scconv throws, and the check macro every op uses.
// SCCONV_CHECK(cond, "op: " << shape_str(x) << ...) builds the message with a stream, so errors
// name the op and the shapes, dtypes or files at fault.
//   Error       bad input: a file, config key, value, shape or op argument (`scconv` exits 1)
//   UsageError  a bad command line: unknown option, missing or malformed value (exits 2)
// Anything else that escapes a command is an internal fault (exits 3): a bug to report.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace scconv {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct UsageError : Error {
  using Error::Error;
};

}  // namespace scconv

#define SCCONV_CHECK(cond, msg)                                 \
  do {                                                          \
    if (!(cond)) {                                              \
      std::ostringstream scconv_msg_;                           \
      scconv_msg_ << msg;                                       \
      throw ::scconv::Error(scconv_msg_.str());                 \
    }                                                           \
  } while (0)

#define SCCONV_USAGE_CHECK(cond, msg)                           \
  do {                                                          \
    if (!(cond)) {                                              \
      std::ostringstream scconv_msg_;                           \
      scconv_msg_ << msg;                                       \
      throw ::scconv::UsageError(scconv_msg_.str());            \
    }                                                           \
  } while (0)

#define SCCONV_FAIL(msg)                                        \
  do {                                                          \
    std::ostringstream scconv_msg_;                             \
    scconv_msg_ << msg;                                         \
    throw ::scconv::Error(scconv_msg_.str());                   \
  } while (0)
