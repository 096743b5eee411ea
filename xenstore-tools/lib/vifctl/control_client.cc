#include "xenstore-tools/lib/vifctl/control_client.h"

#include <fmt/format.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

namespace vifd::vifctl {
namespace {

using Clock = std::chrono::steady_clock;

// A response larger than this is not something vifd sends; stop reading
// rather than grow without bound.
constexpr std::size_t kMaxResponseBytes = 16U << 20;

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

int remaining_ms(Clock::time_point deadline) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left > 0 ? static_cast<int>(left) : 0;
}

void wait_ready(int fd, short events, Clock::time_point deadline, const std::string& socket_path) {
  for (;;) {
    pollfd pfd{.fd = fd, .events = events, .revents = 0};
    const int ready = ::poll(&pfd, 1, remaining_ms(deadline));
    if (ready > 0) return;
    if (ready == 0) {
      throw ControlTimeout(fmt::format("vifd control socket {}: no answer in time", socket_path));
    }
    if (errno != EINTR) {
      throw std::runtime_error(
          fmt::format("vifd control socket {}: poll: {}", socket_path, std::strerror(errno)));
    }
  }
}

}  // namespace

std::string default_control_socket(const std::string& platform_name) {
  if (platform_name == "sim") {
    const char* dir = std::getenv("VIF_SIM_DIR");
    if (dir != nullptr && *dir != '\0') return std::string(dir) + "/vifd.sock";
  }
  return "/run/vifd/vifd.sock";
}

std::string default_lock_dir(const std::string& platform_name) {
  if (platform_name == "sim") {
    const char* dir = std::getenv("VIF_SIM_DIR");
    if (dir != nullptr && *dir != '\0') {
      return dir;
    }
  }
  return "/run/vifd";
}

std::optional<bool> lock_held(const std::filesystem::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) {
      return false;
    }
    return std::nullopt;
  }
  std::ifstream locks("/proc/locks");
  if (!locks) {
    return std::nullopt;
  }
  // fs/locks.c lock_get_status(): "<n>: FLOCK  ADVISORY  WRITE <pid>
  // <major>:<minor>:<inode> 0 EOF", major and minor in hex.
  const std::string inode = fmt::format("{:02x}:{:02x}:{}", major(st.st_dev), minor(st.st_dev),
                                        static_cast<unsigned long long>(st.st_ino));
  std::string line;
  while (std::getline(locks, line)) {
    std::istringstream fields(line);
    std::string id;
    std::string kind;
    fields >> id >> kind;
    if (kind != "FLOCK") {
      continue;
    }
    std::string field;
    while (fields >> field) {
      if (field == inode) {
        return true;
      }
    }
  }
  return false;
}

int control_connect(const std::string& socket_path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof(addr.sun_path)) {
    throw std::runtime_error(fmt::format("control socket path too long: {}", socket_path));
  }
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) throw std::runtime_error(fmt::format("socket: {}", std::strerror(errno)));
  // sockaddr_un is a sockaddr by the socket API's own definition.
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    throw ControlUnavailable(fmt::format("vifd control socket {}: {} (is vifd running?)",
                                         socket_path, std::strerror(errno)));
  }
  return fd.release();
}

nlohmann::json control_request(const std::string& socket_path, const nlohmann::json& request,
                               std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  Fd fd(control_connect(socket_path));

  const std::string line = request.dump() + "\n";
  std::size_t sent = 0;
  while (sent < line.size()) {
    wait_ready(fd.get(), POLLOUT, deadline, socket_path);
    const ssize_t n = ::send(fd.get(), line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      throw std::runtime_error(
          fmt::format("vifd control socket {}: send: {}", socket_path, std::strerror(errno)));
    }
    sent += static_cast<std::size_t>(n);
  }

  std::string response;
  char buffer[8192];
  while (response.find('\n') == std::string::npos) {
    wait_ready(fd.get(), POLLIN, deadline, socket_path);
    const ssize_t n = ::recv(fd.get(), buffer, sizeof(buffer), 0);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      throw std::runtime_error(
          fmt::format("vifd control socket {}: recv: {}", socket_path, std::strerror(errno)));
    }
    if (n == 0) break;
    response.append(buffer, static_cast<std::size_t>(n));
    if (response.size() > kMaxResponseBytes) {
      throw std::runtime_error(fmt::format("vifd control socket {}: response larger than {} bytes",
                                           socket_path, kMaxResponseBytes));
    }
  }
  const auto end = response.find('\n');
  if (end == std::string::npos) {
    throw std::runtime_error(fmt::format(
        "vifd control socket {}: connection closed before a full response", socket_path));
  }
  nlohmann::json parsed = nlohmann::json::parse(response.substr(0, end), nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    throw std::runtime_error(
        fmt::format("vifd control socket {}: response is not a JSON object", socket_path));
  }
  const auto ok = parsed.find("ok");
  if (ok == parsed.end() || !ok->is_boolean() || !ok->get<bool>()) {
    const auto error = parsed.find("error");
    throw std::runtime_error(fmt::format("vifd control socket {}: {}", socket_path,
                                         error != parsed.end() && error->is_string()
                                             ? error->get<std::string>()
                                             : "request failed"));
  }
  return parsed;
}

}  // namespace vifd::vifctl
