// Control-plane failures of a platform call. The data path never throws: it
// uses the status-code forms (grant_copy, notify) instead.
#pragma once

#include <stdexcept>
#include <string>

namespace vifd::platform {

class PlatformError : public std::runtime_error {
 public:
  // errno_value: the errno the operation failed with (0 when not applicable).
  PlatformError(const std::string& what, int errno_value)
      : std::runtime_error(what), errno_value_(errno_value) {}
  int errno_value() const noexcept { return errno_value_; }

 private:
  int errno_value_;
};

}  // namespace vifd::platform
