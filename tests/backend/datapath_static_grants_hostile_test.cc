// Hostile use of static grant mappings on the data path: a frontend that
// deletes its mappings while a frame it sent through the switch still
// points into them. The queue keeps acknowledging the old table until that
// frame completes, so the control plane cannot unmap a page under the
// receiver's copy; afterwards its pages are grant-copied again.
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "backend/lib/datapath/switch.h"
#include "tests/backend/datapath_harness.h"
#include "tests/backend/static_mappings.h"

namespace vifd::backend::testing {
namespace {

class StaticGrantsHostileTest : public ::testing::Test {
 protected:
  StaticGrantsHostileTest()
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

TEST_F(StaticGrantsHostileTest, DelWhileAForwardedFrameIsInFlightKeepsThePageUntilItCompletes) {
  sender_mappings_ = std::make_unique<StaticMappings>(host_, sender_, true, true);
  BackendQueue& from = attach(sender_, sender_mappings_.get());
  attach(receiver_, nullptr);
  ASSERT_TRUE(eventually([&] { return sender_mappings_->handoff->acknowledged() == 1; }));
  // The receiver has no buffers: the frame waits in its backlog, pointing
  // into the sender's mapped page.
  const auto frame = ethernet_frame(test_mac(2), test_mac(1), 500, 6);
  sender_.send_frame(frame);
  ASSERT_TRUE(eventually([&] { return from.stats().tx_packets == 1; }));
  // DEL of everything: the control plane publishes an empty table.
  sender_mappings_->publish({});
  ASSERT_TRUE(eventually([&] { return from.stats().gref_mappings == 0; }));
  ASSERT_TRUE(from.settle());
  EXPECT_EQ(sender_mappings_->handoff->acknowledged(), 1U)
      << "a frame still points into the old table's pages";
  receiver_.post_rx(4);
  const auto responses = receiver_.wait_rx_responses(1);
  ASSERT_EQ(responses.size(), 1U);
  EXPECT_EQ(receiver_.frames_of(responses).at(0), frame);
  EXPECT_TRUE(eventually([&] { return sender_mappings_->handoff->acknowledged() == 2; }));
  // From now on the sender's pages are grant-copied again.
  const auto after = ethernet_frame(test_mac(2), test_mac(1), 300, 7);
  sender_.send_frame(after);
  ASSERT_EQ(receiver_.wait_rx_responses(1).size(), 1U);
  EXPECT_TRUE(eventually([&] { return from.stats().grant_copy_segments == 1; }));
}

}  // namespace
}  // namespace vifd::backend::testing
