#include "backend/lib/control/metrics_server.h"

#include <fmt/format.h>
#include <fmt/ostream.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "backend/lib/control/control_socket.h"
#include "backend/lib/control/log.h"

namespace vifd::backend {

namespace asio = boost::asio;
using asio::ip::tcp;
using asio::local::stream_protocol;

namespace {

struct Response {
  int status = 200;
  std::string_view reason = "OK";
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  bool head_only = false;
};

Response error_response(int status, std::string_view reason) {
  Response response;
  response.status = status;
  response.reason = reason;
  response.body = fmt::format("{} {}\n", status, reason);
  return response;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view trim(std::string_view text) {
  const auto first = text.find_first_not_of(" \t");
  if (first == std::string_view::npos) {
    return {};
  }
  return text.substr(first, text.find_last_not_of(" \t") - first + 1);
}

// What a request head asks for, or the 4xx that answers it. Only the
// request line and the Accept header matter; everything else is checked
// for shape and count only.
Response answer(std::string_view head, const MetricsServer::Render& render,
                std::size_t max_headers) {
  std::vector<std::string_view> lines;
  while (!head.empty()) {
    const auto end = head.find("\r\n");
    lines.push_back(head.substr(0, end));
    head = end == std::string_view::npos ? std::string_view{} : head.substr(end + 2);
  }
  while (!lines.empty() && lines.back().empty()) {
    lines.pop_back();
  }
  if (lines.empty()) {
    return error_response(400, "Bad Request");
  }
  if (lines.size() - 1 > max_headers) {
    return error_response(431, "Request Header Fields Too Large");
  }
  // METHOD SP request-target SP HTTP-version
  const std::string_view request_line = lines.front();
  const auto first_space = request_line.find(' ');
  const auto second_space = request_line.find(' ', first_space + 1);
  if (first_space == std::string_view::npos || second_space == std::string_view::npos ||
      request_line.find(' ', second_space + 1) != std::string_view::npos) {
    return error_response(400, "Bad Request");
  }
  const std::string_view method = request_line.substr(0, first_space);
  const std::string_view target =
      request_line.substr(first_space + 1, second_space - first_space - 1);
  const std::string_view version = request_line.substr(second_space + 1);
  if (!version.starts_with("HTTP/1.")) {
    return error_response(505, "HTTP Version Not Supported");
  }
  std::string accept;
  for (std::size_t i = 1; i < lines.size(); ++i) {
    const auto colon = lines[i].find(':');
    if (colon == std::string_view::npos || colon == 0) {
      return error_response(400, "Bad Request");
    }
    if (iequals(lines[i].substr(0, colon), "accept")) {
      // Repeated Accept headers are one list (RFC 9110 5.3).
      if (!accept.empty()) {
        accept += ',';
      }
      accept += trim(lines[i].substr(colon + 1));
    }
  }
  if (method != "GET" && method != "HEAD") {
    return error_response(405, "Method Not Allowed");
  }
  if (target.substr(0, target.find('?')) != "/metrics") {
    return error_response(404, "Not Found");
  }
  const ExpositionFormat format = negotiate_format(accept);
  Response response;
  response.content_type = std::string(content_type(format));
  response.body = render(format);
  response.head_only = method == "HEAD";
  return response;
}

// The status line and headers; the body is written after them as it is.
std::string response_head(const Response& response) {
  return fmt::format(
      "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n{}\r\n",
      response.status, response.reason, response.content_type, response.body.size(),
      response.status == 405 ? "Allow: GET, HEAD\r\n" : "");
}

void cancel_timer(asio::steady_timer& timer) noexcept {
  try {
    timer.cancel();
  } catch (const boost::system::system_error& e) {
    control_log().warn("metrics: cancelling a timer: {}", e.what());
  }
}

}  // namespace

tcp::endpoint parse_listen_address(std::string_view text) {
  const auto fail = [&](std::string_view why) {
    return std::invalid_argument(
        fmt::format("bad listen address '{}': {} (expected ADDR:PORT or [ADDR6]:PORT)", text, why));
  };
  std::string_view host;
  std::string_view port;
  if (text.starts_with('[')) {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      throw fail("IPv6 addresses go in brackets, followed by :PORT");
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      throw fail("no port");
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      throw fail("IPv6 addresses go in brackets");
    }
  }
  unsigned number = 0;
  const auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), number);
  if (port.empty() || error != std::errc() || end != port.data() + port.size() || number == 0 ||
      number > 65535) {
    throw fail("port must be 1..65535");
  }
  boost::system::error_code address_error;
  const auto address = asio::ip::make_address(std::string(host), address_error);
  if (address_error || (text.starts_with('[') && !address.is_v6()) ||
      (!text.starts_with('[') && !address.is_v4())) {
    throw fail("not a numeric IPv4 or IPv6 address");
  }
  return {address, static_cast<unsigned short>(number)};
}

class MetricsServer::Session : public std::enable_shared_from_this<Session> {
 public:
  Session() = default;
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  virtual ~Session() = default;
  virtual void close() noexcept = 0;
};

namespace {

// One HTTP connection: read the head (bounded, timed), answer, close.
template <typename Protocol>
class Connection final : public MetricsServer::Session {
 public:
  using Socket = typename Protocol::socket;

  Connection(Socket socket, MetricsServer::Render render, const MetricsServerLimits& limits,
             MetricsServerCounters& counters, std::weak_ptr<bool> server_alive)
      : socket_(std::move(socket)),
        timer_(socket_.get_executor()),
        render_(std::move(render)),
        limits_(limits),
        counters_(counters),
        server_alive_(std::move(server_alive)),
        buffer_(limits.max_request_bytes) {}

  void start() {
    arm_timer(limits_.read_timeout);
    asio::async_read_until(socket_, buffer_, "\r\n\r\n",
                           [self = self()](const boost::system::error_code& error,
                                           std::size_t length) { self->on_head(error, length); });
  }

  // Closes at once, discarding what the client has not taken: a plain
  // close would leave the kernel holding the unsent rest of a large answer
  // for a client that does not read, trickling it out on TCP for minutes.
  void reset() noexcept {
    boost::system::error_code ignored;
    socket_.set_option(asio::socket_base::linger(true, 0), ignored);
    close();
  }

  void close() noexcept override {
    boost::system::error_code ignored;
    socket_.close(ignored);
    cancel_timer(timer_);
  }

 private:
  std::shared_ptr<Connection> self() {
    return std::static_pointer_cast<Connection>(shared_from_this());
  }

  // One timer per phase: reading the head, then writing the answer. When it
  // fires the socket closes, which aborts the pending read or write.
  void arm_timer(std::chrono::milliseconds timeout) {
    timer_.expires_after(timeout);
    timer_.async_wait(
        [weak = std::weak_ptr<Connection>(self())](const boost::system::error_code& error) {
          if (error) {
            return;  // re-armed, or closed
          }
          if (const auto connection = weak.lock()) {
            if (!connection->server_alive_.expired()) {
              ++connection->counters_.timeouts;
            }
            connection->reset();
          }
        });
  }

  void on_head(const boost::system::error_code& error, std::size_t length) {
    if (server_alive_.expired()) {
      return;
    }
    if (error == asio::error::not_found) {
      ++counters_.bad_requests;
      send(error_response(431, "Request Header Fields Too Large"));
      return;
    }
    if (error) {
      return;  // peer gone, timeout, or shutting down
    }
    const std::string_view head(static_cast<const char*>(buffer_.data().data()), length);
    Response response;
    try {
      response = answer(head, render_, limits_.max_headers);
    } catch (const std::exception& e) {
      control_log().error("metrics: rendering: {}", e.what());
      response = error_response(500, "Internal Server Error");
    }
    if (response.status == 200) {
      ++counters_.scrapes;
    } else if (response.status != 500) {
      ++counters_.bad_requests;
    }
    send(std::move(response));
  }

  void send(Response response) {
    head_ = response_head(response);
    if (!response.head_only) {
      body_ = std::move(response.body);
    }
    arm_timer(limits_.write_timeout);
    const std::array<asio::const_buffer, 2> buffers{asio::buffer(head_), asio::buffer(body_)};
    asio::async_write(socket_, buffers,
                      [self = self()](const boost::system::error_code&, std::size_t) {
                        // Connection: close, answered or not. Shutting the
                        // sending side first lets the client read to EOF.
                        boost::system::error_code ignored;
                        self->socket_.shutdown(asio::socket_base::shutdown_send, ignored);
                        self->close();
                      });
  }

  Socket socket_;
  asio::steady_timer timer_;
  MetricsServer::Render render_;
  MetricsServerLimits limits_;
  MetricsServerCounters& counters_;
  std::weak_ptr<bool> server_alive_;
  asio::streambuf buffer_;
  std::string head_;
  std::string body_;
};

}  // namespace

template <typename Protocol>
class MetricsServer::Listener {
 public:
  Listener(MetricsServer& server, typename Protocol::acceptor acceptor)
      : server_(server), acceptor_(std::move(acceptor)), retry_(server.io_) {
    accept();
  }
  ~Listener() {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    cancel_timer(retry_);
  }
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  typename Protocol::endpoint local_endpoint() const { return acceptor_.local_endpoint(); }

 private:
  void accept() {
    acceptor_.async_accept(
        [this, alive = std::weak_ptr<bool>(server_.alive_)](const boost::system::error_code& error,
                                                            typename Protocol::socket socket) {
          if (alive.expired() || error == asio::error::operation_aborted) {
            return;
          }
          if (error) {
            // Typically out of fds: accepting again at once would fail again
            // and keep the control plane's thread spinning.
            control_log().warn("metrics: accept: {}", error.message());
            retry_.expires_after(std::chrono::milliseconds(100));
            retry_.async_wait([this, alive](const boost::system::error_code& wait_error) {
              if (!wait_error && !alive.expired()) {
                accept();
              }
            });
            return;
          }
          auto connection = std::make_shared<Connection<Protocol>>(
              std::move(socket), server_.render_, server_.limits_, server_.counters_, alive);
          server_.admit(connection);
          connection->start();
          accept();
        });
  }

  MetricsServer& server_;
  typename Protocol::acceptor acceptor_;
  asio::steady_timer retry_;
};

namespace {

// Wraps `render` so that each format is rendered at most once per
// `interval`. Connections hold copies of the returned function; they share
// one cache, touched only on the server's thread.
MetricsServer::Render cached(MetricsServer::Render render, std::chrono::milliseconds interval) {
  if (interval <= std::chrono::milliseconds::zero()) {
    return render;
  }
  struct Entry {
    std::optional<std::chrono::steady_clock::time_point> rendered_at;
    std::string body;
  };
  struct Cache {
    MetricsServer::Render render;
    std::chrono::milliseconds interval;
    std::map<ExpositionFormat, Entry> entries;
  };
  auto cache = std::make_shared<Cache>(Cache{std::move(render), interval, {}});
  return [cache](ExpositionFormat format) {
    const auto now = std::chrono::steady_clock::now();
    Entry& entry = cache->entries[format];
    if (!entry.rendered_at || now - *entry.rendered_at >= cache->interval) {
      entry.body = cache->render(format);
      entry.rendered_at = now;
    }
    return entry.body;
  };
}

}  // namespace

MetricsServer::MetricsServer(asio::io_context& io, std::string unix_path,
                             const std::vector<tcp::endpoint>& tcp_endpoints, Render render,
                             MetricsServerLimits limits)
    : io_(io),
      unix_path_(std::move(unix_path)),
      render_(cached(std::move(render), limits.min_render_interval)),
      limits_(limits),
      alive_(std::make_shared<bool>(true)) {
  if (!unix_path_.empty()) {
    stream_protocol::acceptor acceptor(io_);
    listen_on_unix_socket(acceptor, unix_path_, "metrics socket", "--metrics-socket");
    unix_listener_ = std::make_unique<Listener<stream_protocol>>(*this, std::move(acceptor));
    control_log().info("metrics on unix socket {}", unix_path_);
  }
  for (const tcp::endpoint& endpoint : tcp_endpoints) {
    tcp::acceptor acceptor(io_);
    boost::system::error_code error;
    acceptor.open(endpoint.protocol(), error);
    if (!error) {
      acceptor.set_option(asio::socket_base::reuse_address(true), error);
    }
    if (!error && endpoint.address().is_v6()) {
      // [::]:PORT serves IPv6 only; 0.0.0.0:PORT may be listed besides it.
      acceptor.set_option(asio::ip::v6_only(true), error);
    }
    if (!error) {
      acceptor.bind(endpoint, error);
    }
    if (!error) {
      acceptor.listen(asio::socket_base::max_listen_connections, error);
    }
    if (error) {
      throw std::system_error(error.value(), std::generic_category(),
                              fmt::format("--metrics-listen {}", fmt::streamed(endpoint)));
    }
    tcp_listeners_.push_back(std::make_unique<Listener<tcp>>(*this, std::move(acceptor)));
    control_log().info("metrics on http://{}/metrics",
                       fmt::streamed(tcp_listeners_.back()->local_endpoint()));
  }
}

MetricsServer::~MetricsServer() {
  alive_.reset();
  unix_listener_.reset();
  tcp_listeners_.clear();
  for (const auto& weak : sessions_) {
    if (const auto session = weak.lock()) {
      session->close();
    }
  }
  if (!unix_path_.empty()) {
    std::error_code ec;
    std::filesystem::remove(unix_path_, ec);
  }
}

std::vector<tcp::endpoint> MetricsServer::tcp_endpoints() const {
  std::vector<tcp::endpoint> endpoints;
  endpoints.reserve(tcp_listeners_.size());
  for (const auto& listener : tcp_listeners_) {
    endpoints.push_back(listener->local_endpoint());
  }
  return endpoints;
}

void MetricsServer::admit(const std::shared_ptr<Session>& session) {
  std::erase_if(sessions_, [](const auto& weak) { return weak.expired(); });
  // Clients that connect and keep quiet must not lock a scraper out: the
  // oldest connection makes room.
  while (sessions_.size() >= limits_.max_connections) {
    if (const auto oldest = sessions_.front().lock()) {
      oldest->close();
      ++counters_.connections_evicted;
    }
    sessions_.pop_front();
  }
  sessions_.push_back(session);
}

}  // namespace vifd::backend
