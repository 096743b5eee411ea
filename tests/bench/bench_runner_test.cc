// run_throughput and run_pingpong between in-process fake ports: what is
// counted when everything arrives, when nothing does, and when frames of an
// earlier measurement turn up.
#include <gtest/gtest.h>

#include <chrono>
#include <deque>
#include <memory>
#include <vector>

#include "frontend/lib/bench/frame.h"
#include "frontend/lib/bench/port.h"
#include "frontend/lib/bench/runner.h"

namespace vifd::bench {
namespace {

using namespace std::chrono_literals;

// A port whose sends land in `peer`'s inbox (or nowhere without a peer).
class FakePort final : public Port {
 public:
  explicit FakePort(std::uint8_t id) { mac_.octets = {0x02, 0, 0, 0, 0, id}; }
  void connect(FakePort* peer) { peer_ = peer; }
  // Frames the next receive() will find, bypassing any peer.
  void inject(std::vector<std::uint8_t> frame) { inbox_.push_back(std::move(frame)); }

  std::string name() const override { return "fake"; }
  protocol::MacAddress mac() const override { return mac_; }
  std::size_t send(std::span<Frame> frames, std::size_t budget) override {
    const std::size_t count = std::min<std::size_t>(budget, 32);
    for (std::size_t i = 0; i < count; ++i) {
      const Frame& frame = frames[i % frames.size()];
      if (peer_ != nullptr) {
        peer_->inbox_.push_back(frame.bytes);
      }
      ++counts_.sent_packets;
      counts_.sent_bytes += frame.bytes.size();
    }
    return count;
  }
  void receive() override {
    while (!inbox_.empty()) {
      count_received(inbox_.front(), inbox_.front().size());
      inbox_.pop_front();
    }
  }
  void wait_fds(std::vector<pollfd>&) override {}

 private:
  protocol::MacAddress mac_;
  FakePort* peer_ = nullptr;
  std::deque<std::vector<std::uint8_t>> inbox_;
};

ThroughputOptions short_run() {
  ThroughputOptions options;
  options.warmup = 20ms;
  options.measure = 100ms;
  options.window = 64;
  options.drain = 20ms;
  return options;
}

TEST(BenchRunnerTest, LosslessPortsDeliverEverythingSent) {
  FakePort a(1);
  FakePort b(2);
  a.connect(&b);
  std::vector<Frame> frames{build_frame({b.mac(), a.mac(), 64, false, 0})};
  int samples = 0;
  const auto result = run_throughput(a, b, frames, 1, short_run(), [&] {
    ++samples;
    return std::optional<BackendSample>(
        BackendSample{std::uint64_t{10} * static_cast<std::uint64_t>(samples), 0, 0, 0, 0, {}, {}});
  });
  EXPECT_EQ(samples, 2);  // both ends of the measured window
  ASSERT_TRUE(result.backend);
  EXPECT_EQ(result.backend->grant_copy_calls, 10U);
  EXPECT_GT(result.sent_packets, 0U);
  EXPECT_EQ(result.received_total, result.sent_packets);
  EXPECT_GT(result.received_packets, 0U);
  EXPECT_LE(result.received_packets, result.received_total);
  EXPECT_EQ(result.received_bytes, result.received_packets * 64);
  EXPECT_GE(result.seconds, 0.1);
}

TEST(BenchRunnerTest, AbsentSinkReceivesNothingAndTheGeneratorKeepsGoing) {
  FakePort a(1);
  FakePort b(2);  // a is not connected: every frame is lost
  std::vector<Frame> frames{build_frame({b.mac(), a.mac(), 64, false, 0})};
  const auto result =
      run_throughput(a, b, frames, 1, short_run(), [] { return std::optional<BackendSample>(); });
  EXPECT_EQ(result.received_total, 0U);
  EXPECT_EQ(result.received_packets, 0U);
  EXPECT_EQ(result.received_bytes, 0U);
  EXPECT_FALSE(result.backend);
  // Lost frames are written off, so the generator is not stuck at its window.
  EXPECT_GT(result.sent_packets, 2 * short_run().window);
}

TEST(BenchRunnerTest, FramesOfAnEarlierEpochAreStaleNotReceived) {
  FakePort a(1);
  FakePort b(2);
  a.connect(&b);
  Frame old = build_frame({b.mac(), a.mac(), 64, false, 0});
  set_sequence(old.bytes, false, std::uint64_t{4} << 32);
  for (int i = 0; i < 10; ++i) {
    b.inject(old.bytes);
  }
  b.inject(std::vector<std::uint8_t>(60, 0xee));  // not a vif-bench frame at all
  std::vector<Frame> frames{build_frame({b.mac(), a.mac(), 64, false, 0})};
  const auto result =
      run_throughput(a, b, frames, 5, short_run(), [] { return std::optional<BackendSample>(); });
  EXPECT_EQ(result.stale_packets, 10U);
  EXPECT_EQ(result.foreign_packets, 1U);
  EXPECT_EQ(result.received_total, result.sent_packets);
}

TEST(BenchRunnerTest, PingPongTimesEveryRoundAndCountsLostOnes) {
  FakePort a(1);
  FakePort b(2);
  a.connect(&b);
  b.connect(&a);
  const Frame there = build_frame({b.mac(), a.mac(), 64, false, 0});
  const Frame back = build_frame({a.mac(), b.mac(), 64, false, 0});
  const Latency latency = run_pingpong(a, b, there, back, 7, 20, 50ms);
  EXPECT_EQ(latency.samples, 20U);
  EXPECT_EQ(latency.lost, 0U);
  EXPECT_GT(latency.p50_us, 0);
  EXPECT_LE(latency.p50_us, latency.p99_us);

  b.connect(nullptr);  // the answer never comes
  const Latency lost = run_pingpong(a, b, there, back, 8, 3, 5ms);
  EXPECT_EQ(lost.samples, 0U);
  EXPECT_EQ(lost.lost, 3U);
}

}  // namespace
}  // namespace vifd::bench
