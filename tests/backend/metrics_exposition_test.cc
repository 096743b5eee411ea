// The exposition formats rendered from a `stats` answer: the shape both
// formats require (families contiguous, HELP and TYPE first, counters
// named _total, OpenMetrics' # EOF), every drop reason present, values
// equal to the JSON's, and label values from xenstore escaped.
#include "backend/lib/control/metrics_exposition.h"

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "backend/lib/datapath/queue_stats.h"

namespace vifd::backend {
namespace {

nlohmann::json queue_json(std::uint32_t index, std::uint64_t base) {
  QueueStats stats;
  stats.index = index;
  stats.tx_packets = base + 1;
  stats.tx_bytes = base + 2;
  stats.rx_packets = base + 3;
  stats.rx_bytes = base + 4;
  stats.drops[static_cast<std::size_t>(DropReason::kTxSpoofedSourceMac)] = base + 5;
  stats.drops[static_cast<std::size_t>(DropReason::kRxNoBuffers)] = base + 6;
  stats.grant_copy_calls = base + 7;
  stats.notifications_sent = base + 8;
  stats.rx_stalls = base + 9;
  stats.batch_histogram[2] = base + 10;
  stats.rx_backlog_bytes = 4096;
  stats.gref_mappings = 512;
  stats.mapped_copy_segments = base + 11;
  return to_json(stats);
}

nlohmann::json stats_answer(const std::string& bridge) {
  nlohmann::json connected{{"domid", 3},
                           {"devid", 1},
                           {"state", "Connected"},
                           {"tap", "vif3.1"},
                           {"bridge", bridge},
                           {"switch", bridge},
                           {"captures", 0},
                           {"watch_events_handled", 12},
                           {"watch_events_coalesced", 2},
                           {"watch_events_paced", 0},
                           {"watch_suspensions", 3},
                           {"reconnects_paced", 1},
                           {"queues", {queue_json(0, 100), queue_json(1, 1000)}}};
  nlohmann::json closed{{"domid", 4},
                        {"devid", 0},
                        {"state", "Closed"},
                        {"tap", nullptr},
                        {"bridge", nullptr},
                        {"error", "bridge: bridge 'xenbr9' does not exist"},
                        {"queues", nlohmann::json::array()}};
  return {{"ok", true},
          {"monotonic_ns", 123},
          {"vifs", {connected, closed}},
          {"host_port_worker",
           {{"jobs_run", 7}, {"jobs_failed", 1}, {"jobs_pending", 0}, {"longest_job_ms", 2.5}}},
          {"metrics_endpoint",
           {{"scrapes", 5}, {"bad_requests", 1}, {"timeouts", 0}, {"connections_evicted", 0}}}};
}

struct Parsed {
  // family -> type, in order of appearance
  std::vector<std::pair<std::string, std::string>> families;
  // sample line "name{labels}" -> value
  std::map<std::string, std::string> samples;
  bool eof = false;
};

// A strict reader of what render_metrics writes: fails the test on any line
// that is not HELP/TYPE/EOF or a sample of the family announced last.
Parsed parse(const std::string& text, ExpositionFormat format) {
  static const std::regex kSample(
      R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*")(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*")*\})? (-?[0-9.e+]+)$)");
  static const std::regex kHelp(R"(^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) \S.*$)");
  static const std::regex kType(R"(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge)$)");
  Parsed parsed;
  std::istringstream lines(text);
  std::string line;
  std::string help_for;
  std::string family;
  std::string type;
  std::set<std::string> seen;
  while (std::getline(lines, line)) {
    EXPECT_FALSE(parsed.eof) << "a line after # EOF: " << line;
    std::smatch match;
    if (line == "# EOF") {
      parsed.eof = true;
    } else if (std::regex_match(line, match, kHelp)) {
      help_for = match[1];
    } else if (std::regex_match(line, match, kType)) {
      EXPECT_EQ(help_for, match[1]) << "TYPE without HELP just before: " << line;
      family = match[1];
      type = match[2];
      EXPECT_TRUE(seen.insert(family).second) << "family " << family << " twice";
      parsed.families.emplace_back(family, type);
    } else if (std::regex_match(line, match, kSample)) {
      const std::string name = match[1];
      std::string expected = family;
      if (type == "counter" && format == ExpositionFormat::kOpenMetrics) {
        expected += "_total";
      }
      EXPECT_EQ(name, expected) << "sample outside its family: " << line;
      if (type == "counter") {
        EXPECT_TRUE(name.ends_with("_total")) << line;
      }
      const std::string key = line.substr(0, line.rfind(' '));
      EXPECT_TRUE(parsed.samples.emplace(key, line.substr(line.rfind(' ') + 1)).second)
          << "duplicate sample " << key;
    } else {
      ADD_FAILURE() << "not a valid exposition line: '" << line << "'";
    }
  }
  return parsed;
}

constexpr const char* kQueue0 = R"(domain="3",devid="1",bridge="xenbr0",tap="vif3.1",queue="0")";
constexpr const char* kQueue1 = R"(domain="3",devid="1",bridge="xenbr0",tap="vif3.1",queue="1")";
constexpr const char* kVif3 = R"(domain="3",devid="1",bridge="xenbr0",tap="vif3.1")";
constexpr const char* kVif4 = R"(domain="4",devid="0",bridge="",tap="")";

TEST(MetricsExposition, PrometheusTextHasEveryFamilyAndTheJsonValues) {
  const std::string text =
      render_metrics(stats_answer("xenbr0"), ExpositionFormat::kPrometheusText);
  const Parsed parsed = parse(text, ExpositionFormat::kPrometheusText);
  EXPECT_FALSE(parsed.eof) << "# EOF belongs to OpenMetrics only";
  const auto& s = parsed.samples;
  EXPECT_EQ(s.at(std::string("vifd_queue_tx_packets_total{") + kQueue0 + "}"), "101");
  EXPECT_EQ(s.at(std::string("vifd_queue_rx_bytes_total{") + kQueue1 + "}"), "1004");
  EXPECT_EQ(s.at(std::string("vifd_queue_grant_copy_calls_total{") + kQueue1 + "}"), "1007");
  EXPECT_EQ(s.at(std::string("vifd_queue_notifications_sent_total{") + kQueue0 + "}"), "108");
  EXPECT_EQ(s.at(std::string("vifd_queue_rx_stalls_total{") + kQueue0 + "}"), "109");
  EXPECT_EQ(s.at(std::string("vifd_queue_batches_total{") + kQueue0 + ",size=\"4-7\"}"), "110");
  EXPECT_EQ(s.at(std::string("vifd_queue_rx_backlog_bytes{") + kQueue0 + "}"), "4096");
  EXPECT_EQ(s.at(std::string("vifd_queue_static_grant_mappings{") + kQueue1 + "}"), "512");
  EXPECT_EQ(s.at(std::string("vifd_queue_static_grant_memcpy_segments_total{") + kQueue0 + "}"),
            "111");
  EXPECT_EQ(
      s.at(std::string("vifd_queue_drops_total{") + kQueue0 + ",reason=\"tx_spoofed_source_mac\"}"),
      "105");
  // Every reason, for every queue, zero or not: rate() needs the series
  // before the first drop.
  for (std::size_t i = 0; i < kDropReasonCount; ++i) {
    const std::string reason(to_string(static_cast<DropReason>(i)));
    for (const char* queue : {kQueue0, kQueue1}) {
      EXPECT_TRUE(s.contains(std::string("vifd_queue_drops_total{") + queue + ",reason=\"" +
                             reason + "\"}"))
          << reason;
    }
  }
  // Per vif: sums over the queues; state and error of an unconnected vif.
  EXPECT_EQ(s.at(std::string("vifd_vif_tx_packets_total{") + kVif3 + "}"), "1102");
  EXPECT_EQ(s.at(std::string("vifd_vif_drops_total{") + kVif3 + "}"),
            std::to_string(105 + 106 + 1005 + 1006));
  EXPECT_EQ(s.at(std::string("vifd_vif_tx_packets_total{") + kVif4 + "}"), "0");
  EXPECT_EQ(s.at(std::string("vifd_vif_state{") + kVif3 + "}"), "4");
  EXPECT_EQ(s.at(std::string("vifd_vif_state{") + kVif4 + "}"), "6");
  EXPECT_EQ(s.at(std::string("vifd_vif_failed{") + kVif4 + "}"), "1");
  EXPECT_EQ(s.at(std::string("vifd_vif_failed{") + kVif3 + "}"), "0");
  EXPECT_EQ(s.at(std::string("vifd_vif_queues{") + kVif3 + "}"), "2");
  EXPECT_EQ(s.at(std::string("vifd_vif_watch_events_handled_total{") + kVif3 + "}"), "12");
  EXPECT_EQ(s.at(std::string("vifd_vif_reconnects_paced_total{") + kVif3 + "}"), "1");
  EXPECT_EQ(s.at(std::string("vifd_vif_watch_suspensions_total{") + kVif3 + "}"), "3");
  // Daemon-wide.
  EXPECT_EQ(s.at("vifd_vifs"), "2");
  EXPECT_EQ(s.at("vifd_host_port_worker_jobs_run_total"), "7");
  EXPECT_EQ(s.at("vifd_host_port_worker_longest_job_seconds"), "0.0025");
  EXPECT_EQ(s.at("vifd_metrics_scrapes_total"), "5");
  // The classic format names a counter family like its samples.
  EXPECT_NE(text.find("# TYPE vifd_queue_tx_packets_total counter\n"), std::string::npos);
}

TEST(MetricsExposition, OpenMetricsNamesCounterFamiliesWithoutTotalAndEndsWithEof) {
  const std::string text = render_metrics(stats_answer("xenbr0"), ExpositionFormat::kOpenMetrics);
  const Parsed parsed = parse(text, ExpositionFormat::kOpenMetrics);
  EXPECT_TRUE(parsed.eof);
  EXPECT_TRUE(text.ends_with("# EOF\n"));
  EXPECT_NE(text.find("# TYPE vifd_queue_tx_packets counter\n"), std::string::npos);
  EXPECT_EQ(parsed.samples.at(std::string("vifd_queue_tx_packets_total{") + kQueue0 + "}"), "101");
  const std::string classic =
      render_metrics(stats_answer("xenbr0"), ExpositionFormat::kPrometheusText);
  EXPECT_EQ(parsed.samples.size(),
            parse(classic, ExpositionFormat::kPrometheusText).samples.size());
}

TEST(MetricsExposition, NoVifsStillGivesTheDaemonFamilies) {
  const std::string text = render_metrics({{"ok", true}, {"vifs", nlohmann::json::array()}},
                                          ExpositionFormat::kOpenMetrics);
  const Parsed parsed = parse(text, ExpositionFormat::kOpenMetrics);
  EXPECT_EQ(parsed.samples.at("vifd_vifs"), "0");
  EXPECT_EQ(parsed.samples.at("vifd_host_port_worker_jobs_run_total"), "0");
}

TEST(MetricsExposition, HostileBridgeNamesAreEscapedAndMadeUtf8) {
  EXPECT_EQ(escape_label_value(R"(a"b\c)"), R"(a\"b\\c)");
  EXPECT_EQ(escape_label_value("line\nbreak"), "line\\nbreak");
  EXPECT_EQ(escape_label_value("br\xC3\xA9"), "br\xC3\xA9");  // valid UTF-8 kept
  EXPECT_EQ(escape_label_value("x\xFFy"), "x\xEF\xBF\xBDy");
  EXPECT_EQ(escape_label_value("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");  // overlong '/'
  EXPECT_EQ(escape_label_value("\xED\xA0\x80"),
            "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");                      // a surrogate
  EXPECT_EQ(escape_label_value("\xE2\x82"), "\xEF\xBF\xBD\xEF\xBF\xBD");  // truncated

  // Rendered, the escaped name still parses and injects no sample.
  const std::string hostile = "br\"} 1\nvifd_vifs 99\n\\\xFF";
  for (const auto format : {ExpositionFormat::kPrometheusText, ExpositionFormat::kOpenMetrics}) {
    const Parsed parsed = parse(render_metrics(stats_answer(hostile), format), format);
    EXPECT_EQ(parsed.samples.at("vifd_vifs"), "2");
    const std::string labels = R"(domain="3",devid="1",bridge="br\"} 1\nvifd_vifs 99\n\\)"
                               "\xEF\xBF\xBD"
                               R"(",tap="vif3.1")";
    EXPECT_EQ(parsed.samples.at("vifd_vif_state{" + labels + "}"), "4");
  }
}

TEST(MetricsExposition, AcceptHeaderChoosesTheFormat) {
  // What Prometheus 2.x sends.
  EXPECT_EQ(negotiate_format("application/openmetrics-text;version=1.0.0,application/"
                             "openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;"
                             "q=0.5,*/*;q=0.1"),
            ExpositionFormat::kOpenMetrics);
  EXPECT_EQ(negotiate_format("Application/OpenMetrics-Text; version=1.0.0"),
            ExpositionFormat::kOpenMetrics);
  EXPECT_EQ(negotiate_format(""), ExpositionFormat::kPrometheusText);
  EXPECT_EQ(negotiate_format("*/*"), ExpositionFormat::kPrometheusText);
  EXPECT_EQ(negotiate_format("text/plain;version=0.0.4"), ExpositionFormat::kPrometheusText);
  EXPECT_EQ(negotiate_format("application/openmetrics-text;q=0"),
            ExpositionFormat::kPrometheusText);
  EXPECT_EQ(negotiate_format("text/plain, application/openmetrics-text;q=0.5"),
            ExpositionFormat::kPrometheusText);
  EXPECT_EQ(negotiate_format("application/openmetrics-text;q=bogus"),
            ExpositionFormat::kPrometheusText);
  EXPECT_EQ(content_type(ExpositionFormat::kOpenMetrics),
            "application/openmetrics-text; version=1.0.0; charset=utf-8");
  EXPECT_EQ(content_type(ExpositionFormat::kPrometheusText),
            "text/plain; version=0.0.4; charset=utf-8");
}

}  // namespace
}  // namespace vifd::backend
