// Clients that misbehave on the metrics endpoint: each gets a clear outcome
// (an HTTP error, or its connection closed and counted), and the thread the
// endpoint shares with the control socket stays free throughout.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "backend/lib/control/metrics_exposition.h"
#include "backend/lib/control/metrics_server.h"
#include "tests/backend/metrics_server_harness.h"
#include "tests/support/eventually.h"

namespace vifd::backend::testing {
namespace {

using std::chrono::milliseconds;

// What "answers promptly" means on a shared two-CPU CI machine; a stalled
// thread would wait for a whole timeout (seconds).
constexpr milliseconds kPrompt{500};

MetricsServerLimits short_timeouts() {
  MetricsServerLimits limits;
  limits.read_timeout = milliseconds(300);
  limits.write_timeout = milliseconds(500);
  return limits;
}

TEST(MetricsServerHostile, OversizedRequestHeadGets431AndTheConnectionCloses) {
  MetricsServerHarness server;
  Client client = Client::unix_socket(server.socket_path());
  // Never a blank line: the head only grows.
  client.send("GET /metrics HTTP/1.1\r\nX-Filler: " + std::string(64 * 1024, 'a'));
  const HttpResponse response = parse_response(client.read_all());
  EXPECT_EQ(response.status, 431);
  EXPECT_EQ(server.counters().bad_requests, 1U);
  EXPECT_LT(server.thread_latency(), kPrompt);
}

TEST(MetricsServerHostile, TooManyHeaderLinesGet431) {
  MetricsServerHarness server;
  std::string head = "GET /metrics HTTP/1.1\r\n";
  for (int i = 0; i < 100; ++i) head += "X-A: b\r\n";
  Client client = Client::unix_socket(server.socket_path());
  client.send(head + "\r\n");
  EXPECT_EQ(parse_response(client.read_all()).status, 431);
}

TEST(MetricsServerHostile, ClientThatNeverSendsIsClosedAfterTheReadTimeout) {
  MetricsServerHarness server(short_timeouts());
  Client silent = Client::unix_socket(server.socket_path());
  Client slow = Client::unix_socket(server.socket_path());
  slow.send("GET /metrics HTTP/1.1\r\n");  // and never the rest
  const auto start = std::chrono::steady_clock::now();
  EXPECT_LT(server.thread_latency(), kPrompt);
  EXPECT_TRUE(silent.closed_by_server(milliseconds(5000)));
  EXPECT_TRUE(slow.closed_by_server(milliseconds(5000)));
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(250));
  EXPECT_EQ(server.counters().timeouts, 2U);
  // Others are served meanwhile and after.
  EXPECT_EQ(scrape(Client::unix_socket(server.socket_path())).status, 200);
}

TEST(MetricsServerHostile, ClientThatNeverReadsTheAnswerIsDroppedAfterTheWriteTimeout) {
  // 16 MiB cannot sit in socket buffers: the write stays pending.
  MetricsServerHarness server(short_timeouts(), std::size_t{16} << 20, true);
  std::vector<Client> stalled;
  stalled.push_back(Client::unix_socket(server.socket_path()));
  stalled.push_back(Client::tcp(server.tcp_endpoints().front()));
  for (Client& client : stalled) {
    client.set_receive_buffer(4096);
    client.send("GET /metrics HTTP/1.1\r\n\r\n");
  }
  // Once both answers are rendered (the first wait: two 16 MiB strings on
  // a loaded machine), the writes are stuck and the thread is free.
  server.thread_latency();
  for (int i = 0; i < 5; ++i) {
    EXPECT_LT(server.thread_latency(), kPrompt);
  }
  EXPECT_TRUE(::vifd::testing::eventually([&] { return server.counters().timeouts == 2; }));
  for (std::size_t i = 0; i < stalled.size(); ++i) {
    // The server reset the connection, short of the whole body.
    const std::string received = stalled[i].read_all(milliseconds(5000));
    EXPECT_LT(received.size(), std::size_t{16} << 20) << (i == 0 ? "unix" : "tcp");
    EXPECT_TRUE(stalled[i].closed_by_server(milliseconds(100))) << (i == 0 ? "unix" : "tcp");
  }
}

TEST(MetricsServerHostile, ManyIdleConnectionsCannotLockAScraperOut) {
  MetricsServerLimits limits;  // the daemon's: 16 connections, 5 s to send a request
  MetricsServerHarness server(limits);
  std::vector<Client> idle;
  for (int i = 0; i < 100; ++i) {
    idle.push_back(Client::unix_socket(server.socket_path()));
  }
  const auto start = std::chrono::steady_clock::now();
  const HttpResponse response = scrape(Client::unix_socket(server.socket_path()));
  EXPECT_EQ(response.status, 200);
  EXPECT_TRUE(response.complete);
  EXPECT_LT(std::chrono::steady_clock::now() - start, limits.read_timeout);
  EXPECT_LT(server.thread_latency(), kPrompt);
  // The oldest made room: at most max_connections stay open.
  EXPECT_GE(server.counters().connections_evicted, 100U + 1 - limits.max_connections);
  EXPECT_TRUE(idle.front().closed_by_server(milliseconds(1000)));
}

}  // namespace
}  // namespace vifd::backend::testing
