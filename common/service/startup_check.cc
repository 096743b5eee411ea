#include "common/service/startup_check.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/capability.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <system_error>

namespace vifd::service {
namespace {

bool has_effective(unsigned capability) {
  __user_cap_header_struct header{};
  header.version = _LINUX_CAPABILITY_VERSION_3;
  header.pid = 0;
  std::array<__user_cap_data_struct, _LINUX_CAPABILITY_U32S_3> data{};
  // glibc has no capget wrapper and libcap is not worth a dependency for
  // one bit.
  if (::syscall(SYS_capget, &header, data.data()) != 0) {
    return false;
  }
  return (data.at(capability / 32).effective & (1U << (capability % 32))) != 0;
}

std::string reason(int error) {
  return std::generic_category().message(error);
}

// Empty when `path` is usable as `kind`, else why not.
std::string check_path(Need::Kind kind, const std::string& path) {
  struct stat status {};
  if (::stat(path.c_str(), &status) != 0) {
    return reason(errno);
  }
  if (kind == Need::Kind::kEndpoint) {
    kind = S_ISSOCK(status.st_mode) ? Need::Kind::kSocket : Need::Kind::kDevice;
  }
  switch (kind) {
    case Need::Kind::kEndpoint:
    case Need::Kind::kDevice: {
      if (!S_ISCHR(status.st_mode)) {
        return "not a character device";
      }
      // Opening is the only real test: the node may exist with no driver
      // behind it (ENXIO, ENODEV) or be refused by a device cgroup.
      const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
      if (fd < 0) {
        return reason(errno);
      }
      ::close(fd);
      return {};
    }
    case Need::Kind::kSocket:
      return S_ISSOCK(status.st_mode) ? std::string() : "not a socket";
    case Need::Kind::kDirectory:
      return S_ISDIR(status.st_mode) ? std::string() : "not a directory";
  }
  return "unknown kind";
}

}  // namespace

std::vector<std::string> missing(const Prerequisites& prerequisites) {
  std::vector<std::string> out;
  if (prerequisites.net_admin && !has_effective(CAP_NET_ADMIN)) {
    out.emplace_back("CAP_NET_ADMIN (not in the effective set)");
  }
  for (const Need& need : prerequisites.needs) {
    std::vector<std::string> failures;
    bool met = false;
    for (const std::string& path : need.any_of) {
      const std::string why = check_path(need.kind, path);
      if (why.empty()) {
        met = true;
        break;
      }
      failures.push_back(fmt::format("{} ({})", path, why));
    }
    if (met) {
      continue;
    }
    if (!need.label.empty()) {
      out.push_back(failures.empty()
                        ? need.label
                        : fmt::format("{}: {}", need.label, fmt::join(failures, ", ")));
    } else {
      out.push_back(fmt::format("{}", fmt::join(failures, " or ")));
    }
  }
  return out;
}

std::string missing_line(const std::string& program, const std::vector<std::string>& missing) {
  return fmt::format("{}: cannot start, missing: {}", program, fmt::join(missing, "; "));
}

}  // namespace vifd::service
