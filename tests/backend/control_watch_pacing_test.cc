// XenstoreWatcher against vif-sim's xenstored: what a coalesced, paced watch
// delivers while its node is rewritten in a loop.
#include <gtest/gtest.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <future>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "backend/lib/control/asio.h"
#include "common/xenbus/xenstore_watcher.h"
#include "tests/backend/control_harness.h"

namespace vifd::backend::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using xenbus::XenstoreWatcher;

// Runs an io_context on a thread of its own; stopped and joined before the
// objects its handlers use go.
class IoThread {
 public:
  explicit IoThread(boost::asio::io_context& io) : io_(io), thread_([&io] { io.run(); }) {}
  ~IoThread() { stop(); }
  IoThread(const IoThread&) = delete;
  IoThread& operator=(const IoThread&) = delete;
  void stop() {
    io_.stop();
    if (thread_.joinable()) {
      thread_.join();
    }
  }
  // Runs `fn` on the io thread and returns its result.
  template <typename F>
  auto call(F fn) -> decltype(fn()) {
    std::packaged_task<decltype(fn())()> task(std::move(fn));
    auto result = task.get_future();
    boost::asio::post(io_, [&task] { task(); });
    return result.get();
  }

 private:
  boost::asio::io_context& io_;
  std::thread thread_;
};

using WatchPacingTest = ControlPlaneTest;

TEST_F(WatchPacingTest, PacedWatchRunsItsCallbacksAtLeastTheIntervalApart) {
  const auto log = std::make_shared<spdlog::logger>(
      "watch-pacing", std::make_shared<spdlog::sinks::null_sink_mt>());
  boost::asio::io_context io;
  xs::Client watching = host().xenstore(0);
  XenstoreWatcher watcher(io, watching, *log);
  const std::string node = "/local/domain/0/pacing-test";
  xs::Client writer = host().xenstore(0);
  writer.write(node, "0");

  constexpr auto kInterval = 20ms;
  std::vector<Clock::time_point> calls;  // written on the io thread only
  std::atomic<std::size_t> call_count{0};
  // The watcher's wait keeps run() going until stop().
  IoThread io_thread(io);
  const XenstoreWatcher::WatchId id = io_thread.call([&] {
    return watcher.watch(
        node,
        [&](const std::string&) {
          calls.push_back(Clock::now());
          ++call_count;
        },
        XenstoreWatcher::Delivery::kCoalesced, kInterval);
  });
  ASSERT_TRUE(eventually([&] { return call_count >= 1; }));  // the registration's event

  // 400 ms of writes as fast as xenstored takes them.
  const auto flood_start = Clock::now();
  std::size_t writes = 0;
  while (Clock::now() - flood_start < 400ms) {
    writer.write(node, std::to_string(++writes));
  }
  const auto flood_end = Clock::now();
  // The flood's last event is delivered at most one interval after it.
  std::this_thread::sleep_for(3 * kInterval);
  const std::vector<Clock::time_point> seen = io_thread.call([&] { return calls; });
  const XenstoreWatcher::Counters counters = io_thread.call([&] { return watcher.counters(id); });
  ASSERT_FALSE(seen.empty());
  EXPECT_GE(seen.back(), flood_end - kInterval) << "the flood's last writes were delivered";
  std::printf("%zu writes in 400 ms: %zu callbacks, %llu events coalesced, %llu callbacks paced\n",
              writes, seen.size(), static_cast<unsigned long long>(counters.coalesced),
              static_cast<unsigned long long>(counters.paced));
  ASSERT_GT(writes, 100U) << "the flood must outpace the interval to show anything";
  for (std::size_t i = 1; i < seen.size(); ++i) {
    EXPECT_GE(seen[i] - seen[i - 1], kInterval) << "callbacks " << i - 1 << " and " << i;
  }
  // 400 ms / 20 ms, plus the registration's event and the last one.
  EXPECT_LE(seen.size(), 23U);
  EXPECT_GE(seen.size(), 10U) << "a paced watch still follows its node";
  EXPECT_GT(counters.paced, 0U);
  EXPECT_GT(counters.coalesced, 0U);

  // After a quiet spell, an event is delivered at once.
  std::this_thread::sleep_for(3 * kInterval);
  const std::size_t before = call_count;
  const auto quiet_write = Clock::now();
  writer.write(node, "quiet");
  ASSERT_TRUE(eventually([&] { return call_count > before; }));
  EXPECT_LT(Clock::now() - quiet_write, kInterval);
  io_thread.call([&] { watcher.unwatch(id); });
  io_thread.stop();
}

// A watch whose events come faster than its FloodLimit is unwatched in
// xenstored for a back-off that doubles while the flood goes on: the
// process sees a few hundred of the flood's events, not one per write, and
// the registration's event on return still brings the latest value.
TEST_F(WatchPacingTest, FloodedWatchIsSuspendedAndReturnsWithTheLatestValue) {
  std::ostringstream log_text;
  const auto log = std::make_shared<spdlog::logger>(
      "watch-flood", std::make_shared<spdlog::sinks::ostream_sink_mt>(log_text));
  log->set_level(spdlog::level::debug);
  boost::asio::io_context io;
  xs::Client watching = host().xenstore(0);
  XenstoreWatcher watcher(io, watching, *log);
  const std::string node = "/local/domain/0/flood-test";
  xs::Client writer = host().xenstore(0);
  writer.write(node, "0");

  const XenstoreWatcher::FloodLimit limit{
      .events = 64, .window = 100ms, .first_suspension = 100ms, .longest_suspension = 400ms};
  std::mutex seen_mutex;
  std::string last_seen;
  std::atomic<std::size_t> call_count{0};
  IoThread io_thread(io);
  const XenstoreWatcher::WatchId id = io_thread.call([&] {
    return watcher.watch(
        node,
        [&](const std::string&) {
          const std::string value = watching.read(node).value_or("");
          const std::lock_guard lock(seen_mutex);
          last_seen = value;
          ++call_count;
        },
        XenstoreWatcher::Delivery::kCoalesced, 2ms, limit);
  });
  ASSERT_TRUE(eventually([&] { return call_count >= 1; }));

  const auto flood_start = Clock::now();
  std::size_t writes = 0;
  while (Clock::now() - flood_start < 1s) {
    writer.write(node, std::to_string(++writes));
  }
  const std::string final_value = std::to_string(writes);
  // Back at the latest after the longest suspension.
  EXPECT_TRUE(eventually(
      [&] {
        const std::lock_guard lock(seen_mutex);
        return last_seen == final_value;
      },
      std::chrono::milliseconds(1500)))
      << "last seen " << last_seen << ", last written " << final_value;
  const XenstoreWatcher::Counters flood = io_thread.call([&] { return watcher.counters(id); });
  std::printf("%zu writes in 1 s: %llu events received, %llu callbacks, %llu suspensions\n", writes,
              static_cast<unsigned long long>(flood.received),
              static_cast<unsigned long long>(flood.delivered),
              static_cast<unsigned long long>(flood.suspended));
  ASSERT_GT(writes, 2000U) << "the flood must outpace the limit many times over to show anything";
  EXPECT_GE(flood.suspended, 2U);
  // 100 + 200 + 400 + 400 ms away: about four suspensions in the second; a
  // back-off that did not double would make about ten.
  EXPECT_LE(flood.suspended, 6U);
  EXPECT_LT(flood.received * 4, writes) << "most writes must never reach this process";
  EXPECT_NE(log_text.str().find("watch on " + node + " suspended for 100 ms"), std::string::npos)
      << log_text.str();

  // After a quiet spell the watch is back and an event arrives at once.
  std::this_thread::sleep_for(limit.longest_suspension + limit.window);
  const std::size_t before = call_count;
  const auto quiet_write = Clock::now();
  writer.write(node, "quiet");
  ASSERT_TRUE(eventually([&] { return call_count > before; }));
  EXPECT_LT(Clock::now() - quiet_write, 50ms);
  {
    const std::lock_guard lock(seen_mutex);
    EXPECT_EQ(last_seen, "quiet");
  }

  // A watch removed while suspended is not unwatched in xenstored a second
  // time (that would fail and be logged).
  const std::uint64_t suspended_before = flood.suspended;
  std::size_t more = 0;
  while (io_thread.call([&] { return watcher.counters(id).suspended; }) == suspended_before &&
         more < 100000) {
    writer.write(node, "again-" + std::to_string(++more));
  }
  io_thread.call([&] { watcher.unwatch(id); });
  io_thread.stop();
  EXPECT_EQ(log_text.str().find("unwatching"), std::string::npos) << log_text.str();
}

}  // namespace
}  // namespace vifd::backend::testing
