// An operator's capture whose reader stops reading (a vifctl suspended with
// ^Z, a pipe into a stuck program): the queue threads never wait for it, the
// control socket keeps answering, and what the capture could not keep is
// counted as its own drops.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>
#include <utility>
#include <vector>

#include "tests/hostile/capture_support.h"
#include "tests/hostile/hostile_harness.h"

namespace vifd::backend::hostile {
namespace {

// Sanitizer builds print the latencies and enforce the outcomes only, as
// the hostile harness does.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kEnforceLatencies = false;
#else
constexpr bool kEnforceLatencies = true;
#endif

using Clock = std::chrono::steady_clock;

class HostileCaptureTest : public HostileTest {
 protected:
  struct Window {
    double frames_per_second = 0;
    double worst_probe_ms = 0;
    std::size_t probes = 0;
  };

  // A streams frames to B for `length` while a prober asks for `stats`.
  Window stream_a_to_b(std::chrono::milliseconds length) {
    std::atomic<bool> running{true};
    std::atomic<std::uint64_t> frames{0};
    std::thread receiver([&] {
      while (running.load()) {
        const std::size_t n = b().reap_rx();
        frames.fetch_add(n);
        if (n == 0) {
          b().wait_event(std::chrono::microseconds(1000));
        }
      }
    });
    std::thread sender([&] {
      while (running.load()) {
        a().reap_tx();
        if (a().send_prepared(protocol::kTxRingSizeOnePage) == 0) {
          a().wait_event(std::chrono::microseconds(1000));
        }
      }
    });
    Window window;
    const ControlProbe probe(socket_path());
    const auto begin = Clock::now();
    while (Clock::now() - begin < length) {
      const auto asked = Clock::now();
      const auto answer = probe.ask(R"({"command":"stats"})");
      double ms = std::chrono::duration<double, std::milli>(Clock::now() - asked).count();
      if (!answer || !answer->value("ok", false)) {
        ms = 1e9;
      }
      window.worst_probe_ms = std::max(window.worst_probe_ms, ms);
      ++window.probes;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - begin).count();
    running.store(false);
    sender.join();
    receiver.join();
    a().reap_tx();
    window.frames_per_second = static_cast<double>(frames.load()) / seconds;
    return window;
  }
};

TEST_F(HostileCaptureTest, ACaptureReaderThatNeverReadsCostsOnlyItsOwnDrops) {
  start();
  a().prepare_frame(ethernet_frame(b().mac(), a().mac(), 512));
  b().post_rx();
  const Window before = stream_a_to_b(std::chrono::milliseconds(1000));

  // Whole frames, 64 KiB slots: the ring holds 64 of them.
  CaptureConnection stuck(
      socket_path(), {{"command", "capture"}, {"domid", kB}, {"devid", 0}, {"snaplen", 65536}});
  ASSERT_TRUE(stuck.answer().value("ok", false)) << stuck.answer();
  const std::size_t slots = stuck.answer().value("slots", std::size_t{0});
  ASSERT_GT(slots, 0U);
  const std::uint64_t delivered_before = counter(kB, "/switch/received_packets");
  const Window during = stream_a_to_b(std::chrono::milliseconds(1500));
  // Frames still in B's backlog when the sender stopped are delivered
  // after it: wait for the count to settle.
  std::uint64_t settled = counter(kB, "/switch/received_packets");
  ASSERT_TRUE(eventually([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const std::uint64_t now = counter(kB, "/switch/received_packets");
    return std::exchange(settled, now) == now;
  }));
  const std::uint64_t delivered = settled - delivered_before;

  std::printf(
      "[ capture ] A->B %.0f frames/s without a capture, %.0f with an unread capture of B "
      "(ratio %.2f); control socket worst %.1f ms over %zu probes\n",
      before.frames_per_second, during.frames_per_second,
      during.frames_per_second / std::max(before.frames_per_second, 1.0), during.worst_probe_ms,
      during.probes);
  if (kEnforceLatencies) {
    EXPECT_LT(during.worst_probe_ms, 100.0) << "the control socket stalled";
  }
  EXPECT_GT(during.frames_per_second * 1.5, static_cast<double>(slots))
      << "too few frames to fill the capture";

  // Reading again: the stream carries what the ring kept and reports what
  // it could not; with the flood over, every frame delivered to B is one or
  // the other.
  std::uint64_t frames = 0;
  std::uint64_t dropped = 0;
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  while (frames + dropped < delivered && Clock::now() < deadline) {
    const auto line = stuck.next_line(std::chrono::seconds(2));
    ASSERT_TRUE(line) << "the capture stream ended or went quiet";
    if (line->contains("data")) {
      ++frames;
    } else if (line->contains("dropped")) {
      dropped = (*line)["dropped"].get<std::uint64_t>();
    }
  }
  std::printf(
      "[ capture ] unread capture of B: %llu frames delivered to B, %llu in the stream, "
      "%llu dropped\n",
      static_cast<unsigned long long>(delivered), static_cast<unsigned long long>(frames),
      static_cast<unsigned long long>(dropped));
  EXPECT_EQ(frames + dropped, delivered);
  EXPECT_GT(dropped, 0U);
  EXPECT_GT(frames, 0U);
  EXPECT_EQ(describe(kB).value("captures", 0), 1);
  expect_vifd_serves_the_others();
}

// The same flood captured by vifctl reading as fast as it can: what an
// operator gets (printed), and the flood's rate with it.
TEST_F(HostileCaptureTest, AFloodCapturedByVifctlCountsWhatItCouldNotKeep) {
  start();
  a().prepare_frame(ethernet_frame(b().mac(), a().mac(), 512));
  b().post_rx();
  const auto file = host_->dir() / "flood.pcap";
  VifctlProcess vifctl({"--control-socket", socket_path(), "capture", "2.0", "-w", file.string(),
                        "--snaplen", "128", "--duration", "3"},
                       host_->dir() / "vifctl.err");
  ASSERT_TRUE(eventually([&] { return describe(kB).value("captures", 0) == 1; }))
      << vifctl.stderr_text();
  const Window during = stream_a_to_b(std::chrono::milliseconds(1500));
  const auto status = vifctl.wait(std::chrono::seconds(10));
  ASSERT_TRUE(status);
  EXPECT_EQ(*status, 0) << vifctl.stderr_text();
  const auto pcap = read_pcap(file);
  ASSERT_TRUE(pcap);
  std::printf(
      "[ capture ] A->B %.0f frames/s while vifctl captured B (snaplen 128), control socket "
      "worst %.1f ms: %s",
      during.frames_per_second, during.worst_probe_ms, vifctl.stderr_text().c_str());
  if (kEnforceLatencies) {
    EXPECT_LT(during.worst_probe_ms, 100.0) << "the control socket stalled";
  }
  EXPECT_GT(pcap->frames.size(), 0U);
  const std::string summary = vifctl.stderr_text();
  EXPECT_NE(summary.find(std::to_string(pcap->frames.size()) + " frames captured from vif2.0"),
            std::string::npos)
      << summary;
  for (const PcapFrame& frame : pcap->frames) {
    EXPECT_EQ(frame.length, 512U);
    EXPECT_EQ(frame.bytes.size(), 128U);
  }
}

}  // namespace
}  // namespace vifd::backend::hostile
