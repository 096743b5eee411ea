#include "tests/backend/metrics_server_harness.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <future>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <utility>

#include "backend/lib/control/metrics_exposition.h"

namespace vifd::backend::testing {
namespace {

nlohmann::json sample_stats() {
  return {
      {"ok", true},
      {"vifs",
       {{{"domid", 1},
         {"devid", 0},
         {"state", "Connected"},
         {"tap", "vif1.0"},
         {"bridge", "xenbr0"},
         {"queues", {{{"index", 0}, {"tx", {{"packets", 10}, {"bytes", 1000}}}, {"drops", {}}}}}}}},
      {"host_port_worker", {{"jobs_run", 3}}}};
}

std::chrono::steady_clock::time_point deadline_after(std::chrono::milliseconds bound) {
  return std::chrono::steady_clock::now() + bound;
}

int remaining_ms(std::chrono::steady_clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                        deadline - std::chrono::steady_clock::now())
                        .count();
  return left > 0 ? static_cast<int>(left) : 0;
}

}  // namespace

template <typename Function>
auto MetricsServerHarness::on_thread(Function function) {
  std::packaged_task<decltype(function())()> task(std::move(function));
  auto result = task.get_future();
  boost::asio::post(io_, [&task] { task(); });
  return result.get();
}

MetricsServerHarness::MetricsServerHarness(MetricsServerLimits limits, std::size_t body_bytes,
                                           bool tcp) {
  std::string pattern = (std::filesystem::temp_directory_path() / "vifd-metrics-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    throw std::runtime_error("mkdtemp failed");
  }
  dir_ = pattern;
  socket_path_ = dir_ + "/metrics.sock";
  work_.emplace(io_.get_executor());
  thread_ = std::thread([this] { io_.run(); });
  std::vector<boost::asio::ip::tcp::endpoint> endpoints;
  if (tcp) {
    endpoints.emplace_back(boost::asio::ip::make_address("127.0.0.1"), 0);
    endpoints.emplace_back(boost::asio::ip::make_address("::1"), 0);
  }
  on_thread([&] {
    server_ = std::make_unique<MetricsServer>(
        io_, socket_path_, endpoints,
        [body_bytes, renders = renders_](ExpositionFormat format) {
          ++*renders;
          return body_bytes > 0 ? std::string(body_bytes, 'x') : expected_body(format);
        },
        limits);
    return 0;
  });
}

MetricsServerHarness::~MetricsServerHarness() {
  on_thread([this] {
    server_.reset();
    return 0;
  });
  work_.reset();
  io_.stop();
  thread_.join();
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

std::vector<boost::asio::ip::tcp::endpoint> MetricsServerHarness::tcp_endpoints() {
  return on_thread([this] { return server_->tcp_endpoints(); });
}

MetricsServerCounters MetricsServerHarness::counters() {
  return on_thread([this] { return server_->counters(); });
}

std::chrono::milliseconds MetricsServerHarness::thread_latency() {
  const auto posted = std::chrono::steady_clock::now();
  return on_thread([posted] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 posted);
  });
}

std::string MetricsServerHarness::expected_body(ExpositionFormat format) {
  return render_metrics(sample_stats(), format);
}

Client Client::unix_socket(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket");
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
  // sockaddr_un is a sockaddr by the socket API's definition.
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    ::close(fd);
    throw std::runtime_error("connect " + path + ": " + std::strerror(errno));
  }
  return Client(fd);
}

Client Client::tcp(const boost::asio::ip::tcp::endpoint& endpoint) {
  const int fd =
      ::socket(endpoint.address().is_v6() ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket");
  if (::connect(fd, endpoint.data(), static_cast<socklen_t>(endpoint.size())) != 0) {
    ::close(fd);
    throw std::runtime_error(std::string("connect: ") + std::strerror(errno));
  }
  return Client(fd);
}

Client::~Client() {
  if (fd_ >= 0) ::close(fd_);
}

Client::Client(Client&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}

void Client::send(const std::string& bytes) {
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      return;  // the server closed: what it answered is still readable
    }
    sent += static_cast<std::size_t>(n);
  }
}

std::string Client::read_all(std::chrono::milliseconds bound) {
  const auto deadline = deadline_after(bound);
  std::string data;
  std::array<char, 65536> buffer{};
  for (;;) {
    pollfd pfd{.fd = fd_, .events = POLLIN, .revents = 0};
    if (::poll(&pfd, 1, remaining_ms(deadline)) <= 0) return data;
    const ssize_t n = ::read(fd_, buffer.data(), buffer.size());
    if (n <= 0) return data;
    data.append(buffer.data(), static_cast<std::size_t>(n));
  }
}

bool Client::closed_by_server(std::chrono::milliseconds bound) {
  const auto deadline = deadline_after(bound);
  std::array<char, 65536> buffer{};
  for (;;) {
    pollfd pfd{.fd = fd_, .events = POLLIN, .revents = 0};
    if (::poll(&pfd, 1, remaining_ms(deadline)) <= 0) return false;
    const ssize_t n = ::read(fd_, buffer.data(), buffer.size());
    if (n <= 0) return true;
  }
}

void Client::set_receive_buffer(int bytes) {
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes));
}

HttpResponse parse_response(const std::string& raw) {
  HttpResponse response;
  const auto head_end = raw.find("\r\n\r\n");
  if (head_end == std::string::npos || !raw.starts_with("HTTP/1.1 ")) return response;
  response.status = std::atoi(raw.c_str() + 9);
  const std::string head = raw.substr(0, head_end);
  std::size_t content_length = 0;
  std::size_t pos = head.find("\r\n");
  while (pos != std::string::npos) {
    const auto next = head.find("\r\n", pos + 2);
    const std::string line =
        head.substr(pos + 2, next == std::string::npos ? next : next - pos - 2);
    if (line.starts_with("Content-Type: ")) response.content_type = line.substr(14);
    if (line.starts_with("Content-Length: ")) content_length = std::stoul(line.substr(16));
    pos = next;
  }
  response.body = raw.substr(head_end + 4);
  response.complete = response.body.size() == content_length;
  return response;
}

HttpResponse scrape(Client client, const std::string& accept) {
  std::string request = "GET /metrics HTTP/1.1\r\nHost: localhost\r\n";
  if (!accept.empty()) request += "Accept: " + accept + "\r\n";
  client.send(request + "\r\n");
  return parse_response(client.read_all());
}

}  // namespace vifd::backend::testing
