// The metrics endpoint as a Prometheus server sees it: GET /metrics over
// the unix socket and TCP (IPv4 and IPv6), the format chosen by Accept,
// HTTP errors for anything else, and --metrics-listen parsing.
#include "backend/lib/control/metrics_server.h"

#include <gtest/gtest.h>

#include <chrono>
#include <stdexcept>
#include <string>

#include "backend/lib/control/metrics_exposition.h"
#include "tests/backend/metrics_server_harness.h"

namespace vifd::backend::testing {
namespace {

TEST(MetricsServer, AnswersGetMetricsOnTheUnixSocketInTheAskedFormat) {
  MetricsServerHarness server;
  const HttpResponse text = scrape(Client::unix_socket(server.socket_path()));
  EXPECT_EQ(text.status, 200);
  EXPECT_TRUE(text.complete);
  EXPECT_EQ(text.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(text.body, MetricsServerHarness::expected_body(ExpositionFormat::kPrometheusText));

  const HttpResponse open = scrape(Client::unix_socket(server.socket_path()),
                                   "application/openmetrics-text;version=1.0.0,text/plain;q=0.5");
  EXPECT_EQ(open.status, 200);
  EXPECT_EQ(open.content_type, "application/openmetrics-text; version=1.0.0; charset=utf-8");
  EXPECT_EQ(open.body, MetricsServerHarness::expected_body(ExpositionFormat::kOpenMetrics));
  EXPECT_TRUE(open.body.ends_with("# EOF\n"));
  EXPECT_EQ(server.counters().scrapes, 2U);
}

TEST(MetricsServer, RendersEachFormatAtMostOncePerInterval) {
  MetricsServerLimits limits;
  limits.min_render_interval = std::chrono::hours(1);
  MetricsServerHarness server(limits);
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(scrape(Client::unix_socket(server.socket_path())).status, 200);
  }
  EXPECT_EQ(server.renders(), 1U);
  const HttpResponse open =
      scrape(Client::unix_socket(server.socket_path()), "application/openmetrics-text");
  EXPECT_EQ(open.body, MetricsServerHarness::expected_body(ExpositionFormat::kOpenMetrics));
  EXPECT_EQ(server.renders(), 2U);
  EXPECT_EQ(server.counters().scrapes, 21U);
}

TEST(MetricsServer, RendersEveryScrapeWithoutAnInterval) {
  MetricsServerLimits limits;
  limits.min_render_interval = std::chrono::milliseconds::zero();
  MetricsServerHarness server(limits);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(scrape(Client::unix_socket(server.socket_path())).status, 200);
  }
  EXPECT_EQ(server.renders(), 5U);
}

TEST(MetricsServer, AnswersOverTcpOnIpv4AndIpv6) {
  MetricsServerHarness server({}, 0, true);
  const auto endpoints = server.tcp_endpoints();
  ASSERT_EQ(endpoints.size(), 2U);
  for (const auto& endpoint : endpoints) {
    EXPECT_NE(endpoint.port(), 0);
    const HttpResponse response = scrape(Client::tcp(endpoint));
    EXPECT_EQ(response.status, 200) << endpoint;
    EXPECT_EQ(response.body,
              MetricsServerHarness::expected_body(ExpositionFormat::kPrometheusText));
  }
}

HttpResponse request(MetricsServerHarness& server, const std::string& text) {
  Client client = Client::unix_socket(server.socket_path());
  client.send(text);
  return parse_response(client.read_all());
}

TEST(MetricsServer, OtherRequestsGetHttpErrorsAndAreCounted) {
  MetricsServerHarness server;
  EXPECT_EQ(request(server, "GET / HTTP/1.1\r\n\r\n").status, 404);
  EXPECT_EQ(request(server, "GET /metricsx HTTP/1.1\r\n\r\n").status, 404);
  EXPECT_EQ(request(server, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n").status, 405);
  EXPECT_EQ(request(server, "GET /metrics HTTP/2.0\r\n\r\n").status, 505);
  EXPECT_EQ(request(server, "GET /metrics\r\n\r\n").status, 400);
  EXPECT_EQ(request(server, "GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n").status, 400);
  EXPECT_EQ(server.counters().bad_requests, 6U);
  // A query string is not part of the path; HEAD has the headers only.
  EXPECT_EQ(request(server, "GET /metrics?x=1 HTTP/1.0\r\n\r\n").status, 200);
  const HttpResponse head = request(server, "HEAD /metrics HTTP/1.1\r\n\r\n");
  EXPECT_EQ(head.status, 200);
  EXPECT_TRUE(head.body.empty());
}

TEST(MetricsServer, ListenAddressesAreNumericWithAPort) {
  EXPECT_EQ(parse_listen_address("127.0.0.1:9100"),
            boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 9100));
  EXPECT_EQ(parse_listen_address("[::]:9100"),
            boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("::"), 9100));
  EXPECT_EQ(parse_listen_address("[fe80::1]:1").port(), 1);
  for (const char* bad :
       {"127.0.0.1", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:9x", "::1:9100",
        "[::1]9100", "[127.0.0.1]:9100", "localhost:9100", ":9100", "[::1]:"}) {
    EXPECT_THROW(parse_listen_address(bad), std::invalid_argument) << bad;
  }
}

}  // namespace
}  // namespace vifd::backend::testing
