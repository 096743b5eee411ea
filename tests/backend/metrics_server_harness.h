// A MetricsServer on its own io_context thread, and a blocking HTTP client
// for it, for the endpoint's tests.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "backend/lib/control/asio.h"
#include "backend/lib/control/metrics_server.h"

namespace vifd::backend::testing {

class MetricsServerHarness {
 public:
  // `body_bytes` > 0 renders that many bytes instead of real metrics (a
  // client that does not read them fills its socket buffers).
  explicit MetricsServerHarness(MetricsServerLimits limits = {}, std::size_t body_bytes = 0,
                                bool tcp = false);
  ~MetricsServerHarness();
  MetricsServerHarness(const MetricsServerHarness&) = delete;
  MetricsServerHarness& operator=(const MetricsServerHarness&) = delete;

  const std::string& socket_path() const { return socket_path_; }
  std::vector<boost::asio::ip::tcp::endpoint> tcp_endpoints();
  MetricsServerCounters counters();
  // How many times the server asked for a rendering.
  std::size_t renders() const { return *renders_; }
  // How long a handler posted to the server's thread waits to run: what a
  // control-socket request would wait, since both share that thread.
  std::chrono::milliseconds thread_latency();
  // The body the server renders for `format`.
  static std::string expected_body(ExpositionFormat format);

 private:
  template <typename Function>
  auto on_thread(Function function);

  std::string dir_;
  std::string socket_path_;
  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  std::thread thread_;
  std::unique_ptr<MetricsServer> server_;
  std::shared_ptr<std::atomic<std::size_t>> renders_ =
      std::make_shared<std::atomic<std::size_t>>(0);
};

// A connected client socket (closed on destruction).
class Client {
 public:
  static Client unix_socket(const std::string& path);
  static Client tcp(const boost::asio::ip::tcp::endpoint& endpoint);
  ~Client();
  Client(Client&& other) noexcept;
  Client& operator=(Client&&) = delete;
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  void send(const std::string& bytes);
  // Reads until the server closes (or `bound` passes); returns what came.
  std::string read_all(std::chrono::milliseconds bound = std::chrono::seconds(10));
  // True once the server closed its end (a read returns EOF or an error)
  // within `bound`; data still unread is discarded.
  bool closed_by_server(std::chrono::milliseconds bound);
  void set_receive_buffer(int bytes);
  int fd() const { return fd_; }

 private:
  explicit Client(int fd) : fd_(fd) {}
  int fd_;
};

struct HttpResponse {
  int status = 0;
  std::string content_type;
  std::string body;
  bool complete = false;  // Content-Length bytes of body arrived
};
HttpResponse parse_response(const std::string& raw);

// One GET /metrics with an optional Accept header.
HttpResponse scrape(Client client, const std::string& accept = {});

}  // namespace vifd::backend::testing
