#include "backend/lib/control/instance_lock.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <optional>
#include <string_view>
#include <system_error>

#include "common/protocol/xs_parse.h"

namespace vifd::backend {
namespace {

int open_lock_file(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) {
    throw std::system_error(errno, std::generic_category(),
                            fmt::format("lock file {}", path.string()));
  }
  return fd;
}

// False when another open file description holds a conflicting lock.
bool try_lock(int fd, int operation, const std::filesystem::path& path) {
  while (::flock(fd, operation | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return false;
    }
    if (errno != EINTR) {
      throw std::system_error(errno, std::generic_category(),
                              fmt::format("flock {}", path.string()));
    }
  }
  return true;
}

// What a holder wrote: its pid, if the file holds one that is alive. The
// file is only informational (a crashed holder leaves its pid behind).
std::optional<pid_t> holder_pid(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    return std::nullopt;
  }
  char text[32] = {};
  const ssize_t length = ::read(fd, text, sizeof text - 1);
  ::close(fd);
  if (length <= 0) {
    return std::nullopt;
  }
  std::string_view digits(text, static_cast<std::size_t>(length));
  while (!digits.empty() && (digits.back() == '\n' || digits.back() == ' ')) {
    digits.remove_suffix(1);
  }
  pid_t pid = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), pid);
  if (ec != std::errc() || end != digits.data() + digits.size() || pid <= 0) {
    return std::nullopt;
  }
  if (::kill(pid, 0) != 0 && errno == ESRCH) {
    return std::nullopt;
  }
  return pid;
}

// Whether a live process holds the lock file exclusively: a shared lock is
// refused then. The probe's own shared lock lasts only until the close; a
// vifd starting in that instant fails its lock and is restarted by systemd.
bool held_exclusively(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    return false;
  }
  const bool held = ::flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  ::close(fd);
  return held;
}

std::string holder_text(const std::filesystem::path& path) {
  const auto pid = holder_pid(path);
  return pid ? fmt::format("another vifd (pid {})", *pid) : std::string("another vifd");
}

void write_pid(int fd) {
  const std::string text = fmt::format("{}\n", ::getpid());
  if (::ftruncate(fd, 0) == 0) {
    // Informational only: a failed write leaves the lock as good.
    [[maybe_unused]] const ssize_t written = ::pwrite(fd, text.data(), text.size(), 0);
  }
}

// The per-domain vifds holding the backend lock shared, for the message of
// a serve-all vifd that cannot have it.
std::string domain_holders(const std::filesystem::path& dir, platform::DomId backend) {
  const std::string prefix = fmt::format("vifd-backend-{}-domain-", backend);
  std::vector<std::string> holders;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (!name.starts_with(prefix) || !name.ends_with(".lock")) {
      continue;
    }
    if (const auto pid = holder_pid(entry.path())) {
      const std::string_view domain =
          std::string_view(name).substr(prefix.size(), name.size() - prefix.size() - 5);
      holders.push_back(fmt::format("pid {} for domain {}", *pid, domain));
    }
  }
  if (holders.empty()) {
    return "another vifd serving single domains";
  }
  return fmt::format("vifds serving single domains ({})", fmt::join(holders, ", "));
}

}  // namespace

std::filesystem::path InstanceLock::default_dir(std::string_view platform_name) {
  if (platform_name == "sim") {
    if (const char* dir = std::getenv("VIF_SIM_DIR"); dir != nullptr && *dir != '\0') {
      return dir;
    }
  }
  return "/run/vifd";
}

std::filesystem::path InstanceLock::backend_lock_path(const std::filesystem::path& dir,
                                                      platform::DomId backend) {
  return dir / fmt::format("vifd-backend-{}.lock", backend);
}

std::filesystem::path InstanceLock::domain_lock_path(const std::filesystem::path& dir,
                                                     platform::DomId backend,
                                                     platform::DomId domain) {
  return dir / fmt::format("vifd-backend-{}-domain-{}.lock", backend, domain);
}

std::set<platform::DomId> InstanceLock::served_domains(const std::filesystem::path& dir,
                                                       platform::DomId backend) {
  std::set<platform::DomId> served;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    const std::string prefix = fmt::format("vifd-backend-{}-domain-", backend);
    if (!name.starts_with(prefix) || !name.ends_with(".lock")) {
      continue;
    }
    const auto domain = protocol::parse_domid(
        "lock file", std::string_view(name).substr(prefix.size(), name.size() - prefix.size() - 5));
    if (domain.ok() && held_exclusively(entry.path())) {
      served.insert(domain.value());
    }
  }
  return served;
}

InstanceLock::InstanceLock(const std::filesystem::path& dir, platform::DomId backend,
                           const std::set<platform::DomId>& domains) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  try {
    const auto backend_path = backend_lock_path(dir, backend);
    const int backend_fd = open_lock_file(backend_path);
    fds_.push_back(backend_fd);
    if (domains.empty()) {
      if (!try_lock(backend_fd, LOCK_EX, backend_path)) {
        const std::string holder =
            holder_pid(backend_path) ? holder_text(backend_path) : domain_holders(dir, backend);
        throw InstanceLockError(fmt::format("{} already serves backend domain {} (lock {})", holder,
                                            backend, backend_path.string()));
      }
      write_pid(backend_fd);
      return;
    }
    if (!try_lock(backend_fd, LOCK_SH, backend_path)) {
      throw InstanceLockError(
          fmt::format("{} already serves every domain of backend domain {} "
                      "(lock {})",
                      holder_text(backend_path), backend, backend_path.string()));
    }
    // No exclusive holder can exist now: what a previous one wrote is stale.
    [[maybe_unused]] const int truncated = ::ftruncate(backend_fd, 0);
    for (const platform::DomId domain : domains) {
      const auto domain_path = domain_lock_path(dir, backend, domain);
      const int domain_fd = open_lock_file(domain_path);
      fds_.push_back(domain_fd);
      if (!try_lock(domain_fd, LOCK_EX, domain_path)) {
        throw InstanceLockError(fmt::format("{} already serves domain {} (lock {})",
                                            holder_text(domain_path), domain,
                                            domain_path.string()));
      }
      write_pid(domain_fd);
    }
  } catch (...) {
    for (const int fd : fds_) {
      ::close(fd);
    }
    throw;
  }
}

InstanceLock::~InstanceLock() {
  // Closing releases the locks. The files stay: removing one could race with
  // the next vifd opening it and leave two holders of two different inodes.
  for (const int fd : fds_) {
    ::close(fd);
  }
}

}  // namespace vifd::backend
