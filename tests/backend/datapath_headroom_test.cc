// feature-xdp-headroom on the RX path: the first slot of every packet starts
// its data at the frontend's xdp-headroom (the response's offset says so,
// its status is the data's length) and an XDP extra names the headroom
// after the first slot, behind a GSO extra if there is one; later slots
// start at 0. Frames from the TAP and from the switch alike, a headroom
// that leaves less than the checked header in the first slot, a change
// while frames wait, and frames the headroom makes too large.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <vector>

#include "backend/lib/datapath/switch.h"
#include "tests/backend/datapath_harness.h"

namespace vifd::backend::testing {
namespace {

using protocol::RxResponse;

protocol::ExtraInfo as_extra(const RxResponse& response) {
  protocol::ExtraInfo extra{};
  std::memcpy(&extra, &response, sizeof(extra));
  return extra;
}

class HeadroomTest : public ::testing::Test {
 protected:
  HeadroomTest() : host_({1}), frontend_(host_, 1) {}

  void start(std::uint16_t headroom, bool sg = true, bool gso = false) {
    headroom_->store(headroom);
    QueueOptions options;
    options.tap_fd = tap_.queue_fd();
    options.features.sg = sg;
    options.features.gso_tcpv4 = gso;
    options.features.mtu = sg ? 9000 : 1500;
    options.features.xdp_headroom = headroom;
    options.xdp_headroom = headroom_;
    backend_ = std::make_unique<BackendQueue>(host_, frontend_, options);
  }
  QueueStats stats() { return backend_->stats(); }

  // The bytes in front of the data of a response's page: never written.
  bool untouched_before(const RxResponse& response) const {
    const std::uint8_t* page = frontend_.rx_page(response.id);
    return std::all_of(page, page + response.offset, [](std::uint8_t b) { return b == 0; });
  }

  SimHost host_;
  TestFrontend frontend_;
  FakeTap tap_;
  std::shared_ptr<std::atomic<std::uint16_t>> headroom_ =
      std::make_shared<std::atomic<std::uint16_t>>(0);
  std::unique_ptr<BackendQueue> backend_;
};

TEST_F(HeadroomTest, TapFramesStartAfterTheHeadroomAndAnnounceIt) {
  start(256);
  frontend_.post_rx(8);
  const auto small = ethernet_frame(test_mac(1), test_mac(9), 60, 1);
  const auto large = ethernet_frame(test_mac(1), test_mac(9), 9000, 2);
  tap_.send(small);
  tap_.send(large);
  // small: data + XDP extra; large: 3 data slots (3840 + 4096 + 1064) + extra.
  const auto responses = frontend_.wait_rx_responses(6);
  ASSERT_EQ(responses.size(), 6U);
  EXPECT_EQ(responses[0].offset, 256);
  EXPECT_EQ(responses[0].status, 60);
  EXPECT_EQ(responses[0].flags & protocol::kRxfExtraInfo, protocol::kRxfExtraInfo);
  const protocol::ExtraInfo extra = as_extra(responses[1]);
  EXPECT_EQ(extra.type, protocol::kExtraTypeXdp);
  EXPECT_EQ(extra.u.pad[0], 256) << "u.xdp.headroom";
  EXPECT_EQ(extra.flags & protocol::kExtraFlagMore, 0);
  EXPECT_EQ(responses[2].offset, 256);
  EXPECT_EQ(responses[2].status, 4096 - 256);
  EXPECT_EQ(as_extra(responses[3]).type, protocol::kExtraTypeXdp);
  EXPECT_EQ(responses[4].offset, 0) << "only the first slot has headroom";
  EXPECT_EQ(responses[4].status, 4096);
  EXPECT_EQ(responses[5].status, 9000 - (4096 - 256) - 4096);
  EXPECT_TRUE(untouched_before(responses[0]));
  EXPECT_TRUE(untouched_before(responses[2]));
  const auto frames = frontend_.frames_of(responses);
  ASSERT_EQ(frames.size(), 2U);
  EXPECT_EQ(frames[0], small);
  EXPECT_EQ(frames[1], large);
  EXPECT_EQ(stats().total_drops(), 0U);
}

TEST_F(HeadroomTest, GsoExtraComesFirstAndChainsToTheXdpExtra) {
  start(256, true, true);
  frontend_.post_rx(8);
  net::VirtioNetHdr gso{};
  gso.flags = net::kVirtioNetHdrFNeedsCsum;
  gso.gso_type = net::kVirtioNetHdrGsoTcpv4;
  gso.gso_size = 1448;
  gso.hdr_len = 54;
  gso.csum_start = 34;
  gso.csum_offset = 16;
  const auto frame = tcp4_frame(test_mac(1), test_mac(9), 5000);
  tap_.send(frame, gso);
  const auto responses = frontend_.wait_rx_responses(4);
  ASSERT_EQ(responses.size(), 4U);  // data, GSO extra, XDP extra, data
  EXPECT_EQ(responses[0].offset, 256);
  const protocol::ExtraInfo first = as_extra(responses[1]);
  const protocol::ExtraInfo second = as_extra(responses[2]);
  EXPECT_EQ(first.type, protocol::kExtraTypeGso);
  EXPECT_EQ(first.flags & protocol::kExtraFlagMore, protocol::kExtraFlagMore);
  EXPECT_EQ(second.type, protocol::kExtraTypeXdp);
  EXPECT_EQ(second.flags & protocol::kExtraFlagMore, 0);
  const auto frames = frontend_.frames_of(responses);
  ASSERT_EQ(frames.size(), 1U);
  EXPECT_EQ(frames[0].size(), frame.size());
}

TEST_F(HeadroomTest, NoHeadroomNoExtraAndOffsetZero) {
  start(0);
  frontend_.post_rx(2);
  const auto small = ethernet_frame(test_mac(1), test_mac(9), 60, 1);
  tap_.send(small);
  const auto responses = frontend_.wait_rx_responses(1);
  ASSERT_EQ(responses.size(), 1U);
  EXPECT_EQ(responses[0].offset, 0);
  EXPECT_EQ(responses[0].flags & protocol::kRxfExtraInfo, 0);
  EXPECT_EQ(frontend_.frames_of(responses).at(0), small);
}

TEST_F(HeadroomTest, AChangeAppliesToFramesDeliveredAfterIt) {
  start(0);
  frontend_.post_rx(2);
  const auto first = ethernet_frame(test_mac(1), test_mac(9), 100, 1);
  tap_.send(first);
  auto responses = frontend_.wait_rx_responses(1);
  ASSERT_EQ(responses.size(), 1U);
  EXPECT_EQ(responses[0].offset, 0);
  headroom_->store(512);
  const auto second = ethernet_frame(test_mac(1), test_mac(9), 100, 2);
  tap_.send(second);
  frontend_.post_rx(2);
  responses = frontend_.wait_rx_responses(2);
  ASSERT_EQ(responses.size(), 2U);
  EXPECT_EQ(responses[0].offset, 512);
  EXPECT_EQ(as_extra(responses[1]).u.pad[0], 512);
  EXPECT_EQ(frontend_.frames_of(responses).at(0), second);
}

TEST_F(HeadroomTest, WithoutSgAFrameTheHeadroomPushesPastAPageIsDropped) {
  start(3000, false);
  frontend_.post_rx(4);
  tap_.send(ethernet_frame(test_mac(1), test_mac(9), 1514, 1));  // 3000 + 1514 > 4096
  const auto fits = ethernet_frame(test_mac(1), test_mac(9), 1000, 2);
  tap_.send(fits);
  const auto responses = frontend_.wait_rx_responses(2);
  ASSERT_EQ(responses.size(), 2U);
  EXPECT_EQ(responses[0].offset, 3000);
  EXPECT_EQ(frontend_.frames_of(responses).at(0), fits);
  EXPECT_EQ(stats().drop(DropReason::kRxFrameTooLarge), 1U);
}

TEST_F(HeadroomTest, AHeadroomRaisedWhileAFrameWaitsDropsItIfItNoLongerFits) {
  start(0, false);
  tap_.send(ethernet_frame(test_mac(1), test_mac(9), 1514, 1));  // waits: no buffers
  ASSERT_TRUE(eventually([&] { return stats().tap_reads == 1; }));
  headroom_->store(3000);
  ASSERT_TRUE(backend_->settle());
  frontend_.post_rx(2);
  const auto fits = ethernet_frame(test_mac(1), test_mac(9), 500, 2);
  tap_.send(fits);
  const auto responses = frontend_.wait_rx_responses(2);
  ASSERT_EQ(responses.size(), 2U);
  EXPECT_EQ(frontend_.frames_of(responses).at(0), fits);
  EXPECT_EQ(stats().drop(DropReason::kRxFrameTooLarge), 1U);
  EXPECT_EQ(backend_->fatal_calls(), 0);
}

// Frames between two guests: the receiver's headroom, whatever the sender.
class SwitchHeadroomTest : public ::testing::Test {
 protected:
  SwitchHeadroomTest()
      : host_({1, 2}), network_switch_("xenbr0"), sender_(host_, 1), receiver_(host_, 2) {}

  void start(std::uint16_t headroom) {
    QueueOptions options;
    options.features.sg = true;
    options.features.mtu = 9000;
    options.network_switch = &network_switch_;
    options.mac = test_mac(1);
    sender_queue_ = std::make_unique<BackendQueue>(host_, sender_, options);
    options.mac = test_mac(2);
    options.features.xdp_headroom = headroom;
    receiver_queue_ = std::make_unique<BackendQueue>(host_, receiver_, options);
  }

  SimHost host_;
  Switch network_switch_;
  TestFrontend sender_;
  TestFrontend receiver_;
  std::unique_ptr<BackendQueue> sender_queue_;
  std::unique_ptr<BackendQueue> receiver_queue_;
};

TEST_F(SwitchHeadroomTest, ForwardedFramesLandAfterTheReceiversHeadroom) {
  start(256);
  receiver_.post_rx(8);
  const auto small = ethernet_frame(test_mac(2), test_mac(1), 60, 1);
  const auto large = ethernet_frame(test_mac(2), test_mac(1), 9000, 2);
  sender_.send_frame(small);
  sender_.send_frame(large, 0, nullptr, 1500);
  const auto responses = receiver_.wait_rx_responses(6);
  ASSERT_EQ(responses.size(), 6U);
  EXPECT_EQ(responses[0].offset, 256);
  EXPECT_EQ(as_extra(responses[1]).type, protocol::kExtraTypeXdp);
  EXPECT_EQ(responses[2].offset, 256);
  EXPECT_EQ(responses[4].offset, 0);
  const auto frames = receiver_.frames_of(responses);
  ASSERT_EQ(frames.size(), 2U);
  EXPECT_EQ(frames[0], small);
  EXPECT_EQ(frames[1], large);
  ASSERT_TRUE(eventually([&] { return sender_queue_->stats().forwarded_packets == 2; }));
}

TEST_F(SwitchHeadroomTest, AHeadroomLeavingLessThanTheCheckedHeaderSplitsIt) {
  // 4090 bytes of headroom leave 6 in the first slot: the header the
  // sender's queue checked spans both data slots.
  start(4090);
  receiver_.post_rx(8);
  const auto frame = ethernet_frame(test_mac(2), test_mac(1), 200, 3);
  sender_.send_frame(frame);
  const auto responses = receiver_.wait_rx_responses(3);
  ASSERT_EQ(responses.size(), 3U);  // 6 bytes, the extra, 194 bytes
  EXPECT_EQ(responses[0].offset, 4090);
  EXPECT_EQ(responses[0].status, 6);
  EXPECT_EQ(responses[2].offset, 0);
  EXPECT_EQ(responses[2].status, 194);
  EXPECT_EQ(receiver_.frames_of(responses).at(0), frame);
  EXPECT_EQ(receiver_queue_->stats().total_drops(), 0U);
}

}  // namespace
}  // namespace vifd::backend::testing
