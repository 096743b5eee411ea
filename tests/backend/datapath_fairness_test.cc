// Isolation between the guests of one vifd's data path, tried as a hostile
// guest would: a receiver that drains a buffer now and then, a guest that
// stops posting RX buffers under GSO traffic, a guest notifying without
// work, and hostile ring contents. Each case gives the offender a counted
// outcome; where a neighbour could suffer, its rate is measured against its
// own unattacked rate in the same test and printed.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "backend/lib/datapath/switch.h"
#include "common/net/packet_meta.h"
#include "tests/backend/datapath_harness.h"

namespace vifd::backend::testing {
namespace {

using Clock = std::chrono::steady_clock;
using protocol::RxResponse;
using protocol::TxRequest;
using protocol::TxResponse;
using namespace std::chrono_literals;

// Every non-zero drop counter, for failure messages.
std::string drops_of(const QueueStats& stats) {
  std::ostringstream out;
  for (std::size_t i = 0; i < kDropReasonCount; ++i) {
    if (stats.drops[i] != 0) {
      out << ' ' << to_string(static_cast<DropReason>(i)) << '=' << stats.drops[i];
    }
  }
  return out.str().empty() ? " none" : out.str();
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Streams prepared frames from a frontend's TX ring, each destination's frame
// in a TX page of its own: a page is never rewritten while a request for it
// is in flight, so the switch routes every frame where the test meant it.
class TxStream {
 public:
  TxStream(TestFrontend& frontend, const std::vector<std::vector<std::uint8_t>>& frames)
      : frontend_(frontend) {
    for (std::size_t i = 0; i < frames.size(); ++i) {
      std::memcpy(frontend.tx_page(i), frames[i].data(), frames[i].size());
      sizes_.push_back(static_cast<std::uint16_t>(frames[i].size()));
    }
  }

  // Takes the answers, then pushes up to `limit` frames (as many as the ring
  // has room for), cycling through `pattern` (indices of the frames).
  void pump(const std::vector<std::size_t>& pattern, std::size_t limit = 64) {
    collect();
    std::array<TxRequest, 64> batch{};
    std::size_t count = 0;
    while (count < std::min(limit, batch.size()) && frontend_.tx().free_requests() > count) {
      const std::size_t frame = pattern[next_++ % pattern.size()];
      batch[count++] = {frontend_.tx_page_ref(frame), 0, 0, id_++, sizes_[frame]};
    }
    if (count != 0) {
      frontend_.push_raw(std::span(batch.data(), count));
    }
    sent_ += count;
  }
  void collect() {
    TxResponse response{};
    while (frontend_.tx().take_responses(std::span(&response, 1)).count == 1) {
      ++answered_;
      if (response.status != protocol::kRspOkay) {
        ++errors_;
      }
    }
  }
  std::uint64_t sent() const { return sent_; }
  std::uint64_t answered() const { return answered_; }
  std::uint64_t errors() const { return errors_; }

 private:
  TestFrontend& frontend_;
  std::vector<std::uint16_t> sizes_;
  std::size_t next_ = 0;
  std::uint16_t id_ = 0;
  std::uint64_t sent_ = 0;
  std::uint64_t answered_ = 0;
  std::uint64_t errors_ = 0;
};

// A receiving guest that takes what arrived and posts the buffers again,
// keeping `outstanding` posted (single-slot frames: one response each).
class RxSink {
 public:
  RxSink(TestFrontend& frontend, std::size_t outstanding) : frontend_(frontend) {
    frontend_.post_rx(outstanding);
  }
  std::size_t poll() {
    RxResponse response{};
    std::size_t taken = 0;
    while (frontend_.rx().take_responses(std::span(&response, 1)).count == 1) {
      ++taken;
    }
    if (taken != 0) {
      frontend_.post_rx(taken);
    }
    received_ += taken;
    return taken;
  }
  std::uint64_t received() const { return received_; }

 private:
  TestFrontend& frontend_;
  std::uint64_t received_ = 0;
};

// A queue thread's CPU time (schedstat: nanoseconds on a CPU), found by the
// name the queue gives its thread.
std::optional<std::chrono::nanoseconds> thread_cpu(const std::string& name) {
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(entry.path() / "comm");
    std::string line;
    std::getline(comm, line);
    if (line != name) {
      continue;
    }
    std::ifstream schedstat(entry.path() / "schedstat");
    std::int64_t on_cpu = 0;
    if (!(schedstat >> on_cpu)) {
      return std::nullopt;
    }
    return std::chrono::nanoseconds(on_cpu);
  }
  return std::nullopt;
}

// Sanitizer builds (ASan, TSan) slow the threads unevenly, so a rate ratio
// measures the instrumentation there: they print it and enforce the
// outcomes (drops, answered slots, bounded wakeups) only.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kEnforceRates = false;
#else
constexpr bool kEnforceRates = true;
#endif

// A neighbour's rate with and without an attack, on a machine other work
// shares: short windows in pairs (unattacked, attacked), so a burst of
// someone else's load spoils a pair rather than the comparison; the
// figure is the median of the pairs' ratios.
struct Comparison {
  double unattacked = 0;  // mean rates
  double attacked = 0;
  double ratio = 0;  // median of the pairs' attacked/unattacked
};

template <typename Run, typename Between>
Comparison compare(int pairs, std::chrono::milliseconds window, Run run, Between between) {
  Comparison result;
  std::vector<double> ratios;
  for (int i = 0; i < pairs; ++i) {
    const double unattacked = run(false, window);
    const double attacked = run(true, window);
    between();
    result.unattacked += unattacked / pairs;
    result.attacked += attacked / pairs;
    ratios.push_back(unattacked > 0 ? attacked / unattacked : 0);
  }
  std::sort(ratios.begin(), ratios.end());
  result.ratio = ratios[ratios.size() / 2];
  return result;
}

class FairnessTest : public ::testing::Test {
 protected:
  FairnessTest() : host_({1, 2, 3}), network_switch_("xenbr0") {
    for (platform::DomId domid = 1; domid <= 3; ++domid) {
      frontends_.push_back(std::make_unique<TestFrontend>(host_, domid));
    }
  }

  // Guest N (1..3) with MAC 02:..:0N on the switch.
  BackendQueue& attach(platform::DomId domid, QueueOptions options = {}) {
    options.features.sg = true;
    options.network_switch = &network_switch_;
    options.mac = test_mac(static_cast<std::uint8_t>(domid));
    backends_[domid] = std::make_unique<BackendQueue>(host_, frontend(domid), options);
    return *backends_[domid];
  }
  TestFrontend& frontend(platform::DomId domid) { return *frontends_[domid - 1]; }
  QueueStats stats(platform::DomId domid) { return backends_[domid]->stats(); }

  SimHost host_;
  Switch network_switch_;
  std::vector<std::unique_ptr<TestFrontend>> frontends_;
  FakeTap tap_;  // outlives the queues that use it
  std::array<std::unique_ptr<BackendQueue>, 4> backends_;
};

// ---- forwarding: drain deadline and receiver share --------------------------

TEST_F(FairnessTest, AFrameWaitingLongerThanTheDrainTimeoutIsDroppedAndItsSlotsAnswered) {
  QueueOptions short_drain;
  short_drain.rx_drain_timeout = 100ms;
  short_drain.tap_fd = tap_.queue_fd();
  attach(1);
  attach(2, short_drain);  // posts no buffer; its stall timer (10 s) stays far away
  const auto start = Clock::now();
  for (std::uint8_t i = 0; i < 5; ++i) {
    frontend(1).send_frame(ethernet_frame(test_mac(2), test_mac(1), 300, i));
  }
  tap_.send(ethernet_frame(test_mac(2), test_mac(9), 200, 7));
  const auto tx = frontend(1).wait_tx_responses(5);
  const double waited = seconds_since(start);
  ASSERT_EQ(tx.size(), 5U);
  for (const auto& response : tx) {
    EXPECT_EQ(response.status, protocol::kRspOkay);
  }
  EXPECT_GE(waited, 0.1) << "the slots were held until the deadline, not dropped at once; "
                         << "sender drops:" << drops_of(stats(1))
                         << ", receiver drops:" << drops_of(stats(2));
  ASSERT_TRUE(eventually([&] { return stats(2).drop(DropReason::kRxDrainTimeout) == 6; }))
      << "5 forwarded frames and 1 from the host port; sender drops:" << drops_of(stats(1))
      << ", receiver drops:" << drops_of(stats(2));
  EXPECT_TRUE(eventually([&] { return stats(1).drop(DropReason::kTxSwitchDropped) == 5; }));
  EXPECT_EQ(stats(2).rx_stalls, 0U);
  EXPECT_EQ(stats(2).rx_backlog_bytes, 0U);
  std::printf("[ drain    ] 5 forwarded frames answered after %.0f ms (drain timeout 100 ms)\n",
              waited * 1000);

  // Not a stall: the guest receives as soon as it posts.
  frontend(2).post_rx(4);
  const auto frame = ethernet_frame(test_mac(2), test_mac(1), 300, 42);
  frontend(1).send_frame(frame);
  const auto responses = frontend(2).wait_rx_responses(1);
  ASSERT_EQ(responses.size(), 1U);
  EXPECT_EQ(frontend(2).frames_of(responses).at(0), frame);
}

// A sender that never has more frames on their way than half the share
// (the window vif-bench paces itself with) loses none to it: the share
// counts the frames the receiver has not taken yet, not the deliveries
// whose completion has not reached the sender's thread.
TEST_F(FairnessTest, ASenderWithinItsShareIsNeverDroppedForIt) {
  attach(1);
  attach(2);
  constexpr std::uint64_t kWindow = 64;  // the share: 128 slots of 256
  TxStream stream(frontend(1), {ethernet_frame(test_mac(2), test_mac(1), 60, 1)});
  RxSink sink(frontend(2), 128);
  const auto until = Clock::now() + 500ms;
  while (Clock::now() < until) {
    sink.poll();
    const std::uint64_t in_flight = stream.sent() - sink.received();
    if (in_flight < kWindow) {
      stream.pump({0}, kWindow - in_flight);
    } else {
      std::this_thread::yield();
    }
  }
  ASSERT_TRUE(eventually([&] {
    sink.poll();
    stream.collect();
    return stream.answered() == stream.sent();
  }));
  const QueueStats sender = stats(1);
  std::printf("[ share    ] %llu frames through, window %llu\n",
              static_cast<unsigned long long>(sink.received()),
              static_cast<unsigned long long>(kWindow));
  EXPECT_EQ(sender.drop(DropReason::kTxSwitchReceiverShare), 0U) << drops_of(sender);
  EXPECT_EQ(sink.received(), stream.sent());
  EXPECT_GT(sink.received(), kWindow);
}

TEST_F(FairnessTest, OneReceiverHoldsAtMostItsShareOfTheSendersRing) {
  attach(1);
  attach(2);  // posts nothing; frames wait for it (drain timeout 30 s here)
  attach(3);
  TxStream stream(frontend(1), {ethernet_frame(test_mac(2), test_mac(1), 200, 1),
                                ethernet_frame(test_mac(3), test_mac(1), 200, 2)});
  stream.pump({0}, 64);
  stream.pump({0}, 64);
  stream.pump({0}, 64);
  stream.pump({0}, 8);
  ASSERT_EQ(stream.sent(), 200U);
  // Half of the 256-slot ring: 128 frames wait in guest 2, the other 72
  // are dropped (and answered) at once.
  ASSERT_TRUE(eventually([&] {
    stream.collect();
    return stream.answered() == 72;
  }));
  EXPECT_EQ(stream.errors(), 0U) << "congestion, answered OKAY";
  EXPECT_EQ(stats(1).drop(DropReason::kTxSwitchReceiverShare), 72U);
  EXPECT_EQ(stats(1).tx_packets, 128U);

  // The other half still reaches guest 3.
  RxSink sink(frontend(3), 32);
  stream.pump({1}, 20);
  ASSERT_TRUE(eventually([&] {
    sink.poll();
    return sink.received() == 20;
  }));
  ASSERT_TRUE(eventually([&] {
    stream.collect();
    return stream.answered() == 92;
  }));
  EXPECT_EQ(stats(3).switch_received_packets, 20U);

  // Guest 2 leaving gives every held slot back.
  backends_[2]->stop();
  ASSERT_TRUE(eventually([&] {
    stream.collect();
    return stream.answered() == stream.sent();
  }));
  EXPECT_EQ(stats(1).drop(DropReason::kTxSwitchDropped), 128U);
}

TEST_F(FairnessTest, ATricklingReceiverCannotPinTheSenderAndItsNeighbourKeepsItsRate) {
  // Guest 1 streams to guest 2, which takes everything at once, and to
  // guest 3, which posts one RX buffer every 50 ms (never idle long enough
  // for the stall timer); guest 1's host port must keep working too.
  QueueOptions sender;
  sender.tap_fd = tap_.queue_fd();
  QueueOptions daemon_defaults;
  daemon_defaults.rx_drain_timeout = 250ms;
  attach(1, sender);
  attach(2, daemon_defaults);
  attach(3, daemon_defaults);
  TxStream stream(frontend(1), {ethernet_frame(test_mac(2), test_mac(1), 1000, 1),
                                ethernet_frame(test_mac(3), test_mac(1), 1000, 2),
                                ethernet_frame(test_mac(0x77), test_mac(1), 1000, 3)});
  RxSink good(frontend(2), 64);
  std::uint64_t host_frames = 0;

  // The neighbour's traffic is the same in both runs, paced as a sender
  // with a fixed rate would (20,000 frames/s to guest 2, 5,000/s to the
  // host), so its rate measures isolation rather than how much CPU the
  // test's own loop got; the attack comes on top of it: 2,000 frames/s to
  // guest 3, far more than guest 3 takes, so without bounds guest 3 would
  // soon hold guest 1's whole ring.
  const auto run = [&](bool attack, std::chrono::milliseconds duration) {
    const std::uint64_t before = good.received();
    const auto start = Clock::now();
    auto next_trickle = start;
    std::array<std::uint64_t, 3> offered{};
    constexpr std::array<double, 3> kPerSecond{20000, 2000, 5000};
    while (Clock::now() - start < duration) {
      const double elapsed = seconds_since(start);
      for (std::size_t frame = 0; frame < offered.size(); ++frame) {
        if (frame == 1 && !attack) {
          continue;
        }
        const auto due = static_cast<std::uint64_t>(elapsed * kPerSecond[frame]);
        if (due <= offered[frame]) {
          continue;
        }
        const std::uint64_t sent_before = stream.sent();
        stream.pump({frame}, static_cast<std::size_t>(due - offered[frame]));
        offered[frame] += stream.sent() - sent_before;
      }
      good.poll();
      while (tap_.has_frame()) {
        if (!tap_.receive().empty()) {
          ++host_frames;
        }
      }
      if (attack && Clock::now() >= next_trickle) {
        RxResponse response{};
        while (frontend(3).rx().take_responses(std::span(&response, 1)).count == 1) {
        }
        frontend(3).post_rx(1);
        next_trickle += 50ms;
      }
      std::this_thread::yield();
    }
    return static_cast<double>(good.received() - before) / seconds_since(start);
  };

  // Every slot comes back: what guest 3 holds expires.
  const auto all_answered = [&] {
    return eventually([&] {
      stream.collect();
      good.poll();
      return stream.answered() == stream.sent();
    });
  };
  run(false, 200ms);  // warm-up
  std::uint64_t host_during = 0;
  // A burst of the shared machine's other work can still spoil most pairs
  // of one comparison: one that falls short is made again (three at most,
  // each printed). Without the bounds the ratio is about 1%, every time.
  Comparison rates;
  for (int attempt = 1; attempt <= 3; ++attempt) {
    rates = compare(
        9, 100ms,
        [&](bool attack, std::chrono::milliseconds window) {
          const std::uint64_t host_before = host_frames;
          const double rate = run(attack, window);
          if (attack) {
            host_during += host_frames - host_before;
          }
          return rate;
        },
        // Each unattacked window starts with nothing held.
        [&] { ASSERT_TRUE(all_answered()) << "guest 3 pins no slot beyond its drain timeout"; });
    if (rates.ratio >= 0.9) {
      break;
    }
    std::printf(
        "[ trickle  ] neighbour %.0f frames/s unattacked, %.0f attacked (median of pairs "
        "%.1f%%): again\n",
        rates.unattacked, rates.attacked, 100.0 * rates.ratio);
  }
  ASSERT_TRUE(all_answered());
  const QueueStats s1 = stats(1);
  const QueueStats s3 = stats(3);
  std::printf(
      "[ trickle  ] neighbour: %.0f frames/s unattacked, %.0f attacked (median of pairs "
      "%.1f%%); host port %llu frames during the attack; sender dropped %llu at the share, the "
      "trickler %llu at the drain timeout\n",
      rates.unattacked, rates.attacked, 100.0 * rates.ratio,
      static_cast<unsigned long long>(host_during),
      static_cast<unsigned long long>(s1.drop(DropReason::kTxSwitchReceiverShare)),
      static_cast<unsigned long long>(s3.drop(DropReason::kRxDrainTimeout)));
  if (kEnforceRates) {
    EXPECT_GE(rates.ratio, 0.9);
  }
  EXPECT_GT(host_during, 0U) << "the sender's host port still works";
  EXPECT_GT(s1.drop(DropReason::kTxSwitchReceiverShare), 0U);
  EXPECT_GT(s3.drop(DropReason::kRxDrainTimeout), 0U);
  EXPECT_EQ(s3.rx_stalls, 0U) << "a trickle is not a stall: the drain deadline is what helps";
  EXPECT_EQ(stream.errors(), 0U);
  EXPECT_FALSE(s1.fatal_error || s3.fatal_error);
}

// ---- RX backlog in bytes -------------------------------------------------------

TEST(RxBacklogTest, AGuestThatStopsPostingHoldsAtMostTheByteBoundOfGsoFrames) {
  SimHost host({1});
  TestFrontend frontend(host, 1);
  FakeTap tap;
  QueueOptions options;
  options.tap_fd = tap.queue_fd();
  options.features.sg = true;
  options.features.gso_tcpv4 = true;
  options.rx_backlog_bytes = std::size_t{512} * 1024;
  BackendQueue backend(host, frontend, options);

  net::VirtioNetHdr gso{};
  gso.flags = net::kVirtioNetHdrFNeedsCsum;
  gso.gso_type = net::kVirtioNetHdrGsoTcpv4;
  gso.gso_size = 1448;
  gso.hdr_len = 54;
  gso.csum_start = 34;
  gso.csum_offset = 16;
  const auto frame = tcp4_frame(test_mac(1), test_mac(9), 60000);
  constexpr std::size_t kFrames = 40;
  for (std::size_t i = 0; i < kFrames; ++i) {
    ASSERT_TRUE(tap.send_when_room(frame, gso));
  }
  ASSERT_TRUE(eventually([&] { return backend.stats().tap_reads == kFrames; }));
  const QueueStats s = backend.stats();
  const std::size_t admitted = options.rx_backlog_bytes / frame.size();  // 8
  std::printf(
      "[ backlog  ] %zu GSO frames of %zu bytes to a guest posting nothing: %llu bytes held "
      "(peak %llu, bound %zu), %llu dropped\n",
      kFrames, frame.size(), static_cast<unsigned long long>(s.rx_backlog_bytes),
      static_cast<unsigned long long>(s.rx_backlog_peak_bytes), options.rx_backlog_bytes,
      static_cast<unsigned long long>(s.drop(DropReason::kRxNoBuffers)));
  EXPECT_LE(s.rx_backlog_peak_bytes, options.rx_backlog_bytes);
  EXPECT_EQ(s.rx_backlog_bytes, admitted * frame.size());
  EXPECT_EQ(s.drop(DropReason::kRxNoBuffers), kFrames - admitted);

  // The frames held are the guest's once it posts: 15 data slots + the GSO
  // extra each.
  frontend.post_rx(admitted * 16);
  ASSERT_TRUE(eventually([&] { return backend.stats().rx_packets == admitted; }));
  EXPECT_EQ(backend.stats().rx_backlog_bytes, 0U);
  EXPECT_EQ(backend.stats().rx_backlog_peak_bytes, admitted * frame.size());
}

TEST(RxBacklogTest, ForwardedFramesCountAgainstTheByteBoundToo) {
  SimHost host({1, 2});
  Switch network_switch("xenbr0");
  TestFrontend sender(host, 1);
  TestFrontend receiver(host, 2);
  QueueOptions options;
  options.features.sg = true;
  options.features.mtu = 9000;  // the 4000-byte frames below
  options.network_switch = &network_switch;
  options.mac = test_mac(1);
  BackendQueue sending(host, sender, options);
  options.mac = test_mac(2);
  options.rx_backlog_bytes = std::size_t{64} * 1024;
  BackendQueue receiving(host, receiver, options);
  TxStream stream(sender, {ethernet_frame(test_mac(2), test_mac(1), 4000, 1)});
  stream.pump({0}, 40);
  ASSERT_TRUE(eventually([&] {
    return receiving.stats().switch_received_packets == 0 &&
           receiving.stats().drop(DropReason::kRxNoBuffers) == 24;
  }));
  // 16 frames of 4000 bytes fit in 64 KiB; the 24 others are answered now.
  EXPECT_EQ(receiving.stats().rx_backlog_bytes, 16U * 4000U);
  EXPECT_LE(receiving.stats().rx_backlog_peak_bytes, 64U * 1024U);
  ASSERT_TRUE(eventually([&] {
    stream.collect();
    return stream.answered() == 24;
  }));
}

// ---- notification storms --------------------------------------------------------

TEST(NotificationStormTest, AGuestNotifyingWithoutWorkCostsABoundedShareOfACore) {
  SimHost host({1, 2});
  TestFrontend stormer(host, 1);
  TestFrontend neighbour(host, 2);
  FakeTap tap;
  QueueOptions options;
  BackendQueue storming(host, stormer, options);
  options.tap_fd = tap.queue_fd();
  BackendQueue serving(host, neighbour, options);
  TxStream stream(neighbour, {ethernet_frame(test_mac(0x77), test_mac(2), 1000, 1)});

  const auto measure = [&](std::chrono::milliseconds duration) {
    const std::uint64_t before = stream.answered();
    const auto start = Clock::now();
    while (Clock::now() - start < duration) {
      stream.pump({0});
      while (tap.has_frame()) {
        tap.receive();
      }
      std::this_thread::yield();
    }
    stream.collect();
    return static_cast<double>(stream.answered() - before) / seconds_since(start);
  };

  measure(200ms);  // warm-up
  double storm_seconds = 0;
  std::uint64_t notifications = 0;
  std::chrono::nanoseconds storm_cpu{0};
  std::uint64_t storm_turns = 0;
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> sent{0};
  const auto storm_body = [&] {
    // 100 notifications every millisecond, none with work: more than the
    // 40,000 wake-ups/s seen from a storming guest, while the notifying
    // loop, which stands for the guest's own vCPU, leaves this shared
    // machine's CPUs to the neighbour and the queues.
    ::setpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)), 19);
    while (!stop.load(std::memory_order_relaxed)) {
      for (int i = 0; i < 100; ++i) {
        stormer.notify();
      }
      sent.fetch_add(100, std::memory_order_relaxed);
      std::this_thread::sleep_for(1ms);
    }
  };
  const QueueStats before = storming.stats();
  // The neighbour saturates its queue, so its rate follows whatever else the
  // shared machine runs: a comparison that falls short is made again (three
  // at most, each printed); the storming queue's bounds hold over all.
  const auto compare_once = [&] {
    return compare(
        9, 100ms,
        [&](bool attack, std::chrono::milliseconds window) {
          if (!attack) {
            return measure(window);
          }
          const auto cpu_before = thread_cpu("vif1.0-q0");
          const std::uint64_t turns_before = storming.stats().loop_iterations;
          EXPECT_TRUE(cpu_before.has_value())
              << "the queue thread is named vif<domid>.<devid>-q<n>";
          stop.store(false);
          sent.store(0);
          std::thread storm(storm_body);
          const auto storm_start = Clock::now();
          const double rate = measure(window);
          storm_seconds += seconds_since(storm_start);
          storm_turns += storming.stats().loop_iterations - turns_before;
          const auto cpu_after = thread_cpu("vif1.0-q0");
          stop.store(true);
          storm.join();
          notifications += sent.load();
          if (cpu_before && cpu_after) {
            storm_cpu += *cpu_after - *cpu_before;
          }
          return rate;
        },
        [] {});
  };
  Comparison rates;
  for (int attempt = 1; attempt <= 3; ++attempt) {
    rates = compare_once();
    std::printf(
        "[ storm    ] neighbour %.0f frames/s alone, %.0f during (median of pairs %.1f%%)\n",
        rates.unattacked, rates.attacked, 100.0 * rates.ratio);
    if (rates.ratio >= 0.9) {
      break;
    }
  }
  const QueueStats after = storming.stats();

  const double turns_per_second = static_cast<double>(storm_turns) / storm_seconds;
  const double cpu_share = static_cast<double>(storm_cpu.count()) / 1e9 / storm_seconds;
  std::printf(
      "[ storm    ] %.0f notifications/s from the guest: its queue %.0f wakeups/s, %llu "
      "spurious, %.2f%% of a core\n",
      static_cast<double>(notifications) / storm_seconds, turns_per_second,
      static_cast<unsigned long long>(after.spurious_events - before.spurious_events),
      100.0 * cpu_share);
  EXPECT_LE(turns_per_second, 1000.0) << "backoff keeps the storming queue's loop bounded";
  EXPECT_LE(cpu_share, 0.10);
  EXPECT_GT(after.spurious_events, before.spurious_events);
  if (kEnforceRates) {
    EXPECT_GE(rates.ratio, 0.9);
  }

  // The storm cost the guest nothing but its own wake-ups: its requests are
  // still served (and reset the backoff).
  EXPECT_FALSE(storming.stats().fatal_error);
  stormer.send_frame(ethernet_frame(test_mac(0x77), test_mac(1), 100, 5));
  EXPECT_EQ(stormer.wait_tx_responses(1).size(), 1U);
  EXPECT_TRUE(eventually([&] { return storming.stats().drop(DropReason::kTxNoHostPort) == 1; }));
}

// ---- hostile ring contents ------------------------------------------------------

class HostileRingTest : public ::testing::Test {
 protected:
  HostileRingTest() : host_({1, 2}), network_switch_("xenbr0"), frontend_(host_, 1) {}

  void start(bool switched = false) {
    QueueOptions options;
    options.features.sg = true;
    options.tap_fd = tap_.queue_fd();
    if (switched) {
      options.network_switch = &network_switch_;
      options.mac = test_mac(1);
    }
    backend_ = std::make_unique<BackendQueue>(host_, frontend_, options);
  }

  // A 200-byte frame in three slots, the middle one empty: 150 bytes in page
  // 0, nothing from page 1, 50 bytes in page 2.
  std::vector<std::uint8_t> push_with_empty_continuation(const protocol::MacAddress& destination) {
    auto frame = ethernet_frame(destination, test_mac(1), 200, 4);
    std::memcpy(frontend_.tx_page(0), frame.data(), 150);
    std::memcpy(frontend_.tx_page(2), frame.data() + 150, 50);
    const std::vector<TxRequest> requests{
        {frontend_.tx_page_ref(0), 0, protocol::kTxfMoreData, 1, 200},
        {frontend_.tx_page_ref(1), 0, protocol::kTxfMoreData, 2, 0},
        {frontend_.tx_page_ref(2), 0, 0, 3, 50}};
    frontend_.push_raw(requests);
    return frame;
  }

  SimHost host_;
  Switch network_switch_;
  TestFrontend frontend_;
  FakeTap tap_;
  std::unique_ptr<BackendQueue> backend_;
};

TEST_F(HostileRingTest, RxRequestProducerBeyondTheRingIsFatalForThatVifOnly) {
  start();
  // RX req_prod a thousand slots ahead of a 256-slot ring, with nothing for
  // the guest to receive: the queue notices on its next look all the same.
  std::atomic_ref<std::uint32_t>(*reinterpret_cast<std::uint32_t*>(frontend_.rx_ring_page()))
      .store(1000);
  frontend_.notify();
  ASSERT_TRUE(eventually([&] { return backend_->fatal_calls() == 1; }));
  EXPECT_NE(backend_->fatal_reason().find("RX request producer"), std::string::npos)
      << backend_->fatal_reason();
  EXPECT_TRUE(backend_->stats().fatal_error);
  // Nothing was taken from the hostile ring, nothing answered.
  EXPECT_EQ(backend_->stats().ring.rx_rsp_prod, 0U);
  tap_.send(ethernet_frame(test_mac(1), test_mac(9), 100, 1));
  backend_->stop();
  EXPECT_EQ(backend_->stats().rx_packets, 0U);
}

TEST_F(HostileRingTest, EmptyContinuationSlotsAreSkippedOnTheHostPort) {
  start();
  const auto frame = push_with_empty_continuation(test_mac(9));
  EXPECT_EQ(tap_.receive(), frame);
  const auto responses = frontend_.wait_tx_responses(3);
  ASSERT_EQ(responses.size(), 3U);
  for (const auto& response : responses) {
    EXPECT_EQ(response.status, protocol::kRspOkay);
  }
  EXPECT_EQ(backend_->stats().total_drops(), 0U);
}

TEST_F(HostileRingTest, EmptyContinuationSlotsAreSkippedThroughTheSwitch) {
  start(/*switched=*/true);
  TestFrontend receiver_frontend(host_, 2);
  QueueOptions options;
  options.features.sg = true;
  options.network_switch = &network_switch_;
  options.mac = test_mac(2);
  BackendQueue receiver(host_, receiver_frontend, options);
  receiver_frontend.post_rx(4);
  const auto frame = push_with_empty_continuation(test_mac(2));
  const auto received = receiver_frontend.wait_rx_responses(1);
  ASSERT_EQ(received.size(), 1U);
  EXPECT_EQ(receiver_frontend.frames_of(received).at(0), frame);
  const auto responses = frontend_.wait_tx_responses(3);
  ASSERT_EQ(responses.size(), 3U);
  for (const auto& response : responses) {
    EXPECT_EQ(response.status, protocol::kRspOkay);
  }
  EXPECT_EQ(receiver.stats().switch_received_packets, 1U);
}

}  // namespace
}  // namespace vifd::backend::testing
