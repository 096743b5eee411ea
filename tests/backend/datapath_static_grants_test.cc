// Static grant mappings on the data path: a queue whose frontend's pages are
// mapped (the test plays the control plane: it maps them and publishes a
// GrefTable through the queue's GrefHandoff) moves their bytes with memcpy
// instead of grant copies, to the TAP, from the TAP and through the switch
// (one memcpy when both guests' pages are mapped), and acknowledges a new
// table only when nothing points into the old one's pages any more.
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "backend/lib/datapath/gref_table.h"
#include "backend/lib/datapath/switch.h"
#include "common/platform/sim/sim_host.h"
#include "tests/backend/datapath_harness.h"
#include "tests/backend/static_mappings.h"

namespace vifd::backend::testing {
namespace {

TEST(StaticGrantsTest, GuestTxToTheTapIsCopiedWithoutGrantOperations) {
  SimHost host({1});
  TestFrontend frontend(host, 1);
  FakeTap tap;
  StaticMappings mappings(host, frontend, true, true);
  QueueOptions options;
  options.features.sg = true;
  options.tap_fd = tap.queue_fd();
  options.static_grants = mappings.handoff;
  BackendQueue backend(host, frontend, options);
  ASSERT_TRUE(
      eventually([&] { return backend.stats().gref_mappings == 2 * TestFrontend::kPages; }));

  const auto small = ethernet_frame(test_mac(2), test_mac(1), 60, 1);
  const auto large = ethernet_frame(test_mac(2), test_mac(1), 9000, 2);
  frontend.send_frame(small);
  frontend.send_frame(large, 0, nullptr, 1500);
  EXPECT_EQ(tap.receive(), small);
  EXPECT_EQ(tap.receive(), large);
  ASSERT_EQ(frontend.wait_tx_responses(7).size(), 7U);

  // And back: TAP frames into mapped RX pages.
  frontend.post_rx(8);
  tap.send(small);
  const auto responses = frontend.wait_rx_responses(1);
  ASSERT_EQ(responses.size(), 1U);
  EXPECT_EQ(frontend.frames_of(responses).at(0), small);

  const QueueStats stats = backend.stats();
  EXPECT_EQ(stats.grant_copy_calls, 0U) << "every segment was served by memcpy";
  EXPECT_EQ(stats.grant_copy_segments, 0U);
  EXPECT_GT(stats.mapped_copy_segments, 0U);
  EXPECT_EQ(stats.mapped_copy_bytes, 60U + 9000U + 60U);
  EXPECT_EQ(sim::read_counters(host.dir(), 0).grant_copy_calls, 0U);
}

TEST(StaticGrantsTest, SegmentsOutsideTheMappingsStillGoThroughGrantCopies) {
  SimHost host({1});
  TestFrontend frontend(host, 1);
  FakeTap tap;
  // Only RX pages mapped: TX is grant-copied, RX is memcpy.
  StaticMappings mappings(host, frontend, false, true);
  QueueOptions options;
  options.tap_fd = tap.queue_fd();
  options.static_grants = mappings.handoff;
  BackendQueue backend(host, frontend, options);
  const auto frame = ethernet_frame(test_mac(2), test_mac(1), 200, 3);
  frontend.send_frame(frame);
  EXPECT_EQ(tap.receive(), frame);
  frontend.post_rx(4);
  tap.send(frame);
  const auto responses = frontend.wait_rx_responses(1);
  ASSERT_EQ(responses.size(), 1U);
  EXPECT_EQ(frontend.frames_of(responses).at(0), frame);
  const QueueStats stats = backend.stats();
  EXPECT_EQ(stats.grant_copy_segments, 1U) << "the TX slot";
  EXPECT_EQ(stats.grant_copy_bytes, 200U);
  EXPECT_EQ(stats.mapped_copy_bytes, 200U) << "the RX buffer";
}

class StaticGrantsSwitchTest : public ::testing::Test {
 protected:
  StaticGrantsSwitchTest()
      : host_({1, 2}), network_switch_("xenbr0"), sender_(host_, 1), receiver_(host_, 2) {}

  BackendQueue& attach(TestFrontend& frontend, StaticMappings* mappings) {
    QueueOptions options;
    options.features.sg = true;
    options.features.mtu = 9000;
    options.network_switch = &network_switch_;
    options.mac = test_mac(static_cast<std::uint8_t>(frontend.domid()));
    if (mappings != nullptr) options.static_grants = mappings->handoff;
    backends_.push_back(std::make_unique<BackendQueue>(host_, frontend, options));
    return *backends_.back();
  }

  SimHost host_;
  Switch network_switch_;
  TestFrontend sender_;
  TestFrontend receiver_;
  std::unique_ptr<StaticMappings> sender_mappings_;
  std::unique_ptr<StaticMappings> receiver_mappings_;
  // Declared last: the queues stop before the mappings go.
  std::vector<std::unique_ptr<BackendQueue>> backends_;
};

TEST_F(StaticGrantsSwitchTest, BothSidesMappedIsOneMemcpyAndNoGrantCopy) {
  sender_mappings_ = std::make_unique<StaticMappings>(host_, sender_, true, true);
  receiver_mappings_ = std::make_unique<StaticMappings>(host_, receiver_, true, true);
  BackendQueue& from = attach(sender_, sender_mappings_.get());
  BackendQueue& to = attach(receiver_, receiver_mappings_.get());
  receiver_.post_rx(32);
  const auto small = ethernet_frame(test_mac(2), test_mac(1), 60, 1);
  const auto large = ethernet_frame(test_mac(2), test_mac(1), 9000, 2);
  sender_.send_frame(small);
  sender_.send_frame(large, 0, nullptr, 1500);
  const auto responses = receiver_.wait_rx_responses(4);
  ASSERT_EQ(responses.size(), 4U);
  const auto frames = receiver_.frames_of(responses);
  ASSERT_EQ(frames.size(), 2U);
  EXPECT_EQ(frames[0], small);
  EXPECT_EQ(frames[1], large);
  ASSERT_EQ(sender_.wait_tx_responses(7).size(), 7U);
  ASSERT_TRUE(eventually([&] { return from.stats().forwarded_packets == 2; }));
  const QueueStats sent = from.stats();
  const QueueStats received = to.stats();
  EXPECT_EQ(sent.grant_copy_calls + received.grant_copy_calls, 0U);
  EXPECT_EQ(sim::read_counters(host_.dir(), 0).grant_copy_calls, 0U);
  EXPECT_EQ(received.mapped_copy_bytes, 9060U) << "each byte copied once into the receiver";
  EXPECT_EQ(sent.mapped_copy_bytes, 2U * 14U) << "the header peek";
}

TEST_F(StaticGrantsSwitchTest, OnlyTheSenderMappedLeavesOneForeignSidePerSegment) {
  sender_mappings_ = std::make_unique<StaticMappings>(host_, sender_, true, true);
  BackendQueue& from = attach(sender_, sender_mappings_.get());
  BackendQueue& to = attach(receiver_, nullptr);
  receiver_.post_rx(4);
  const auto frame = ethernet_frame(test_mac(2), test_mac(1), 1000, 5);
  sender_.send_frame(frame);
  const auto responses = receiver_.wait_rx_responses(1);
  ASSERT_EQ(responses.size(), 1U);
  EXPECT_EQ(receiver_.frames_of(responses).at(0), frame);
  ASSERT_TRUE(eventually([&] { return from.stats().forwarded_packets == 1; }));
  EXPECT_EQ(from.stats().grant_copy_calls, 0U);
  EXPECT_EQ(to.stats().grant_copy_bytes, 1000U) << "from the sender's mapping into a grant";
}

}  // namespace
}  // namespace vifd::backend::testing
