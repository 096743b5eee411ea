// Client side of vifd's control socket: one JSON object per line each way
// (the protocol is described in docs/operator-guide.md, section "vifd control socket").
#pragma once

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>

namespace vifd::vifctl {

// vifd is not running, or not listening where we looked.
class ControlUnavailable : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Something accepted the connection but did not answer in time: a vifd
// that is there but stuck.
class ControlTimeout : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The default socket: /run/vifd/vifd.sock, or $VIF_SIM_DIR/vifd.sock on the
// simulator (one vifd per simulated host).
std::string default_control_socket(const std::string& platform_name);

// Where vifd keeps its instance locks (vifd --lock-dir's default):
// /run/vifd, or $VIF_SIM_DIR on the simulator.
std::string default_lock_dir(const std::string& platform_name);

// Whether some process holds a flock() on `path`, in any mode, as
// /proc/locks shows it: without taking the lock, so a vifd starting at that
// moment never finds it taken by vifctl. False when the file does not
// exist; std::nullopt when it cannot tell.
std::optional<bool> lock_held(const std::filesystem::path& path);

// A connected socket (the caller closes it). Throws ControlUnavailable when
// nothing accepts connections at socket_path.
int control_connect(const std::string& socket_path);

// Sends one request and returns the response object. Throws
// ControlUnavailable when nothing accepts connections at socket_path,
// ControlTimeout when no answer comes in time, and std::runtime_error
// naming the socket for a malformed response
// or {"ok":false,"error":...}.
nlohmann::json control_request(const std::string& socket_path, const nlohmann::json& request,
                               std::chrono::milliseconds timeout = std::chrono::seconds(5));

}  // namespace vifd::vifctl
