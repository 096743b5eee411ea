// The RX pool: TAP frames wait for guest buffers back to back in one ring of
// bytes that wraps around. Frames of mixed sizes arriving in bursts while the
// guest posts buffers late come out intact and in order however often the
// pool wraps; a flood the backlog cannot take is read and dropped without
// touching the frames it holds.
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "tests/backend/datapath_harness.h"

namespace vifd::backend::testing {
namespace {

using protocol::RxResponse;

class RxPoolTest : public ::testing::Test {
 protected:
  RxPoolTest() : host_({1}), frontend_(host_, 1) {}

  void start(std::size_t backlog_bytes) {
    QueueOptions options;
    options.tap_fd = tap_.queue_fd();
    options.features.sg = true;
    options.features.mtu = 9000;
    options.rx_backlog_bytes = backlog_bytes;
    backend_ = std::make_unique<BackendQueue>(host_, frontend_, options);
  }
  QueueStats stats() { return backend_->stats(); }

  // Posts exactly the buffers frames of these lengths take and returns the
  // frames that came back.
  std::vector<std::vector<std::uint8_t>> receive(const std::vector<std::size_t>& lengths) {
    std::size_t slots = 0;
    for (const std::size_t length : lengths) {
      slots += (length + protocol::kPageSize - 1) / protocol::kPageSize;
    }
    EXPECT_LE(slots, TestFrontend::kPages) << "the harness has no more pages";
    frontend_.post_rx(slots);
    return frontend_.frames_of(frontend_.wait_rx_responses(slots));
  }

  SimHost host_;
  TestFrontend frontend_;
  FakeTap tap_;
  std::unique_ptr<BackendQueue> backend_;
};

constexpr std::size_t kSmallBacklog = std::size_t{16} * 1024;
constexpr std::size_t kFloodBacklog = std::size_t{64} * 1024;

// Sizes that do not divide the pool evenly, so wraps land mid-frame.
std::size_t size_of(std::size_t i) {
  return 60 + (i * 2749) % 8900;
}

TEST_F(RxPoolTest, MixedBurstsComeOutIntactAndInOrderAcrossWraps) {
  // A 16 KiB backlog: a pool of about 50 KiB, wrapped every few bursts.
  start(kSmallBacklog);
  std::size_t sent = 0;
  std::vector<std::vector<std::uint8_t>> expected;
  std::vector<std::vector<std::uint8_t>> received;
  for (int burst = 0; burst < 40; ++burst) {
    // At most 16 KiB per burst: the backlog takes every frame.
    std::size_t bytes = 0;
    std::vector<std::size_t> lengths;
    while (bytes + size_of(sent) <= kSmallBacklog) {
      expected.push_back(
          ethernet_frame(test_mac(1), test_mac(9), size_of(sent), static_cast<std::uint8_t>(sent)));
      ASSERT_TRUE(tap_.send_when_room(expected.back()));
      bytes += size_of(sent);
      lengths.push_back(size_of(sent));
      ++sent;
    }
    ASSERT_TRUE(eventually([&] { return stats().tap_reads == sent; }));
    for (auto& frame : receive(lengths)) {
      received.push_back(std::move(frame));
    }
  }
  ASSERT_EQ(received.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    ASSERT_EQ(received[i], expected[i]) << "frame " << i << " of " << size_of(i) << " bytes";
  }
  EXPECT_EQ(stats().total_drops(), 0U);
  std::size_t total = 0;
  for (const auto& frame : expected) {
    total += frame.size();
  }
  // The pool: the backlog's bytes, 64 bytes of alignment for each of its
  // 256 places, two 9019-byte frames.
  constexpr std::size_t kPool = kSmallBacklog + std::size_t{256} * 64 + std::size_t{2} * 9019;
  EXPECT_GT(total, 5 * kPool) << "it wrapped";
}

TEST_F(RxPoolTest, AFloodIsDroppedWithoutTouchingTheFramesThatWait) {
  start(kFloodBacklog);
  // No buffers posted: the backlog keeps what its 64 KiB allow, the rest
  // is read into the pool's free bytes and dropped.
  std::vector<std::vector<std::uint8_t>> sent;
  for (std::size_t i = 0; i < 200; ++i) {
    sent.push_back(
        ethernet_frame(test_mac(1), test_mac(9), size_of(i), static_cast<std::uint8_t>(i)));
    ASSERT_TRUE(tap_.send_when_room(sent.back()));
  }
  ASSERT_TRUE(eventually([&] { return stats().tap_reads == sent.size(); }));
  // What the backlog admits, in arrival order: a frame while the frames
  // held and it fit in 64 KiB (rx_backlog_bytes), or into an empty backlog.
  std::vector<std::size_t> kept;
  std::size_t held = 0;
  for (std::size_t i = 0; i < sent.size(); ++i) {
    if (kept.empty() || held + sent[i].size() <= kFloodBacklog) {
      kept.push_back(i);
      held += sent[i].size();
    }
  }
  EXPECT_EQ(stats().drop(DropReason::kRxNoBuffers), sent.size() - kept.size());
  std::vector<std::size_t> lengths;
  lengths.reserve(kept.size());
  for (const std::size_t i : kept) {
    lengths.push_back(sent[i].size());
  }
  const auto received = receive(lengths);
  ASSERT_EQ(received.size(), kept.size());
  for (std::size_t k = 0; k < kept.size(); ++k) {
    ASSERT_EQ(received[k], sent[kept[k]]) << "frame " << kept[k];
  }
}

}  // namespace
}  // namespace vifd::backend::testing
