// A hostile guest on the in-process switch: what the switch admits. Each
// attack is tried by guest 1 against guests 2 and 3 on one switch; each test
// asserts that the offender's frame is dropped and counted under a reason
// that names the cause, and that a neighbour still gets its frames.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <vector>

#include "backend/lib/datapath/switch.h"
#include "tests/backend/datapath_harness.h"
#include "tests/net/frame_builder.h"

namespace vifd::backend::testing {
namespace {

using net::testing::build_frame;

constexpr std::uint32_t ipv4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
  return std::uint32_t{a} << 24 | std::uint32_t{b} << 16 | std::uint32_t{c} << 8 | d;
}

void put32(std::vector<std::uint8_t>& frame, std::size_t at, std::uint32_t value) {
  for (std::size_t i = 0; i < 4; ++i) {
    frame[at + i] = static_cast<std::uint8_t>(value >> (24 - 8 * i));
  }
}

void set_macs(std::vector<std::uint8_t>& frame, const protocol::MacAddress& destination,
              const protocol::MacAddress& source) {
  std::copy(destination.octets.begin(), destination.octets.end(), frame.begin());
  std::copy(source.octets.begin(), source.octets.end(), frame.begin() + 6);
}

// A UDP/IPv4 frame from `source` (ports 1000 -> 2000 unless given).
std::vector<std::uint8_t> udp_frame(const protocol::MacAddress& destination,
                                    const protocol::MacAddress& source, std::uint32_t from,
                                    std::uint16_t source_port = 1000,
                                    std::uint16_t destination_port = 2000) {
  auto built = build_frame({.l4_protocol = 17, .payload = 200});
  auto& frame = built.bytes;
  set_macs(frame, destination, source);
  put32(frame, built.ip_offset + 12, from);
  put32(frame, built.ip_offset + 16, ipv4(10, 0, 0, 3));
  frame[built.l4_offset] = static_cast<std::uint8_t>(source_port >> 8);
  frame[built.l4_offset + 1] = static_cast<std::uint8_t>(source_port);
  frame[built.l4_offset + 2] = static_cast<std::uint8_t>(destination_port >> 8);
  frame[built.l4_offset + 3] = static_cast<std::uint8_t>(destination_port);
  return frame;
}

// An Ethernet/IPv4 ARP request whose sender protocol address is `sender`.
std::vector<std::uint8_t> arp_frame(const protocol::MacAddress& destination,
                                    const protocol::MacAddress& source, std::uint32_t sender) {
  std::vector<std::uint8_t> frame(60, 0);
  set_macs(frame, destination, source);
  frame[12] = 0x08;
  frame[13] = 0x06;
  const std::array<std::uint8_t, 8> fixed{0, 1, 0x08, 0x00, 6, 4, 0, 1};  // Ethernet, IPv4, request
  std::copy(fixed.begin(), fixed.end(), frame.begin() + 14);
  std::copy(source.octets.begin(), source.octets.end(), frame.begin() + 22);
  put32(frame, 28, sender);
  put32(frame, 38, ipv4(10, 0, 0, 3));
  return frame;
}

class SwitchHostileTest : public ::testing::Test {
 protected:
  SwitchHostileTest() : host_({1, 2, 3}), network_switch_("xenbr0") {
    for (platform::DomId domid = 1; domid <= 3; ++domid) {
      frontends_.push_back(std::make_unique<TestFrontend>(host_, domid));
    }
  }

  // Guest N (1..3) with MAC 02:..:0N and no TAP; `adjust` changes its options.
  BackendQueue& attach(platform::DomId domid,
                       const std::function<void(QueueOptions&)>& adjust = nullptr) {
    QueueOptions options;
    options.features.sg = true;
    options.network_switch = &network_switch_;
    options.mac = test_mac(static_cast<std::uint8_t>(domid));
    if (adjust) {
      adjust(options);
    }
    backends_[domid] = std::make_unique<BackendQueue>(host_, frontend(domid), options);
    return *backends_[domid];
  }
  TestFrontend& frontend(platform::DomId domid) { return *frontends_[domid - 1]; }
  QueueStats stats(platform::DomId domid) { return backends_[domid]->stats(); }
  PortTag tag_of(platform::DomId domid) {
    return network_switch_.lookup(
        std::span<const std::uint8_t, 6>(test_mac(static_cast<std::uint8_t>(domid)).octets));
  }

  // Guest `from` sends one frame to `to`, which must receive exactly it.
  void expect_delivered(platform::DomId from, platform::DomId to, std::uint8_t seed) {
    const auto frame = ethernet_frame(test_mac(static_cast<std::uint8_t>(to)),
                                      test_mac(static_cast<std::uint8_t>(from)), 300, seed);
    frontend(to).post_rx(1);
    frontend(from).send_frame(frame);
    const auto responses = frontend(to).wait_rx_responses(1);
    ASSERT_EQ(responses.size(), 1U);
    EXPECT_EQ(frontend(to).frames_of(responses).at(0), frame);
  }

  SimHost host_;
  Switch network_switch_;
  std::vector<std::unique_ptr<TestFrontend>> frontends_;
  std::array<std::unique_ptr<BackendQueue>, 4> backends_;
};

TEST_F(SwitchHostileTest, ANeighboursMacAsSourceIsDroppedAndCannotStealItsTraffic) {
  attach(1);
  attach(2);
  attach(3);
  const PortTag victim = tag_of(2);
  frontend(3).post_rx(8);
  // Guest 1 claims guest 2's MAC, towards guest 3 (which would make a
  // learning switch send guest 2's unicast to guest 1).
  frontend(1).send_frame(ethernet_frame(test_mac(3), test_mac(2), 100, 1));
  const auto answered = frontend(1).wait_tx_responses(1);
  ASSERT_EQ(answered.size(), 1U);
  EXPECT_EQ(answered[0].status, protocol::kRspOkay);
  EXPECT_TRUE(eventually([&] { return stats(1).drop(DropReason::kTxSpoofedSourceMac) == 1; }));
  ASSERT_TRUE(backends_[3]->settle());
  EXPECT_EQ(stats(3).rx_packets, 0U) << "the spoofed frame reached nobody";
  EXPECT_EQ(tag_of(2), victim) << "the configured MAC still points at its vif";
  // Guest 3's unicast to guest 2 still reaches guest 2, not guest 1.
  expect_delivered(3, 2, 7);
  EXPECT_EQ(stats(1).rx_packets, 0U);
  EXPECT_EQ(stats(1).forwarded_packets, 0U);
}

TEST_F(SwitchHostileTest, AVifAloneOnItsSwitchIsPinnedOnItsTapFramesToo) {
  FakeTap tap;
  attach(1, [&](QueueOptions& options) { options.tap_fd = tap.queue_fd(); });
  const auto spoofed = ethernet_frame(test_mac(9), test_mac(2), 100, 1);
  const auto honest = ethernet_frame(test_mac(9), test_mac(1), 100, 2);
  frontend(1).send_frame(spoofed);
  frontend(1).send_frame(honest);
  ASSERT_EQ(frontend(1).wait_tx_responses(2).size(), 2U);
  EXPECT_EQ(tap.receive(), honest) << "only the honest frame reaches the bridge";
  EXPECT_TRUE(eventually([&] { return stats(1).drop(DropReason::kTxSpoofedSourceMac) == 1; }));
  EXPECT_EQ(stats(1).tap_writes, 1U);
  // No header peek for a lone port: one grant-copy call per TX batch (the
  // two frames may arrive in one batch or two).
  const QueueStats lone = stats(1);
  std::uint64_t batches = 0;
  for (const auto count : lone.batch_histogram) {
    batches += count;
  }
  EXPECT_EQ(lone.grant_copy_calls, batches) << "no header peek for a lone port";
  // The queue's thread polls the TAP: it stops before the TAP goes.
  backends_[1].reset();
}

TEST_F(SwitchHostileTest, ALearningVifCannotTakeOverAConfiguredMac) {
  attach(1, [](QueueOptions& options) { options.mac_learning = true; });
  attach(2);
  attach(3);
  const PortTag victim = tag_of(2);
  frontend(1).send_frame(ethernet_frame(test_mac(3), test_mac(2), 100, 1));
  ASSERT_EQ(frontend(1).wait_tx_responses(1).size(), 1U);
  EXPECT_TRUE(eventually([&] { return stats(1).drop(DropReason::kTxSpoofedSourceMac) == 1; }));
  EXPECT_EQ(tag_of(2), victim);
  EXPECT_EQ(network_switch_.learned_count(tag_of(1)), 0U);
  expect_delivered(3, 2, 8);
}

TEST_F(SwitchHostileTest, ARandomSourceMacFloodIsDroppedFromAPinnedVif) {
  attach(1);
  attach(2);
  attach(3);
  std::mt19937 random(9);
  constexpr std::size_t kFrames = 512;
  for (std::size_t sent = 0; sent < kFrames; sent += 32) {
    for (std::size_t i = 0; i < 32; ++i) {
      protocol::MacAddress source;
      for (auto& octet : source.octets) {
        octet = static_cast<std::uint8_t>(random());
      }
      source.octets[0] &= 0xFE;  // unicast
      frontend(1).send_frame(ethernet_frame(test_mac(3), source, 80, 1));
    }
    ASSERT_EQ(frontend(1).wait_tx_responses(32).size(), 32U);
  }
  EXPECT_TRUE(
      eventually([&] { return stats(1).drop(DropReason::kTxSpoofedSourceMac) == kFrames; }));
  EXPECT_EQ(network_switch_.learned_count(tag_of(1)), 0U);
  EXPECT_NE(tag_of(2), 0);
  EXPECT_NE(tag_of(3), 0);
  expect_delivered(2, 3, 1);
  expect_delivered(3, 2, 2);
}

TEST_F(SwitchHostileTest, ARandomSourceMacFloodFromALearningVifCannotEvictTheTable) {
  attach(1, [](QueueOptions& options) { options.mac_learning = true; });
  attach(2);
  attach(3);
  const PortTag tag2 = tag_of(2);
  const PortTag tag3 = tag_of(3);
  std::mt19937 random(11);
  // Far more MACs than the table holds around any bucket.
  constexpr std::size_t kFrames = 2048;
  for (std::size_t sent = 0; sent < kFrames; sent += 32) {
    for (std::size_t i = 0; i < 32; ++i) {
      protocol::MacAddress source;
      for (auto& octet : source.octets) {
        octet = static_cast<std::uint8_t>(random());
      }
      source.octets[0] &= 0xFE;
      // Broadcast: admitted (learning is allowed) and flooded to the TAP.
      frontend(1).send_frame(ethernet_frame(
          protocol::MacAddress{{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}}, source, 80, 1));
    }
    ASSERT_EQ(frontend(1).wait_tx_responses(32).size(), 32U);
  }
  ASSERT_TRUE(eventually([&] { return stats(1).drop(DropReason::kTxNoHostPort) == kFrames; }));
  EXPECT_EQ(network_switch_.learned_count(tag_of(1)), Switch::kMaxLearnedPerPort)
      << "learning stops at the per-port bound";
  EXPECT_EQ(tag_of(2), tag2) << "configured entries are never evicted";
  EXPECT_EQ(tag_of(3), tag3);
  expect_delivered(2, 3, 3);
  expect_delivered(3, 2, 4);
}

class SwitchIpFilterTest : public SwitchHostileTest {
 protected:
  void SetUp() override {
    attach(1, [](QueueOptions& options) {
      options.allowed_ipv4 = {{ipv4(10, 0, 0, 1), 32}, {ipv4(192, 168, 7, 0), 24}};
    });
    attach(3);
    frontend(3).post_rx(32);
  }
};

TEST_F(SwitchIpFilterTest, ASpoofedIpv4SourceIsDroppedAllowedOnesPass) {
  const auto spoofed = udp_frame(test_mac(3), test_mac(1), ipv4(10, 0, 0, 3));
  const auto allowed_host = udp_frame(test_mac(3), test_mac(1), ipv4(10, 0, 0, 1));
  const auto allowed_net = udp_frame(test_mac(3), test_mac(1), ipv4(192, 168, 7, 200));
  // vif-bridge always lets DHCP requests (UDP 68 -> 67) through.
  const auto dhcp = udp_frame(test_mac(3), test_mac(1), 0, 68, 67);
  frontend(1).send_frame(spoofed);
  frontend(1).send_frame(allowed_host);
  frontend(1).send_frame(allowed_net);
  frontend(1).send_frame(dhcp);
  const auto responses = frontend(3).wait_rx_responses(3);
  ASSERT_EQ(responses.size(), 3U);
  const auto frames = frontend(3).frames_of(responses);
  EXPECT_EQ(frames.at(0), allowed_host);
  EXPECT_EQ(frames.at(1), allowed_net);
  EXPECT_EQ(frames.at(2), dhcp);
  EXPECT_TRUE(eventually([&] { return stats(1).drop(DropReason::kTxIpSourceNotAllowed) == 1; }));
  EXPECT_EQ(stats(1).total_drops(), 1U);
}

TEST_F(SwitchIpFilterTest, ASpoofedArpSenderIsDroppedAllowedOnesAndProbesPass) {
  const auto spoofed = arp_frame(test_mac(3), test_mac(1), ipv4(10, 0, 0, 3));
  const auto allowed = arp_frame(test_mac(3), test_mac(1), ipv4(10, 0, 0, 1));
  const auto probe = arp_frame(test_mac(3), test_mac(1), 0);  // RFC 5227
  frontend(1).send_frame(spoofed);
  frontend(1).send_frame(allowed);
  frontend(1).send_frame(probe);
  const auto responses = frontend(3).wait_rx_responses(2);
  ASSERT_EQ(responses.size(), 2U);
  const auto frames = frontend(3).frames_of(responses);
  EXPECT_EQ(frames.at(0), allowed);
  EXPECT_EQ(frames.at(1), probe);
  EXPECT_TRUE(eventually([&] { return stats(1).drop(DropReason::kTxArpSenderNotAllowed) == 1; }));
  EXPECT_EQ(stats(1).total_drops(), 1U);
}

TEST_F(SwitchIpFilterTest, AnIpv4HeaderOutsideTheFirstSlotCannotBeCheckedAndIsDropped) {
  // The IPv4 header starts beyond the 14 bytes of the first slot: nothing
  // the switch could check, so nothing it forwards.
  auto frame = udp_frame(test_mac(3), test_mac(1), ipv4(10, 0, 0, 1));
  frontend(1).send_frame(frame, 0, nullptr, 14);
  ASSERT_FALSE(frontend(1).wait_tx_responses(1).empty());
  EXPECT_TRUE(eventually([&] { return stats(1).drop(DropReason::kTxIpSourceNotAllowed) == 1; }));
  // A well-formed one still passes.
  frontend(1).send_frame(frame);
  EXPECT_EQ(frontend(3).wait_rx_responses(1).size(), 1U);
}

TEST_F(SwitchHostileTest, GsoMetadataOnANonIpFrameIsDroppedLikeOnTheTapPath) {
  attach(1);
  attach(3, [](QueueOptions& options) { options.features.gso_tcpv4 = true; });
  frontend(3).post_rx(16);
  protocol::ExtraInfo gso{};
  gso.type = protocol::kExtraTypeGso;
  gso.u.gso.size = 1400;
  gso.u.gso.type = protocol::kGsoTypeTcpv4;
  frontend(1).send_frame(ethernet_frame(test_mac(3), test_mac(1), 3000, 1),
                         protocol::kTxfCsumBlank | protocol::kTxfDataValidated, &gso);
  ASSERT_EQ(frontend(1).wait_tx_responses(2).size(), 2U) << "the data slot and the extra";
  EXPECT_TRUE(eventually([&] { return stats(1).drop(DropReason::kTxBadOffload) == 1; }));
  // A checksum offset that cannot be located (csum_blank on a non-IP frame).
  frontend(1).send_frame(ethernet_frame(test_mac(3), test_mac(1), 300, 2),
                         protocol::kTxfCsumBlank | protocol::kTxfDataValidated);
  EXPECT_TRUE(eventually([&] { return stats(1).drop(DropReason::kTxBadOffload) == 2; }));
  ASSERT_TRUE(backends_[3]->settle());
  EXPECT_EQ(stats(3).rx_packets, 0U);
  EXPECT_EQ(stats(3).total_drops(), 0U) << "refused at the sender, not at the receiver";
  expect_delivered(1, 3, 3);
}

TEST_F(SwitchHostileTest, AnOversizeNonGsoFrameForAnMtu1500ReceiverIsDropped) {
  attach(1, [](QueueOptions& options) { options.features.mtu = 65000; });
  attach(3);  // MTU 1500
  frontend(3).post_rx(32);
  frontend(1).send_frame(ethernet_frame(test_mac(3), test_mac(1), 60000, 1));
  ASSERT_EQ(frontend(1).wait_tx_responses(15).size(), 15U);
  EXPECT_TRUE(eventually([&] { return stats(1).drop(DropReason::kTxExceedsReceiverMtu) == 1; }));
  ASSERT_TRUE(backends_[3]->settle());
  EXPECT_EQ(stats(3).rx_packets, 0U);
  // MTU plus an Ethernet header (and room for a VLAN tag) passes.
  const auto full = ethernet_frame(test_mac(3), test_mac(1), 1500 + 14, 2);
  frontend(1).send_frame(full);
  const auto responses = frontend(3).wait_rx_responses(1);
  ASSERT_EQ(responses.size(), 1U);
  EXPECT_EQ(frontend(3).frames_of(responses).at(0), full);
}

TEST_F(SwitchHostileTest, ASenderRewritingItsPageAfterTheCheckCannotChangeWhatIsDelivered) {
  // The receiver's grant copies run a hook first: the first time it copies
  // from guest 1's TX page it rewrites that page as a hostile guest would
  // between the switch's check and the copy (another source MAC and a
  // source address outside `ip`).
  const auto faults = std::make_shared<vifd::testing::GrantFaults>();
  attach(1, [](QueueOptions& options) { options.allowed_ipv4 = {{ipv4(10, 0, 0, 1), 32}}; });
  attach(2);
  attach(3, [&](QueueOptions& options) { options.grant_faults = faults; });
  const platform::GrantRef page_ref = frontend(1).tx_page_ref(0);
  std::uint8_t* page = frontend(1).tx_page(0);
  std::atomic<int> rewrites{0};
  faults->fail_segments([&](std::uint64_t, const platform::GrantCopySegment& segment) {
    if ((segment.flags & platform::kCopySourceGref) != 0 &&
        segment.source.foreign.ref == page_ref && rewrites.fetch_add(1) == 0) {
      const auto neighbour = test_mac(2);
      std::memcpy(page + 6, neighbour.octets.data(), 6);
      const std::array<std::uint8_t, 4> outside{10, 0, 0, 66};
      std::memcpy(page + 14 + 12, outside.data(), outside.size());  // IPv4 source
    }
    return false;
  });
  const auto checked = udp_frame(test_mac(3), test_mac(1), ipv4(10, 0, 0, 1));
  frontend(3).post_rx(4);
  frontend(1).send_frame(checked);
  const auto responses = frontend(3).wait_rx_responses(1);
  ASSERT_EQ(responses.size(), 1U);
  EXPECT_GE(rewrites.load(), 1) << "the page was rewritten before the receiver's copy";
  EXPECT_EQ(frontend(3).frames_of(responses).at(0), checked)
      << "the checked header is what the receiver got";
  EXPECT_EQ(stats(1).total_drops(), 0U);
  expect_delivered(2, 3, 5);
}

}  // namespace
}  // namespace vifd::backend::testing
