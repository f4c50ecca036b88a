// core/error.h: the one exception type scconv throws, and the check macro every op uses.
// SCCONV_CHECK(cond, "op: " << shape_str(x) << ...) builds the message with a stream, so errors
// name the op and the shapes, dtypes or files at fault.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace scconv {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
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

#define SCCONV_FAIL(msg)                                        \
  do {                                                          \
    std::ostringstream scconv_msg_;                             \
    scconv_msg_ << msg;                                         \
    throw ::scconv::Error(scconv_msg_.str());                   \
  } while (0)
