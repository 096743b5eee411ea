// vifd's control socket: a unix stream socket speaking one JSON object per
// line each way (see docs/protocol.md). Runs on the control-plane
// io_context; every request is answered from the daemon's own state, so a
// client can never block the control plane for longer than one answer.
//
// No client can hold it either: all I/O is asynchronous, a request line is
// bounded (kMaxRequestBytes), a connection idle for kIdleTimeout (no request
// coming, or a reply the client does not read) is closed, and beyond
// kMaxConnections the oldest connection is closed to admit a new one.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "backend/lib/control/asio.h"

namespace vifd::backend {

class ControlSocket {
 public:
  using Handler = std::function<nlohmann::json(const std::string& line)>;

  // Creates the socket's directory if needed and replaces a stale socket
  // file (a previous vifd that died: nothing accepts on it). Throws
  // std::system_error naming the path, also when a socket file there still
  // answers (a running vifd's), which is left in place.
  ControlSocket(boost::asio::io_context& io, std::string path, Handler handler);
  // Stops accepting, drops open connections and removes the socket file.
  ~ControlSocket();
  ControlSocket(const ControlSocket&) = delete;
  ControlSocket& operator=(const ControlSocket&) = delete;

  const std::string& path() const { return path_; }

  // A request line longer than this closes the connection (after an error
  // answer): nobody can make vifd buffer without bound.
  static constexpr std::size_t kMaxRequestBytes = 64 * 1024;
  static constexpr std::size_t kMaxConnections = 16;
  static constexpr std::chrono::seconds kIdleTimeout{10};

 private:
  class Connection;
  void accept();
  void admit(const std::shared_ptr<Connection>& connection);

  boost::asio::io_context& io_;
  std::string path_;
  Handler handler_;
  boost::asio::local::stream_protocol::acceptor acceptor_;
  std::shared_ptr<bool> alive_;
  // Oldest first.
  std::deque<std::weak_ptr<Connection>> connections_;
  // Backs off accepting after an error (out of fds) instead of spinning.
  boost::asio::steady_timer accept_retry_;
};

}  // namespace vifd::backend
