// vifd's metrics endpoint: HTTP/1.1 `GET /metrics` on a unix socket (by
// default) and on TCP addresses an operator opts into, answering with the
// exposition metrics_exposition.h renders.
//
// The endpoint faces the network, so nothing a client does may hold the
// control-plane thread it runs on or grow vifd's memory without bound:
// all I/O is asynchronous; a request head is bounded in bytes and header
// lines and must arrive within a read timeout; an answer not taken by the
// client within a write timeout drops the connection; beyond a number of
// connections the oldest is closed to admit a new one
// (MetricsServerLimits). Every response closes its connection, so
// nothing is kept between scrapes. The data path is never involved: the
// body comes from the counters' snapshot the control socket also answers
// with.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backend/lib/control/asio.h"
#include "backend/lib/control/metrics_exposition.h"

namespace vifd::backend {

// An --metrics-listen address: IPv4 `ADDR:PORT` or IPv6 `[ADDR]:PORT`,
// numeric only (no name lookups in a daemon's start-up), port 1..65535.
boost::asio::ip::tcp::endpoint parse_listen_address(std::string_view text);

// Counters of the endpoint itself, also exposed as metrics.
struct MetricsServerCounters {
  std::uint64_t scrapes = 0;              // 200 answers
  std::uint64_t bad_requests = 0;         // 4xx answers
  std::uint64_t timeouts = 0;             // connections closed on a read or write timeout
  std::uint64_t connections_evicted = 0;  // closed to admit a newer one
};

// What bounds one client. The defaults are vifd's; tests shorten them.
struct MetricsServerLimits {
  // A request head (request line and headers) larger than this is answered
  // 431 and the connection closed.
  std::size_t max_request_bytes = std::size_t{8} * 1024;
  std::size_t max_headers = 64;
  std::size_t max_connections = 16;
  // From connecting to the end of the request head.
  std::chrono::milliseconds read_timeout{5000};
  // For the client to take the whole answer.
  std::chrono::milliseconds write_timeout{10000};
  // A scrape within this long of the last rendering of its format gets that
  // rendering again: rendering runs on the control thread every guest's
  // xenstore events share, so a scraper polling in a loop costs at most one
  // rendering per format per interval. Zero renders every scrape.
  std::chrono::milliseconds min_render_interval{250};
};

class MetricsServer {
 public:
  // The exposition for one request, in the format the client asked for.
  using Render = std::function<std::string(ExpositionFormat format)>;

  // Listens on `unix_path` (unless empty: created like the control socket,
  // a stale file replaced, one that answers refused) and on every TCP
  // endpoint. Throws std::system_error naming the address that failed.
  MetricsServer(boost::asio::io_context& io, std::string unix_path,
                const std::vector<boost::asio::ip::tcp::endpoint>& tcp_endpoints, Render render,
                MetricsServerLimits limits = {});
  // Stops listening, drops open connections and removes the socket file.
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  const MetricsServerCounters& counters() const { return counters_; }
  // The TCP endpoints actually bound (port 0 resolved), in the order given.
  std::vector<boost::asio::ip::tcp::endpoint> tcp_endpoints() const;

  class Session;

 private:
  template <typename Protocol>
  class Listener;
  // Registers a new connection, closing the oldest beyond max_connections.
  void admit(const std::shared_ptr<Session>& session);

  boost::asio::io_context& io_;
  std::string unix_path_;
  Render render_;
  MetricsServerLimits limits_;
  std::shared_ptr<bool> alive_;
  MetricsServerCounters counters_;
  std::unique_ptr<Listener<boost::asio::local::stream_protocol>> unix_listener_;
  std::vector<std::unique_ptr<Listener<boost::asio::ip::tcp>>> tcp_listeners_;
  // Oldest first.
  std::deque<std::weak_ptr<Session>> sessions_;
};

}  // namespace vifd::backend
