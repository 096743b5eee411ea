// vifd's control socket: a unix stream socket speaking one JSON object per
// line each way (see docs/protocol.md). Runs on the control-plane
// io_context; every request is answered from the daemon's own state, so a
// client can never block the control plane for longer than one answer.
#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "backend/lib/control/asio.h"

namespace vifd::backend {

class ControlSocket {
 public:
  using Handler = std::function<nlohmann::json(const std::string& line)>;

  // Creates the socket's directory if needed and replaces a stale socket
  // file (a previous vifd that died). Throws std::system_error naming the
  // path.
  ControlSocket(boost::asio::io_context& io, std::string path, Handler handler);
  // Stops accepting, drops open connections and removes the socket file.
  ~ControlSocket();
  ControlSocket(const ControlSocket&) = delete;
  ControlSocket& operator=(const ControlSocket&) = delete;

  const std::string& path() const { return path_; }

  // A request line longer than this closes the connection (after an error
  // answer): nobody can make vifd buffer without bound.
  static constexpr std::size_t kMaxRequestBytes = 64 * 1024;

 private:
  class Connection;
  void accept();

  boost::asio::io_context& io_;
  std::string path_;
  Handler handler_;
  boost::asio::local::stream_protocol::acceptor acceptor_;
  std::shared_ptr<bool> alive_;
  std::vector<std::weak_ptr<Connection>> connections_;
};

}  // namespace vifd::backend
