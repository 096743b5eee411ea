// The in-process switch between vifs of one vifd: domU -> domU frames move
// as grant-copy segments with both sides foreign (sender TX gref -> receiver
// RX gref), never through a dom0 buffer or a TAP; a receiver that posts no
// buffers stalls only itself; a stopping sender's grants are never copied
// after its stop() returns.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "backend/lib/datapath/switch.h"
#include "common/platform/sim/sim_host.h"
#include "tests/backend/datapath_harness.h"
#include "tests/net/frame_builder.h"

namespace vifd::backend::testing {
namespace {

class SwitchTest : public ::testing::Test {
 protected:
  SwitchTest() : host_({1, 2, 3}), network_switch_("xenbr0") {
    for (platform::DomId domid = 1; domid <= 3; ++domid) {
      frontends_.push_back(std::make_unique<TestFrontend>(host_, domid));
    }
  }

  // Guest N (1..3) with MAC 02:..:0N, no TAP: anything not switched is lost.
  BackendQueue& attach(platform::DomId domid, std::size_t backlog = 256,
                       std::chrono::milliseconds stall = std::chrono::milliseconds(10000),
                       bool mac_learning = false) {
    QueueOptions options;
    options.features.sg = true;
    options.features.mtu = 9000;  // the 9000-byte frames below
    options.mac_learning = mac_learning;
    options.network_switch = &network_switch_;
    options.mac = test_mac(static_cast<std::uint8_t>(domid));
    options.rx_backlog_frames = backlog;
    options.rx_stall_timeout = stall;
    backends_[domid] = std::make_unique<BackendQueue>(host_, frontend(domid), options);
    return *backends_[domid];
  }
  TestFrontend& frontend(platform::DomId domid) { return *frontends_[domid - 1]; }
  QueueStats stats(platform::DomId domid) { return backends_[domid]->stats(); }

  SimHost host_;
  Switch network_switch_;
  std::vector<std::unique_ptr<TestFrontend>> frontends_;
  std::array<std::unique_ptr<BackendQueue>, 4> backends_;
};

TEST_F(SwitchTest, FramesBetweenTwoGuestsAreCopiedGrantToGrant) {
  attach(1);
  attach(2);
  EXPECT_EQ(network_switch_.port_count(), 2U);
  frontend(2).post_rx(32);
  const auto small = ethernet_frame(test_mac(2), test_mac(1), 60, 1);
  const auto large = ethernet_frame(test_mac(2), test_mac(1), 9000, 2);
  frontend(1).send_frame(small);
  frontend(1).send_frame(large, 0, nullptr, 1500);  // 6 TX slots -> 3 RX pages

  const auto responses = frontend(2).wait_rx_responses(4);
  ASSERT_EQ(responses.size(), 4U);
  const auto frames = frontend(2).frames_of(responses);
  ASSERT_EQ(frames.size(), 2U);
  EXPECT_EQ(frames[0], small);
  EXPECT_EQ(frames[1], large);
  EXPECT_EQ(responses[1].flags & protocol::kRxfMoreData, protocol::kRxfMoreData);
  EXPECT_EQ(responses[3].flags & protocol::kRxfMoreData, 0);

  const auto tx = frontend(1).wait_tx_responses(7);
  ASSERT_EQ(tx.size(), 7U);
  for (const auto& response : tx) EXPECT_EQ(response.status, protocol::kRspOkay);

  ASSERT_TRUE(eventually([&] { return stats(1).forwarded_packets == 2; }));
  const QueueStats sender = stats(1);
  const QueueStats receiver = stats(2);
  EXPECT_EQ(sender.forwarded_segments, 7U) << "1 + 6 TX slots";
  EXPECT_EQ(receiver.switch_received_packets, 2U);
  // 60 bytes: 1 segment; 9000 bytes in 1500-byte source slots into 4096-byte
  // pages: 6 source slots, 2 of them split at a page boundary -> 8; 9 in all.
  EXPECT_EQ(receiver.switch_received_segments, 9U);
  EXPECT_EQ(receiver.rx_bytes, 9060U);
  EXPECT_EQ(sender.tap_writes + receiver.tap_writes, 0U) << "no frame went through a TAP";
  EXPECT_EQ(sender.total_drops() + receiver.total_drops(), 0U);
  // dom0's grant copies: the sender peeked 14 header bytes per packet, the
  // receiver moved everything else foreign-to-foreign.
  const auto dom0 = sim::read_counters(host_.dir(), 0);
  EXPECT_EQ(dom0.grant_copy_segments, sender.grant_copy_segments + receiver.grant_copy_segments);
  EXPECT_EQ(receiver.grant_copy_bytes, 9060U);
  EXPECT_EQ(sender.grant_copy_bytes, 2U * 14U);
}

TEST_F(SwitchTest, LearnsSourceMacsAndSendsUnknownDestinationsToTheHostPort) {
  attach(1);
  attach(2, 256, std::chrono::milliseconds(10000), /*mac_learning=*/true);
  frontend(1).post_rx(8);
  // A MAC guest 2 uses besides its configured one is learned from its TX
  // (the operator lets it learn: a guest that bridges).
  const protocol::MacAddress other = test_mac(0x42);
  const auto unknown = ethernet_frame(test_mac(0x77), other, 100, 1);
  frontend(2).send_frame(unknown);
  ASSERT_EQ(frontend(2).wait_tx_responses(1).size(), 1U);
  EXPECT_TRUE(eventually([&] { return stats(2).drop(DropReason::kTxNoHostPort) == 1; }))
      << "unknown unicast goes to the TAP (none here)";
  EXPECT_NE(network_switch_.lookup(std::span<const std::uint8_t, 6>(other.octets)), 0);

  const auto reply = ethernet_frame(other, test_mac(1), 100, 2);
  frontend(1).send_frame(reply);
  frontend(2).post_rx(8);
  const auto responses = frontend(2).wait_rx_responses(1);
  ASSERT_EQ(responses.size(), 1U);
  EXPECT_EQ(frontend(2).frames_of(responses).at(0), reply);
}

TEST_F(SwitchTest, AValidGsoFrameIsForwardedWithItsMetadataAndChecksumLocated) {
  attach(1);
  QueueOptions options;
  options.features.sg = true;
  options.features.gso_tcpv4 = true;
  options.network_switch = &network_switch_;
  options.mac = test_mac(2);
  backends_[2] = std::make_unique<BackendQueue>(host_, frontend(2), options);
  frontend(2).post_rx(16);
  auto tso = net::testing::build_frame({.payload = 6000}).bytes;
  const protocol::MacAddress destination = test_mac(2);
  const protocol::MacAddress source = test_mac(1);
  std::copy(destination.octets.begin(), destination.octets.end(), tso.begin());
  std::copy(source.octets.begin(), source.octets.end(), tso.begin() + 6);
  protocol::ExtraInfo gso{};
  gso.type = protocol::kExtraTypeGso;
  gso.u.gso.size = 1448;
  gso.u.gso.type = protocol::kGsoTypeTcpv4;
  // No csum_blank: the switch seeds the pseudo-header sum into its header
  // copy and hands the receiver a partial checksum, as netback does.
  frontend(1).send_frame(tso, protocol::kTxfDataValidated, &gso, 2000);
  const auto responses = frontend(2).wait_rx_responses(3);
  ASSERT_GE(responses.size(), 3U) << to_json(stats(1)).dump() << to_json(stats(2)).dump();
  EXPECT_NE(responses[0].flags & protocol::kRxfExtraInfo, 0);
  EXPECT_NE(responses[0].flags & protocol::kRxfCsumBlank, 0);
  protocol::ExtraInfo extra{};
  std::memcpy(&extra, &responses[1], sizeof(extra));
  EXPECT_EQ(extra.type, protocol::kExtraTypeGso);
  EXPECT_EQ(extra.u.gso.size, 1448);
  const auto frames = frontend(2).frames_of(responses);
  ASSERT_EQ(frames.size(), 1U);
  ASSERT_EQ(frames[0].size(), tso.size());
  // Only the checksum field differs: the pseudo-header sum was seeded.
  net::ChecksumLocation where;
  ASSERT_EQ(net::locate_checksum(tso, where), net::PacketStatus::kOk);
  const std::size_t field = std::size_t{where.csum_start} + where.csum_offset;
  EXPECT_TRUE(
      std::equal(frames[0].begin(), frames[0].begin() + static_cast<long>(field), tso.begin()));
  EXPECT_TRUE(std::equal(frames[0].begin() + static_cast<long>(field + 2), frames[0].end(),
                         tso.begin() + static_cast<long>(field + 2)));
  EXPECT_EQ(stats(1).total_drops(), 0U);
  EXPECT_EQ(stats(1).tap_writes, 0U);
}

TEST_F(SwitchTest, ABatchOfOffloadFramesIsOneGrantCopyCallOnTheSender) {
  attach(1);
  QueueOptions options;
  options.features.sg = true;
  options.features.gso_tcpv4 = true;
  options.features.csum_ipv4 = true;
  options.network_switch = &network_switch_;
  options.mac = test_mac(2);
  backends_[2] = std::make_unique<BackendQueue>(host_, frontend(2), options);
  frontend(2).post_rx(32);
  auto tcp = net::testing::build_frame({.payload = 200}).bytes;
  const protocol::MacAddress destination = test_mac(2);
  const protocol::MacAddress source = test_mac(1);
  std::copy(destination.octets.begin(), destination.octets.end(), tcp.begin());
  std::copy(source.octets.begin(), source.octets.end(), tcp.begin() + 6);
  // Published together, taken as one batch: the header peek copies what the
  // offload check needs in the same call as the Ethernet headers.
  constexpr std::size_t kFrames = 8;
  std::vector<protocol::TxRequest> requests;
  for (std::uint16_t i = 0; i < kFrames; ++i) {
    std::memcpy(frontend(1).tx_page(i), tcp.data(), tcp.size());
    requests.push_back(
        {frontend(1).tx_page_ref(i), 0,
         static_cast<std::uint16_t>(protocol::kTxfCsumBlank | protocol::kTxfDataValidated), i,
         static_cast<std::uint16_t>(tcp.size())});
  }
  frontend(1).push_raw(requests);
  ASSERT_EQ(frontend(1).wait_tx_responses(kFrames).size(), kFrames);
  ASSERT_TRUE(eventually([&] { return stats(1).forwarded_packets == kFrames; }));
  const QueueStats sender = stats(1);
  EXPECT_EQ(sender.total_drops(), 0U);
  EXPECT_EQ(sender.tap_writes, 0U);
  EXPECT_EQ(sender.grant_copy_calls, 1U) << "one header peek for the batch";
  EXPECT_EQ(frontend(2).wait_rx_responses(kFrames).size(), kFrames);
}

TEST_F(SwitchTest, AReceiverThatPostsNothingStallsOnlyItself) {
  attach(1);
  attach(2, /*backlog=*/8, std::chrono::milliseconds(200));
  attach(3);
  frontend(3).post_rx(64);
  // 20 frames to the silent guest 2, 20 to guest 3, interleaved.
  for (std::uint8_t i = 0; i < 20; ++i) {
    frontend(1).send_frame(ethernet_frame(test_mac(2), test_mac(1), 200, i));
    frontend(1).send_frame(ethernet_frame(test_mac(3), test_mac(1), 200, i));
  }
  const auto delivered = frontend(3).wait_rx_responses(20);
  EXPECT_EQ(delivered.size(), 20U) << "guest 3 is not slowed by guest 2";
  // Every TX request is answered: frames beyond guest 2's backlog at once,
  // the backlog itself when the stall timer fires.
  const auto tx = frontend(1).wait_tx_responses(40);
  ASSERT_EQ(tx.size(), 40U);
  for (const auto& response : tx) EXPECT_EQ(response.status, protocol::kRspOkay);
  ASSERT_TRUE(eventually([&] { return stats(2).rx_stalls == 1; }));
  const QueueStats silent = stats(2);
  // Normally 12 beyond the backlog of 8, then 8 flushed by the stall; on a
  // slow machine the stall may fire before the last frames arrive.
  EXPECT_EQ(silent.drop(DropReason::kRxNoBuffers) + silent.drop(DropReason::kRxStallFlush), 20U);
  EXPECT_LE(silent.drop(DropReason::kRxStallFlush), 8U);
  EXPECT_GE(silent.drop(DropReason::kRxStallFlush), 1U);
  EXPECT_EQ(stats(1).drop(DropReason::kTxSwitchDropped), 20U);
  EXPECT_EQ(stats(1).forwarded_packets, 20U);
  EXPECT_EQ(stats(3).switch_received_packets, 20U);
  EXPECT_EQ(stats(3).total_drops(), 0U);

  // Once guest 2 posts again, it receives.
  frontend(2).post_rx(4);
  frontend(1).send_frame(ethernet_frame(test_mac(2), test_mac(1), 200, 99));
  EXPECT_EQ(frontend(2).wait_rx_responses(1).size(), 1U);
}

TEST_F(SwitchTest, StoppingASenderCompletesItsFramesWaitingInAnotherBacklog) {
  attach(1);
  attach(2);  // posts nothing; its stall timer is far away
  for (std::uint8_t i = 0; i < 5; ++i) {
    frontend(1).send_frame(ethernet_frame(test_mac(2), test_mac(1), 300, i));
  }
  ASSERT_TRUE(eventually([&] { return stats(1).tx_packets == 5; }));
  // stop() returns only once guest 2's queue gave the frames back.
  backends_[1]->stop();
  EXPECT_EQ(stats(1).drop(DropReason::kTxSwitchDropped), 5U);
  EXPECT_EQ(stats(2).drop(DropReason::kRxPortStopped), 5U);
  EXPECT_EQ(frontend(1).wait_tx_responses(5).size(), 5U);
  EXPECT_EQ(network_switch_.port_count(), 1U);
  // Guest 2 posting now receives nothing from the stopped sender, once its
  // queue has looked at the buffers.
  frontend(2).post_rx(8);
  ASSERT_TRUE(backends_[2]->settle());
  EXPECT_EQ(stats(2).ring.rx_req_prod, 8U);
  EXPECT_EQ(stats(2).rx_packets, 0U);
  EXPECT_TRUE(frontend(2).wait_rx_responses(0).empty());
  EXPECT_EQ(network_switch_.lookup(std::span<const std::uint8_t, 6>(test_mac(1).octets)), 0)
      << "a departed port's MACs are forgotten";
}

TEST_F(SwitchTest, StoppingAReceiverDropsWhatWaitsForIt) {
  attach(1);
  attach(2);
  for (std::uint8_t i = 0; i < 3; ++i) {
    frontend(1).send_frame(ethernet_frame(test_mac(2), test_mac(1), 300, i));
  }
  ASSERT_TRUE(eventually([&] { return stats(1).tx_packets == 3; }));
  backends_[2]->stop();
  const auto tx = frontend(1).wait_tx_responses(3);
  ASSERT_EQ(tx.size(), 3U);
  EXPECT_TRUE(eventually([&] { return stats(1).drop(DropReason::kTxSwitchDropped) == 3; }));
  // Now guest 2's MAC is unknown: frames for it go to the host port.
  frontend(1).send_frame(ethernet_frame(test_mac(2), test_mac(1), 300, 9));
  EXPECT_TRUE(eventually([&] { return stats(1).drop(DropReason::kTxNoHostPort) == 1; }));
}

}  // namespace
}  // namespace vifd::backend::testing
