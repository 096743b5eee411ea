// Client side of vifd's control socket: one JSON object per line each way
// (the protocol is described in docs/operator-guide.md, section "vifd control socket").
#pragma once

#include <chrono>
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

// The default socket: /run/vifd/vifd.sock, or $VIF_SIM_DIR/vifd.sock on the
// simulator (one vifd per simulated host).
std::string default_control_socket(const std::string& platform_name);

// A connected socket (the caller closes it). Throws ControlUnavailable when
// nothing accepts connections at socket_path.
int control_connect(const std::string& socket_path);

// Sends one request and returns the response object. Throws
// ControlUnavailable when nothing accepts connections at socket_path, and
// std::runtime_error naming the socket for a timeout, a malformed response
// or {"ok":false,"error":...}.
nlohmann::json control_request(const std::string& socket_path, const nlohmann::json& request,
                               std::chrono::milliseconds timeout = std::chrono::seconds(5));

}  // namespace vifd::vifctl
