// Real processes on one sim host: a forked child acts as domU 1, the test
// process as dom0. Grant share/map across processes, an event-channel
// ping-pong, and 1 GiB moved by batched grant copy with every byte checked.
#include <poll.h>

#include <chrono>
#include <cstdio>
#include <vector>

#include "tests/sim/sim_test_support.h"

namespace vifd::sim::testing {
namespace {

using platform::DomId;
using platform::EvtchnPort;
using platform::GrantCopySegment;
using platform::GrantRef;
using platform::kPageSize;

using MultiProcessTest = SimHostTest;

bool wait_readable(int fd) {
  pollfd entry{fd, POLLIN, 0};
  return ::poll(&entry, 1, 10000) == 1;
}

TEST_F(MultiProcessTest, ChildSharesParentMapsBothSeeWrites) {
  constexpr std::size_t kPages = 8;
  Pipe to_parent;
  Pipe to_child;
  Child child([&] {
    auto share = join(1)->open_grant_share();
    std::vector<GrantRef> refs(kPages);
    auto* pages = static_cast<std::uint32_t*>(share->share(0, refs, true));
    for (std::size_t i = 0; i < kPages; ++i) pages[i * kPageSize / 4] = 0xD0D0 + i;
    for (const GrantRef ref : refs) to_parent.send(ref);
    char done = 0;
    if (!to_child.receive(done)) return 3;
    // The parent wrote into every page through its mapping.
    for (std::size_t i = 0; i < kPages; ++i) {
      if (pages[i * kPageSize / 4 + 1] != 0xB0B0 + i) return 4;
    }
    share->unshare(pages, kPages);
    return 0;
  });
  ASSERT_TRUE(child.started());
  std::vector<GrantRef> refs(kPages);
  for (GrantRef& ref : refs) ASSERT_TRUE(to_parent.receive(ref));
  auto table = join(0)->open_grant_table();
  const std::vector<DomId> domids(kPages, 1);
  auto* mapped = static_cast<std::uint32_t*>(table->map(domids, refs, true));
  for (std::size_t i = 0; i < kPages; ++i) {
    EXPECT_EQ(mapped[i * kPageSize / 4], 0xD0D0 + i);
    mapped[i * kPageSize / 4 + 1] = static_cast<std::uint32_t>(0xB0B0 + i);
  }
  table->unmap(mapped, kPages);
  ASSERT_TRUE(to_child.send('x'));
  EXPECT_EQ(child.wait(), 0);
}

TEST_F(MultiProcessTest, EventChannelPingPong) {
  constexpr int kRoundTrips = 10000;
  Pipe to_parent;
  Pipe to_child;
  Child child([&]() -> int {
    auto channels = join(1)->open_event_channels();
    const EvtchnPort port = channels->bind_unbound(0);
    to_parent.send(port);
    int received = 0;
    // Stop taking events at exactly kRoundTrips: the next ones belong to
    // the masking check below.
    while (received < kRoundTrips) {
      const auto event = channels->pending();
      if (!event) {
        if (!wait_readable(channels->fd())) return 3;
        continue;
      }
      if (*event != port) return 4;
      ++received;
      channels->unmask(port);
      channels->notify(port);
    }
    // Masking: the parent notifies twice while we keep the port masked.
    char go = 0;
    if (!to_child.receive(go) || !wait_readable(channels->fd())) return 5;
    if (channels->pending() != port) return 6;
    if (channels->pending() != std::nullopt) return 7;
    channels->unmask(port);
    if (channels->pending() != port) return 8;  // the second, exactly once
    if (channels->pending() != std::nullopt) return 9;
    channels->unmask(port);
    return received == kRoundTrips ? 0 : 10;
  });
  ASSERT_TRUE(child.started());
  EvtchnPort remote = 0;
  ASSERT_TRUE(to_parent.receive(remote));
  auto channels = join(0)->open_event_channels();
  const EvtchnPort port = channels->bind_interdomain(1, remote);
  ASSERT_EQ(channels->pending(), port);  // Xen's event on a fresh binding
  channels->unmask(port);

  int replies = 0;
  for (int i = 0; i < kRoundTrips; ++i) {
    ASSERT_EQ(channels->notify(port), 0);
    ASSERT_TRUE(wait_readable(channels->fd()));
    while (const auto event = channels->pending()) {
      ASSERT_EQ(*event, port);
      ++replies;
      channels->unmask(port);
    }
  }
  EXPECT_EQ(replies, kRoundTrips);
  ASSERT_EQ(channels->notify(port), 0);
  ASSERT_EQ(channels->notify(port), 0);
  ASSERT_TRUE(to_child.send('x'));
  EXPECT_EQ(child.wait(), 0);
  EXPECT_EQ(read_counters(dir_, 0).evtchn_notify_calls, kRoundTrips + 2U);
  EXPECT_EQ(read_counters(dir_, 1).evtchn_notify_calls, static_cast<std::uint64_t>(kRoundTrips));
  EXPECT_EQ(read_counters(dir_, 1).evtchn_events_delivered, kRoundTrips + 2U);
}

// The value of 64-bit word `index` of round `round`: distinct per round and
// position, so a stale, shifted or misplaced byte changes the comparison.
std::uint64_t pattern(std::uint64_t round, std::uint64_t index) {
  std::uint64_t x = (round << 32) ^ index ^ 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

TEST_F(MultiProcessTest, OneGibThroughBatchedGrantCopy) {
  constexpr std::size_t kPages = 256;  // 1 MiB shared by the child
  constexpr std::size_t kSegmentsPerCall = 64;
  constexpr std::size_t kRounds = 1024;  // 1 GiB in total
  constexpr std::size_t kWordsPerRound = kPages * kPageSize / 8;
  Pipe to_parent;
  Pipe to_child;
  Child child([&]() -> int {
    auto share = join(1)->open_grant_share();
    std::vector<GrantRef> refs(kPages);
    auto* words = static_cast<std::uint64_t*>(share->share(0, refs, false));
    for (const GrantRef ref : refs) to_parent.send(ref);
    for (std::uint64_t round = 0; round < kRounds; ++round) {
      for (std::size_t i = 0; i < kWordsPerRound; ++i) words[i] = pattern(round, i);
      if (!to_parent.send('f')) return 3;
      char copied = 0;
      if (!to_child.receive(copied)) return 4;
    }
    share->unshare(words, kPages);
    return 0;
  });
  ASSERT_TRUE(child.started());
  std::vector<GrantRef> refs(kPages);
  for (GrantRef& ref : refs) ASSERT_TRUE(to_parent.receive(ref));

  auto table = join(0)->open_grant_table();
  std::vector<std::uint64_t> local(kWordsPerRound);
  std::vector<GrantCopySegment> segments(kSegmentsPerCall);
  const HypercallCounters before = read_counters(dir_, 0);
  std::chrono::nanoseconds copying{0};
  std::uint64_t mismatched_words = 0;
  std::uint64_t failed_segments = 0;
  for (std::uint64_t round = 0; round < kRounds; ++round) {
    char filled = 0;
    ASSERT_TRUE(to_parent.receive(filled));
    const auto start = std::chrono::steady_clock::now();
    for (std::size_t first = 0; first < kPages; first += kSegmentsPerCall) {
      for (std::size_t i = 0; i < kSegmentsPerCall; ++i) {
        GrantCopySegment& segment = segments[i];
        segment.source.foreign = {refs[first + i], 0, 1};
        segment.dest.virt = local.data() + (first + i) * kPageSize / 8;
        segment.len = kPageSize;
        segment.flags = platform::kCopySourceGref;
        segment.status = 1;
      }
      ASSERT_EQ(table->copy(segments), 0);
      for (const auto& segment : segments) failed_segments += segment.status != 0;
    }
    copying += std::chrono::steady_clock::now() - start;
    for (std::size_t i = 0; i < kWordsPerRound; ++i)
      mismatched_words += local[i] != pattern(round, i);
    ASSERT_TRUE(to_child.send('c'));
  }
  EXPECT_EQ(child.wait(), 0);
  EXPECT_EQ(failed_segments, 0U);
  EXPECT_EQ(mismatched_words, 0U) << "every byte of 1 GiB must arrive intact";

  const HypercallCounters after = read_counters(dir_, 0);
  const std::uint64_t calls = after.grant_copy_calls - before.grant_copy_calls;
  const std::uint64_t segments_done = after.grant_copy_segments - before.grant_copy_segments;
  const std::uint64_t bytes = after.grant_copy_bytes - before.grant_copy_bytes;
  EXPECT_EQ(calls, kRounds * kPages / kSegmentsPerCall);
  EXPECT_EQ(segments_done, kRounds * kPages);
  EXPECT_EQ(bytes, std::uint64_t{1} << 30);
  const double seconds = std::chrono::duration<double>(copying).count();
  std::printf(
      "[ sim 1 GiB grant copy ] calls=%llu segments=%llu bytes=%llu (%zu segments/call) "
      "copy time %.3f s = %.2f GiB/s\n",
      static_cast<unsigned long long>(calls), static_cast<unsigned long long>(segments_done),
      static_cast<unsigned long long>(bytes), kSegmentsPerCall, seconds,
      static_cast<double>(bytes) / (1 << 30) / seconds);
}

}  // namespace
}  // namespace vifd::sim::testing
