// vifd's control socket: a unix stream socket speaking one JSON object per
// line each way (see docs/protocol.md). Runs on the control-plane
// io_context; every request is answered from the daemon's own state, so a
// client can never block the control plane for longer than one answer.
//
// No client can hold it either: all I/O is asynchronous, a request line is
// bounded (kMaxRequestBytes), a connection idle for kIdleTimeout (no request
// coming, or a reply the client does not read) is closed, and beyond
// kMaxConnections the oldest connection is closed to admit a new one.
//
// A request may turn its connection into a stream (vifctl capture): after
// the answer the connection carries what a ControlStream produces, pulled
// on a short timer and written asynchronously. A stream is exempt from the
// idle timeout and from making room for new connections; the handler bounds
// how many exist. A reader that stops reading only stops the pulls (the
// stream's producer counts what it could not keep); the peer closing ends
// the stream and releases it.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "backend/lib/control/asio.h"

namespace vifd::backend {

// Binds and listens on the unix socket `path`, creating its directory if
// needed and replacing a stale socket file (a previous vifd that died:
// nothing accepts on it). Throws std::system_error naming `what` and the
// path, also when a socket file there still answers (a running vifd's),
// which is left in place; `option` is the flag that chooses another path.
void listen_on_unix_socket(boost::asio::local::stream_protocol::acceptor& acceptor,
                           const std::string& path, std::string_view what, std::string_view option);

// What a streaming connection carries after its answer.
class ControlStream {
 public:
  virtual ~ControlStream() = default;
  // Appends what is ready to `out`, roughly at most `budget` bytes, in
  // whole lines. Returns false once the stream is over (`out` then holds its
  // last line): the connection is closed after writing it.
  virtual bool pull(std::string& out, std::size_t budget) = 0;
};

// The answer to one request line, and the stream that follows it, if any.
struct ControlReply {
  // Implicit: a handler that never streams returns its JSON answer as is.
  ControlReply(nlohmann::json answer)  // NOLINT(google-explicit-constructor)
      : response(std::move(answer)) {}
  ControlReply(nlohmann::json answer, std::shared_ptr<ControlStream> then)
      : response(std::move(answer)), stream(std::move(then)) {}
  nlohmann::json response;
  std::shared_ptr<ControlStream> stream;
};

class ControlSocket {
 public:
  using Handler = std::function<ControlReply(const std::string& line)>;

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
  // How often a stream is pulled, and how much one write carries at most:
  // a capture costs the control thread at most one such pull per period
  // (about 25 MB/s of stream), whatever the traffic it records.
  static constexpr std::chrono::milliseconds kStreamPeriod{10};
  static constexpr std::size_t kStreamWriteBytes = std::size_t{256} * 1024;

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
