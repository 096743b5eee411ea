// vif-bench's pure parts: the matrix parsers, the frames, percentiles, the
// derived ratios, the targets and the table.
#include <gtest/gtest.h>

#include <stdexcept>

#include "frontend/lib/bench/arguments.h"
#include "frontend/lib/bench/frame.h"
#include "frontend/lib/bench/matrix.h"
#include "frontend/lib/bench/report.h"

namespace vifd::bench {
namespace {

TEST(BenchMatrixTest, ParsesSizesWith64kAsTheLargestFrame) {
  EXPECT_EQ(parse_sizes("64,512,1500,9000,64k"),
            (std::vector<std::size_t>{64, 512, 1500, 9000, 65535}));
  EXPECT_EQ(parse_sizes("64KiB"), (std::vector<std::size_t>{65535}));
}

TEST(BenchMatrixTest, RefusesBadSizesNamingTheItem) {
  for (const char* text : {"", "63", "65536", "1500,", "12x", "64,64", "-1"}) {
    try {
      parse_sizes(text);
      ADD_FAILURE() << "accepted '" << text << "'";
    } catch (const std::invalid_argument& error) {
      EXPECT_NE(std::string(error.what()).find("frame size"), std::string::npos) << error.what();
    }
  }
}

TEST(BenchMatrixTest, ParsesQueuesPathsAndGrants) {
  EXPECT_EQ(parse_queues("1,2,4", 16), (std::vector<unsigned>{1, 2, 4}));
  EXPECT_THROW(parse_queues("0", 16), std::invalid_argument);
  EXPECT_THROW(parse_queues("17", 16), std::invalid_argument);
  EXPECT_THROW(parse_queues("2,2", 16), std::invalid_argument);
  EXPECT_EQ(parse_paths("all").size(), 3U);
  EXPECT_EQ(parse_paths("dom0-domu,domu-domu"),
            (std::vector<Path>{Path::kDom0ToDomu, Path::kDomuToDomu}));
  EXPECT_THROW(parse_paths("domu-domU"), std::invalid_argument);
  EXPECT_EQ(parse_grants("copy"), (std::vector<Grants>{Grants::kCopy}));
  EXPECT_EQ(parse_grants("mapped"), (std::vector<Grants>{Grants::kMapped}));
  EXPECT_EQ(parse_grants("copy,mapped"), (std::vector<Grants>{Grants::kCopy, Grants::kMapped}));
  EXPECT_THROW(parse_grants("mapped,mapped"), std::invalid_argument);
  EXPECT_THROW(parse_grants("zerocopy"), std::invalid_argument);
}

TEST(BenchMatrixTest, GroupsCellsByConnection) {
  const auto cells =
      build_matrix({Path::kDomuToDomu, Path::kDomuToDom0}, {1, 2}, {Grants::kCopy}, {64, 65535});
  ASSERT_EQ(cells.size(), 8U);
  EXPECT_EQ(cells[0].path, Path::kDomuToDomu);
  EXPECT_EQ(cells[0].queues, 1U);
  EXPECT_EQ(cells[1].frame, 65535U);
  EXPECT_TRUE(cells[1].gso());
  EXPECT_FALSE(cells[0].gso());
  EXPECT_EQ(cells[2].queues, 2U);
  EXPECT_EQ(cells[4].path, Path::kDomuToDom0);
  EXPECT_EQ(size_label(65535), "64k");
  EXPECT_EQ(size_label(1500), "1500");
}

TEST(BenchFrameTest, BuildsRecognisableFramesWithSequence) {
  const protocol::MacAddress a{{0x00, 0x16, 0x3e, 0, 0, 1}};
  const protocol::MacAddress b{{0x00, 0x16, 0x3e, 0, 0, 2}};
  Frame frame = build_frame({b, a, 64, false, 3});
  ASSERT_EQ(frame.bytes.size(), 64U);
  EXPECT_TRUE(is_bench_frame(frame.bytes));
  EXPECT_EQ(frame.meta.gso_type, net::GsoType::kNone);
  set_sequence(frame.bytes, false, 42);
  EXPECT_EQ(frame_sequence(frame.bytes), 42U);
  // IPv4 header checksum: the header sums to 0xffff.
  std::uint32_t sum = 0;
  for (std::size_t i = 14; i < 34; i += 2) {
    sum += (frame.bytes[i] << 8) | frame.bytes[i + 1];
  }
  while (sum >> 16) {
    sum = (sum & 0xffff) + (sum >> 16);
  }
  EXPECT_EQ(sum, 0xffffU);

  Frame gso = build_frame({b, a, 65535, true, 0});
  EXPECT_NE(gso.id, frame.id);
  EXPECT_EQ(gso.meta.gso_type, net::GsoType::kTcpv4);
  EXPECT_EQ(gso.meta.gso_size, kGsoMss);
  EXPECT_EQ(gso.meta.csum_start, 34);
  EXPECT_EQ(gso.meta.hdr_len, kGsoHeaderBytes);
  set_sequence(gso.bytes, true, 7);
  EXPECT_EQ(frame_sequence(gso.bytes), 7U);

  frame.bytes[18] ^= 0xff;  // IPv4 identification no longer ours
  EXPECT_FALSE(is_bench_frame(frame.bytes));
  EXPECT_FALSE(is_bench_frame(std::span<const std::uint8_t>(gso.bytes).first(20)));
  EXPECT_THROW(build_frame({b, a, 40, false, 0}), std::invalid_argument);
  EXPECT_THROW(build_frame({b, a, 1000, true, 0}), std::invalid_argument);
}

TEST(BenchReportTest, NearestRankPercentiles) {
  std::vector<double> values{5, 1, 4, 2, 3};
  EXPECT_EQ(percentile(values, 50), 3);
  EXPECT_EQ(percentile(values, 99), 5);
  EXPECT_EQ(percentile(values, 1), 1);
  std::vector<double> none;
  EXPECT_EQ(percentile(none, 50), 0);
  std::vector<double> hundred;
  for (int i = 100; i >= 1; --i) {
    hundred.push_back(i);
  }
  const Latency latency = summarize_latency(hundred, 3);
  EXPECT_EQ(latency.samples, 100U);
  EXPECT_EQ(latency.lost, 3U);
  EXPECT_EQ(latency.p50_us, 50);
  EXPECT_EQ(latency.p99_us, 99);
}

TEST(BenchReportTest, DeltaIgnoresCountersThatWentBackwards) {
  BackendSample before{100, 1000, 50, 7, 9, 1.5, {{"tx_switch_receiver_share", 4}}};
  BackendSample after{
      150, 3000, 40, 8, 9, 2.0, {{"tx_switch_receiver_share", 10}, {"rx_no_buffers", 0}}};
  const BackendDelta d = delta(before, after);
  EXPECT_EQ(d.grant_copy_calls, 50U);
  EXPECT_EQ(d.grant_copy_segments, 2000U);
  EXPECT_EQ(d.notifications, 0U);
  EXPECT_EQ(d.hypervisor_copy_calls, 1U);
  ASSERT_TRUE(d.cpu_seconds);
  EXPECT_DOUBLE_EQ(*d.cpu_seconds, 0.5);
  EXPECT_EQ(d.drops, (std::map<std::string, std::uint64_t>{{"tx_switch_receiver_share", 6}}));
  before.cpu_seconds.reset();
  EXPECT_FALSE(delta(before, after).cpu_seconds);
}

CellResult domu_cell(std::size_t frame, std::uint64_t packets, double seconds) {
  CellResult cell;
  cell.cell = {Path::kDomuToDomu, 1, frame, Grants::kCopy};
  cell.seconds = seconds;
  cell.sent_packets = packets;
  cell.received_total = packets;
  cell.received_packets = packets;
  cell.received_bytes = packets * frame;
  BackendDelta backend;
  backend.grant_copy_calls = packets / 4;
  backend.grant_copy_segments = packets;
  backend.notifications = packets / 2;
  backend.cpu_seconds = seconds;
  cell.backend = backend;
  return cell;
}

TEST(BenchReportTest, DerivesRatesAndPerPacketRatios) {
  const Derived d = derive(domu_cell(64, 2'000'000, 2.0));
  EXPECT_DOUBLE_EQ(d.mpps, 1.0);
  EXPECT_DOUBLE_EQ(d.gbit_per_sec, 64 * 8 / 1000.0);
  EXPECT_DOUBLE_EQ(*d.copy_calls_per_packet, 0.25);
  EXPECT_DOUBLE_EQ(*d.segments_per_call, 4.0);
  EXPECT_DOUBLE_EQ(*d.notifications_per_packet, 0.5);
  EXPECT_DOUBLE_EQ(*d.cpu_seconds_per_mpacket, 1.0);
  EXPECT_DOUBLE_EQ(*d.cpu_seconds_per_gb, 2.0 / (2'000'000 * 64 / 1e9));

  CellResult empty;
  const Derived none = derive(empty);
  EXPECT_EQ(none.mpps, 0);
  EXPECT_FALSE(none.copy_calls_per_packet);
  EXPECT_FALSE(none.cpu_seconds_per_gb);
}

TEST(BenchReportTest, TargetsSayByHowMuchTheyAreMissed) {
  Report report;
  report.cells.push_back(domu_cell(64, 2'000'000, 2.0));     // 1 Mpps
  report.cells.push_back(domu_cell(65535, 20'000, 1.0));     // ~10.5 Gbit/s
  report.baselines.push_back({"memcpy", 65535, 0.1, 52.4});  // 0.2x of that
  const auto checks = check_targets(report);
  ASSERT_EQ(checks.size(), 4U);
  EXPECT_FALSE(checks[0].met);
  EXPECT_NE(checks[0].detail.find("10.0x short"), std::string::npos) << checks[0].detail;
  EXPECT_FALSE(checks[1].met);  // 0.25 copy calls per packet
  EXPECT_NE(checks[1].detail.find("8.0x too many"), std::string::npos) << checks[1].detail;
  EXPECT_FALSE(checks[2].met);
  ASSERT_TRUE(checks[3].value);
  EXPECT_NEAR(*checks[3].value, 0.2, 0.01);
  EXPECT_FALSE(checks[3].met);

  Report empty;
  for (const auto& check : check_targets(empty)) {
    EXPECT_FALSE(check.value);
    EXPECT_NE(check.detail.find("not measured"), std::string::npos);
  }
}

TEST(BenchReportTest, TableAndJsonCarryEveryCell) {
  Report report;
  report.date = "2026-11-30T00:00:00Z";
  report.cpus = 2;
  report.cell_seconds = 2;
  report.cells.push_back(domu_cell(64, 2'000'000, 2.0));
  CellResult failed;
  failed.cell = {Path::kDom0ToDomu, 4, 1500, Grants::kCopy};
  failed.error = "the backend granted 2 queue(s), not 4";
  report.cells.push_back(failed);
  report.baselines.push_back({"spsc", 64, 20.0, 10.24});
  const std::string table = format_table(report);
  EXPECT_NE(table.find("domu-domu"), std::string::npos);
  EXPECT_NE(table.find("    1.000"), std::string::npos) << table;
  EXPECT_NE(table.find("dom0-domu   4  1500  copy failed: the backend granted 2"),
            std::string::npos)
      << table;
  EXPECT_NE(table.find("0.050x spsc"), std::string::npos) << table;

  const auto json = to_json(report);
  ASSERT_EQ(json["cells"].size(), 2U);
  EXPECT_EQ(json["cells"][0]["path"], "domu-domu");
  EXPECT_DOUBLE_EQ(json["cells"][0]["mpps"].get<double>(), 1.0);
  EXPECT_EQ(json["cells"][0]["grants"], "copy");
  EXPECT_EQ(json["cells"][1]["error"], "the backend granted 2 queue(s), not 4");
  EXPECT_EQ(json["baselines"][0]["name"], "spsc");
  EXPECT_EQ(json["targets"].size(), 4U);
}

TEST(BenchArgumentsTest, VethEndsAreAnInterfaceWithAnOptionalNamespace) {
  const VethEnd bare = parse_veth_end("veth0");
  EXPECT_EQ(bare.netns, "");
  EXPECT_EQ(bare.ifname, "veth0");
  const VethEnd named = parse_veth_end("benchA:vb0");
  EXPECT_EQ(named.netns, "benchA");
  EXPECT_EQ(named.ifname, "vb0");
  for (const char* text : {"", "ns:", ":veth0", "../etc:veth0", "ns:a/b",
                           "ns:a-name-longer-than-15", "ns:two words", "ns:x:y"}) {
    try {
      parse_veth_end(text);
      ADD_FAILURE() << "accepted '" << text << "'";
    } catch (const std::invalid_argument& error) {
      EXPECT_NE(std::string(error.what()).find(std::string("'") + text + "'"), std::string::npos)
          << error.what();
    }
  }
}

TEST(BenchArgumentsTest, DomainsAreTwoDistinctDomUs) {
  EXPECT_NO_THROW(check_domains({1, 2}));
  EXPECT_NO_THROW(check_domains({7, 32751}));
  for (const std::vector<unsigned>& domains :
       {std::vector<unsigned>{0, 2}, {1, 1}, {1, 32752}, {0xFFFF, 1}, {1}, {1, 2, 3}}) {
    EXPECT_THROW(check_domains(domains), std::invalid_argument)
        << domains.size() << " domain(s), first " << domains.front();
  }
}

TEST(BenchArgumentsTest, MemcpyBuffersMustFitInHalfTheMemory) {
  constexpr std::size_t kGiB = std::size_t{1} << 30;
  EXPECT_NO_THROW(check_memcpy_mib(0, kGiB));  // sized from the cache
  EXPECT_NO_THROW(check_memcpy_mib(256, kGiB));
  EXPECT_THROW(check_memcpy_mib(257, kGiB), std::invalid_argument);
  EXPECT_THROW(check_memcpy_mib(100000, 8 * kGiB), std::invalid_argument);
}

}  // namespace
}  // namespace vifd::bench
