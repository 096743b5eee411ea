#include "backend/lib/control/control_socket.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <istream>
#include <system_error>
#include <vector>

#include "backend/lib/control/asio.h"
#include "backend/lib/control/log.h"

namespace vifd::backend {

namespace asio = boost::asio;
using asio::local::stream_protocol;

namespace {

// Teardown must not throw; Asio's cancel() reports only a failure of the
// reactor itself, which leaves no wait to cancel.
void cancel_timer(asio::steady_timer& timer) noexcept {
  try {
    timer.cancel();
  } catch (const boost::system::system_error& e) {
    control_log().warn("control socket: cancelling a timer: {}", e.what());
  }
}

}  // namespace

void listen_on_unix_socket(stream_protocol::acceptor& acceptor, const std::string& path,
                           std::string_view what, std::string_view option) {
  const std::filesystem::path socket_path(path);
  std::error_code ec;
  if (socket_path.has_parent_path()) {
    std::filesystem::create_directories(socket_path.parent_path(), ec);
  }
  // A socket file left by a vifd that did not exit cleanly is replaced; one
  // that still answers belongs to a running vifd and is left alone.
  if (std::filesystem::is_socket(socket_path, ec)) {
    stream_protocol::socket probe(acceptor.get_executor());
    boost::system::error_code connect_error;
    probe.connect(stream_protocol::endpoint(path), connect_error);
    if (!connect_error) {
      throw std::system_error(
          EADDRINUSE, std::generic_category(),
          fmt::format("{} {} answers: another vifd is running (or choose another {})", what, path,
                      option));
    }
    if (connect_error == asio::error::connection_refused) {
      std::filesystem::remove(socket_path, ec);
    }
  }
  boost::system::error_code error;
  acceptor.open(stream_protocol(), error);
  if (!error) {
    acceptor.bind(stream_protocol::endpoint(path), error);
  }
  if (!error) {
    acceptor.listen(asio::socket_base::max_listen_connections, error);
  }
  if (error) {
    throw std::system_error(error.value(), std::generic_category(),
                            fmt::format("{} {}", what, path));
  }
}

class ControlSocket::Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(stream_protocol::socket socket, Handler handler, std::weak_ptr<bool> server_alive)
      : socket_(std::move(socket)),
        idle_timer_(socket_.get_executor()),
        handler_(std::move(handler)),
        server_alive_(std::move(server_alive)),
        buffer_(kMaxRequestBytes) {}

  void read_request() {
    arm_idle_timer();
    asio::async_read_until(
        socket_, buffer_, '\n',
        [self = shared_from_this()](const boost::system::error_code& error, std::size_t length) {
          self->on_request(error, length);
        });
  }

  // Cancels what is pending on the socket: its handlers drop the last
  // references to the connection. A stream ends here (its capture stops).
  void close() noexcept {
    boost::system::error_code ignored;
    socket_.close(ignored);
    cancel_timer(idle_timer_);
    stream_.reset();
  }

  bool streaming() const { return streaming_; }

 private:
  // Waiting for a request or for the client to take a reply: a client that
  // does neither for kIdleTimeout loses its connection.
  void arm_idle_timer() {
    idle_timer_.expires_after(kIdleTimeout);
    idle_timer_.async_wait([weak = weak_from_this()](const boost::system::error_code& error) {
      if (error) {
        return;  // re-armed or closed
      }
      if (const auto self = weak.lock()) {
        self->close();
      }
    });
  }

  void on_request(const boost::system::error_code& error, std::size_t length) {
    // The server (and the daemon behind the handler) may be gone by the time
    // a completed read is dispatched.
    if (server_alive_.expired()) {
      return;
    }
    if (error == asio::error::not_found) {
      // The line outgrew kMaxRequestBytes: answer, then hang up.
      send(nlohmann::json{{"ok", false}, {"error", "request line too long"}}, false);
      return;
    }
    if (error) {
      return;  // peer closed, or we are shutting down
    }
    std::string line(length, '\0');
    std::istream(&buffer_).read(line.data(), static_cast<std::streamsize>(length));
    line.pop_back();  // '\n'
    ControlReply reply(nlohmann::json{});
    try {
      reply = handler_(line);
    } catch (const std::exception& e) {
      reply = ControlReply(nlohmann::json{{"ok", false}, {"error", e.what()}});
    }
    if (reply.stream) {
      start_stream(reply.response, std::move(reply.stream));
      return;
    }
    send(reply.response, true);
  }

  void send(const nlohmann::json& response, bool keep_reading) {
    // Replace invalid UTF-8 (error texts can quote guest-written values)
    // instead of throwing.
    reply_ = response.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    arm_idle_timer();
    asio::async_write(socket_, asio::buffer(reply_),
                      [self = shared_from_this(), keep_reading](
                          const boost::system::error_code& error, std::size_t) {
                        if (!error && keep_reading && !self->server_alive_.expired()) {
                          self->read_request();
                        }
                      });
  }

  // ---- streaming ----
  // The connection answers, then carries the stream until it ends or the
  // peer goes. No idle timer: a capture may be quiet for as long as the
  // captured vif is.
  void start_stream(const nlohmann::json& response, std::shared_ptr<ControlStream> stream) {
    streaming_ = true;
    stream_ = std::move(stream);
    idle_timer_.cancel();
    watch_peer();
    reply_ = response.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    write_stream(false);
  }

  // Nothing is expected from the peer any more; a read completing with an
  // error is how its leaving shows.
  void watch_peer() {
    socket_.async_read_some(
        asio::buffer(peer_bytes_),
        [self = shared_from_this()](const boost::system::error_code& error, std::size_t) {
          if (error) {
            self->close();
            return;
          }
          self->watch_peer();
        });
  }

  void write_stream(bool last) {
    asio::async_write(
        socket_, asio::buffer(reply_),
        [self = shared_from_this(), last](const boost::system::error_code& error, std::size_t) {
          if (error || last || self->server_alive_.expired()) {
            self->close();
            return;
          }
          self->schedule_pull();
        });
  }

  // While a write is pending nothing is pulled: a reader that stops reading
  // leaves the stream's producer to count what it could not keep.
  void schedule_pull() {
    idle_timer_.expires_after(kStreamPeriod);
    idle_timer_.async_wait([weak = weak_from_this()](const boost::system::error_code& error) {
      if (error) {
        return;
      }
      if (const auto self = weak.lock()) {
        self->pull_stream();
      }
    });
  }

  void pull_stream() {
    if (!stream_ || server_alive_.expired()) {
      return;
    }
    reply_.clear();
    const bool more = stream_->pull(reply_, kStreamWriteBytes);
    if (!more) {
      stream_.reset();
    }
    if (reply_.empty()) {
      if (more) {
        schedule_pull();
      } else {
        close();
      }
      return;
    }
    write_stream(!more);
  }

  stream_protocol::socket socket_;
  asio::steady_timer idle_timer_;
  Handler handler_;
  std::weak_ptr<bool> server_alive_;
  asio::streambuf buffer_;
  std::string reply_;
  bool streaming_ = false;
  std::shared_ptr<ControlStream> stream_;
  std::array<char, 256> peer_bytes_{};
};

ControlSocket::ControlSocket(asio::io_context& io, std::string path, Handler handler)
    : io_(io),
      path_(std::move(path)),
      handler_(std::move(handler)),
      acceptor_(io),
      alive_(std::make_shared<bool>(true)),
      accept_retry_(io) {
  listen_on_unix_socket(acceptor_, path_, "control socket", "--control-socket");
  control_log().info("control socket {}", path_);
  accept();
}

ControlSocket::~ControlSocket() {
  alive_.reset();
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  cancel_timer(accept_retry_);
  for (const auto& weak : connections_) {
    if (const auto connection = weak.lock()) {
      connection->close();
    }
  }
  std::error_code ec;
  std::filesystem::remove(path_, ec);
}

void ControlSocket::accept() {
  acceptor_.async_accept(
      [this, alive = std::weak_ptr<bool>(alive_)](const boost::system::error_code& error,
                                                  stream_protocol::socket socket) {
        if (alive.expired() || error == asio::error::operation_aborted) {
          return;
        }
        if (error) {
          // Typically out of fds: accepting again at once would fail again
          // and keep the control plane's thread spinning.
          control_log().warn("control socket {}: accept: {}", path_, error.message());
          accept_retry_.expires_after(std::chrono::milliseconds(100));
          accept_retry_.async_wait([this, alive](const boost::system::error_code& wait_error) {
            if (!wait_error && !alive.expired()) {
              accept();
            }
          });
          return;
        }
        admit(std::make_shared<Connection>(std::move(socket), handler_, alive));
        accept();
      });
}

void ControlSocket::admit(const std::shared_ptr<Connection>& connection) {
  std::erase_if(connections_, [](const auto& weak) { return weak.expired(); });
  // Clients that connect and keep quiet must not lock the others out: the
  // oldest connection makes room.
  // Streams are exempt (their number is bounded by the handler, well below
  // kMaxConnections).
  while (connections_.size() >= kMaxConnections) {
    const auto oldest =
        std::find_if(connections_.begin(), connections_.end(), [](const auto& weak) {
          const auto candidate = weak.lock();
          return !candidate || !candidate->streaming();
        });
    if (oldest == connections_.end()) {
      break;
    }
    if (const auto evicted = oldest->lock()) {
      evicted->close();
    }
    connections_.erase(oldest);
  }
  connections_.push_back(connection);
  connection->read_request();
}

}  // namespace vifd::backend
